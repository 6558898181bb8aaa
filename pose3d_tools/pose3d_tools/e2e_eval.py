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
  through the E2E ONNX model (box of all 17 placed joints, as the renders and the runtime's
  ``estimator: e2e``; angle 0 -- the runtime would use the 2D stage's ROI angle, so rotated
  images are reported apart). With no 3D truth, transfer is measured by how well the 3D joints'
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


def mean_training_pose(renders_dir: str | Path = "out/renders/train") -> np.ndarray | None:
    """(17, 3) mean root-relative pose of the training renders (crop axes), None without them."""
    from pose3d_tools.training import resolve_path

    path = resolve_path(renders_dir) / "joints.npy"
    if not path.is_file():
        return None
    joints = np.load(path, mmap_mode="r")
    return np.asarray(joints[:20000], np.float64).mean(0)


def constant_pose_errors(renders_dir: str | Path = DEFAULT_TEST_RENDERS) -> dict[str, Any]:
    """MPJPE / P-MPJPE (mm) of always answering the training renders' mean pose on the
    held-out renders: the floor a model must beat to have read anything from the image."""
    from pose3d_tools.e2e_training import RenderSet

    mean = mean_training_pose()
    try:
        renders = RenderSet(renders_dir)
    except FileNotFoundError:
        return {}
    if mean is None:
        return {}
    gt = np.asarray(renders.joints, np.float64)
    gt = gt - gt[:, :1]
    pred = np.broadcast_to(mean - mean[:1], gt.shape)
    return {"frames": len(gt), "mpjpe_mm": metrics.mpjpe(pred, gt) * 1000,
            "p_mpjpe_mm": metrics.p_mpjpe(pred, gt) * 1000}


def evaluate_real(onnx_path: str | Path, out_dir: str | Path = "out", threads: int = 1,
                  sheet: bool = True) -> dict[str, Any]:
    """The transfer measure on the posture set (see the module docstring). A constant pose (the
    training renders' mean) is measured too: what the measure gives with no image at all."""
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
    mean_pose = mean_training_pose()
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
            # the box of all placed joints, seen or not (as the renders and the runtime)
            crop, M = crop_person(rgb, kp, np.isfinite(kp).all(1), size, crop_scale)
            joints, conf = sess.run(None, {"image": normalise_images(crop[None])})
            # keypoints in crop pixels (the E2E joints are in crop axes, angle 0)
            A = np.vstack([M, [0, 0, 1]])
            kp_crop = (np.linalg.inv(A) @ np.c_[kp, np.ones(len(kp))].T).T[:, :2]
            lifter = pose.joints_3d - pose.joints_3d[:1]
            e2e_a = agreement_2d(joints[0].astype(np.float64), kp_crop, used)
            lift_a = agreement_2d(lifter, kp_crop, used)
            row = {"image": item.id, "category": item.category, "e2e": e2e_a,
                   "lifter": lift_a, "e2e_confidence": float(conf[0].mean())}
            if mean_pose is not None:
                row["mean_pose"] = agreement_2d(mean_pose, kp_crop, used)
            people.append(row)
            crops.append((crop, kp_crop, used, joints[0], lifter, item.id))
    summary = summarise_real(people, meta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {**summary, "per_person": people}
    (out / "e2e_real.json").write_text(json.dumps(record, indent=1) + "\n")
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
    constant = [p for p in people if "mean_pose" in p]
    return {
        "mean_pose": agg(constant, "mean_pose"), "mean_pose_upright":
            agg([p for p in constant if "rot" not in p["image"]], "mean_pose"),
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


# ---------------------------------------------------------------------------------------------
# model card
# ---------------------------------------------------------------------------------------------
ESTIMATOR_DIR = "pose3d_ros/estimators"  # shipped E2E ONNX files + their cards


def onnx_parity(checkpoint: str | Path, onnx_path: str | Path, n: int = 4) -> float:
    """Max |ONNX Runtime - PyTorch| over the joints and confidences of ``n`` random crops."""
    import onnxruntime as ort
    import torch

    model, _ = load_e2e(checkpoint)
    s = model.config.input_size
    x = torch.randn(n, 3, s, s, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = [t.numpy() for t in model(x)]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": x.numpy()})
    return float(max(np.abs(a - b).max() for a, b in zip(out, ref, strict=True)))


def onnx_latency_ms(onnx_path: str | Path, batch: int = 1, runs: int = 30) -> float:
    """Median ONNX Runtime CPU latency (ms) of one call with ``batch`` crops, 1 thread (this
    machine; other jobs running on it inflate it)."""
    import onnxruntime as ort

    from pose3d_ros.backends.onnx_checks import read_metadata

    s = int(read_metadata(onnx_path)["input_size"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(batch, 3, s, s)).astype(np.float32)
    sess.run(None, {"image": x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {"image": x})
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def model_card(checkpoint: str | Path, onnx_path: str | Path, records: list[dict[str, Any]],
               real: dict[str, Any] | None, notes: str = "") -> str:
    """Markdown card of a shipped E2E model: what it is, how it was trained (on renders), its
    held-out render results (all ablation variants in ``records``) and its real-photo transfer."""
    from pose3d_ros.backends.onnx_checks import check_tensorrt_ops

    model, ckpt = load_e2e(checkpoint)
    from pose3d_tools.models.e2e_transformer import gflops_per_crop

    cfg, tc = model.config, ckpt.get("train_config") or {}
    optim, loss = tc.get("optim", {}), tc.get("loss", {})
    name = ckpt.get("name", Path(checkpoint).stem)
    params = sum(p.numel() for p in model.parameters())
    renders = ckpt.get("renders") or {}
    lines = [
        f"# {name}",
        "",
        "> **Trained on rendered images only** (capsule bodies over photographs, "
        "`pose3d_tools.data.render`), never on real photographs of people. "
        "**Licence: the poses are Human3.6M's, licensed for non-commercial research only; "
        "these weights carry that restriction.**",
        "",
        "## Model",
        f"- End-to-end image -> 3D transformer (seed: end-to-end 3D HPE with a transformer), "
        f"variant `{cfg.variant}` "
        + ("(Joint Detection Transformer: "
           f"{cfg.num_queries} queries, classes = 17 joint types + background, Hungarian "
           "matching in training; at inference each joint type takes the query with the highest "
           "probability of it, inside the graph)" if cfg.variant == "jdt" else
           "(force-aligned baseline: 17 queries, query j = joint j, last backbone level only)")
        + f"; {params / 1e6:.2f} M parameters, {gflops_per_crop(model):.2f} GFLOPs per crop "
        "(matmul/conv only, as `pose3d_tools.flops` counts).",
        f"- Small ResNet (strides 8/16/32) -> {cfg.levels} level(s), sine positional + learnable "
        f"level encodings -> {cfg.encoder_layers} encoder layer(s) of multi-scale deformable "
        f"self-attention -> {cfg.decoder_layers} decoder layers (query self-attention, deformable "
        "cross-attention, iterative refinement: each layer's 3D joints are the next layer's "
        f"reference); hidden size {cfg.dim}, {cfg.heads} heads, {cfg.points} points per head and "
        "level.",
        f"- Input `image` float32 (B, 3, {cfg.input_size}, {cfg.input_size}) RGB, (pixel / 255 - "
        "mean) / std (ImageNet mean/std), the contract's crop: ROI = rois_from_boxes(box of the "
        "person's 2D joints, 1.4), warpAffine with WARP_INVERSE_MAP, constant border 0.",
        "- Outputs `joints` float32 (B, 17, 3) Human3.6M-17, metres, root-relative (pelvis 0), "
        "crop axes (= camera optical axes for an upright crop; perspective of off-centre people "
        "ignored); `confidence` float32 (B, 17) in [0, 1] ("
        + ("class probability of the chosen query" if cfg.variant == "jdt" else
           "per-joint score head: trained to say the joint is within 10 cm") + ").",
        f"- ONNX: `{Path(onnx_path).name}`, opset 17, dynamic batch; max |ONNX Runtime - "
        f"PyTorch| = {onnx_parity(checkpoint, onnx_path):.1e}; ops outside the project's "
        f"TensorRT allow-list: {', '.join(check_tensorrt_ops(onnx_path)) or 'none'} "
        "(the deformable attention's bilinear sampling); ONNX Runtime CPU, 1 thread, batch 1: "
        f"{onnx_latency_ms(onnx_path):.1f} ms median on the shared 2-core machine.",
        "",
        "## Training",
        f"- Data: {renders.get('n', '?')} rendered crops of the Human3.6M train split "
        f"({', '.join(renders.get('subjects') or ['S1', 'S5', 'S6', 'S7', 'S8'])}), memory-mapped, "
        "augmented on the fly (crop re-warp: scale, shift, in-plane rotation with the 3D turned "
        "alike; left-right flip; colour and brightness).",
        "- Loss: " + ("coarse-to-fine: every decoder layer supervised, layer thresholds "
                       f"{loss.get('thresholds_m')} m (L1, no loss under the threshold), layer "
                       f"weights decay {loss.get('decay')} per layer towards the first"
                       if loss.get("coarse_to_fine") else "last decoder layer only")
        + f"; joint L1 weight {loss.get('joint_weight')}"
        + (f", class cross-entropy weight {loss.get('class_weight')} (background "
           f"{loss.get('background_weight')}), matching cost {loss.get('match_class')} x class "
           f"probability + {loss.get('match_joint')} x L1" if cfg.variant == "jdt" else "")
        + ".",
        f"- AdamW lr {optim.get('lr')} (warm-up {optim.get('warmup_steps')} steps, cosine), "
        f"batch {optim.get('batch_size')}, {ckpt.get('global_step')} steps "
        f"({ckpt.get('global_step', 0) * optim.get('batch_size', 0)} crops), "
        f"{ckpt.get('elapsed_s', 0) / 60:.1f} min wall, {tc.get('threads', 1)} thread on a "
        "2-core CPU shared with other trainings. **A tiny budget: this is what a CPU does in "
        "minutes, far from the paper's training.** Re-run: `python -m pose3d_tools.e2e_training "
        f"--config pose3d_tools/config/training/e2e/{name}.yaml`.",
        "",
        "## Results on held-out renders (Human3.6M S9/S11 poses, rendered like the training set)",
        "",
        "| model | variant | coarse-to-fine | crops | MPJPE (mm) | P-MPJPE (mm) | train steps | "
        "wall (min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        wall = 60 * (r.get("train_wall_hours") or 0)
        lines.append(f"| {r['model']} | {r.get('variant')} | {r.get('coarse_to_fine')} | "
                     f"{r['frames']} | {r['mpjpe_mm']:.1f} | {r['p_mpjpe_mm']:.1f} | "
                     f"{r.get('train_steps')} | {wall:.1f} |")
    constant = constant_pose_errors()
    if constant:
        lines.append(f"| constant pose (training renders' mean; no image) | - | - | "
                     f"{constant['frames']} | {constant['mpjpe_mm']:.1f} | "
                     f"{constant['p_mpjpe_mm']:.1f} | - | - |")
    lines += ["", "Same steps, batch and data for every variant (the seed's ablation); renders "
              "are easier than real images (see below). Records: `out/eval.json` (input "
              f"\"{RENDER_INPUT}\")."]
    if real:
        e, lf, mp = real.get("e2e", {}), real.get("lifter_htnet_small", {}), real.get(
            "mean_pose", {})
        lines += [
            "",
            "## Transfer to real photographs (no tuning on them)",
            "",
            f"The posture photo set of `make bench-2d` ({real.get('images')} images, "
            f"{real.get('people')} people found by the 2D stage; {real.get('upright_people')} "
            "in upright images). No 3D truth exists for them, so the measure is how well the 3D "
            "joints' (x, y), after the best scale and translation, fall on the 2D stage's "
            "keypoints (confidence >= 0.3), per person:",
            "",
            "| 3D from | PCK@0.1 (all) | error / box side (all) | PCK@0.1 (upright) | "
            "error / box side (upright) |",
            "|---|---|---|---|---|",
            f"| this model (image crop) | {e.get('pck@0.1')} | {e.get('norm_err')} | "
            f"{real.get('e2e_upright', {}).get('pck@0.1')} | "
            f"{real.get('e2e_upright', {}).get('norm_err')} |",
            f"| a constant pose (training mean) | {mp.get('pck@0.1')} | {mp.get('norm_err')} |"
            f" {real.get('mean_pose_upright', {}).get('pck@0.1')} | "
            f"{real.get('mean_pose_upright', {}).get('norm_err')} |",
            f"| lifter htnet_small (given these keypoints: a ceiling) | {lf.get('pck@0.1')} | "
            f"{lf.get('norm_err')} | {real.get('lifter_upright', {}).get('pck@0.1')} | "
            f"{real.get('lifter_upright', {}).get('norm_err')} |",
            "",
            "Contact sheet: `out/e2e_real_contact_sheet.png` (green 2D stage, red this model, "
            "blue lifter). Rotated images are cropped upright (angle 0), as the runtime does "
            "when the ROI angle is not known.",
        ]
    if notes:
        lines += ["", "## Notes", notes]
    return "\n".join(lines) + "\n"


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
    c = sub.add_parser("card", help="write the model card beside a shipped ONNX file")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--onnx", required=True)
    c.add_argument("--eval", default="out/eval.json", help="records of the ablation variants")
    c.add_argument("--real", default="out/e2e_real.json")
    args = p.parse_args(argv)
    if args.what == "renders":
        evaluate_renders(args.checkpoint, args.renders, args.out_dir, args.limit, args.threads)
    elif args.what == "real":
        print(json.dumps(evaluate_real(args.onnx, args.out_dir, args.threads), indent=1))
    else:
        records = [r for r in json.loads(Path(args.eval).read_text())
                   if r.get("input") == RENDER_INPUT]
        real = json.loads(Path(args.real).read_text()) if Path(args.real).is_file() else None
        card = Path(args.onnx).with_suffix(".md")
        card.write_text(model_card(args.checkpoint, args.onnx, records, real))
        print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
