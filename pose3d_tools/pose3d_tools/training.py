"""Training of the 2D->3D lifters on Human3.6M with synthesised 2D (real + virtual robot cameras).

Every batch is made on the fly from the 3D train split (S1, S5, S6, S7, S8): windows of T frames
(causal: ending at the anchor frame; centred: around it), anchor frames subsampled by
``frame_stride`` (50 Hz motion is redundant), bone-length / flip / placement augmentation, a real
Human3.6M camera or a random robot head camera, detector-like 2D errors, and the shared
:func:`pose3d_ros.stages.lifter_input.lifter_features`. Targets are root-relative metres in the
camera frame.

Reproducible and resumable at any step: each epoch starts from
``np.random.default_rng([seed, stage, epoch])`` and seeds torch the same way, and a working
checkpoint (``last.pt``) holds model + optimiser + scheduler + epoch + step within the epoch +
the numpy generator, torch and python RNG states + running loss, so a run resumed from it
continues bit-for-bit as if it had not stopped. ``last.pt`` is written at every epoch end, every
``checkpoint_minutes`` and when SIGINT/SIGTERM arrives (the handler only sets a flag; the loop
saves after the current step and returns cleanly).
Stages: optional PoseCLR pre-training (contrastive, two views of the same 3D window), then
supervised lifting with AdamW and a one-cycle schedule.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.core.parameters import dataclass_from_dict
from pose3d_ros.stages.lifter_input import lifter_features
from pose3d_tools.data.augmentation import AugmentConfig, NoiseConfig, augment_3d, detector_noise
from pose3d_tools.data.cameras import (
    Camera,
    RobotCameraConfig,
    load_h36m_cameras,
    sample_robot_cameras,
    stack_cameras,
)
from pose3d_tools.data.h36m import (
    TRAIN_SUBJECTS,
    FrameTable,
    check_subjects,
    load_split,
    repository_root,
)

LICENCE_NOTE = (
    "Trained on Human3.6M: non-commercial research use only (Human3.6M licence). Every subject "
    "of the training data has S1's bone lengths."
)


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class DataConfig:
    data_dir: str | None = None  # None: $POSE3D_H36M_DIR or ../shared/data/h36m
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    frame_stride: int = 5  # anchor frames: every n-th 50 Hz frame
    window_steps: tuple[int, ...] = (1, 2)  # frame step inside a window (50 Hz, 25 Hz)
    real_camera_prob: float = 0.5  # else a random robot head camera
    input_root_ray: bool = True  # lifter_features(root_ray=...)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    robot_camera: RobotCameraConfig = field(default_factory=RobotCameraConfig)
    val_samples: int = 1024  # monitoring only (test subjects, GT 2D, real cameras)


@dataclass
class OptimConfig:
    batch_size: int = 256
    lr: float = 2e-3  # one-cycle peak
    weight_decay: float = 0.01
    epochs: int = 10
    steps_per_epoch: int = 200
    pct_start: float = 0.15
    div_factor: float = 10.0
    final_div_factor: float = 100.0
    grad_clip: float = 1.0
    velocity_weight: float = 0.0  # temporal models: + w * velocity error
    last_frame_weight: float = 1.0  # extra weight on the frame the runtime reads


@dataclass
class PretrainConfig:
    enabled: bool = False
    epochs: int = 3
    steps_per_epoch: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    poseclr: dict[str, Any] = field(default_factory=dict)  # PoseCLR(model, **poseclr)


@dataclass
class TrainConfig:
    name: str = "lifter"
    model: str = "htnet"
    model_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    threads: int = 2
    out_dir: str = "out/train"  # working checkpoints + logs: <out_dir>/<name>/
    checkpoint_dir: str = "checkpoints"  # the shipped checkpoint: <checkpoint_dir>/<name>.pt
    max_minutes: float = 0.0  # > 0: stop (checkpointed) after this many wall minutes per run
    checkpoint_minutes: float = 3.0  # > 0: also save last.pt mid-epoch this often (wall minutes)
    # Warm start: a lifter checkpoint whose weights of the same name and shape are loaded before
    # training (e.g. htnet_small into temporal_htnet); the rest keeps its initialisation.
    init_from: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A training config from its YAML/JSON dict; unknown keys raise (typos)."""
    return dataclass_from_dict(TrainConfig, data)


def load_config(path: str | os.PathLike) -> TrainConfig:
    import yaml

    with open(path) as fh:
        return config_from_dict(yaml.safe_load(fh) or {})


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# ---------------------------------------------------------------------------------------------
# synthetic 2D/3D batches
# ---------------------------------------------------------------------------------------------
def resolve_path(path: str | os.PathLike) -> Path:
    """Relative config paths are relative to the repository root (not the working directory)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else repository_root() / p


def merge_cameras(a: Camera, b: Camera, use_a: np.ndarray) -> Camera:
    """Per-item choice between two camera batches of the same length."""
    out = []
    for name in ("R", "T", "f", "c", "k", "p", "w", "h"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        m = use_a.reshape((-1,) + (1,) * (x.ndim - 1))
        out.append(np.where(m, x, y))
    return Camera(*out, name="mixed")


class WindowSynth:
    """Makes (features, targets) batches of windows from a :class:`FrameTable`."""

    def __init__(self, table: FrameTable, real_cameras: list[Camera], cfg: DataConfig,
                 frames: int, causal: bool = True):
        self.table = table
        self.cams = stack_cameras(real_cameras)
        self.cfg = cfg
        self.frames = frames
        self.causal = causal
        self.anchors = np.arange(0, len(table), max(1, cfg.frame_stride))
        self.anchor_pos = frames - 1 if causal else frames // 2

    def sample_anchors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.anchors[rng.integers(0, len(self.anchors), n)]

    def windows_3d(self, rng: np.random.Generator, anchors: np.ndarray) -> np.ndarray:
        """Augmented world-frame windows (B, T, 17, 3)."""
        steps = np.asarray(self.cfg.window_steps if self.frames > 1 else (1,))
        step = steps[rng.integers(0, len(steps), len(anchors))]
        idx = self.table.window_indices(anchors, self.frames, self.causal, step)
        pos = self.table.positions[idx].astype(np.float64)
        return augment_3d(pos, rng, self.cfg.augment, anchor=self.anchor_pos)

    def cameras(self, rng: np.random.Generator, pos: np.ndarray) -> Camera:
        b = len(pos)
        real = self.cams[rng.integers(0, len(self.cams), b)]
        robot = sample_robot_cameras(rng, pos[:, self.anchor_pos, 0, :], self.cfg.robot_camera)
        return merge_cameras(real, robot, rng.uniform(size=b) < self.cfg.real_camera_prob)

    def view(self, rng: np.random.Generator, pos: np.ndarray, cam: Camera,
             noise: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project windows with cameras -> (features, target, valid)."""
        xc = cam.world_to_camera(pos)
        xc[..., 2] = np.maximum(xc[..., 2], 0.1)
        xy = xc[..., :2] / xc[..., 2:]
        if noise:
            uv = xy * cam._bcast(cam.f, xy.ndim) + cam._bcast(cam.c, xy.ndim)
            xy, conf = detector_noise(rng, xy, self.cfg.noise, cam.in_image(uv))
        else:
            conf = np.ones(xy.shape[:-1])
        feats, info = lifter_features(xy, conf, root_ray=self.cfg.input_root_ray)
        target = (xc - xc[..., :1, :]).astype(np.float32)
        return feats, target, info.valid

    def batch(self, rng: np.random.Generator, n: int, noise: bool = True):
        pos = self.windows_3d(rng, self.sample_anchors(rng, n))
        return self.view(rng, pos, self.cameras(rng, pos), noise)

    def pair(self, rng: np.random.Generator, n: int):
        """Two views (different cameras, independent 2D noise) of the same 3D windows."""
        pos = self.windows_3d(rng, self.sample_anchors(rng, n))
        fa, _, va = self.view(rng, pos, self.cameras(rng, pos))
        fb, _, vb = self.view(rng, pos, self.cameras(rng, pos))
        return fa, fb, va & vb


def make_synth(cfg: DataConfig, frames: int, causal: bool, subjects=None) -> WindowSynth:
    subjects = check_subjects(subjects or cfg.train_subjects, "train")
    poses = load_split("train", cfg.data_dir, subjects)
    table = FrameTable(poses)
    cams = load_h36m_cameras(cfg.data_dir)
    real = [c for k, c in sorted(cams.items()) if k.split("_")[0] in subjects]
    return WindowSynth(table, real, cfg, frames, causal)


# ---------------------------------------------------------------------------------------------
# models and checkpoints
# ---------------------------------------------------------------------------------------------
def model_frames(model) -> int:
    return int(getattr(model.config, "frames", 1) or 1)


def model_causal(model) -> bool:
    return bool(getattr(model.config, "causal", True))


def output_index(model) -> int:
    idx = getattr(model, "output_index", None)
    if idx is not None:
        return int(idx)
    t = model_frames(model)
    return t - 1 if model_causal(model) else t // 2


def build_model(cfg: TrainConfig):
    from pose3d_tools.models.registry import build_lifter

    model = build_lifter(cfg.model, dict(cfg.model_config))
    if cfg.init_from:
        warm_start(model, resolve_path(cfg.init_from))
    return model


def warm_start(model, path: Path) -> list[str]:
    """Load the weights of checkpoint ``path`` that match ``model`` by name and shape.

    Returns the names of the model's parameters left at their initialisation. Raises if nothing
    matches (a wrong file would otherwise silently train from scratch).
    """
    from pose3d_tools.models.registry import load_checkpoint

    ckpt = load_checkpoint(path)
    source = ckpt.get("state_dict", ckpt.get("model", {}))
    own = model.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise ValueError(f"init_from {path}: no weight matches {type(model).__name__}")
    model.load_state_dict(matched, strict=False)
    return sorted(set(own) - set(matched))


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_lifter(path: str | os.PathLike, map_location: str = "cpu"):
    """A lifter (eval mode) and its checkpoint dict from a shipped or working checkpoint."""
    from pose3d_tools.models.registry import lifter_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(path, map_location)
    return lifter_from_checkpoint(ckpt), ckpt


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def lifting_loss(pred, target, valid, out_idx: int, optim: OptimConfig):
    """Mean per-joint position error (m) over valid frames, + optional velocity term."""
    import torch

    err = torch.linalg.vector_norm(pred - target, dim=-1).mean(-1)  # (B, T)
    w = valid.float()
    if pred.shape[1] > 1 and optim.last_frame_weight != 1.0:
        tw = torch.ones(pred.shape[1], device=pred.device)
        tw[out_idx] = optim.last_frame_weight
        w = w * tw
    loss = (err * w).sum() / w.sum().clamp_min(1.0)
    if pred.shape[1] > 1 and optim.velocity_weight > 0:
        vp = pred[:, 1:] - pred[:, :-1]
        vt = target[:, 1:] - target[:, :-1]
        loss = loss + optim.velocity_weight * torch.linalg.vector_norm(vp - vt, dim=-1).mean()
    return loss


class Trainer:
    """Runs the stages of a :class:`TrainConfig`, with checkpoints under ``out_dir/name``."""

    STAGES = ("pretrain", "finetune")

    def __init__(self, cfg: TrainConfig, synth: WindowSynth | None = None,
                 val_synth: WindowSynth | None = None, model=None, progress: bool = True):
        import torch

        torch.set_num_threads(max(1, cfg.threads))
        self.cfg = cfg
        self.model = model if model is not None else build_model(cfg)
        self.frames = model_frames(self.model)
        self.causal = model_causal(self.model)
        self.out_idx = output_index(self.model)
        self.synth = synth or make_synth(cfg.data, self.frames, self.causal)
        self.val_synth = val_synth
        self.work_dir = resolve_path(cfg.out_dir) / cfg.name
        self.last_path = self.work_dir / "last.pt"
        self.progress = progress
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0
        self.stage = "pretrain" if cfg.pretrain.enabled else "finetune"
        self.epoch = 0  # completed epochs of the current stage
        self.step = 0  # completed steps of the current epoch
        self.global_step = 0  # completed optimiser steps over all stages
        self.cpu_s = 0.0  # process CPU seconds spent in training (all threads)
        self._rng: np.random.Generator | None = None  # the current epoch's data generator
        self._loss_sum, self._loss_count = 0.0, 0
        self._stop: str | None = None  # why the loop should stop after the current step
        self.on_step = None  # optional callable(trainer) after each step (tests, benchmarks)
        self._val = None
        self._setup_stage()

    # -- stage setup -----------------------------------------------------------------------
    def _setup_stage(self) -> None:
        import torch

        if self.stage == "pretrain":
            from pose3d_tools.models.poseclr import PoseCLR

            p = self.cfg.pretrain
            self.clr = PoseCLR(self.model, **p.poseclr)
            params, epochs, steps, lr, wd = (self.clr.parameters(), p.epochs, p.steps_per_epoch,
                                             p.lr, p.weight_decay)
            self.batch_size = p.batch_size
        else:
            self.clr = None
            o = self.cfg.optim
            params, epochs, steps, lr, wd = (self.model.parameters(), o.epochs, o.steps_per_epoch,
                                             o.lr, o.weight_decay)
            self.batch_size = o.batch_size
        self.epochs, self.steps = epochs, steps
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        o = self.cfg.optim
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=lr, total_steps=max(1, epochs * steps), pct_start=o.pct_start,
            div_factor=o.div_factor, final_div_factor=o.final_div_factor)

    def _stage_id(self) -> int:
        return self.STAGES.index(self.stage)

    def _seed(self, epoch: int) -> np.random.Generator:
        import torch

        torch.manual_seed(self.cfg.seed * 1_000_003 + self._stage_id() * 10_007 + epoch)
        return np.random.default_rng([self.cfg.seed, self._stage_id(), epoch])

    # -- checkpoints -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        from pose3d_tools.models.registry import config_to_dict as lifter_config_dict

        return {
            "name": self.model.name if hasattr(self.model, "name") else self.cfg.model,
            "config": lifter_config_dict(self.model.config),
            "state_dict": {k: v.detach().float().cpu() for k, v in self.model.state_dict().items()},
            "poseclr_state": self.clr.state_dict() if self.clr is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "stage": self.stage,
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "rng": self._rng_state(),
            "train_config": config_to_dict(self.cfg),
            "data_fingerprint": self.synth.table.fingerprint,
            "history": self.history,
            "elapsed_s": self.elapsed,
            "cpu_s": self.cpu_s,
        }

    def _rng_state(self) -> dict[str, Any]:
        """Every random state the next step depends on (mid-epoch: the data generator too)."""
        import torch

        return {
            "numpy_epoch": self._rng.bit_generator.state if self._rng is not None else None,
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy_global": np.random.get_state(),
            "loss_sum": self._loss_sum,
            "loss_count": self._loss_count,
        }

    def _restore_rng(self, st: dict[str, Any] | None) -> None:
        import torch

        if not st:
            return
        if st.get("numpy_epoch") is not None and self.step > 0:
            self._rng = np.random.default_rng()
            self._rng.bit_generator.state = st["numpy_epoch"]
        torch.set_rng_state(st["torch"])
        random.setstate(st["python"])
        np.random.set_state(st["numpy_global"])
        self._loss_sum, self._loss_count = float(st["loss_sum"]), int(st["loss_count"])

    def save(self, path: Path | None = None) -> Path:
        path = path or self.last_path
        _atomic_save(self.state(), path)
        self._last_save = time.monotonic()
        return path

    def resume(self, path: Path | None = None, strict_data: bool = True) -> bool:
        """Load a working checkpoint if present; returns True if resumed."""
        from pose3d_tools.models.registry import config_to_dict as lifter_config_dict
        from pose3d_tools.models.registry import load_checkpoint

        path = Path(path or self.last_path)
        if not path.is_file():
            return False
        ckpt = load_checkpoint(path)
        if strict_data and ckpt["data_fingerprint"] != self.synth.table.fingerprint:
            raise ValueError(f"{path}: data fingerprint {ckpt['data_fingerprint']} differs from "
                             f"the current data {self.synth.table.fingerprint}")
        if ckpt["config"] != lifter_config_dict(self.model.config):
            raise ValueError(f"{path}: model config differs from the current config")
        self.model.load_state_dict(ckpt["state_dict"])
        self.stage = ckpt["stage"]
        self._setup_stage()
        if self.clr is not None and ckpt.get("poseclr_state") is not None:
            self.clr.load_state_dict(ckpt["poseclr_state"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        done = ckpt["epoch"] * self.steps + int(ckpt.get("step", 0))
        if ckpt["scheduler"].get("total_steps") == self.scheduler.total_steps:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        else:
            # The schedule length was changed in the config (e.g. to fit a CPU budget): continue
            # the one-cycle curve of the new length from the same step count.
            self.log(f"schedule changed: {ckpt['scheduler'].get('total_steps')} -> "
                     f"{self.scheduler.total_steps} steps; continuing from step {done}")
            for group in self.optimizer.param_groups:
                group["max_lr"] = group.get("max_lr", group["lr"])
            self.scheduler.last_epoch = done - 1
            self.scheduler.step()
        self.epoch = ckpt["epoch"]
        self.step = int(ckpt.get("step", 0))
        self.global_step = int(ckpt.get("global_step", self.epoch * self.steps + self.step))
        self._rng = None
        self._restore_rng(ckpt.get("rng"))
        if self.step > 0 and self._rng is None:
            raise ValueError(f"{path}: mid-epoch checkpoint without its data generator state")
        self.history = list(ckpt.get("history", []))
        self.elapsed = float(ckpt.get("elapsed_s", 0.0))
        self.cpu_s = float(ckpt.get("cpu_s", 0.0))
        self.log(f"resumed {path}: stage {self.stage}, epoch {self.epoch} + {self.step} steps "
                 f"({self.global_step} steps, {self.elapsed / 60:.1f} min done)")
        return True

    # -- loops -----------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(msg, flush=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.work_dir / "train.log", "a") as fh:
            fh.write(msg + "\n")

    def _tensor(self, a):
        import torch

        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def request_stop(self, reason: str) -> None:
        """Ask the loop to save and return after the current step (signal-safe: a flag only)."""
        self._stop = reason

    def _signal_handler(self, signum: int, frame: Any) -> None:
        self.request_stop(signal.Signals(signum).name)

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT/SIGTERM -> save and stop cleanly (main thread only; else none)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, self._signal_handler)
        return old

    def train_step(self, rng: np.random.Generator) -> float:
        """One optimiser step on a fresh synthetic batch; returns the loss (m or CLR units)."""
        import torch

        if self.clr is not None:
            fa, fb, _ = self.synth.pair(rng, self.batch_size)
            loss = self.clr(self._tensor(fa), self._tensor(fb))
        else:
            feats, target, valid = self.synth.batch(rng, self.batch_size)
            target, valid = self._tensor(target), torch.from_numpy(valid)
            if getattr(self.model, "recovery", True) is None:
                # HoT's TPC-only variant predicts the kept frames only: supervise those.
                pred, frames = self.model.forward_with_frames(self._tensor(feats))
                target = target.gather(1, frames.reshape(*frames.shape, 1, 1).expand_as(pred))
                valid = valid.gather(1, frames)
                out_idx = int((frames[0] == self.out_idx).nonzero()[0, 0])
            else:
                pred, out_idx = self.model(self._tensor(feats)), self.out_idx
            loss = lifting_loss(pred, target, valid, out_idx, self.cfg.optim)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]],
                self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def train_epoch(self, max_steps: int | None = None) -> float | None:
        """Run the remaining steps of the current epoch (from ``self.step``).

        Returns the epoch's mean loss, or None when stopped early (signal, ``max_steps`` total
        optimiser steps reached, or the time budget): then ``last.pt`` holds the exact state.
        """
        from tqdm import tqdm

        if self.step == 0 or self._rng is None:
            self._rng = self._seed(self.epoch)
            self._loss_sum, self._loss_count = 0.0, 0
        self.model.train()
        if self.clr is not None:
            self.clr.train()
        bar = tqdm(total=self.steps, initial=self.step,
                   desc=f"{self.stage} {self.epoch + 1}/{self.epochs}",
                   disable=not self.progress, mininterval=10.0, leave=False)
        every = 60.0 * self.cfg.checkpoint_minutes
        while self.step < self.steps:
            self._loss_sum += self.train_step(self._rng)
            self._loss_count += 1
            self.step += 1
            self.global_step += 1
            bar.update(1)
            if self._loss_count % 20 == 0:
                bar.set_postfix(loss=f"{self._loss_sum / self._loss_count:.4f}")
            if self.on_step is not None:
                self.on_step(self)
            self._tick()
            if max_steps is not None and self.global_step >= max_steps:
                self.request_stop(f"step limit {max_steps}")
            if self._over_budget() and self.step < self.steps:
                self.request_stop(f"time budget of {self.cfg.max_minutes} min")
            if self._stop is not None and self.step < self.steps:
                bar.close()
                return None
            if every > 0 and time.monotonic() - self._last_save > every:
                self.save()
                self.log(f"checkpoint: {self.stage} epoch {self.epoch} step {self.step} "
                         f"({self.global_step} steps, {self.elapsed / 60:.1f} min)")
        bar.close()
        return self._loss_sum / max(self._loss_count, 1)

    def _over_budget(self) -> bool:
        """``max_minutes`` of wall time spent in this run (a resumed run gets a new budget)."""
        return (self.cfg.max_minutes > 0
                and self.elapsed - self._run_start > 60 * self.cfg.max_minutes)

    def _tick(self) -> None:
        """Advance the wall and CPU clocks kept in the checkpoint."""
        now, cpu = time.monotonic(), time.process_time()
        self.elapsed += now - self._clock[0]
        self.cpu_s += cpu - self._clock[1]
        self._clock = (now, cpu)

    def validate(self) -> float | None:
        """MPJPE (mm) of the runtime frame on a fixed monitoring set (GT 2D)."""
        import torch

        if self.val_synth is None or self.cfg.data.val_samples <= 0:
            return None
        if self._val is None:
            rng = np.random.default_rng([self.cfg.seed, 99])
            n = self.cfg.data.val_samples
            feats, target, _ = self.val_synth.batch(rng, n, noise=False)
            self._val = (feats, target)
        feats, target = self._val
        self.model.eval()
        errs = []
        with torch.no_grad():
            for i in range(0, len(feats), 256):
                pred = self.model(self._tensor(feats[i:i + 256])).numpy()
                read = pred[:, 0] if pred.shape[1] == 1 else pred[:, self.out_idx]
                e = np.linalg.norm(read - target[i:i + 256, self.out_idx], axis=-1)
                errs.append(e.mean(-1))
        return float(np.concatenate(errs).mean() * 1000)

    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train all remaining steps of all stages; returns the final history entry.

        Stops early, after saving ``last.pt``, on SIGINT/SIGTERM, after ``max_steps`` optimiser
        steps in total, or past ``max_minutes``; the returned entry then has ``"stopped"``.
        """
        self._stop = None
        self._run_start = self.elapsed
        self._clock = (time.monotonic(), time.process_time())
        self._last_save = time.monotonic()
        old = self._install_signal_handlers()
        try:
            return self._run(max_steps)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def _run(self, max_steps: int | None) -> dict[str, Any]:
        while True:
            while self.epoch < self.epochs:
                t0 = time.monotonic()
                loss = self.train_epoch(max_steps)
                if loss is None:
                    self.save()
                    entry = {"stopped": self._stop, "stage": self.stage, "epoch": self.epoch,
                             "step": self.step, "global_step": self.global_step,
                             "elapsed_s": self.elapsed, "cpu_s": self.cpu_s}
                    self.log(json.dumps(entry))
                    return entry
                self.epoch += 1
                self.step = 0
                self._rng = None
                val = self.validate() if self.stage == "finetune" else None
                self._tick()
                entry = {"stage": self.stage, "epoch": self.epoch, "loss": loss,
                         "val_mpjpe_mm": val, "global_step": self.global_step,
                         "epoch_s": time.monotonic() - t0, "elapsed_s": self.elapsed,
                         "cpu_s": self.cpu_s, "lr": self.scheduler.get_last_lr()[0]}
                self.history.append(entry)
                self.save()
                self.log(json.dumps(entry))
                if self._stop is None and max_steps is not None and self.global_step >= max_steps:
                    self._stop = f"step limit {max_steps}"
                if self._stop is None and self._over_budget():
                    self._stop = f"time budget of {self.cfg.max_minutes} min"
                if self._stop is not None and (self.epoch < self.epochs
                                               or self.stage == "pretrain"):
                    self.log(f"stopping ({self._stop}) after epoch {self.epoch}; resume with "
                             f"--resume")
                    return {**entry, "stopped": self._stop}
            if self.stage == "pretrain":
                self.stage, self.epoch, self.step = "finetune", 0, 0
                self._setup_stage()
                self.save()
                continue
            return self.history[-1] if self.history else {}

    def export(self, path: Path | None = None) -> Path:
        """The shipped checkpoint: float32 weights + configs, no optimiser state."""
        path = Path(path or resolve_path(self.cfg.checkpoint_dir) / f"{self.cfg.name}.pt")
        st = self.state()
        shipped = {k: st[k] for k in ("name", "config", "state_dict", "train_config",
                                      "data_fingerprint", "history", "elapsed_s", "cpu_s",
                                      "global_step")}
        shipped["input"] = {"function": "pose3d_ros.stages.lifter_input.lifter_features",
                            "root_ray": self.cfg.data.input_root_ray}
        shipped["output_index"] = self.out_idx
        shipped["licence"] = LICENCE_NOTE
        _atomic_save(shipped, path)
        return path


class RunLock:
    """``<work_dir>/run.lock`` holding the training process id: a second trainer on the same
    working checkpoint would overwrite ``last.pt`` with its own state. A lock whose process is
    gone (killed at the end of a session) is taken over."""

    def __init__(self, work_dir: Path):
        self.path = Path(work_dir) / "run.lock"

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and self._alive(pid):
                    raise RuntimeError(f"{self.path}: training process {pid} is running on this "
                                       f"working checkpoint; stop it first") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return self
        raise RuntimeError(f"{self.path}: could not take the lock")

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def train(cfg: TrainConfig, resume: bool | str = True, progress: bool = True,
          validate: bool = True, max_steps: int | None = None) -> Path:
    """Train ``cfg``, resuming from ``out_dir/name/last.pt`` if present (``resume="require"``:
    it must be). Returns the shipped checkpoint path when the schedule is complete, else (stopped
    by a signal, ``max_steps`` or ``max_minutes``) the working ``last.pt`` to resume from."""
    check_subjects(cfg.data.train_subjects, "train")
    with RunLock(resolve_path(cfg.out_dir) / cfg.name):
        return _train(cfg, resume, progress, validate, max_steps)


def _train(cfg: TrainConfig, resume: bool | str, progress: bool, validate: bool,
           max_steps: int | None, trainer_class: type[Trainer] | None = None) -> Path:
    """One run of ``trainer_class`` (default :class:`Trainer`; the joint refiner passes its own)
    with the S9/S11 monitor set, resume, log and export; the caller holds the run lock."""
    trainer = (trainer_class or Trainer)(cfg, progress=progress)
    if validate and cfg.data.val_samples > 0:
        from pose3d_tools.data.h36m import TEST_SUBJECTS

        poses = load_split("test", cfg.data.data_dir, TEST_SUBJECTS)
        cams = load_h36m_cameras(cfg.data.data_dir)
        real = [c for k, c in sorted(cams.items()) if k.split("_")[0] in TEST_SUBJECTS]
        # The monitor set does not follow the training augmentation (e.g. statures): it keeps
        # the default body-size law so monitor curves of different configs stay comparable.
        val_cfg = dataclasses.replace(cfg.data, real_camera_prob=1.0, frame_stride=10,
                                      augment=AugmentConfig())
        trainer.val_synth = WindowSynth(FrameTable(poses), real, val_cfg, trainer.frames,
                                        trainer.causal)
    if resume and not trainer.resume() and resume == "require":
        raise FileNotFoundError(f"--resume: no working checkpoint {trainer.last_path}")
    nparams = sum(p.numel() for p in trainer.model.parameters())
    trainer.log(f"{cfg.name}: {cfg.model} {nparams / 1e6:.3f} M params, T={trainer.frames}, "
                f"causal={trainer.causal}, {len(trainer.synth.anchors)} anchor frames, "
                f"data {trainer.synth.table.fingerprint}")
    entry = trainer.run(max_steps)
    if entry.get("stopped"):
        trainer.log(f"stopped ({entry['stopped']}): {trainer.last_path} holds the state; "
                    f"continue with `pose3d-tools train --config ... --resume`")
        return trainer.last_path
    path = trainer.export()
    trainer.log(f"wrote {path} after {trainer.elapsed / 60:.1f} min "
                f"({trainer.cpu_s / 3600:.2f} CPU-h, {trainer.global_step} steps)")
    return path


def steps_per_second(cfg: TrainConfig, steps: int = 10) -> float:
    """Measure training throughput (steps/s) of a config on this machine (no checkpoints)."""
    import torch

    trainer = Trainer(cfg, progress=False)
    rng = np.random.default_rng(0)
    trainer.model.train()
    t0 = None
    for i in range(steps + 2):
        if i == 2:
            t0 = time.time()
        feats, target, valid = trainer.synth.batch(rng, cfg.optim.batch_size)
        pred = trainer.model(trainer._tensor(feats))
        loss = lifting_loss(pred, trainer._tensor(target), torch.from_numpy(valid),
                            trainer.out_idx, cfg.optim)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
    return steps / (time.time() - t0)


__all__ = [
    "DataConfig", "OptimConfig", "PretrainConfig", "TrainConfig", "Trainer", "WindowSynth",
    "load_config", "load_lifter", "make_synth", "train",
]
