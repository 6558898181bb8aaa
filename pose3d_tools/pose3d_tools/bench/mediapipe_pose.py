"""MediaPipe's own pose solution on a list of images: the front-end benchmark's baseline.

Runs in .venv-mediapipe (scripts/setup_mediapipe.sh; mediapipe 0.10.21), started by
bench/front_end.py as a subprocess, so it imports nothing of this project:

    .venv-mediapipe/bin/python pose3d_tools/pose3d_tools/bench/mediapipe_pose.py in.json out.json

in.json: {"images": [path, ...]}. out.json: {"mediapipe": version, "results": [{"path", "found",
"landmarks": 33 x [x_px, y_px, visibility] or null, "ms"}]}. Legacy mp.solutions.pose with
model_complexity=1, static_image_mode=True: at most one person per image.
"""

from __future__ import annotations

import json
import sys
import time

import cv2
import mediapipe as mp


def run(paths: list[str]) -> dict:
    """Pose landmarks (pixels) of the one person MediaPipe finds in each image, if any."""
    results = []
    with mp.solutions.pose.Pose(
        static_image_mode=True, model_complexity=1, min_detection_confidence=0.5
    ) as pose:
        if paths:  # warm-up: the first call initialises the graph
            pose.process(cv2.cvtColor(cv2.imread(paths[0], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        for path in paths:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            h, w = image.shape[:2]
            start = time.perf_counter()
            out = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            ms = (time.perf_counter() - start) * 1e3
            landmarks = None
            if out.pose_landmarks is not None:
                landmarks = [
                    [lm.x * w, lm.y * h, lm.visibility] for lm in out.pose_landmarks.landmark
                ]
            results.append(
                {"path": path, "found": landmarks is not None, "landmarks": landmarks, "ms": ms}
            )
    return {"mediapipe": mp.__version__, "results": results}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        paths = json.load(f)["images"]
    report = run(paths)
    with open(sys.argv[2], "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
