#!/usr/bin/env bash
# The "robot floor" venv (.venv-floor): the oldest numpy / OpenCV / SciPy that install on this
# Python (requirements/floor.txt), ONNX Runtime, and pose3d_ros without ROS, so the runtime's
# non-ROS tests can run against the old libraries that Humble, Ubuntu 22.04 and JetPack ship.
# Idempotent: skipped when requirements/floor.txt and pose3d_ros' metadata are unchanged
# (hashed into .venv-floor/.setup/, as scripts/setup.sh does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv-floor"
STAMPS="$VENV/.setup"

LOG_PREFIX=setup-floor
# shellcheck source=scripts/setup_common.sh
source "$ROOT/scripts/setup_common.sh"

# The same interpreter as .venv (made by scripts/setup.sh): a Python 3.11.
find_python311

req_hash="$(hash_of requirements/floor.txt pose3d_ros/setup.py pose3d_ros/setup.cfg)"
if stamp_ok floor "$req_hash" && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating .venv-floor with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
log "installing the oldest numpy / OpenCV / SciPy (requirements/floor.txt)"
# Binary wheels only: the floor is what installs as-is, not what a compiler can be made to build.
"$PY" -m pip install -q --only-binary=numpy,scipy,opencv-python-headless,onnxruntime,onnx,PyYAML \
  -r requirements/floor.txt
# pose3d_ros without its dependencies (they are pinned above) and without ROS: the ROS layer is
# never imported by the tests run here. Compat editable mode, as scripts/setup.sh, so the
# package finds its shipped lifters in the checkout.
"$PY" -m pip install -q --no-deps --config-settings editable_mode=compat -e pose3d_ros
"$PY" - <<'PYCHECK'
import importlib.metadata as md

import cv2
import numpy
import scipy

pins = {}
for line in open("requirements/floor.txt"):
    line = line.split("#")[0].strip()
    if "==" in line:
        name, version = line.split("==")
        pins[name] = version
for name, version in pins.items():
    have = md.version(name)
    assert have == version, f"{name} {have} installed, floor pins {version}"
print("floor:", "numpy", numpy.__version__, "scipy", scipy.__version__, "OpenCV", cv2.__version__)
PYCHECK
stamp_set floor "$req_hash"
log "ready: $VENV"
