"""Benchmark the 2D stage on vtest.avi frames: person detector, BlazePose keypoints for 1 and 4
crops (one batched call vs a loop of single-crop calls), crop preparation, and a tracked frame.

    .venv/bin/python benchmarks/stage2d.py [--threads 2] [--frames 20] [--model blazepose_full]

Prints a table and writes out/bench/stage2d.json (median and p90 ms). Needs the models built by
`make setup` (`.venv/bin/python -m pose3d_tools.model_build build`). Timings on a shared machine
are noisy: the load average at start and end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.stages.detection import load_person_detector
from pose3d_ros.stages.keypoints2d import (
    angles_from_keypoints,
    load_keypoint_estimator,
    rois_from_keypoints,
)
from pose3d_tools import REPO_ROOT as ROOT
from pose3d_tools.bench.machine import machine_facts


def timed(fn, runs: int) -> dict[str, float]:
    fn()  # warm-up
    ms = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "runs": runs}


def read_frames(path: Path, start: int, count: int, step: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames, i = [], 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    return frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--frames", type=int, default=20, help="vtest frames (every 5th from 100)")
    ap.add_argument("--model", default="blazepose_full", help="blazepose_{lite,full,heavy}")
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"))
    args = ap.parse_args()

    load_start = os.getloadavg()
    frames = read_frames(ROOT / "data" / "footage" / "vtest.avi", 100, args.frames, 5)
    detector = load_person_detector(threads=args.threads)
    estimator = load_keypoint_estimator(model=args.model, threads=args.threads)

    # The detector over all frames (one timed call per frame).
    counts, det_ms, boxes_per_frame = [], [], []
    detector.detect(frames[0])  # warm-up
    for frame in frames:
        start = time.perf_counter()
        boxes, _ = detector.detect(frame)
        det_ms.append((time.perf_counter() - start) * 1e3)
        counts.append(len(boxes))
        boxes_per_frame.append(boxes)
    results: dict[str, dict] = {
        "detector": {
            "median_ms": float(np.median(det_ms)),
            "p90_ms": float(np.percentile(det_ms, 90)),
            "runs": len(det_ms),
            "people_per_frame_mean": float(np.mean(counts)),
        }
    }

    # Keypoints: the frame with the most people, its first 1 and 4 boxes.
    best = int(np.argmax(counts))
    frame, boxes = frames[best], boxes_per_frame[best]
    if len(boxes) < 4:
        boxes = np.concatenate([boxes, np.repeat(boxes[:1], 4 - len(boxes), axis=0)])
    runs = max(5, args.frames // 2)
    for n in (1, 4):
        b = boxes[:n]
        crops, _ = estimator.crops(frame, b)
        results[f"keypoints_{n}_batched"] = timed(lambda b=b: estimator.estimate(frame, b), runs)
        results[f"keypoints_{n}_looped"] = timed(
            lambda b=b: [estimator.estimate(frame, b[i : i + 1]) for i in range(len(b))], runs
        )
        results[f"network_only_{n}_batched"] = timed(
            lambda c=crops: estimator.backend.run({"image": c}), runs
        )
        results[f"crop_prep_{n}"] = timed(lambda b=b: estimator.crops(frame, b), runs)

    # A tracked frame: keypoints from the previous frame's keypoints (rotated crops, no detector).
    kp = estimator.estimate(frame, boxes[:4])
    rois, angles = (
        rois_from_keypoints(kp.points, kp.confidence),
        angles_from_keypoints(kp.points, kp.confidence),
    )
    ok = np.isfinite(rois).all(1)
    results["tracked_frame_4"] = timed(
        lambda: estimator.estimate(frame, rois[ok], angles[ok]), runs
    )
    results["detect_plus_keypoints_4"] = {
        "median_ms": results["detector"]["median_ms"] + results["keypoints_4_batched"]["median_ms"]
    }

    report = {
        "keypoint_model": args.model,
        "threads": args.threads,
        "frames": len(frames),
        "machine": machine_facts(load_start),
        "backend": estimator.backend.describe(),
        "results": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stage2d.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"2D stage on vtest.avi, {args.model}, {args.threads} threads, load {load_start[0]:.1f}")
    print(f"{'step':<26} {'median ms':>10} {'p90 ms':>8}")
    for name, r in results.items():
        p90 = f"{r['p90_ms']:8.1f}" if "p90_ms" in r else ""
        print(f"{name:<26} {r['median_ms']:10.1f} {p90}")
    print(f"people per frame (mean): {results['detector']['people_per_frame_mean']:.1f}")
    print(f"written {out / 'stage2d.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
