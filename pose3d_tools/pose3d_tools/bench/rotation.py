"""People found on rotated copies of real images and on vtest.avi, before vs after the fused
front end, with the per-stage milliseconds, and the end-to-end cost on video.

    python -m pose3d_tools.bench.rotation [--footage data/footage] [--out out/bench/rotation.json]

Speed (``speed`` in the JSON): the shipped ``detect_every`` (5), 640x480, frames 1/30 s apart:
``1p`` = messi5 scaled to 480 px high and centre-cropped, the same still each frame; ``multi`` =
vtest.avi from frame 100 resized to 640x480. Rounds of ``--frames`` frames visit before/after in
turn (interleaved, so machine load hits both alike); mean and p95 ms per frame of process().

"before" = the SSDLite pedestrian detector alone with upright crops (the front end until
2026-12-01: ``proposals.detectors=ssdlite``, ``keypoints.upright_retry_deg=180``); "after" = the
shipped defaults (BlazePose detector + SSDLite fused, rotated crops, upright retry). A person
counts as found on a rotated copy when a skeleton with >= 8 seen joints comes back; its 2D
error is the median distance of its joints, rotated back, to the upright image's skeleton of
the same person (found by the "after" front end on the upright image).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import build_settings
from pose3d_ros.pipeline import PipelineSettings, PosePipeline

VARIANTS = {
    "before": {"proposals.detectors": "ssdlite", "keypoints.upright_retry_deg": 180.0},
    "after": {},
}
MIN_JOINTS = 8


def unrotate(points: np.ndarray, k: int, shape_hw: tuple[int, int]) -> np.ndarray:
    """Pixels of ``np.rot90(img, k)`` -> pixels of ``img`` (H, W = ``shape_hw``)."""
    h, w = shape_hw
    p = np.asarray(points, np.float64)
    x, y = p[..., 0], p[..., 1]
    k %= 4
    if k == 0:
        return p.copy()
    if k == 1:  # rot90 CCW: image (x, y) -> (y, W-1-x)
        return np.stack([w - 1 - y, x], -1)
    if k == 2:
        return np.stack([w - 1 - x, h - 1 - y], -1)
    return np.stack([y, h - 1 - x], -1)  # k == 3: (x, y) -> (H-1-y, x)


def _people(result) -> list:
    return [p for p in result.poses if p.observed.sum() >= MIN_JOINTS]


def _frame(pipe: PosePipeline, image: np.ndarray):
    pipe.reset()
    pipe._frame_index = 0  # a detection frame
    h, w = image.shape[:2]
    return pipe.process(image, CameraModel.from_fov(w, h, 60.0), time.time())


def run(footage: Path, threads: int = 1) -> dict:
    out: dict = {"stills": {}, "vtest": {}, "stage_ms": {}}
    pipes = {
        name: PosePipeline(
            build_settings(PipelineSettings, {"backend": "onnxruntime", "threads": threads, **v})
        )
        for name, v in VARIANTS.items()
    }
    for image_name in ("messi5.jpg", "basketball1.png"):
        img = cv2.imread(str(footage / image_name))
        reference = _people(_frame(pipes["after"], img))
        for k in range(4):
            rotated = np.ascontiguousarray(np.rot90(img, k))
            row = {}
            for name, pipe in pipes.items():
                people = _people(_frame(pipe, rotated))
                errors = []
                for p in people:
                    back = unrotate(p.keypoints_2d, k, img.shape[:2])
                    best = None
                    for r in reference:
                        both = p.observed & r.observed
                        if both.sum() >= MIN_JOINTS:
                            d = float(np.median(np.hypot(*(back[both] - r.keypoints_2d[both]).T)))
                            best = d if best is None else min(best, d)
                    errors.append(None if best is None else round(best, 1))
                row[name] = {"people": len(people), "median_px_to_upright": errors}
            out["stills"][f"{image_name}@{90 * k}"] = row
    cap = cv2.VideoCapture(str(footage / "vtest.avi"))
    frames = []
    for i in range(200):
        ok, frame = cap.read()
        if not ok:
            break
        if i % 20 == 0:
            frames.append(frame)
    cap.release()
    for name, pipe in pipes.items():
        counts, stages = [], {}
        for frame in frames:
            for _ in range(2):  # the second run is the timed one (warm)
                result = _frame(pipe, frame)
            counts.append(len(_people(result)))
            for key, ms in result.timings_ms.items():
                stages.setdefault(key, []).append(ms)
        out["vtest"][name] = {"frames": len(frames), "people_per_frame": counts,
                              "total_people": int(sum(counts))}
        out["stage_ms"][name] = {k: round(float(np.median(v)), 2) for k, v in stages.items()}
    return out


def _scenes(footage: Path, n: int) -> dict[str, list[np.ndarray]]:
    messi = cv2.imread(str(footage / "messi5.jpg"))
    h, w = messi.shape[:2]
    scaled = cv2.resize(messi, (round(w * 480 / h), 480))
    x0 = (scaled.shape[1] - 640) // 2
    one = np.ascontiguousarray(scaled[:, x0 : x0 + 640])
    cap = cv2.VideoCapture(str(footage / "vtest.avi"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    multi = []
    for _ in range(n):
        ok, frame = cap.read()
        if not ok:
            break
        multi.append(cv2.resize(frame, (640, 480), interpolation=cv2.INTER_AREA))
    cap.release()
    return {"1p": [one] * n, "multi": multi}


def speed(footage: Path, threads: int = 1, rounds: int = 3, frames: int = 30) -> dict:
    """Mean / p95 ms per frame of the whole pipeline, before vs after (interleaved rounds)."""
    camera = CameraModel.from_fov(640, 480, 60.0)
    out: dict = {}
    for scene, images in _scenes(footage, frames).items():
        pipes = {
            name: PosePipeline(
                build_settings(PipelineSettings, {"backend": "onnxruntime", "threads": threads,
                                                  **v})
            )
            for name, v in VARIANTS.items()
        }
        times: dict[str, list[float]] = {name: [] for name in pipes}
        people: dict[str, list[int]] = {name: [] for name in pipes}
        for r in range(rounds + 1):  # round 0 warms up
            for name, pipe in pipes.items():
                pipe.reset()
                for i, img in enumerate(images):
                    t = time.perf_counter()
                    result = pipe.process(img, camera, r * 100.0 + i / 30.0)
                    if r:
                        times[name].append((time.perf_counter() - t) * 1e3)
                        people[name].append(len(_people(result)))
        out[scene] = {
            name: {
                "mean_ms": round(float(np.mean(t)), 1),
                "p95_ms": round(float(np.percentile(t, 95)), 1),
                "fps": round(1000.0 / float(np.mean(t)), 1),
                "people_per_frame": round(float(np.mean(people[name])), 2),
            }
            for name, t in times.items()
        }
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--footage", default="data/footage")
    p.add_argument("--out", default="out/bench/rotation.json")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    result = run(Path(args.footage), args.threads)
    result["speed"] = speed(Path(args.footage), args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
