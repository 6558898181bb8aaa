"""MixSTE: a video pose transformer with alternating spatial and temporal attention (seq2seq).

Input  x: (B, T, J, C_in) per-joint features of a window of T frames.
Output  : (B, T, J, 3) root-relative metres, one pose per input frame, root row exactly 0.

    joint embedding Linear(C_in -> D) + spatial position embedding (J, D)   (B, T, J, D)
    depth x [ Spatial Transformer Block  (STB): attention over the J joints of a frame
              (+ temporal position embedding (T, D) before the first TTB)
              Temporal Transformer Block (TTB): attention over the T frames of a joint ]
    regression head LayerNorm + Linear(D -> 3), root zeroed

As in the paper (Zhang et al., CVPR 2022), every joint is a token and each joint has its own
temporal trajectory (the TTB runs per joint), and every frame of the window gets an output
(seq2seq). Sizes here are the CPU-trainable ones (``tiny``), not the paper's 512 x 8.

``causal: true`` masks the temporal attention so that frame t only sees frames <= t: the
newest frame's pose is then a 0-latency estimate for the node. ``causal: false`` is the centred
window for offline use (the middle frame is read, (T - 1) / 2 frames of latency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from pose3d_ros.core.skeletons import joint_set as get_joint_set

from .htnet import LifterConfig, RegressionHead
from .transformer import TransformerBlock, causal_mask


@dataclass
class MixSTEConfig(LifterConfig):
    num_joints: int = 17
    in_channels: int = 3
    frames: int = 27  # T
    joint_set: str = "h36m17"
    embed_dim: int = 48  # D
    depth: int = 4  # number of STB + TTB pairs
    num_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    causal: bool = True  # window ends at the newest frame (node); false: centred (offline)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {},
        "tiny_centred": {"causal": False},
        "paper": {"frames": 243, "embed_dim": 512, "depth": 8, "num_heads": 8, "mlp_ratio": 2.0},
    }

    def __post_init__(self) -> None:
        if self.frames < 2:
            raise ValueError("a video pose transformer needs frames >= 2")
        if self.embed_dim % self.num_heads:
            raise ValueError("embed_dim must be divisible by num_heads")
        if self.depth < 1:
            raise ValueError("depth must be >= 1")


class MixSTE(nn.Module):
    """Seq2seq video lifter. forward(x) = decode(encode(x)); x: (B, T, J, C_in)."""

    name = "mixste"

    def __init__(self, config: MixSTEConfig | None = None):
        super().__init__()
        self.config = config = config or MixSTEConfig()
        js = get_joint_set(config.joint_set)
        d = config.embed_dim
        self.embed = nn.Linear(config.in_channels, d)
        self.spatial_pos = nn.Parameter(torch.zeros(config.num_joints, d))
        self.temporal_pos = nn.Parameter(torch.zeros(config.frames, d))
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        block = (d, config.num_heads, config.mlp_ratio, config.dropout)
        self.spatial_blocks = nn.ModuleList(TransformerBlock(*block) for _ in range(config.depth))
        self.temporal_blocks = nn.ModuleList(TransformerBlock(*block) for _ in range(config.depth))
        self.head = RegressionHead(d, config.num_joints, js.root)
        mask = causal_mask(config.frames) if config.causal else torch.zeros(0)
        self.register_buffer("time_mask", mask, persistent=False)

    @property
    def output_index(self) -> int:
        """The frame a runtime reads: the newest (causal) or the middle one (centred)."""
        t = self.config.frames
        return t - 1 if self.config.causal else t // 2

    @property
    def latency_frames(self) -> int:
        return self.config.frames - 1 - self.output_index

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[1] != self.config.frames:
            raise ValueError(f"{self.name} window is {self.config.frames} frames, got {x.shape[1]}")

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J, C_in) -> joint tokens (B, T, J, D)."""
        self._check(x)
        return self.embed(x) + self.spatial_pos

    def spatial_temporal(self, h: torch.Tensor, i: int, mask: torch.Tensor | None) -> torch.Tensor:
        """Pair i: STB over joints, then TTB over frames (mask: additive, over (Lq, Lk))."""
        h = self.spatial_blocks[i](h)
        if i == 0:
            h = h + self.temporal_pos[:, None, :]
        h = self.temporal_blocks[i](h.transpose(1, 2), mask=mask)  # (B, J, T, D)
        return h.transpose(1, 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J, C_in) -> features (B, T, J, D)."""
        h = self.embed_tokens(x)
        mask = self.time_mask if self.config.causal else None
        for i in range(self.config.depth):
            h = self.spatial_temporal(h, i, mask)
        return h

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
