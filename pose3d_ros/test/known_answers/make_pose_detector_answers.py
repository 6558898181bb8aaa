"""Provenance of pose_detector_answers.json: the BlazePose person detector's known answers.

Run once (2026-12-01) from the repository root as

    .venv/bin/python pose3d_ros/test/known_answers/make_pose_detector_answers.py \
        --tflite pose_detection.tflite --tf-python /path/to/buildenv/bin/python

where ``pose_detection.tflite`` is the file from the mediapipe==0.10.21 wheel (sha256 9ba9dd3d...
866c) and the build venv has tensorflow-cpu 2.21.0 (``pose3d-tools models build --buildenv``).
For each test image (messi5.jpg and basketball1.png upright and rotated by 90/180/270 deg with
np.rot90) the runtime's letterbox makes the network input, the *TFLite interpreter* (not our
ONNX) produces the raw outputs, and the plain per-anchor loops below (written from MediaPipe's
SsdAnchorsCalculator / TensorsToDetectionsCalculator / WeightedNMS options, independent of the
vectorised runtime code) decode them. The raw outputs of every anchor scoring >= 0.5 are stored
too, so the decoding can be tested without any model.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.stages.pose_detection import letterbox

TFLITE = """
import sys, numpy as np, tensorflow as tf
it = tf.lite.Interpreter(model_path=sys.argv[1]); it.allocate_tensors()
inp = it.get_input_details()[0]
outs = sorted(it.get_output_details(), key=lambda o: o["shape"][-1], reverse=True)
raw, lg = [], []
for x in np.load(sys.argv[2]):
    it.set_tensor(inp["index"], np.ascontiguousarray(x.transpose(1, 2, 0)[None])); it.invoke()
    raw.append(it.get_tensor(outs[0]["index"])[0]); lg.append(it.get_tensor(outs[1]["index"])[0])
np.savez(sys.argv[3], raw=np.stack(raw), logits=np.stack(lg))
"""


def loop_anchors() -> list[tuple[float, float]]:
    """Anchor centres, one cell at a time: layers 0 (stride 8), 1 (16), 2-4 (32, shared map)."""
    out = []
    for stride, layers in ((8, 1), (16, 1), (32, 3)):
        side = math.ceil(224 / stride)
        for y in range(side):
            for x in range(side):
                for _ in range(2 * layers):
                    out.append(((x + 0.5) / side, (y + 0.5) / side))
    return out


def loop_decode(raw, logits, pad, w, h):
    anchors = loop_anchors()
    dets = []
    for i, (ax, ay) in enumerate(anchors):
        score = 1 / (1 + math.exp(-max(-100.0, min(100.0, float(logits[i][0])))))
        if score < 0.5:
            continue
        r = [float(v) / 224 for v in raw[i]]
        cx, cy, bw, bh = r[0] + ax, r[1] + ay, r[2], r[3]
        vals = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
        for k in range(4):
            vals += [r[4 + 2 * k] + ax, r[5 + 2 * k] + ay]
        dets.append((score, vals))
    dets.sort(key=lambda d: -d[0])
    merged = []
    while dets:
        best = dets[0]
        group, rest = [], []
        for d in dets:
            (group if iou(best[1][:4], d[1][:4]) > 0.3 else rest).append(d)
        total = sum(d[0] for d in group)
        vals = [sum(d[0] * d[1][j] for d in group) / total for j in range(12)]
        merged.append((best[0], vals))
        dets = rest
    left, top, right, bottom = pad
    out = []
    for score, vals in merged:
        px = []
        for j, v in enumerate(vals):
            if j % 2 == 0:
                px.append((v - left) / (1 - left - right) * w)
            else:
                px.append((v - top) / (1 - top - bottom) * h)
        (x0, y0), (x1, y1) = px[4:6], px[6:8]
        rot = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
        rot = rot - 2 * math.pi * math.floor((rot + math.pi) / (2 * math.pi))
        out.append({
            "score": score,
            "box": px[:4],
            "keypoints": [px[4 + 2 * k : 6 + 2 * k] for k in range(4)],
            "roi": {"cx": x0, "cy": y0, "side": 2 * math.hypot(x1 - x0, y1 - y0) * 1.25,
                    "rotation": rot},
        })
    return out


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tflite", required=True)
    p.add_argument("--tf-python", required=True)
    p.add_argument("--footage", default="data/footage")
    args = p.parse_args()
    cases, blobs = [], []
    for name in ("messi5.jpg", "basketball1.png"):
        img = cv2.imread(str(Path(args.footage) / name))
        for k in range(4):
            im = np.ascontiguousarray(np.rot90(img, k))
            blob, pad = letterbox(im)
            blobs.append(blob[0])
            cases.append({"image": name, "rot90": k, "size": [im.shape[1], im.shape[0]],
                          "pad": pad.tolist()})
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", np.stack(blobs))
        Path(f"{tmp}/run.py").write_text(TFLITE)
        subprocess.run([args.tf_python, f"{tmp}/run.py", args.tflite, f"{tmp}/x.npy",
                        f"{tmp}/y.npz"], check=True, capture_output=True)
        y = np.load(f"{tmp}/y.npz")
    for case, raw, logits in zip(cases, y["raw"], y["logits"], strict=True):
        w, h = case["size"]
        case["detections"] = loop_decode(raw, logits, case["pad"], w, h)
        top = np.flatnonzero(logits[:, 0] >= 0.0)  # every anchor scoring >= 0.5
        case["anchors_scoring"] = [{"index": int(i), "raw": raw[i].tolist(),
                                "logit": float(logits[i, 0])} for i in top]
    out = Path(__file__).with_name("pose_detector_answers.json")
    out.write_text(json.dumps({"provenance": __doc__.strip().splitlines()[0] + " See "
                               + Path(__file__).name, "cases": cases}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
