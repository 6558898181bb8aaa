"""Evaluate lifter checkpoints on Human3.6M S9/S11 with the 4 real cameras.

Protocol (``PROTOCOL`` below, stored in every record):
* test subjects S9 and S11 only (enforced), all their clips, all 4 calibrated cameras each;
* evaluated frames: runs of ``run_length`` consecutive 50 Hz frames starting every ``run_every``
  frames of each clip (consecutive frames so the velocity error is defined); a temporal model sees
  the real preceding (causal) or surrounding (centred) frames, edge-padded at the clip borders;
* every run is placed in the capture volume with a seeded random heading and an offset of up to
  1.5 m (the data release does not keep the recorded placement), projected through the real lens
  distortion to pixels, then undistorted to normalised coordinates as the runtime does;
* ``input_2d="gt"``: those 2D points with confidence 1; ``"noisy"``: the detector-like error
  model of :mod:`pose3d_tools.data.augmentation` (every sample noisy, fixed seed);
* errors of the frame the runtime reads, root-relative, in mm: MPJPE (protocol 1), P-MPJPE
  (protocol 2), MPJVE (per 50 Hz frame step). Every subject shares S1's bones, so the numbers
  are not directly comparable to published Human3.6M results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.lifter_input import lifter_features
from pose3d_tools import REPO_ROOT, metrics
from pose3d_tools.data.augmentation import NoiseConfig, detector_noise, place
from pose3d_tools.data.cameras import Camera, load_h36m_cameras, subject_cameras
from pose3d_tools.data.h36m import TEST_SUBJECTS, check_subjects, load_split

LIFTER_CARD_DIR = REPO_ROOT / "pose3d_ros" / "lifters"  # model cards live beside the shipped ONNX
# The HoT (l, k) ablation (pose3d_tools.bench.hot_ablation); a hot_mixste card includes its table.
HOT_ABLATION_JSON = REPO_ROOT / "out" / "bench" / "hot_ablation.json"


# Noisy 2D inputs of the evaluation -> lag-1 jitter correlation between 50 Hz frames. "noisy"
# (independent jitter per frame) is the reference protocol; "noisy_corr" keeps the same error
# sizes with strongly correlated jitter (0.8 at 50 Hz: an assumption, not a measurement), to show
# how much of a temporal lifter's gain is averaging independent jitter.
NOISY_INPUTS = {"noisy": 0.0, "noisy_corr": 0.8}


@dataclass
class EvalConfig:
    data_dir: str | None = None
    subjects: tuple[str, ...] = TEST_SUBJECTS
    run_length: int = 10
    run_every: int = 200
    max_offset_m: float = 1.5
    inputs: tuple[str, ...] = ("gt", "noisy", "noisy_corr")
    noise: NoiseConfig = field(default_factory=lambda: NoiseConfig(clean_prob=0.0))
    seed: int = 0
    batch_size: int = 512
    threads: int = 1
    out_dir: str = "out"
    plots: bool = True

    @property
    def protocol(self) -> str:
        subj = "".join(s.lower() for s in self.subjects)
        return f"h36m-{subj}-4cam-run{self.run_length}every{self.run_every}-50hz"


def _clip_rng(seed: int, *keys: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("/".join(keys).encode())])


def make_eval_set(cfg: EvalConfig, frames: int, out_idx: int, input_2d: str,
                  cameras: dict[str, Camera] | None = None, poses=None,
                  bodies: str = "s1") -> dict[str, Any]:
    """Windows (N, T, 17, 3) of features, targets (N, 17, 3) of the read frame, run ids (N,);
    for placement: the read frame's camera-frame joints, 2D, confidence and camera key (N,).
    ``bodies="stature"`` rescales each run to an adult stature (placement_eval.rescale_bodies;
    "s1": the data's own S1 bones)."""
    subjects = check_subjects(cfg.subjects, "test")
    poses = poses if poses is not None else load_split("test", cfg.data_dir, subjects)
    cameras = cameras if cameras is not None else load_h36m_cameras(cfg.data_dir)
    before, after = out_idx, frames - 1 - out_idx
    feats, targets, runs, absolute, kps, confs, cam_keys = [], [], [], [], [], [], []
    run_id = 0
    for subject in subjects:
        cams = subject_cameras(cameras, subject)
        for clip in sorted(poses[subject]):
            arr = poses[subject][clip]
            n = len(arr)
            for start in range(0, max(n - cfg.run_length + 1, 1), cfg.run_every):
                length = min(cfg.run_length, n - start)
                idx = np.clip(np.arange(start - before, start + length + after), 0, n - 1)
                seq = arr[idx].astype(np.float64)[None]  # (1, L + T - 1, 17, 3)
                if bodies != "s1":
                    from pose3d_tools.placement_eval import rescale_bodies

                    seq = rescale_bodies(seq, bodies, _clip_rng(cfg.seed, subject, clip,
                                                                str(start), "bodies"))
                for cam in cams:
                    rng = _clip_rng(cfg.seed, subject, clip, str(start), cam.name)
                    r = cfg.max_offset_m * np.sqrt(rng.uniform())
                    phi = rng.uniform(0, 2 * np.pi)
                    placed = place(seq, rng.uniform(0, 2 * np.pi, 1),
                                   np.array([[r * np.cos(phi), r * np.sin(phi)]]), anchor=before)
                    xc = cam.world_to_camera(placed[0])
                    uv = cam.project(xc)  # real lens distortion
                    xy = cam.pixels_to_normalised(uv)  # undistorted, as at runtime
                    if input_2d == "gt":
                        conf = np.ones(xy.shape[:-1])
                    elif input_2d in NOISY_INPUTS:
                        noise = dataclasses.replace(
                            cfg.noise, jitter_correlation=NOISY_INPUTS[input_2d])
                        xy, conf = detector_noise(rng, xy[None], noise, cam.in_image(uv)[None])
                        xy, conf = xy[0], conf[0]
                    else:
                        raise ValueError(f"input_2d must be 'gt' or one of {sorted(NOISY_INPUTS)},"
                                         f" not {input_2d!r}")
                    f, _ = lifter_features(xy, conf)
                    win = np.lib.stride_tricks.sliding_window_view(f, frames, axis=0)
                    feats.append(np.moveaxis(win, -1, 1))  # (L, T, 17, 3)
                    tgt = xc[before:before + length]
                    targets.append(tgt - tgt[:, :1])
                    absolute.append(tgt)
                    kps.append(xy[before:before + length])
                    confs.append(conf[before:before + length])
                    cam_keys += [cam.name] * length
                    runs.append(np.full(length, run_id))
                    run_id += 1
    return {
        "features": np.ascontiguousarray(np.concatenate(feats), dtype=np.float32),
        "targets": np.concatenate(targets),
        "runs": np.concatenate(runs),
        "joints_cam": np.concatenate(absolute),
        "keypoints": np.concatenate(kps),
        "confidence": np.concatenate(confs),
        "cameras": np.asarray(cam_keys),
    }


def predict(model, features: np.ndarray, out_idx: int, batch_size: int = 512) -> np.ndarray:
    """Run a torch lifter over windows (N, T, 17, 3) -> poses of the read frame (N, 17, 3).

    A model whose output has one frame (HoT seq2frame or TPC-only: (B, 1, 17, 3)) returns the
    read frame as that row; seq2seq outputs are read at ``out_idx``."""
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(features), batch_size):
            x = torch.from_numpy(features[i:i + batch_size])
            y = model(x)
            out.append(y[:, out_idx if y.shape[1] > 1 else 0].numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, 17, 3))


def run_mpjve(pred: np.ndarray, gt: np.ndarray, runs: np.ndarray) -> float:
    """Velocity error over consecutive frames of the same run."""
    same = runs[1:] == runs[:-1]
    vp = pred[1:] - pred[:-1]
    vg = gt[1:] - gt[:-1]
    return float(np.linalg.norm(vp - vg, axis=-1)[same].mean())


def evaluate_predictions(pred: np.ndarray, gt: np.ndarray, runs: np.ndarray) -> dict[str, Any]:
    return {
        "mpjpe_mm": metrics.mpjpe(pred, gt) * 1000,
        "p_mpjpe_mm": metrics.p_mpjpe(pred, gt) * 1000,
        "n_mpjpe_mm": metrics.n_mpjpe(pred, gt) * 1000,
        "mpjve_mm": run_mpjve(pred, gt, runs) * 1000,
        "per_joint_mm": (metrics.per_joint_error(pred, gt).mean(0) * 1000).tolist(),
    }


@dataclass
class EvalInputs:
    """What every evaluation of a checkpoint starts from (lifter evaluation, placement_eval)."""

    model: Any  # the lifter, eval mode
    ckpt: dict[str, Any]
    name: str  # the training config's name, else the file stem
    frames: int  # window length T
    out_idx: int  # the frame the runtime reads
    poses: dict  # test split, subject -> clip -> (N, 17, 3)
    cameras: dict[str, Camera]


def load_eval_inputs(checkpoint: str | os.PathLike, cfg: EvalConfig,
                     name: str | None = None) -> EvalInputs:
    """The lifter of ``checkpoint`` (with ``cfg.threads`` torch threads), the test poses and the
    real cameras."""
    import torch

    from pose3d_tools.training import load_lifter, model_frames, output_index

    torch.set_num_threads(max(1, cfg.threads))
    model, ckpt = load_lifter(checkpoint)
    name = name or (ckpt.get("train_config") or {}).get("name") or Path(checkpoint).stem
    return EvalInputs(model, ckpt, name, model_frames(model), output_index(model),
                      load_split("test", cfg.data_dir, cfg.subjects),
                      load_h36m_cameras(cfg.data_dir))


def evaluate_checkpoint(checkpoint: str | os.PathLike, cfg: EvalConfig | None = None,
                        name: str | None = None) -> list[dict[str, Any]]:
    """Evaluate one checkpoint under every ``cfg.inputs`` protocol; returns full records."""
    cfg = cfg or EvalConfig()
    inp = load_eval_inputs(checkpoint, cfg, name)
    model, ckpt, name = inp.model, inp.ckpt, inp.name
    frames, out_idx, poses, cameras = inp.frames, inp.out_idx, inp.poses, inp.cameras
    from pose3d_tools.flops import flops_record  # torch, imported when needed as above

    compute = flops_record(model)  # gflops_per_frame, gflops_per_published_frame
    records = []
    for input_2d in cfg.inputs:
        t0 = time.time()
        data = make_eval_set(cfg, frames, out_idx, input_2d, cameras, poses)
        pred = predict(model, data["features"], out_idx, cfg.batch_size)
        res = evaluate_predictions(pred, data["targets"], data["runs"])
        rec = {
            "model": name,
            "checkpoint": str(checkpoint),
            "protocol": cfg.protocol,
            "input_2d": input_2d,
            "frames": len(pred),
            "mpjpe_mm": round(res["mpjpe_mm"], 2),
            "p_mpjpe_mm": round(res["p_mpjpe_mm"], 2),
            "mpjve_mm": round(res["mpjve_mm"], 2),
            "latency_frames": int(frames - 1 - out_idx),
            **compute,
            **training_cost(ckpt),
        }
        extra = {"n_mpjpe_mm": round(res["n_mpjpe_mm"], 2),
                 "per_joint_mm": [round(v, 2) for v in res["per_joint_mm"]],
                 "window_frames": frames, "eval_s": round(time.time() - t0, 1)}
        records.append((rec, extra, pred, data))
    return records


def merge_records(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace records with the same (model, checkpoint, protocol, input_2d) in a JSON list file."""
    old = []
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = []
    key = lambda r: (r["model"], r["checkpoint"], r["protocol"], r["input_2d"],  # noqa: E731
                     r.get("placement"), r.get("bodies"), r.get("behind"))
    keys = {key(r) for r in new}
    merged = [r for r in old if key(r) not in keys] + list(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=1) + "\n")
    os.replace(tmp, path)
    return merged


def format_table(records: list[dict[str, Any]]) -> str:
    cols = ["model", "input_2d", "frames", "mpjpe_mm", "p_mpjpe_mm", "mpjve_mm", "latency_frames"]
    rows = [[str(r[c]) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
              for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


# -- plots --------------------------------------------------------------------------------------
def plot_per_joint(name: str, per_joint: dict[str, list[float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    joints = H36M17.joints
    x = np.arange(len(joints))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(per_joint))
    for i, (label, errs) in enumerate(per_joint.items()):
        ax.bar(x + i * width - 0.4 + width / 2, errs, width, label=f"{label} 2D")
    ax.set_xticks(x)
    ax.set_xticklabels(joints, rotation=60, ha="right")
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title(f"{name}: per-joint error, Human3.6M S9/S11, 4 cameras")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_skeletons(name: str, pred: np.ndarray, gt: np.ndarray, path: Path, count: int = 4,
                   seed: int = 0) -> Path:
    """Predicted (red) vs true (black) skeletons, camera frame drawn with y down -> up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(pred), size=min(count, len(pred)), replace=False))
    fig = plt.figure(figsize=(4 * len(idx), 4.4))
    for k, i in enumerate(idx):
        ax = fig.add_subplot(1, len(idx), k + 1, projection="3d")
        for pose, color, label in ((gt[i], "k", "true"), (pred[i], "r", "predicted")):
            # camera frame (x right, y down, z forward) -> plot (x, z, -y)
            p = np.stack([pose[:, 0], pose[:, 2], -pose[:, 1]], -1)
            for a, b in H36M17.bones:
                ax.plot(*zip(p[a], p[b], strict=True), color=color, lw=2)
            ax.scatter(*p.T, color=color, s=6, label=label)
        err = np.linalg.norm(pred[i] - gt[i], axis=-1).mean() * 1000
        ax.set_title(f"#{i}: {err:.0f} mm")
        lim = 0.9
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_zlim(-lim, lim)
        ax.view_init(elev=10, azim=-70)
        if k == 0:
            ax.legend(loc="upper left")
    fig.suptitle(f"{name}: predicted vs true (root-relative, camera frame)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def evaluate(checkpoints: list[str | os.PathLike], cfg: EvalConfig | None = None,
             out_dir: str | os.PathLike | None = None,
             write_cards: bool = False, placement: bool = True,
             refine: bool = True) -> list[dict[str, Any]]:
    """Evaluate checkpoints, merge records into ``out/eval.json``, write plots, print a table.

    ``write_cards``: also write the model cards ``pose3d_ros/lifters/<name>.md`` (beside the
    shipped ONNX export the robot runs). ``placement``: also the metric placement records of
    :mod:`pose3d_tools.placement_eval` (root error per placement mode and body sizes).
    ``refine``: also the joint refinement records behind every lifter
    (:mod:`pose3d_tools.refinement_eval`: the shipped refiner vs the lifter's guess for the joints
    the 2D stage missed), when the refiner checkpoint is there.
    """
    from pose3d_tools.placement_eval import PlacementEvalConfig, evaluate_placement
    from pose3d_tools.refinement_eval import (
        REFINER_CHECKPOINT,
        evaluate_behind,
        format_refine_table,
    )

    cfg = cfg or EvalConfig()
    out = Path(out_dir or cfg.out_dir)
    all_records, details, placement_records, refine_records = [], {}, [], []
    # End-to-end image models (checkpoint kind "e2e") have their own protocol: held-out renders.
    from pose3d_tools.e2e_eval import evaluate_e2e_checkpoint, is_e2e_checkpoint

    image_models = [c for c in checkpoints if is_e2e_checkpoint(c)]
    checkpoints = [c for c in checkpoints if c not in image_models]
    for ckpt in image_models:
        all_records.append(evaluate_e2e_checkpoint(ckpt, threads=cfg.threads))
    for ckpt in checkpoints:
        results = evaluate_checkpoint(ckpt, cfg)
        name = results[0][0]["model"]
        per_joint = {}
        for rec, extra, pred, data in results:
            all_records.append(rec)
            details[f"{name}/{rec['input_2d']}"] = {**rec, **extra}
            per_joint[rec["input_2d"]] = extra["per_joint_mm"]
            if cfg.plots:
                plot_skeletons(f"{name} ({rec['input_2d']} 2D)", pred, data["targets"],
                               out / f"{name}_skeletons_{rec['input_2d']}.png", seed=cfg.seed)
        if cfg.plots:
            plot_per_joint(name, per_joint, out / f"{name}_per_joint.png")
        if write_cards:
            recs = [r[0] for r in results]
            det = {f"{name}/{r[0]['input_2d']}": r[1] for r in results}
            card = LIFTER_CARD_DIR / f"{Path(ckpt).stem}.md"
            card.write_text(model_card(ckpt, recs, det, notes=card_notes(card)))
        place_inputs = tuple(i for i in cfg.inputs if i in ("gt", "noisy"))
        if placement and place_inputs:
            placement_records += evaluate_placement(
                ckpt, cfg, PlacementEvalConfig(inputs=place_inputs), name=name)
        if refine and REFINER_CHECKPOINT.is_file():
            noisy = next(((p, d) for r, _, p, d in results if r["input_2d"] == "noisy"), None)
            refine_records += evaluate_behind(ckpt, REFINER_CHECKPOINT, cfg, noisy=noisy)
    merge_records(out / "eval.json", all_records + placement_records + refine_records)
    detail_path = out / "eval_details.json"
    old = json.loads(detail_path.read_text()) if detail_path.is_file() else {}
    old.update(details)
    detail_path.write_text(json.dumps(old, indent=1) + "\n")
    print(format_table(all_records))
    if refine_records:
        print(format_refine_table(refine_records))
    return all_records


def training_cost(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Optimiser steps and CPU/wall hours a checkpoint got (CPU hours: None before they were
    recorded; then 1-thread wall time is the closest figure)."""
    optim = (ckpt.get("train_config") or {}).get("optim", {})
    steps = ckpt.get("global_step")
    if steps is None:  # older checkpoints: the finished schedule
        steps = optim.get("epochs", 0) * optim.get("steps_per_epoch", 0)
    cpu = ckpt.get("cpu_s")
    wall = ckpt.get("elapsed_s", 0.0)
    batch = optim.get("batch_size", 0)
    # Training throughput over the whole run (windows per wall second, data + model + checkpoints).
    rate = round(steps * batch / wall, 1) if wall and batch else None
    return {"train_steps": int(steps),
            "train_cpu_hours": round(cpu / 3600, 3) if cpu is not None else None,
            "train_wall_hours": round(wall / 3600, 3),
            "samples_per_s": rate}


# -- model cards ---------------------------------------------------------------------------------
def body_size_text(augment: dict[str, Any]) -> str:
    """The body-size augmentation of a stored training config, in words."""
    st = augment.get("stature") or {}
    bone = 100 * augment.get("bone_std", 0.06)
    if st.get("enabled"):
        return (f"body sizes from adult stature laws (women {st['female_mean_m']:.3f} +- "
                f"{st['female_sd_m']:.3f} m, men {st['male_mean_m']:.3f} +- {st['male_sd_m']:.3f}"
                f" m, {100 * st['female_prob']:.0f} % women; per bone {bone:.0f} %, left/right "
                "symmetric)")
    lo, hi = augment.get("scale_range", (0.88, 1.12))
    return (f"bone-length (global {lo:.2f}-{hi:.2f}, per bone {bone:.0f} %, left/right "
            "symmetric)")


def card_notes(card: Path) -> str:
    """The hand-written "## Notes" section of an existing model card ("" if none): regenerating
    a card from new measurements keeps what people wrote there."""
    if not card.is_file():
        return ""
    text = card.read_text()
    marker = "\n## Notes\n"
    return text.split(marker, 1)[1].strip() if marker in text else ""


def model_card(checkpoint: str | os.PathLike, records: list[dict[str, Any]],
               details: dict[str, Any] | None = None, notes: str = "") -> str:
    """Markdown model card of a shipped checkpoint from its stored recipe and eval records."""
    from pose3d_tools.models.registry import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    tc = ckpt.get("train_config") or {}
    name = tc.get("name") or Path(checkpoint).stem
    params = sum(v.numel() for v in ckpt["state_dict"].values())
    optim, data, pre = tc.get("optim", {}), tc.get("data", {}), tc.get("pretrain", {})
    hist = ckpt.get("history") or []
    frames = int(ckpt["config"].get("frames", 1))
    out_idx = int(ckpt.get("output_index", frames - 1))
    steps = optim.get("epochs", 0) * optim.get("steps_per_epoch", 0)
    lines = [
        f"# {name}",
        "",
        "> **Licence: trained on Human3.6M, which is licensed for non-commercial research only. "
        "These weights carry that restriction.**",
        "",
        "## Model",
        f"- Architecture: `{ckpt['name']}` ({params / 1e6:.3f} M parameters), config "
        f"`{json.dumps(ckpt['config'])}`.",
        f"- Input: (B, {frames}, 17, 3) per-joint features from "
        "`pose3d_ros.stages.lifter_input.lifter_features` (undistorted normalised 2D, "
        "pelvis-relative, "
        "divided by the RMS 2D size; root joint carries the pelvis ray "
        f"(root_ray={ckpt.get('input', {}).get('root_ray', True)}); missing joints 0, "
        "confidence in channel 3). Human3.6M-17 joint order.",
        f"- Output: (B, {frames}, 17, 3) root-relative metres in the camera optical frame "
        f"(x right, y down, z forward); the runtime reads frame {out_idx} "
        f"(latency {frames - 1 - out_idx} frames).",
        f"- File: `{Path(checkpoint).name}`, float32 weights + configs, no optimiser state; "
        f"data fingerprint `{ckpt.get('data_fingerprint')}`.",
        "",
        "## Training recipe",
        f"- Data: Human3.6M 3D poses (17-joint exp-map release, 50 Hz), train subjects "
        f"{', '.join(data.get('train_subjects', []))}; anchor frames every "
        f"{data.get('frame_stride')} frames; window steps {data.get('window_steps')} "
        f"(50/25 Hz) for temporal models.",
        f"- 2D made on the fly: real Human3.6M cameras of the train subjects (p = "
        f"{data.get('real_camera_prob')}) or random robot head cameras (FoV, image size, "
        "height 0.5-1.8 m, distance 1.5-7 m, pitch/yaw offsets, roll); random heading and "
        "offset <= 1.5 m; " + body_size_text(data.get("augment", {})) + " "
        "and left-right flip augmentation; detector-like 2D errors on "
        f"{100 * (1 - data.get('noise', {}).get('clean_prob', 0)):.0f} % of samples "
        "(size-scaled jitter, outliers, left/right swaps, missing end-joint spans, "
        "out-of-image joints, confidences).",
        f"- Optimiser: AdamW (lr peak {optim.get('lr')}, weight decay "
        f"{optim.get('weight_decay')}), one-cycle ({optim.get('pct_start')} warm-up), batch "
        f"{optim.get('batch_size')}, {optim.get('epochs')} epochs x "
        f"{optim.get('steps_per_epoch')} steps = {steps} steps "
        f"({steps * optim.get('batch_size', 0) / 1e6:.2f} M samples); loss MPJPE"
        + (f" + {optim.get('velocity_weight')} x velocity error, read frame weight "
           f"{optim.get('last_frame_weight')}" if frames > 1 else "") + ".",
    ]
    if pre.get("enabled"):
        lines.append(f"- PoseCLR pre-training first: {pre.get('epochs')} epochs x "
                     f"{pre.get('steps_per_epoch')} steps, batch {pre.get('batch_size')} pairs, "
                     f"lr {pre.get('lr')} (two camera views of the same 3D window).")
    lines += [
        f"- Hardware and time: {tc.get('threads', 1)} torch thread(s) on a 2-core x86_64 CPU "
        f"shared with other jobs; wall time {ckpt.get('elapsed_s', 0) / 60:.1f} min"
        + (f", {ckpt['cpu_s'] / 3600:.2f} CPU-hours" if ckpt.get("cpu_s") else "")
        + (f", {ckpt['global_step']} optimiser steps" if ckpt.get("global_step") else "")
        + f". Seed {tc.get('seed')}. "
        f"Re-run: `pose3d-tools train --config pose3d_tools/config/training/{name}.yaml`.",
        "- The last epoch is shipped (no model selection). The per-epoch monitoring MPJPE in "
        "the history uses S9/S11 with ground-truth 2D and was only watched, not used to choose.",
        "",
        "## Results (Human3.6M S9 + S11, 4 real cameras)",
        "",
        "| input 2D | frames | MPJPE (mm, P1) | P-MPJPE (mm, P2) | MPJVE (mm) | latency (frames) |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(f"| {r['input_2d']} | {r['frames']} | {r['mpjpe_mm']:.1f} | "
                     f"{r['p_mpjpe_mm']:.1f} | {r['mpjve_mm']:.2f} | {r['latency_frames']} |")
    if records:
        lines += ["", f"Protocol `{records[0]['protocol']}`: see `pose3d_ros/evaluation.py`. "
                  "Each run of frames is placed in the capture volume with a seeded random heading "
                  "and offset, projected through the real lens distortion and undistorted again; "
                  "'noisy' adds the detector-like error model to every sample."]
    if records and records[0].get("gflops_per_frame") is not None:
        lines += ["", f"Compute (torch FlopCounterMode, batch 1, matmul-type ops): "
                  f"{records[0]['gflops_per_frame']:.4f} GFLOPs per output frame, "
                  f"{records[0]['gflops_per_published_frame']:.4f} GFLOPs per published frame "
                  "(one window forward as the node runs it; seq2frame where the model has it)."]
    if details:
        for key, d in details.items():
            pj = d.get("per_joint_mm")
            if pj:
                worst = sorted(zip(H36M17.joints, pj, strict=True), key=lambda x: -x[1])[:4]
                lines.append(f"- Worst joints ({key.split('/')[-1]} 2D): "
                             + ", ".join(f"{j} {e:.0f} mm" for j, e in worst) + ".")
    if ckpt["name"] == "hot_mixste" and HOT_ABLATION_JSON.is_file():
        from pose3d_tools.bench.hot_ablation import card_section

        section = card_section(json.loads(HOT_ABLATION_JSON.read_text()), name, checkpoint)
        lines += ["", *section] if section else []
    lines += [
        "",
        "## Caveats",
        "- Every subject of this Human3.6M release has S1's bone lengths, clip placement is "
        "synthetic and the 2D is projected (no image-based detector): the numbers are not "
        "directly comparable to published Human3.6M results.",
        "- Inputs are scale-normalised, so the metric size of the output is the average size "
        "learnt from S1's skeleton x the scale augmentation; absolute placement needs the "
        "`LifterInputInfo` scale/root ray from `lifter_input`.",
    ]
    if hist:
        lines += ["", "## Training history", "",
                  "Learning curve: monitor MPJPE against wall and CPU minutes (CPU minutes are "
                  "recorded since resumable training; '-' before).", "",
                  "| stage | epoch | steps | loss (m) | monitor MPJPE (mm) | wall (min) | "
                  "CPU (min) |",
                  "|---|---|---|---|---|---|---|"]
        for h in hist:
            val = f"{h['val_mpjpe_mm']:.1f}" if h.get("val_mpjpe_mm") is not None else "-"
            cpu = f"{h['cpu_s'] / 60:.1f}" if h.get("cpu_s") is not None else "-"
            lines.append(f"| {h['stage']} | {h['epoch']} | {h.get('global_step', '-')} | "
                         f"{h['loss']:.4f} | {val} | {h['elapsed_s'] / 60:.1f} | {cpu} |")
    if notes:
        lines += ["", "## Notes", notes]
    return "\n".join(lines) + "\n"
