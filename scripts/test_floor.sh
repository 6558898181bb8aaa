#!/usr/bin/env bash
# `make test-floor`: the runtime's non-ROS tests (pose3d_ros/test without ros/ and without any
# test module that imports rclpy, the messages or the ROS layer) in .venv-floor, i.e. against
# the oldest numpy / OpenCV / SciPy that install (requirements/floor.txt).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup_floor.sh

ignores=(--ignore=pose3d_ros/test/ros)
while IFS= read -r f; do
  ignores+=("--ignore=$f")
done < <(grep -lE '^\s*(from|import) (rclpy|pose3d_msgs|pose3d_ros\.ros)\b' pose3d_ros/test/*.py || true)
echo "[test-floor] needs ROS, not run here: ${ignores[*]#--ignore=}"
# Decoder-exact: its hand-read expectations hold for the frames the newest OpenCV's FFmpeg
# decodes from vtest.avi; OpenCV 4.5.5's differ by up to 2 grey levels and the ids come out
# differently (reported to the pipeline's owners). The floor is about library APIs.
ignores+=("--deselect=pose3d_ros/test/test_pipeline.py::test_ids_stay_on_their_person_across_vtest_frames")

set +e
.venv-floor/bin/python -m pytest -p no:cacheprovider pose3d_ros/test "${ignores[@]}" "$@"
code=$?
set -e
# pytest exits 5 when it collected nothing: a failure here too.
if [ "$code" -eq 5 ]; then echo "test-floor: pytest collected no tests - failing" >&2; exit 1; fi
exit "$code"
