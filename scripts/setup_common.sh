# Shared by the set-up scripts (sourced, not run): stamps of hashed inputs, and the Python 3.11
# every venv of this project uses (the ROS 2 Jazzy wheels and the pinned cp311 wheels need it).
# The sourcing script sets STAMPS (a folder) and LOG_PREFIX before calling these.

log() { printf '\033[1m[%s]\033[0m %s\n' "${LOG_PREFIX:-setup}" "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

# Sets PYTHON to $PYTHON if given, else the first Python 3.11 on PATH; fails with the fix.
find_python311() {
  PYTHON="${PYTHON:-}"
  if [ -z "$PYTHON" ]; then
    for candidate in python3.11 python3; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        PYTHON="$(command -v "$candidate")"; break
      fi
    done
  fi
  [ -n "$PYTHON" ] || { echo "${LOG_PREFIX:-setup}: Python 3.11 is required (the ROS 2 Jazzy wheels and pinned wheels are cp311); set PYTHON=/path/to/python3.11" >&2; exit 1; }
}
