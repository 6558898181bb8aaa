"""Front-end benchmark: how many people the 2D front end finds on the posture test set, and how
well, beside MediaPipe's own pose solution.

    make bench-2d        # = scripts/setup_mediapipe.sh, posture_set fetch, then this module
    .venv/bin/python -m pose3d_tools.bench.front_end [--only ID ...] [--no-mediapipe]

Each image goes once through pose3d_ros.pipeline.PosePipeline as it is in the checkout (reset
before each image, so the first frame's detector runs; a 60 deg horizontal field of view), and
through MediaPipe 0.10.21 (mp.solutions.pose, model_complexity=1, static images; at most one
person) in .venv-mediapipe as a subprocess. Per category: people found / people present (found =
labelled person boxes, drawn by eye and loose, taken one-to-one by a skeleton whose limb joints
mostly fall in the box; in the vtest crowd frames, which have no boxes, skeletons capped at the
people present, counted apart as people_found_unverified), skeletons beyond the people present
(extra_detections), images where everyone was found, OKS on the 12
limb joints (COCO sigmas) for the labelled people (each matched to its best prediction, greedily),
and ms per frame per pipeline stage. Writes out/bench/front_end.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pose3d_tools import REPO_ROOT
from pose3d_tools.bench.machine import machine_facts
from pose3d_tools.bench.posture_set import OUT_DIR, PostureImage, images

MEDIAPIPE_PYTHON = REPO_ROOT / ".venv-mediapipe" / "bin" / "python"
MEDIAPIPE_SCRIPT = Path(__file__).with_name("mediapipe_pose.py")

# The 12 limb joints scored by OKS, their COCO-17 indices and COCO's per-joint sigmas.
LIMB_JOINTS = (
    "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)  # fmt: skip
COCO17_LIMB_INDEX = np.array([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
LIMB_SIGMAS = np.array(
    [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
)
OKS_HIT = 0.5


def limb_points(points: np.ndarray, joint_names: tuple[str, ...]) -> np.ndarray:
    """The 12 limb joints (12, 2) out of a skeleton whose joints are named joint_names."""
    index = [joint_names.index(name) for name in LIMB_JOINTS]
    return np.asarray(points, dtype=np.float64)[index, :2]


def oks(pred: np.ndarray, gt: np.ndarray, area: float) -> float:
    """Object keypoint similarity of pred (12, 2) to gt (12, 3: x, y, visibility) for an object
    of `area` px^2: mean over labelled joints of exp(-d^2 / (2 area k^2)), k = 2 sigma (COCO)."""
    labelled = gt[:, 2] > 0
    if not labelled.any():
        return float("nan")
    d2 = np.sum((pred - gt[:, :2]) ** 2, axis=1)
    k2 = (2.0 * LIMB_SIGMAS) ** 2
    e = np.exp(-d2 / (2.0 * max(area, 1e-9) * k2))
    e = np.where(np.isfinite(e), e, 0.0)
    return float(e[labelled].mean())


def match_oks(preds: list[np.ndarray], gts: np.ndarray, areas: np.ndarray) -> list[float]:
    """Each labelled person's OKS with a prediction, matched greedily by OKS (0 if unmatched)."""
    gts_limb = gts[:, COCO17_LIMB_INDEX]
    table = np.array([[oks(p, g, a) for p in preds] for g, a in zip(gts_limb, areas, strict=True)])
    result = [0.0] * len(gts)
    if not preds:
        return result
    table = np.nan_to_num(table.reshape(len(gts), len(preds)), nan=0.0)
    while np.isfinite(table).any() and table.max() > 0:
        g, p = np.unravel_index(np.argmax(table), table.shape)
        result[g] = float(table[g, p])
        table[g, :] = -np.inf
        table[:, p] = -np.inf
    return result


# Limb segments between LIMB_JOINTS indices, for overlays.
_SEGMENTS = ((0, 1), (0, 2), (2, 4), (1, 3), (3, 5), (6, 7), (0, 6), (1, 7), (6, 8), (8, 10),
             (7, 9), (9, 11))  # fmt: skip


def draw(image: np.ndarray, preds: dict[str, list[np.ndarray]]) -> np.ndarray:
    """The image with each front end's limb skeletons (pose3d green, MediaPipe magenta)."""
    out = image.copy()
    colours = {"pose3d": (0, 220, 0), "mediapipe": (255, 0, 255)}
    thickness = max(1, round(max(image.shape[:2]) / 300))
    for name, skeletons in preds.items():
        for pts in skeletons:
            for a, b in _SEGMENTS:
                if np.isfinite(pts[[a, b]]).all():
                    pa, pb = tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b])
                    cv2.line(out, pa, pb, colours[name], thickness, cv2.LINE_AA)
    return out


def match_boxes(
    preds: list[np.ndarray], boxes: np.ndarray, width: int, height: int, margin: float = 0.1
) -> int:
    """People found: boxes (labelled by eye) matched one-to-one by skeletons. A skeleton may take
    a box when at least 3 of its limb joints inside the image, and at least half of them, fall in
    the box grown by `margin` of its size on each side (joints outside the image, e.g. legs of a
    close-up, are ignored)."""
    grown = boxes + np.array([-1, -1, 1, 1]) * margin * np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    table = np.zeros((len(preds), len(boxes)))
    for i, pts in enumerate(preds):
        pts = pts[np.isfinite(pts).all(axis=1)]
        pts = pts[(pts[:, 0] >= 0) & (pts[:, 0] < width) & (pts[:, 1] >= 0) & (pts[:, 1] < height)]
        if len(pts) < 3:
            continue
        for j, b in enumerate(grown):
            inside = ((pts >= b[:2]) & (pts <= b[2:])).all(axis=1)
            if inside.sum() >= 3 and inside.mean() >= 0.5:
                table[i, j] = inside.mean()
    found = 0
    while table.size and table.max() > 0:
        i, j = np.unravel_index(np.argmax(table), table.shape)
        table[i, :] = 0.0
        table[:, j] = 0.0
        found += 1
    return found


def run_pose3d(items: list[PostureImage], threads: int) -> list[dict]:
    """Each image through the checkout's PosePipeline (reset before each)."""
    from pose3d_ros.core.camera import CameraModel
    from pose3d_ros.core.poses import TrackState
    from pose3d_ros.core.skeletons import H36M17
    from pose3d_ros.pipeline import PipelineSettings, PosePipeline

    pipeline = PosePipeline(PipelineSettings(threads=threads))
    out = []
    for n, item in enumerate(items):
        image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        camera = CameraModel.from_fov(w, h, 60)
        if n == 0:  # warm-up: first inferences allocate
            pipeline.reset()
            pipeline.process(image, camera, 0.0)
        pipeline.reset()
        start = time.perf_counter()
        result = pipeline.process(image, camera, 0.0)
        wall = (time.perf_counter() - start) * 1e3
        poses = [p for p in result.poses if p.state != TrackState.COASTING]
        preds = [limb_points(p.keypoints_2d, H36M17.joints) for p in poses]
        out.append(
            {
                "detections": len(poses),
                "preds": preds,
                "boxes": [[round(float(v), 1) for v in p.bbox] for p in poses],
                "stage_ms": {k: float(v) for k, v in result.timings_ms.items()},
                "wall_ms": wall,
            }
        )
    return out


def run_mediapipe(items: list[PostureImage]) -> tuple[list[dict] | None, str]:
    """Each image through MediaPipe in .venv-mediapipe; (None, reason) when it cannot run."""
    if not MEDIAPIPE_PYTHON.exists():
        return None, f"{MEDIAPIPE_PYTHON} missing: run scripts/setup_mediapipe.sh"
    from pose3d_ros.core.skeletons import BLAZEPOSE33

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps({"images": [str(it.path) for it in items]}))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
        subprocess.run(
            [str(MEDIAPIPE_PYTHON), str(MEDIAPIPE_SCRIPT), str(src), str(dst)],
            check=True,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        report = json.loads(dst.read_text())
    out = []
    for r in report["results"]:
        preds = (
            [] if not r["found"] else [limb_points(np.array(r["landmarks"]), BLAZEPOSE33.joints)]
        )
        out.append({"detections": len(preds), "preds": preds, "wall_ms": r["ms"]})
    return out, f"mediapipe {report['mediapipe']} mp.solutions.pose model_complexity=1"


def score(item: PostureImage, run: dict, size: tuple[int, int]) -> dict:
    """One image's numbers for one front end (size: image width, height)."""
    if item.boxes is not None:  # skeletons on the labelled people
        found, found_by = match_boxes(run["preds"], item.boxes, *size), "boxes"
    else:  # no boxes (crowd frames): skeletons, capped at the people present
        found, found_by = min(run["detections"], item.people), "count"
    rec = {
        "detections": run["detections"],
        "found": found,
        "found_by": found_by,
        "all_found": found >= item.people,
        "ms": round(run["wall_ms"], 2),
    }
    if item.keypoints is not None:
        rec["oks"] = [round(v, 4) for v in match_oks(run["preds"], item.keypoints, item.areas)]
    if "stage_ms" in run:
        rec["stage_ms"] = {k: round(v, 2) for k, v in run["stage_ms"].items()}
    if "boxes" in run:
        rec["boxes"] = run["boxes"]
    return rec


def summarize(per_image: list[dict], front_end: str) -> dict:
    """Totals of one front end over a list of per-image records."""
    recs = [r for r in per_image if front_end in r]
    if not recs:
        return {}
    oks_all = [v for r in recs for v in r[front_end].get("oks", [])]
    out = {
        "images": len(recs),
        "people_present": sum(r["people"] for r in recs),
        "people_found": sum(r[front_end]["found"] for r in recs),
        "people_found_unverified": sum(
            r[front_end]["found"] for r in recs if r[front_end]["found_by"] == "count"
        ),
        "detections": sum(r[front_end]["detections"] for r in recs),
        "extra_detections": sum(max(0, r[front_end]["detections"] - r["people"]) for r in recs),
        "images_all_found": sum(r[front_end]["all_found"] for r in recs),
        "labelled_people": len(oks_all),
        "oks_mean": round(float(np.mean(oks_all)), 4) if oks_all else None,
        f"oks_ge_{OKS_HIT}": sum(v >= OKS_HIT for v in oks_all),
        "ms_median": round(float(np.median([r[front_end]["ms"] for r in recs])), 2),
    }
    stages = sorted({k for r in recs for k in r[front_end].get("stage_ms", {})})
    if stages:
        out["stage_ms_median"] = {
            k: round(float(np.median([r[front_end]["stage_ms"].get(k, 0.0) for r in recs])), 2)
            for k in stages
        }
    return out


def benchmark(
    items: list[PostureImage], threads: int, mediapipe: bool, draw_dir: Path | None = None
) -> dict:
    """Run both front ends on items; the report as a JSON-able dict (overlays in draw_dir)."""
    load_start = os.getloadavg()
    pose3d = run_pose3d(items, threads)
    mp_runs, mp_note = run_mediapipe(items) if mediapipe else (None, "skipped (--no-mediapipe)")
    per_image = []
    for i, item in enumerate(items):
        rec = {"id": item.id, "category": item.category, "people": item.people}
        h, w = cv2.imread(str(item.path), cv2.IMREAD_COLOR).shape[:2]
        rec["pose3d"] = score(item, pose3d[i], (w, h))
        if mp_runs is not None:
            rec["mediapipe"] = score(item, mp_runs[i], (w, h))
        per_image.append(rec)
        if draw_dir is not None:
            draw_dir.mkdir(parents=True, exist_ok=True)
            preds = {"pose3d": pose3d[i]["preds"]}
            if mp_runs is not None:
                preds["mediapipe"] = mp_runs[i]["preds"]
            image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
            cv2.imwrite(str(draw_dir / f"{item.id}.jpg"), draw(image, preds))
    categories = sorted({it.category for it in items})
    front_ends = ["pose3d"] + (["mediapipe"] if mp_runs is not None else [])
    return {
        "description": "posture set through pose3d's PosePipeline and MediaPipe's pose solution",
        "oks": f"12 limb joints, COCO sigmas; hit = OKS >= {OKS_HIT}",
        "pose3d": f"PosePipeline of this checkout, threads={threads}, reset per image",
        "mediapipe": mp_note,
        "machine": machine_facts(load_start),
        "categories": {
            c: {
                fe: summarize([r for r in per_image if r["category"] == c], fe) for fe in front_ends
            }
            for c in categories
        },
        "total": {fe: summarize(per_image, fe) for fe in front_ends},
        "images": per_image,
    }


def print_table(report: dict) -> None:
    """Found / present and OKS per category, side by side."""
    print(f"{'category':<13} {'pose3d found':>13} {'all':>6} {'OKS>=.5':>8} {'ms':>6}   "
          f"{'mediapipe':>10} {'all':>6} {'OKS>=.5':>8} {'ms':>6}")  # fmt: skip
    rows = {**report["categories"], "TOTAL": report["total"]}
    for name, fes in rows.items():
        cells = []
        for fe in ("pose3d", "mediapipe"):
            s = fes.get(fe)
            if not s:
                cells.append(" " * 37)
                continue
            hit = (
                f"{s[f'oks_ge_{OKS_HIT}']}/{s['labelled_people']}" if s["labelled_people"] else "-"
            )
            cells.append(
                f"{s['people_found']:>6}/{s['people_present']:<6} {s['images_all_found']:>2}/"
                f"{s['images']:<3} {hit:>8} {s['ms_median']:6.1f}"
            )
        print(f"{name:<13} {cells[0]}   {cells[1]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set-dir", default=str(OUT_DIR), help="fetched posture set")
    ap.add_argument("--only", nargs="*", help="image ids (default: all)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads per model")
    ap.add_argument("--no-mediapipe", action="store_true")
    ap.add_argument("--out", default=str(REPO_ROOT / "out" / "bench" / "front_end.json"))
    ap.add_argument("--draw", help="folder for overlays (pose3d green, MediaPipe magenta)")
    args = ap.parse_args()

    items = images(Path(args.set_dir))
    if args.only:
        items = [it for it in items if it.id in set(args.only)]
    missing = [str(it.path) for it in items if not it.path.exists()]
    if missing:
        print(f"missing images (run the fetch first): {missing[:3]}", file=sys.stderr)
        return 1
    draw_dir = Path(args.draw) if args.draw else None
    report = benchmark(items, args.threads, not args.no_mediapipe, draw_dir)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print_table(report)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
