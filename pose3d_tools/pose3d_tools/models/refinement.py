"""Joint Refinement Network: BERT-style completion of skeletons with missing joints.

From "End-to-end 3D Human Pose Estimation with Transformer" (section C): during training 20 % of
a skeleton's joints are picked; a picked joint is, 80 % of the time, replaced by the midpoint of
its parent and child in the skeleton tree (by its parent when it is a leaf) and, 20 % of the time,
left unchanged. Every joint is concatenated with its parent and child joints, the masked set goes
through a multi-layer perceptron, and a regression head outputs the full skeleton. The loss is the
mean position error over the picked joints only. It needs 3D skeletons only, so it works behind
any estimator (here: the lifters' output, where "missing" = not observed in 2D).

    x: (B, J, 3) root-relative metres (masked joints already replaced, see ``bert_mask``)
    masked: (B, J) 0/1
    -> per joint [joint, parent, mean child, mask flag] (B, J, 10), pose divided by its RMS size
    -> flatten -> Linear -> blocks x (LayerNorm, Linear, GELU, Linear, + skip) -> LayerNorm
    -> regression head Linear -> (B, J, 3) offsets; output = input + offsets, x RMS size,
       root row exactly 0.

The replacement rule and the neighbour matrices come from the runtime
(:mod:`pose3d_ros.stages.refinement`), so training and the robot share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pose3d_ros.core.skeletons import joint_set as get_joint_set
from pose3d_ros.stages.refinement import neighbour_matrices, replace_by_midpoints

from .htnet import LifterConfig

ROOT_EPS = 1e-3  # metres: RMS size floor (a degenerate skeleton is not divided by ~0)


@dataclass
class JointRefinementConfig(LifterConfig):
    """Network width and the masking rule. ~0.47 M parameters with the defaults."""

    num_joints: int = 17
    joint_set: str = "h36m17"
    hidden: int = 256
    blocks: int = 3
    dropout: float = 0.0
    mask_ratio: float = 0.2  # share of (non-root) joints picked per skeleton
    midpoint_prob: float = 0.8  # of the picked: replaced by the neighbours' midpoint, else kept

    presets: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}


def bert_mask(rng: np.random.Generator, joints: np.ndarray, mask_ratio: float = 0.2,
              midpoint_prob: float = 0.8, joint_set: str = "h36m17",
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's masking of skeletons (B, J, 3) -> (input joints, picked (B, J) bool,
    replaced (B, J) bool). Each non-root joint is picked with probability ``mask_ratio``; a
    picked one is replaced by its neighbours' midpoint with probability ``midpoint_prob``, else
    left unchanged. The root (always 0 in root-relative poses) is never picked."""
    js = get_joint_set(joint_set)
    b, j = joints.shape[:2]
    picked = rng.uniform(size=(b, j)) < mask_ratio
    picked[:, js.root] = False
    replaced = picked & (rng.uniform(size=(b, j)) < midpoint_prob)
    return replace_by_midpoints(joints, replaced, js), picked, replaced


def masked_joint_loss(pred: torch.Tensor, target: torch.Tensor,
                      picked: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean error (m) over the picked joints only: L = 1/M sum_i ||B_i - p_i||."""
    err = torch.linalg.vector_norm(pred - target, dim=-1)  # (B, J)
    w = picked.to(err.dtype)
    return (err * w).sum() / w.sum().clamp_min(1.0)


class ResidualMLPBlock(nn.Module):
    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.drop(self.fc2(self.act(self.fc1(self.norm(h)))))


class JointRefinementNetwork(nn.Module):
    """forward(joints (B, J, 3), masked (B, J)) -> full skeleton (B, J, 3), root-relative m."""

    name = "joint_refinement"

    def __init__(self, config: JointRefinementConfig | None = None):
        super().__init__()
        self.config = config = config or JointRefinementConfig()
        js = get_joint_set(config.joint_set)
        parent, child = neighbour_matrices(js)
        self.register_buffer("parent", torch.from_numpy(parent), persistent=False)
        self.register_buffer("child", torch.from_numpy(child), persistent=False)
        root = torch.ones(config.num_joints, 1)
        root[js.root] = 0.0
        self.register_buffer("root_mask", root, persistent=False)
        j = config.num_joints
        self.encoder = nn.Sequential(
            nn.Linear(10 * j, config.hidden),
            *(ResidualMLPBlock(config.hidden, config.dropout) for _ in range(config.blocks)),
            nn.LayerNorm(config.hidden),
        )
        self.head = nn.Linear(config.hidden, 3 * j)
        nn.init.zeros_(self.head.weight)  # starts as the identity on its input
        nn.init.zeros_(self.head.bias)

    def forward(self, joints: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        b, j = joints.shape[0], joints.shape[1]
        x = joints - joints[:, :1]
        scale = torch.sqrt(x.square().sum(-1).mean(-1)).clamp_min(ROOT_EPS)[:, None, None]
        x = x / scale
        tokens = torch.cat([x, self.parent @ x, self.child @ x, masked[..., None].to(x.dtype)],
                           dim=-1)  # (B, J, 10)
        offsets = self.head(self.encoder(tokens.reshape(b, 10 * j))).reshape(b, j, 3)
        return (x + offsets) * scale * self.root_mask
