"""Training of the joint refinement network on Human3.6M 3D skeletons (no 2D, no images).

Skeletons come from the lifters' own batch maker (:class:`pose3d_tools.training.WindowSynth`
with one-frame windows): train subjects S1, S5, S6, S7, S8, bone-length / flip / placement
augmentation, and then expressed root-relative in the frame of a real Human3.6M camera or a random
robot head camera, i.e. in the camera orientation the runtime's lifted skeletons have. Each batch
is masked BERT-style (:func:`pose3d_tools.models.refinement.bert_mask`) and the loss is the mean
error of the picked joints.

The loop, checkpoints (``last.pt`` with model, optimiser, scheduler and every RNG state; atomic
saves; SIGINT/SIGTERM stop cleanly; ``max_minutes``), resuming and the run lock are the lifter
:class:`~pose3d_tools.training.Trainer`'s: this module only changes what a step, the monitor and
the shipped checkpoint are. Run it like a lifter:
``pose3d-tools train --config pose3d_tools/config/training/joint_refinement.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pose3d_tools.data.h36m import check_subjects
from pose3d_tools.training import (
    LICENCE_NOTE,
    RunLock,
    TrainConfig,
    Trainer,
    WindowSynth,
    _atomic_save,
    _train,
    resolve_path,
)

MODEL_NAME = "joint_refinement"  # TrainConfig.model of refiner configs


def is_refiner_config(cfg: TrainConfig) -> bool:
    return cfg.model == MODEL_NAME


def build_refiner(cfg: TrainConfig):
    from pose3d_tools.models.refinement import JointRefinementConfig, JointRefinementNetwork

    return JointRefinementNetwork(JointRefinementConfig.from_dict(dict(cfg.model_config)))


def camera_skeletons(synth: WindowSynth, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` augmented skeletons (n, 17, 3), root-relative metres in a random camera's frame."""
    pos = synth.windows_3d(rng, synth.sample_anchors(rng, n))  # (n, 1, 17, 3) world
    xc = synth.cameras(rng, pos).world_to_camera(pos)[:, 0]
    return xc - xc[:, :1]


class RefinementTrainer(Trainer):
    """The lifter Trainer with a refinement step, monitor and shipped checkpoint."""

    def __init__(self, cfg: TrainConfig, synth: WindowSynth | None = None, model=None,
                 progress: bool = True):
        if cfg.pretrain.enabled:
            raise ValueError("the joint refinement network has no pre-training stage")
        super().__init__(cfg, synth=synth, model=model if model is not None else
                         build_refiner(cfg), progress=progress)

    def batch(self, rng: np.random.Generator, n: int):
        """(masked input, masked flags, target, picked) as tensors."""
        from pose3d_tools.models.refinement import bert_mask

        c = self.model.config
        target = camera_skeletons(self.synth, rng, n)
        x, picked, _ = bert_mask(rng, target, c.mask_ratio, c.midpoint_prob, c.joint_set)
        return (self._tensor(x), self._tensor(picked), self._tensor(target),
                self._tensor(picked))

    def train_step(self, rng: np.random.Generator) -> float:
        import torch

        from pose3d_tools.models.refinement import masked_joint_loss

        x, flags, target, picked = self.batch(rng, self.batch_size)
        loss = masked_joint_loss(self.model(x, flags), target, picked)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def validate(self) -> float | None:
        """Masked-joint error (mm) on a fixed S9/S11 monitoring set (watched, never selected on).
        """
        import torch

        from pose3d_tools.models.refinement import masked_joint_loss

        if self.val_synth is None or self.cfg.data.val_samples <= 0:
            return None
        if self._val is None:
            saved, self.synth = self.synth, self.val_synth
            try:
                self._val = self.batch(np.random.default_rng([self.cfg.seed, 99]),
                                       self.cfg.data.val_samples)
            finally:
                self.synth = saved
        x, flags, target, picked = self._val
        self.model.eval()
        with torch.no_grad():
            err = masked_joint_loss(self.model(x, flags), target, picked)
        self.model.train()
        return float(err) * 1000

    def export(self, path: Path | None = None) -> Path:
        """The shipped checkpoint: float32 weights + configs, no optimiser state."""
        path = Path(path or resolve_path(self.cfg.checkpoint_dir) / f"{self.cfg.name}.pt")
        st = self.state()
        shipped = {k: st[k] for k in ("name", "config", "state_dict", "train_config",
                                      "data_fingerprint", "history", "elapsed_s", "cpu_s",
                                      "global_step")}
        shipped["kind"] = "refiner"
        shipped["licence"] = LICENCE_NOTE
        _atomic_save(shipped, path)
        return path


def load_refiner(path) -> tuple[Any, dict[str, Any]]:
    """A refiner (eval mode) and its checkpoint dict."""
    from pose3d_tools.models.refinement import JointRefinementConfig, JointRefinementNetwork
    from pose3d_tools.models.registry import load_checkpoint

    ckpt = load_checkpoint(path)
    if ckpt.get("name") != MODEL_NAME:
        raise ValueError(f"{path}: not a joint refinement checkpoint (name {ckpt.get('name')!r})")
    model = JointRefinementNetwork(JointRefinementConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def train(cfg: TrainConfig, resume: bool | str = True, progress: bool = True,
          validate: bool = True, max_steps: int | None = None) -> Path:
    """Train a refiner config, as :func:`pose3d_tools.training.train` trains a lifter: returns
    the shipped checkpoint when the schedule is complete, else the working ``last.pt``."""
    check_subjects(cfg.data.train_subjects, "train")
    with RunLock(resolve_path(cfg.out_dir) / cfg.name):
        return _train(cfg, resume, progress, validate, max_steps, RefinementTrainer)
