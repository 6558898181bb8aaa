"""Evaluation of the end-to-end image models: held-out renders (3D truth) and real photographs
(no 3D truth).

    python -m pose3d_tools.e2e_eval renders --checkpoint pose3d_tools/checkpoints/e2e/e2e_jdt_c2f.pt
    python -m pose3d_tools.e2e_eval real --onnx pose3d_ros/estimators/e2e_jdt_c2f.onnx

* ``renders``: MPJPE and P-MPJPE (mm, root-relative, crop axes) on ``out/renders/test`` (poses of
  S9/S11 only, rendered like the training set); records merged into ``out/eval.json`` with
  ``"input": "renders (held-out S9/S11 poses)"``. ``pose3d-tools eval`` calls
  :func:`evaluate_e2e_checkpoint` when a checkpoint's ``kind`` is ``"e2e"``.
* ``real``: the posture photo set of ``make bench-2d`` (``data/posture_set``). Each image goes
  through the checkout's 2D stage and shipped lifter (``PosePipeline``, htnet_small); each person
  is cropped as the E2E contract says (box of the 2D stage's joints, crop_scale, angle 0) and run
  through the E2E ONNX model. With no 3D truth, transfer is measured by how well the 3D joints'
  (x, y), after the best-fitting scale and translation (no rotation), land on the 2D stage's
  keypoints: PCK at 0.1 of the joints' box side and the mean 2D error / box side. The same
  measure of the lifter's 3D is printed beside it -- the lifter was *given* those keypoints, so
  its number is a ceiling for this measure, not a fair rival. A contact sheet shows the crops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_tools import metrics

RENDER_INPUT = "renders (held-out S9/S11 poses)"
REAL_INPUT = "real photographs (posture set), 2D stage crops"
DEFAULT_TEST_RENDERS = "out/renders/test"
PCK_FRACTION = 0.1
MIN_CONFIDENCE = 0.3  # 2D joints used in the real-image measure (the lifter's own threshold)


def load_e2e(path: str | Path):
    """(model in eval mode, checkpoint dict) of an E2E checkpoint (shipped or working)."""
    from pose3d_tools.models.e2e_transformer import build_e2e
    from pose3d_tools.models.registry import load_checkpoint

    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != "e2e":
        raise ValueError(f"{path} is not an e2e checkpoint (kind {ckpt.get('kind')!r})")
    model = build_e2e(ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def is_e2e_checkpoint(path: str | Path) -> bool:
    from pose3d_tools.models.registry import load_checkpoint

    return load_checkpoint(path).get("kind") == "e2e"


def predict_renders(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB crops -> (N, 17, 3) root-relative joints (m, crop axes)."""
    import torch

    from pose3d_tools.e2e_training import normalise_images

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(normalise_images(np.asarray(images[i:i + batch_size])))
            out.append(model(x)[0].numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, 17, 3))


def evaluate_e2e_checkpoint(checkpoint: str | Path, renders_dir: str | Path = DEFAULT_TEST_RENDERS,
                            limit: int | None = None, threads: int = 1,
                            name: str | None = None) -> dict[str, Any]:
    """One eval.json record of an E2E checkpoint on the held-out renders."""
    import torch

    from pose3d_tools.e2e_training import RenderSet
    from pose3d_tools.evaluation import training_cost
    from pose3d_tools.models.e2e_transformer import gflops_per_crop

    torch.set_num_threads(max(1, threads))
    model, ckpt = load_e2e(checkpoint)
    renders = RenderSet(renders_dir)
    subjects = renders.meta.get("subjects") or []
    if renders.meta.get("split") not in (None, "test") or set(subjects) - {"S9", "S11"}:
        raise ValueError(f"{renders_dir}: not the held-out S9/S11 renders ({renders.meta})")
    n = len(renders) if limit is None else min(limit, len(renders))
    t0 = time.time()
    pred = predict_renders(model, renders.images[:n])
    gt = np.asarray(renders.joints[:n], np.float64)
    gt = gt - gt[:, :1]
    tc = ckpt.get("train_config") or {}
    return {
        "model": name or tc.get("name") or Path(checkpoint).stem,
        "checkpoint": str(checkpoint),
        "protocol": f"e2e-renders-s9s11-n{n}-seed{renders.meta.get('seed')}",
        "input_2d": "image crop",
        "input": RENDER_INPUT,
        "frames": n,
        "mpjpe_mm": round(metrics.mpjpe(pred, gt) * 1000, 2),
        "p_mpjpe_mm": round(metrics.p_mpjpe(pred, gt) * 1000, 2),
        "mpjve_mm": None,
        "latency_frames": 0,
        "variant": ckpt.get("variant"),
        "coarse_to_fine": (tc.get("loss") or {}).get("coarse_to_fine"),
        "params_m": round(sum(v.numel() for v in ckpt["state_dict"].values()) / 1e6, 3),
        "gflops_per_crop": round(gflops_per_crop(model), 3),
        "per_joint_mm": [round(v, 1) for v in
                         (metrics.per_joint_error(pred, gt).mean(0) * 1000).tolist()],
        "eval_s": round(time.time() - t0, 1),
        **training_cost(ckpt),
    }


def evaluate_renders(checkpoints: list[str | Path], renders_dir: str | Path = DEFAULT_TEST_RENDERS,
                     out_dir: str | Path = "out", limit: int | None = None,
                     threads: int = 1) -> list[dict[str, Any]]:
    """Records of several E2E checkpoints, merged into ``out_dir/eval.json``."""
    from pose3d_tools.evaluation import merge_records

    records = [evaluate_e2e_checkpoint(c, renders_dir, limit, threads) for c in checkpoints]
    merge_records(Path(out_dir) / "eval.json", records)
    for r in records:
        print(f"{r['model']}: MPJPE {r['mpjpe_mm']:.1f} mm, P-MPJPE {r['p_mpjpe_mm']:.1f} mm "
              f"({r['frames']} held-out renders)")
    return records


# ---------------------------------------------------------------------------------------------
# real photographs
# ---------------------------------------------------------------------------------------------
def fit_scale_translation(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Best (least squares) s >= 0, t with s * points + t ~ target; returns the fitted points.
    points, target (K, 2)."""
    p0, t0 = points.mean(0), target.mean(0)
    pc, tc = points - p0, target - t0
    den = float((pc * pc).sum())
    s = max(0.0, float((pc * tc).sum()) / den) if den > 0 else 0.0
    return s * pc + t0


def agreement_2d(joints_3d: np.ndarray, keypoints: np.ndarray, used: np.ndarray) -> dict[str, Any]:
    """How well 3D joints (17, 3) (x right, y down) fall on 2D keypoints (17, 2) px after the
    best scale + translation, over the joints ``used``: PCK@0.1 of the box side, error / side."""
    kp = keypoints[used]
    side = float((kp.max(0) - kp.min(0)).max())
    fitted = fit_scale_translation(joints_3d[used, :2], kp)
    err = np.linalg.norm(fitted - kp, axis=-1)
    return {"pck": float((err <= PCK_FRACTION * side).mean()),
            "norm_err": float(err.mean() / max(side, 1e-9)), "side_px": side,
            "joints": int(used.sum())}


def crop_person(image_rgb: np.ndarray, keypoints: np.ndarray, used: np.ndarray, size: int,
                crop_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The contract's crop (size, size, 3) of a person and its (2, 3) crop->image affine."""
    import cv2

    from pose3d_ros.stages.crops import roi_transforms, rois_from_boxes

    kp = keypoints[used]
    box = np.concatenate([kp.min(0), kp.max(0)])
    M = roi_transforms(rois_from_boxes(box, crop_scale), size)[0]
    crop = cv2.warpAffine(image_rgb, M, (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, M


def evaluate_real(onnx_path: str | Path, out_dir: str | Path = "out", threads: int = 1,
                  sheet: bool = True) -> dict[str, Any]:
    """The transfer measure on the posture set (see the module docstring)."""
    import cv2
    import onnxruntime as ort

    from pose3d_ros.backends.onnx_checks import read_metadata
    from pose3d_ros.core.camera import CameraModel
    from pose3d_ros.core.poses import TrackState
    from pose3d_ros.pipeline import PipelineSettings, PosePipeline
    from pose3d_tools.bench.posture_set import images
    from pose3d_tools.e2e_training import normalise_images

    meta = read_metadata(onnx_path)
    size, crop_scale = int(meta["input_size"]), float(meta["crop_scale"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    pipeline = PosePipeline(PipelineSettings(threads=threads))
    people, crops = [], []
    for item in images():
        bgr = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        h, w = bgr.shape[:2]
        pipeline.reset()
        result = pipeline.process(bgr, CameraModel.from_fov(w, h, 60), 0.0)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for pose in result.poses:
            if pose.state == TrackState.COASTING:
                continue
            used = np.asarray(pose.confidence) >= MIN_CONFIDENCE
            if used.sum() < 6 or not np.isfinite(pose.joints_3d).all():
                continue
            kp = np.asarray(pose.keypoints_2d, np.float64)
            crop, M = crop_person(rgb, kp, used, size, crop_scale)
            joints, conf = sess.run(None, {"image": normalise_images(crop[None])})
            # keypoints in crop pixels (the E2E joints are in crop axes, angle 0)
            A = np.vstack([M, [0, 0, 1]])
            kp_crop = (np.linalg.inv(A) @ np.c_[kp, np.ones(len(kp))].T).T[:, :2]
            lifter = pose.joints_3d - pose.joints_3d[:1]
            e2e_a = agreement_2d(joints[0].astype(np.float64), kp_crop, used)
            lift_a = agreement_2d(lifter, kp_crop, used)
            people.append({"image": item.id, "category": item.category, "e2e": e2e_a,
                           "lifter": lift_a, "e2e_confidence": float(conf[0].mean())})
            crops.append((crop, kp_crop, used, joints[0], lifter, item.id))
    summary = summarise_real(people, meta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "e2e_real.json").write_text(json.dumps({**summary, "people": people}, indent=1) + "\n")
    if sheet and crops:
        summary["contact_sheet"] = str(contact_sheet(crops, out / "e2e_real_contact_sheet.png"))
    return summary


def summarise_real(people: list[dict[str, Any]], meta: dict[str, str]) -> dict[str, Any]:
    def agg(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
        if not rows:
            return {}
        return {"pck@0.1": round(float(np.mean([r[key]["pck"] for r in rows])), 3),
                "norm_err": round(float(np.mean([r[key]["norm_err"] for r in rows])), 4)}

    upright = [p for p in people if "rot" not in p["image"]]
    return {
        "model": meta.get("model"), "variant": meta.get("variant"), "input": REAL_INPUT,
        "people": len(people), "images": len({p["image"] for p in people}),
        "e2e": agg(people, "e2e"), "lifter_htnet_small": agg(people, "lifter"),
        "upright_people": len(upright), "e2e_upright": agg(upright, "e2e"),
        "lifter_upright": agg(upright, "lifter"),
        "measure": "3D (x, y) after best scale + translation vs the 2D stage's keypoints "
                   "(confidence >= 0.3): PCK at 0.1 of the joints' box side, mean error / side; "
                   "the lifter was given these keypoints (a ceiling, not a rival)",
    }


def contact_sheet(crops: list[tuple], path: Path, per_row: int = 8, scale: int = 2) -> Path:
    """Crops with the 2D stage's keypoints (green), the E2E joints (red) and the lifter's joints
    (blue), each 3D set fitted (scale + translation) onto the keypoints."""
    import cv2

    from pose3d_ros.core.skeletons import H36M17

    tiles = []
    for crop, kp, used, e2e, lifter, name in crops:
        tile = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_NEAREST)
        for pts, colour in ((kp, (0, 200, 0)), (e2e, (0, 0, 255)), (lifter, (255, 120, 0))):
            p = pts[:, :2].astype(np.float64)
            if pts is not kp:
                fitted = np.full((17, 2), np.nan)
                fitted[used] = fit_scale_translation(p[used], kp[used])
                fitted[~used] = fit_scale_translation(p, kp)[~used]
                p = fitted
            q = (p * scale + (scale - 1) / 2).round().astype(int)
            for a, b in H36M17.bones:
                cv2.line(tile, tuple(q[a]), tuple(q[b]), colour, 1, cv2.LINE_AA)
        cv2.putText(tile, name[:20], (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1)
        tiles.append(tile)
    blank = np.zeros_like(tiles[0])
    rows = []
    for i in range(0, len(tiles), per_row):
        row = tiles[i:i + per_row]
        row += [blank] * (per_row - len(row))
        rows.append(np.hstack(row))
    sheet = np.vstack(rows)
    legend = np.zeros((18, sheet.shape[1], 3), np.uint8)
    cv2.putText(legend, "green: 2D stage keypoints   red: E2E 3D (x, y) fitted   blue: lifter "
                "htnet_small 3D (x, y) fitted", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (255, 255, 255), 1)
    cv2.imwrite(str(path), np.vstack([legend, sheet]))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("renders", help="MPJPE / P-MPJPE on the held-out renders -> eval.json")
    r.add_argument("--checkpoint", nargs="+", required=True)
    r.add_argument("--renders", default=DEFAULT_TEST_RENDERS)
    r.add_argument("--limit", type=int)
    r.add_argument("--out-dir", default="out")
    r.add_argument("--threads", type=int, default=1)
    q = sub.add_parser("real", help="transfer to the posture photo set (no 3D truth)")
    q.add_argument("--onnx", required=True)
    q.add_argument("--out-dir", default="out")
    q.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.what == "renders":
        evaluate_renders(args.checkpoint, args.renders, args.out_dir, args.limit, args.threads)
    else:
        print(json.dumps(evaluate_real(args.onnx, args.out_dir, args.threads), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
