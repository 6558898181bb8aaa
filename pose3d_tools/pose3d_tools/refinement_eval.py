"""Does the joint refinement network beat the lifter's own guess for joints the 2D stage missed?

Behind each lifter checkpoint, on the project protocol of :mod:`pose3d_tools.evaluation`
(S9/S11, 4 real cameras, same runs, placements and seeds), through the runtime's own stage
(:class:`pose3d_ros.stages.refinement.JointRefiner`, here with the torch refiner behind it):

* ``noisy_missing``: the realistic pattern. The "noisy" 2D input (detector-like errors, missing
  end-joint spans, random single joints, joints out of the image); a joint is missing when its
  2D confidence in the frame the runtime reads is 0 (published ``valid`` false). Every frame
  with a missing non-root joint counts.
* ``gt_one_missing``: ground-truth 2D with one non-root joint at a time removed from the whole
  window (confidence 0, features recomputed by the runtime's ``lifter_features``), on the first
  frame of every run (``one_missing_stride`` thins them further).

Per pattern: the error (mm, root-relative) of the missing joints as the lifter guessed them
(``lifter_guess_mpjpe_mm``), after refinement (``masked_joint_mpjpe_mm``) and with the plain
midpoint of their neighbours (``midpoint_mpjpe_mm``), per joint and overall; the paired
improvement with a 95 % interval over clusters of runs (the 4 camera views of one run of frames
are one cluster: their errors are not independent); and the largest change of an observed joint
(``observed_max_change_mm``, 0 by construction: only missing joints are replaced).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.backends.base import TensorSpec
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.lifter_input import lifter_features
from pose3d_ros.stages.refinement import JointRefiner, replace_by_midpoints
from pose3d_tools import CHECKPOINT_DIR, REPO_ROOT
from pose3d_tools.evaluation import EvalConfig, load_eval_inputs, make_eval_set, predict

REFINER_CHECKPOINT = CHECKPOINT_DIR / "refiners" / "joint_refinement.pt"
REFINER_CARD_DIR = REPO_ROOT / "pose3d_ros" / "refiners"  # the card lives beside the ONNX
PATTERNS = ("noisy_missing", "gt_one_missing")
CAMERAS_PER_RUN = 4  # make_eval_set numbers the 4 camera views of a run of frames consecutively


@dataclass
class RefineEvalConfig:
    patterns: tuple[str, ...] = PATTERNS
    one_missing_stride: int = 1  # gt_one_missing: every n-th run's first frame
    batch_size: int = 4096


class TorchRefinerBackend:
    """The torch refiner behind the runtime's Backend interface (run/inputs/outputs/metadata),
    so the evaluation goes through :class:`JointRefiner` exactly as the robot does."""

    name = "torch"

    def __init__(self, model, batch_size: int = 4096) -> None:
        self.model = model.eval()
        self.batch_size = batch_size
        self.inputs = [TensorSpec("joints", ("batch", 17, 3), np.float32),
                       TensorSpec("masked", ("batch", 17), np.float32)]
        self.outputs = [TensorSpec("refined", ("batch", 17, 3), np.float32)]
        self.metadata = {"model": getattr(model, "name", "joint_refinement")}

    def describe(self) -> str:
        return "torch (evaluation)"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(feeds["joints"]), self.batch_size):
                x = torch.from_numpy(feeds["joints"][i:i + self.batch_size])
                m = torch.from_numpy(feeds["masked"][i:i + self.batch_size])
                out.append(self.model(x, m).numpy())
        return {"refined": np.concatenate(out) if out else np.zeros((0, 17, 3), np.float32)}


def drop_joint(features: np.ndarray, joint: int) -> np.ndarray:
    """Lifter features (N, T, 17, 3) as the runtime computes them with ``joint`` unseen in every
    frame. The features are root-relative 2D over the RMS size (root slot: the root ray), which
    is scale-invariant, so the 2D rebuilt as root + feature gives the same features again."""
    xy = features[..., :2].astype(np.float64)
    conf = features[..., 2].astype(np.float64)
    pts = xy[..., :1, :] + xy
    pts[..., 0, :] = xy[..., 0, :]
    conf = conf.copy()
    conf[..., joint] = 0.0
    feats, _ = lifter_features(pts, conf)
    return feats


def _cluster_interval(diff: np.ndarray, cluster: np.ndarray) -> tuple[float, float]:
    """Mean of ``diff`` and the half-width of its 95 % interval over cluster means."""
    ids, inv = np.unique(cluster, return_inverse=True)
    sums = np.bincount(inv, weights=diff)
    counts = np.bincount(inv)
    mean = diff.mean()
    if len(ids) < 2:
        return float(mean), float("nan")
    # Cluster-robust standard error of the mean (independent clusters, not joints).
    resid = sums - counts * mean
    se = np.sqrt((resid ** 2).sum() * len(ids) / (len(ids) - 1)) / counts.sum()
    return float(mean), float(1.96 * se)


def compare(refiner: JointRefiner, pred: np.ndarray, gt: np.ndarray, missing: np.ndarray,
            cluster: np.ndarray) -> dict[str, Any]:
    """Errors (mm) of the ``missing`` (N, 17) joints: lifter guess vs refined vs midpoint."""
    missing = missing.copy()
    missing[:, H36M17.root] = False
    rows = missing.any(1)
    pred, gt, missing, cluster = pred[rows], gt[rows], missing[rows], cluster[rows]
    refined = refiner.refine(pred, ~missing)
    mid = replace_by_midpoints(pred, missing)
    err = {k: np.linalg.norm(v - gt, axis=-1) * 1000 for k, v in
           (("lifter", pred), ("refined", refined), ("midpoint", mid))}
    observed_change = np.abs(refined - pred)[~missing]
    jj = np.nonzero(missing)[1]
    diff = err["lifter"][missing] - err["refined"][missing]
    gain, half = _cluster_interval(diff, np.broadcast_to(cluster[:, None], missing.shape)[missing])

    def per_joint(e: np.ndarray) -> dict[str, float]:
        return {H36M17.joints[j]: round(float(e[missing][jj == j].mean()), 2)
                for j in np.unique(jj)}

    return {
        "frames": int(rows.sum()),
        "masked_joints": int(missing.sum()),
        "masked_joint_mpjpe_mm": round(float(err["refined"][missing].mean()), 2),
        "lifter_guess_mpjpe_mm": round(float(err["lifter"][missing].mean()), 2),
        "midpoint_mpjpe_mm": round(float(err["midpoint"][missing].mean()), 2),
        "improvement_mm": round(gain, 2),
        "improvement_ci95_mm": round(half, 2),
        "helps": bool(gain - half > 0),
        "observed_max_change_mm": float(observed_change.max() * 1000)
        if observed_change.size else 0.0,
        "per_joint_masked_mm": per_joint(err["refined"]),
        "per_joint_lifter_guess_mm": per_joint(err["lifter"]),
        "per_joint_midpoint_mm": per_joint(err["midpoint"]),
        "per_joint_count": {H36M17.joints[j]: int((jj == j).sum()) for j in np.unique(jj)},
    }


def _shown(path: str | os.PathLike) -> str:
    """A path as records show it: relative to the checkout when inside it."""
    p = Path(path).resolve()
    return str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(path)


def _clusters(runs: np.ndarray) -> np.ndarray:
    return runs // CAMERAS_PER_RUN


def evaluate_behind(lifter_checkpoint: str | os.PathLike, refiner_checkpoint: str | os.PathLike,
                    cfg: EvalConfig, rcfg: RefineEvalConfig | None = None,
                    noisy: tuple[np.ndarray, dict[str, Any]] | None = None,
                    inputs=None) -> list[dict[str, Any]]:
    """Records of both patterns behind one lifter. ``noisy``: the lifter's predictions and
    eval set on the "noisy" input when the caller already has them; ``inputs``: its
    :class:`~pose3d_tools.evaluation.EvalInputs` likewise."""
    from pose3d_tools.refinement_training import load_refiner

    rcfg = rcfg or RefineEvalConfig()
    inp = inputs or load_eval_inputs(lifter_checkpoint, cfg)
    model, ckpt = load_refiner(refiner_checkpoint)
    refiner = JointRefiner(TorchRefinerBackend(model, rcfg.batch_size))
    base = {"model": "joint_refinement", "checkpoint": _shown(refiner_checkpoint),
            "behind": Path(lifter_checkpoint).stem, "behind_checkpoint": str(lifter_checkpoint),
            "protocol": cfg.protocol, "refiner_train_steps": ckpt.get("global_step")}
    records = []
    for pattern in rcfg.patterns:
        t0 = time.time()
        if pattern == "noisy_missing":
            if noisy is None:
                data = make_eval_set(cfg, inp.frames, inp.out_idx, "noisy", inp.cameras,
                                     inp.poses)
                pred = predict(inp.model, data["features"], inp.out_idx, cfg.batch_size)
            else:
                pred, data = noisy
            lifted = data["features"][:, inp.out_idx, :, 2].any(-1)  # the person was liftable
            missing = (data["confidence"] <= 0) & lifted[:, None]
            res = compare(refiner, pred, data["targets"], missing, _clusters(data["runs"]))
        elif pattern == "gt_one_missing":
            data = make_eval_set(cfg, inp.frames, inp.out_idx, "gt", inp.cameras, inp.poses)
            first = np.r_[True, data["runs"][1:] != data["runs"][:-1]]
            keep = np.nonzero(first)[0][::max(1, rcfg.one_missing_stride)]
            feats, gt, runs = data["features"][keep], data["targets"][keep], data["runs"][keep]
            preds, gts, masks, clusters = [], [], [], []
            for j in range(H36M17.num_joints):
                if j == H36M17.root:
                    continue
                pred = predict(inp.model, drop_joint(feats, j), inp.out_idx, cfg.batch_size)
                mask = np.zeros((len(keep), H36M17.num_joints), bool)
                mask[:, j] = True
                preds.append(pred)
                gts.append(gt)
                masks.append(mask)
                clusters.append(_clusters(runs))
            res = compare(refiner, np.concatenate(preds), np.concatenate(gts),
                          np.concatenate(masks), np.concatenate(clusters))
        else:
            raise ValueError(f"unknown pattern {pattern!r}; known {PATTERNS}")
        records.append({**base, "input_2d": pattern, "input": pattern, **res,
                        "eval_s": round(time.time() - t0, 1)})
    return records


def format_refine_table(records: list[dict[str, Any]]) -> str:
    lines = ["behind            input           joints  lifter_mm  refined_mm  midpoint_mm  "
             "gain_mm (95 %)"]
    for r in records:
        lines.append(f"{r['behind']:<17} {r['input']:<15} {r['masked_joints']:>6}  "
                     f"{r['lifter_guess_mpjpe_mm']:>9.1f}  {r['masked_joint_mpjpe_mm']:>10.1f}  "
                     f"{r['midpoint_mpjpe_mm']:>11.1f}  {r['improvement_mm']:+.1f} +- "
                     f"{r['improvement_ci95_mm']:.1f}")
    return "\n".join(lines)


def evaluate_refinement(lifter_checkpoints: list[str | os.PathLike],
                        refiner_checkpoint: str | os.PathLike = REFINER_CHECKPOINT,
                        cfg: EvalConfig | None = None, rcfg: RefineEvalConfig | None = None,
                        out_dir: str | os.PathLike | None = None,
                        write_card: bool = False) -> list[dict[str, Any]]:
    """The standalone command: records behind every lifter, merged into ``out/eval.json``;
    ``write_card``: also (re)write the refiner's model card beside its shipped ONNX."""
    from pose3d_tools.evaluation import merge_records

    cfg = cfg or EvalConfig()
    records = []
    for ckpt in lifter_checkpoints:
        records += evaluate_behind(ckpt, refiner_checkpoint, cfg, rcfg)
    merge_records(Path(out_dir or cfg.out_dir) / "eval.json", records)
    print(format_refine_table(records))
    if write_card:
        from pose3d_tools.evaluation import card_notes

        card = REFINER_CARD_DIR / f"{Path(refiner_checkpoint).stem}.md"
        card.write_text(refiner_card(refiner_checkpoint, records, notes=card_notes(card)))
    return records


# -- model card ----------------------------------------------------------------------------------
def refiner_card(checkpoint: str | os.PathLike, records: list[dict[str, Any]],
                 notes: str = "") -> str:
    """Markdown model card of a shipped refiner from its stored recipe and these records."""
    from pose3d_tools.evaluation import body_size_text
    from pose3d_tools.models.registry import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    tc = ckpt.get("train_config") or {}
    optim, data, cfg = tc.get("optim", {}), tc.get("data", {}), ckpt["config"]
    params = sum(v.numel() for v in ckpt["state_dict"].values())
    steps = ckpt.get("global_step")
    lines = [
        f"# {tc.get('name', Path(checkpoint).stem)}",
        "",
        "> **Licence: trained on Human3.6M, which is licensed for non-commercial research only. "
        "These weights carry that restriction.**",
        "",
        "## Model",
        f"- Joint Refinement Network (BERT-style skeleton completion, \"End-to-end 3D Human Pose "
        f"Estimation with Transformer\", section C): {params / 1e6:.3f} M parameters, config "
        f"`{cfg}`. Per joint [joint, parent, mean of children, mask flag] of the pose divided by "
        "its RMS size, flattened -> MLP encoder (residual blocks) -> regression head -> full "
        "skeleton (as offsets from the input), scaled back; root exactly 0.",
        "- Input `joints` (B, 17, 3): root-relative metres in the camera optical frame, "
        "Human3.6M-17 order, the masked joints replaced by the midpoint of their parent and "
        "(mean) child, by the parent for a leaf (`pose3d_ros.stages.refinement."
        "replace_by_midpoints`); `masked` (B, 17) 1 for a masked joint. Output `refined` "
        "(B, 17, 3), same frame and unit. The runtime (`JointRefiner`) replaces only the joints "
        "the 2D stage did not see; every observed joint is passed through bit-identical.",
        f"- File: `{Path(checkpoint).name}` (float32 weights + configs); ONNX "
        "`pose3d_ros/refiners/joint_refinement.onnx` (`pose3d-tools export --checkpoint ...`).",
        "",
        "## Training recipe",
        f"- Data: Human3.6M 3D poses only (no 2D, no images), train subjects "
        f"{', '.join(data.get('train_subjects', []))}, frame stride {data.get('frame_stride')}; "
        f"expressed root-relative in the frame of a real Human3.6M camera (p = "
        f"{data.get('real_camera_prob')}) or a random robot head camera; "
        + body_size_text(data.get("augment", {})) + " and left-right flip.",
        f"- Masking (the paper's): each non-root joint picked with p = {cfg['mask_ratio']}; a "
        f"picked joint replaced by its neighbours' midpoint with p = {cfg['midpoint_prob']}, "
        "else left unchanged; loss = mean Euclidean error of the picked joints only.",
        f"- Optimiser: AdamW (lr peak {optim.get('lr')}, weight decay "
        f"{optim.get('weight_decay')}), one-cycle, batch {optim.get('batch_size')}, "
        f"{steps} steps. 1 torch thread on a 2-core CPU shared with two other trainings; wall "
        f"{ckpt.get('elapsed_s', 0) / 60:.1f} min, {ckpt.get('cpu_s', 0) / 60:.1f} CPU-min. "
        f"Seed {tc.get('seed')}. Re-run: `pose3d-tools train --config "
        f"pose3d_tools/config/training/{tc.get('name')}.yaml`.",
        "",
        "## Results: missing joints behind the lifters (Human3.6M S9 + S11, 4 real cameras)",
        "",
        "Error (mm, root-relative) of the joints the lifter got as missing: the lifter's own "
        "guess, after refinement, and the plain neighbours' midpoint. Gain = guess - refined, "
        "with its 95 % interval over clusters of runs (`pose3d_tools/refinement_eval.py`).",
        "",
        "| behind | missing pattern | joints | lifter guess | refined | midpoint | gain (95 %) | "
        "observed joints changed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['behind']} | {r['input']} | {r['masked_joints']} | "
            f"{r['lifter_guess_mpjpe_mm']:.1f} | {r['masked_joint_mpjpe_mm']:.1f} | "
            f"{r['midpoint_mpjpe_mm']:.1f} | {r['improvement_mm']:+.1f} +- "
            f"{r['improvement_ci95_mm']:.1f} | {r['observed_max_change_mm']:.1f} mm |")
    if records:
        lines += ["", f"Protocol `{records[0]['protocol']}`; `noisy_missing`: joints with "
                  "confidence 0 in the evaluation's detector-like noisy 2D (missing end-joint "
                  "spans, random joints, joints outside the image); `gt_one_missing`: "
                  "ground-truth 2D with one non-root joint at a time removed from the window. "
                  "Per-joint numbers: `out/eval.json` (records with model `joint_refinement`)."]
    if notes:
        lines += ["", "## Notes", notes]
    return "\n".join(lines) + "\n"
