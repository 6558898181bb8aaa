"""Training of the end-to-end image -> 3D pose transformer on rendered crops.

    python -m pose3d_tools.e2e_training --config pose3d_tools/config/training/e2e/e2e_jdt_c2f.yaml
    pose3d-tools export --checkpoint pose3d_tools/checkpoints/e2e/e2e_jdt_c2f.pt --output x.onnx

Data: the renders of :mod:`pose3d_tools.data.render` (``out/renders/train``: memory-mapped
``images.npy`` (N, S, S, 3) uint8 RGB and ``joints.npy`` (N, 17, 3) m root-relative crop axes),
optionally mixed with crops rendered on the fly (``data.on_the_fly``). Each batch is augmented on
the fly: a small crop re-warp (scale, shift, in-plane rotation; the 3D rotates with it through
``camera_to_crop_axes``), a left-right flip (x negated, left/right joints swapped), colour and
brightness jitter, and then normalised as the ONNX contract says.

Resumable at any step: ``out/train/<name>/last.pt`` holds model + optimiser + scheduler + step +
the numpy, torch and python RNG states + history, written atomically every
``checkpoint_minutes``, at the end and when SIGINT/SIGTERM arrives (the handler sets a flag; the
loop saves after the current step). A resumed run continues bit for bit. The shipped checkpoint
(``checkpoint_dir/<name>.pt``) has ``"kind": "e2e"`` and no optimiser state.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pose3d_ros.core.parameters import dataclass_from_dict
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.crops import camera_to_crop_axes, roi_transforms
from pose3d_tools.models.e2e_losses import LossConfig
from pose3d_tools.training import RunLock, _atomic_save, resolve_path

IMAGE_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGE_STD = np.array([0.229, 0.224, 0.225], np.float32)
CROP_SCALE = 1.4  # the contract's ROI side / longer side of the joints' box
KIND = "e2e"
LICENCE_NOTE = (
    "Trained on rendered images of Human3.6M poses (capsule bodies over photographs): "
    "Human3.6M is licensed for non-commercial research only, and so are these weights."
)


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class E2EDataConfig:
    renders_dir: str = "out/renders/train"
    limit: int = 0  # > 0: use only the first ``limit`` renders (smoke runs)
    on_the_fly: float = 0.0  # fraction of every batch rendered now (render.Renderer) instead
    flip_prob: float = 0.5
    rotate_deg: float = 10.0  # uniform +- in-plane rotation of the re-warp
    scale_jitter: float = 0.08  # log-uniform +- of the crop side
    shift_jitter: float = 0.04  # uniform +- of the crop centre, fraction of the side
    colour_jitter: float = 0.25  # per-channel gain 1 +- this
    brightness_jitter: float = 0.3  # global gain 1 +- this
    grey_prob: float = 0.05


@dataclass
class E2EOptimConfig:
    batch_size: int = 16
    steps: int = 1000
    lr: float = 4e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    final_lr_fraction: float = 0.05  # cosine decay to lr x this
    grad_clip: float = 0.1


@dataclass
class E2ETrainConfig:
    name: str = "e2e_jdt_c2f"
    model: dict[str, Any] = field(default_factory=dict)  # E2EConfig fields
    loss: LossConfig = field(default_factory=LossConfig)
    data: E2EDataConfig = field(default_factory=E2EDataConfig)
    optim: E2EOptimConfig = field(default_factory=E2EOptimConfig)
    seed: int = 0
    threads: int = 1
    out_dir: str = "out/train"  # working checkpoint + log: <out_dir>/<name>/
    checkpoint_dir: str = "pose3d_tools/checkpoints/e2e"  # shipped: <checkpoint_dir>/<name>.pt
    max_minutes: float = 0.0  # > 0: stop (checkpointed, resumable) after this many wall minutes
    checkpoint_minutes: float = 2.0
    log_every: int = 25


def config_from_dict(data: dict[str, Any]) -> E2ETrainConfig:
    """From a YAML/JSON dict; unknown keys raise (typos)."""
    return dataclass_from_dict(E2ETrainConfig, data)


def load_config(path: str | os.PathLike) -> E2ETrainConfig:
    import yaml

    with open(path) as fh:
        return config_from_dict(yaml.safe_load(fh) or {})


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
class RenderSet:
    """A folder of renders, memory-mapped: images (N, S, S, 3) uint8 RGB, joints (N, 17, 3) m."""

    def __init__(self, folder: str | os.PathLike, limit: int = 0):
        self.folder = resolve_path(folder)
        self.images = np.load(self.folder / "images.npy", mmap_mode="r")
        self.joints = np.load(self.folder / "joints.npy", mmap_mode="r")
        if limit > 0:
            self.images, self.joints = self.images[:limit], self.joints[:limit]
        meta = self.folder / "meta.json"
        self.meta = json.loads(meta.read_text()) if meta.is_file() else {}
        if len(self.images) != len(self.joints):
            raise ValueError(f"{self.folder}: {len(self.images)} images, {len(self.joints)} poses")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.sort(np.asarray(index))  # sequential reads of the memory map
        return np.asarray(self.images[index]), np.asarray(self.joints[index], np.float32)


def normalise_images(images: np.ndarray) -> np.ndarray:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float32 (pixel / 255 - mean) / std."""
    x = images.astype(np.float32) / 255.0
    x = (x - IMAGE_MEAN) / IMAGE_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def augment_sample(image: np.ndarray, joints: np.ndarray, rng: np.random.Generator,
                   cfg: E2EDataConfig) -> tuple[np.ndarray, np.ndarray]:
    """One crop (S, S, 3) uint8 and its joints (17, 3) m crop axes -> augmented copies.

    The re-warp is a ROI inside the crop (``roi_transforms``, the contract's warp), so a rotation
    by a turns the 3D by ``camera_to_crop_axes(., a)``; scale and shift leave the root-relative
    metric 3D unchanged (perspective about the crop centre ignored, as in the contract).
    """
    s = image.shape[0]
    angle = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    side = s * math.exp(rng.uniform(-cfg.scale_jitter, cfg.scale_jitter))
    centre = (s - 1) / 2 + rng.uniform(-cfg.shift_jitter, cfg.shift_jitter, 2) * s
    M = roi_transforms(np.array([centre[0], centre[1], side, angle]), s)[0]
    out = cv2.warpAffine(image, M, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    joints = camera_to_crop_axes(joints, angle).astype(np.float32)
    if rng.uniform() < cfg.flip_prob:
        out = out[:, ::-1]
        joints = joints[H36M17.flip_permutation] * np.array([-1.0, 1.0, 1.0], np.float32)
    gain = rng.uniform(1 - cfg.colour_jitter, 1 + cfg.colour_jitter, 3)
    gain *= rng.uniform(1 - cfg.brightness_jitter, 1 + cfg.brightness_jitter)
    out = out.astype(np.float32) * gain
    if rng.uniform() < cfg.grey_prob:
        out = np.repeat(out.mean(-1, keepdims=True), 3, -1)
    return np.clip(out, 0, 255).astype(np.uint8), joints


class BatchMaker:
    """Augmented training batches from renders (and, optionally, crops rendered now)."""

    def __init__(self, renders: RenderSet | None, cfg: E2EDataConfig, renderer: Any = None):
        if renders is None and renderer is None:
            raise ValueError("need renders or a renderer")
        self.renders, self.cfg, self.renderer = renders, cfg, renderer

    def batch(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, S, S) float32 normalised images, (B, 17, 3) float32 root-relative joints."""
        fresh = 0
        if self.renderer is not None:
            fresh = n if self.renders is None else int(rng.binomial(n, self.cfg.on_the_fly))
        images, joints = [], []
        if n - fresh:
            imgs, js = self.renders.take(rng.choice(len(self.renders), n - fresh, replace=False))
            images.append(imgs)
            joints.append(js)
        if fresh:
            made = self.renderer.render_batch(rng, fresh)
            images.append(made["images"])
            joints.append(made["joints"].astype(np.float32))
        imgs, js = np.concatenate(images), np.concatenate(joints)
        out_i, out_j = zip(*(augment_sample(i, j, rng, self.cfg)
                             for i, j in zip(imgs, js, strict=True)), strict=True)
        joints_out = np.stack(out_j)
        return normalise_images(np.stack(out_i)), joints_out - joints_out[:, :1]


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def lr_factor(step: int, optim: E2EOptimConfig) -> float:
    """Linear warm-up, then cosine decay to ``final_lr_fraction`` at ``steps``."""
    if step < optim.warmup_steps:
        return (step + 1) / max(1, optim.warmup_steps)
    t = min(1.0, (step - optim.warmup_steps) / max(1, optim.steps - optim.warmup_steps))
    f = optim.final_lr_fraction
    return f + (1 - f) * 0.5 * (1 + math.cos(math.pi * t))


class E2ETrainer:
    """One training run of a :class:`E2ETrainConfig` with its working checkpoint."""

    def __init__(self, cfg: E2ETrainConfig, batches: BatchMaker | None = None,
                 progress: bool = True):
        import torch

        from pose3d_tools.models.e2e_transformer import build_e2e

        torch.set_num_threads(max(1, cfg.threads))
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.cfg = cfg
        self.model = build_e2e(cfg.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.optim.lr,
                                           weight_decay=cfg.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg.optim))
        self.rng = np.random.default_rng(cfg.seed)
        self.batches = batches or BatchMaker(RenderSet(cfg.data.renders_dir, cfg.data.limit),
                                              cfg.data)
        self.work_dir = resolve_path(cfg.out_dir) / cfg.name
        self.last_path = self.work_dir / "last.pt"
        self.progress = progress
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0
        self.cpu_s = 0.0
        self._stop: str | None = None
        self._window: list[dict[str, float]] = []

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        import torch

        return {
            "kind": KIND,
            "name": self.cfg.name,
            "variant": self.model.variant,
            "config": self.model.config.to_dict(),
            "state_dict": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "global_step": self.step,
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "history": self.history,
            "window": self._window,
            "elapsed_s": self.elapsed,
            "cpu_s": self.cpu_s,
            "train_config": config_to_dict(self.cfg),
        }

    def save(self) -> Path:
        _atomic_save(self.state(), self.last_path)
        return self.last_path

    def resume(self, path: Path | None = None) -> bool:
        """Load ``last.pt`` (or ``path``) if it exists; True when resumed."""
        import torch

        path = Path(path or self.last_path)
        if not path.is_file():
            return False
        st = torch.load(str(path), map_location="cpu", weights_only=False)
        if st.get("config") != self.model.config.to_dict():
            raise ValueError(f"{path} was trained with another model config")
        self.model.load_state_dict(st["state_dict"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.step = int(st["step"])
        self.rng.bit_generator.state = st["numpy_rng"]
        torch.set_rng_state(st["torch_rng"])
        random.setstate(st["python_rng"])
        self.history = list(st.get("history", []))
        self._window = list(st.get("window", []))
        self.elapsed = float(st.get("elapsed_s", 0.0))
        self.cpu_s = float(st.get("cpu_s", 0.0))
        return True

    # -- loop ----------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        if self.progress:
            print(msg, flush=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.work_dir / "train.log", "a") as fh:
            fh.write(msg + "\n")

    def request_stop(self, reason: str) -> None:
        """Save and return after the current step (signal-safe: sets a flag only)."""
        self._stop = reason

    def train_step(self) -> dict[str, float]:
        import torch

        from pose3d_tools.models.e2e_losses import e2e_loss

        images, target = self.batches.batch(self.rng, self.cfg.optim.batch_size)
        self.model.train()
        joints, logits = self.model.forward_layers(torch.from_numpy(images))
        loss, parts = e2e_loss(joints, logits, torch.from_numpy(target), self.cfg.loss,
                               self.model.variant)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            chosen, _ = self.model.assign(joints[-1].detach(), logits[-1].detach())
            chosen = chosen - chosen[:, :1]
            mpjpe = torch.linalg.vector_norm(chosen - torch.from_numpy(target), dim=-1).mean()
        return {"loss": float(loss.detach()), "train_mpjpe_mm": 1000 * float(mpjpe), **parts}

    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train to ``optim.steps`` (or ``max_steps`` in total, or ``max_minutes`` of this run);
        returns the last history entry, with ``"stopped"`` when it stopped early."""
        self._stop = None
        old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, lambda s, f: self.request_stop(
                    signal.Signals(s).name))
        run_start, clock = self.elapsed, (time.monotonic(), time.process_time())
        last_save = time.monotonic()
        try:
            while self.step < self.cfg.optim.steps:
                parts = self.train_step()
                self.step += 1
                now, cpu = time.monotonic(), time.process_time()
                self.elapsed += now - clock[0]
                self.cpu_s += cpu - clock[1]
                clock = (now, cpu)
                self._window.append(parts)
                if self.step % self.cfg.log_every == 0 or self.step == self.cfg.optim.steps:
                    entry = {"step": self.step, "elapsed_s": round(self.elapsed, 1),
                             "cpu_s": round(self.cpu_s, 1),
                             "lr": self.scheduler.get_last_lr()[0]}
                    for k in self._window[0]:
                        entry[k] = round(float(np.mean([w[k] for w in self._window])), 5)
                    self._window = []
                    self.history.append(entry)
                    self.log(json.dumps(entry))
                if max_steps is not None and self.step >= max_steps:
                    self.request_stop(f"step limit {max_steps}")
                if (self.cfg.max_minutes > 0
                        and self.elapsed - run_start > 60 * self.cfg.max_minutes):
                    self.request_stop(f"time budget of {self.cfg.max_minutes} min")
                if self._stop is not None and self.step < self.cfg.optim.steps:
                    self.save()
                    self.log(f"stopped ({self._stop}) at step {self.step}; {self.last_path}")
                    return {"stopped": self._stop, "step": self.step}
                if (self.cfg.checkpoint_minutes > 0
                        and time.monotonic() - last_save > 60 * self.cfg.checkpoint_minutes):
                    self.save()
                    last_save = time.monotonic()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        self.save()
        return self.history[-1] if self.history else {"step": self.step}

    def export(self, path: Path | None = None) -> Path:
        """The shipped checkpoint: weights + configs + history, no optimiser state."""
        path = Path(path or resolve_path(self.cfg.checkpoint_dir) / f"{self.cfg.name}.pt")
        st = self.state()
        shipped = {k: st[k] for k in ("kind", "name", "variant", "config", "state_dict",
                                      "global_step", "history", "elapsed_s", "cpu_s",
                                      "train_config")}
        shipped["input"] = {"size": self.model.config.input_size, "crop_scale": CROP_SCALE,
                            "mean": IMAGE_MEAN.tolist(), "std": IMAGE_STD.tolist(),
                            "channels": "RGB"}
        shipped["renders"] = {k: self.batches.renders.meta.get(k) for k in
                              ("split", "subjects", "n", "seed")} if self.batches.renders else {}
        shipped["licence"] = LICENCE_NOTE
        _atomic_save(shipped, path)
        return path


def train(cfg: E2ETrainConfig, resume: bool | str = True, max_steps: int | None = None,
          progress: bool = True) -> Path:
    """Train ``cfg``, resuming from ``out_dir/name/last.pt`` if present (``resume="require"``:
    it must be). Returns the shipped checkpoint when the schedule is complete, else ``last.pt``."""
    with RunLock(resolve_path(cfg.out_dir) / cfg.name):
        trainer = E2ETrainer(cfg, progress=progress)
        resumed = trainer.resume() if resume else False
        if resume == "require" and not resumed:
            raise FileNotFoundError(f"--resume: no working checkpoint {trainer.last_path}")
        n = sum(p.numel() for p in trainer.model.parameters())
        trainer.log(f"{cfg.name}: {trainer.model.variant} {n / 1e6:.3f} M params, "
                    f"{len(trainer.batches.renders or [])} renders, step {trainer.step}"
                    f"/{cfg.optim.steps}{' (resumed)' if resumed else ''}")
        entry = trainer.run(max_steps)
        if entry.get("stopped"):
            return trainer.last_path
        path = trainer.export()
        trainer.log(f"wrote {path} after {trainer.elapsed / 60:.1f} min, {trainer.step} steps")
        return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="train the end-to-end image -> 3D pose transformer")
    p.add_argument("--config", required=True)
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--no-resume", action="store_true")
    resume.add_argument("--resume", action="store_true")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--steps", type=int, help="override optim.steps")
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--renders", help="override data.renders_dir")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.steps:
        cfg.optim.steps = args.steps
    if args.max_minutes is not None:
        cfg.max_minutes = args.max_minutes
    if args.renders:
        cfg.data.renders_dir = args.renders
    print(train(cfg, resume="require" if args.resume else not args.no_resume,
                max_steps=args.max_steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def export_checkpoint(checkpoint: str | os.PathLike, output: str | os.PathLike) -> Path:
    """ONNX export of a shipped E2E checkpoint with the contract's metadata, plus the
    checkpoint's name, licence and the data it was trained on."""
    from pose3d_tools.e2e_eval import load_e2e
    from pose3d_tools.export import export_e2e_onnx

    model, ckpt = load_e2e(checkpoint)
    return export_e2e_onnx(model, output, metadata={
        "model": str(ckpt.get("name", Path(checkpoint).stem)),
        "checkpoint": Path(checkpoint).name,
        "licence": str(ckpt.get("licence", LICENCE_NOTE)),
        "trained_on": "rendered crops (capsule bodies over photographs) of Human3.6M train-split "
                      "poses (S1, S5, S6, S7, S8); no real images",
    })
