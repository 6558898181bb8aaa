"""Temporal HTNet: HTNet's spatial blocks per frame, interleaved with causal temporal attention.

Input  x: (B, T, J, C_in), T == config.frames. Output: (B, T, J, 3), one pose per input frame,
root joint exactly 0. Frame t only sees frames <= t (causal mask), so every output frame is a
valid causal estimate and the runtime reads the last one (0 frames of latency).

    joint embedding per frame (HTNet's)                         (J, B*T, D)
    depth x [ spatial Hierarchical Mixer per frame (HTNet's)    on (J, B*T, D)
              Temporal Mixer: causal self-attention over the    on (J*B, T, D)
              T frames of each joint, pre-LN residual ]
    LayerNorm, regression head, root zeroed

Why this layout (a factorised spatial-temporal design, as in MixSTE and STCFormer, with HTNet's
blocks as the spatial part): every temporal mixer's output projection starts at zero, so at
initialisation the model *is* the single-frame HTNet applied frame by frame, and a trained
``htnet`` checkpoint of the same width loads into it unchanged (``init_from`` in the training
config). Training then only has to learn what the past frames add -- averaging detector jitter,
bridging a missed or swapped joint, motion -- which is a far shorter job on a CPU than
learning a temporal lifter from scratch (issue 16: the from-scratch NanoHTNet was worse than the
single-frame model after its budget). Attention (rather than a fixed filter) lets a frame with
a low-confidence or outlying joint be down-weighted by its content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional

from pose3d_ros.core.skeletons import joint_set as get_joint_set

from .graph import HierarchicalMixer, normalized_adjacency
from .htnet import HTNetConfig, JointEmbedding, RegressionHead


@dataclass
class TemporalHTNetConfig(HTNetConfig):
    """HTNet's widths (defaults: htnet "small", so its checkpoint warm-starts this model) plus
    the temporal window."""

    frames: int = 9  # T, window length (slots of the runtime's track window)
    causal: bool = True  # the runtime reads the last frame; only causal is implemented
    temporal_heads: int = 4  # heads of each temporal mixer (on all D channels)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "t9": {},
        "t16": {"frames": 16},
        "t27": {"frames": 27},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames < 2:
            raise ValueError("a temporal lifter needs frames >= 2")
        if not self.causal:
            raise ValueError("TemporalHTNet is causal only (causal: true)")
        if self.embed_dim % self.temporal_heads:
            raise ValueError("embed_dim must be divisible by temporal_heads")


class TemporalMixer(nn.Module):
    """Causal multi-head self-attention over the frames of each joint, pre-LN residual.

    (J, B*T, D) -> (J, B*T, D). A learnable frame code (T, D) tells the attention how old a
    frame is; the output projection is zero-initialised so the block starts as the identity.
    The causal mask is an additive (T, T) constant (0 on and below the diagonal, -inf above), so
    the ONNX graph is plain MatMul / Add / Softmax.
    """

    def __init__(self, dim: int, frames: int, num_heads: int):
        super().__init__()
        self.frames = frames
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.frame_pos = nn.Parameter(torch.zeros(frames, dim))
        nn.init.trunc_normal_(self.frame_pos, std=0.02)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        mask = torch.full((frames, frames), float("-inf")).triu(1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j, n, d = x.shape
        t = self.frames
        h = self.norm(x).reshape(j, n // t, t, d) + self.frame_pos  # (J, B, T, D)
        qkv = self.qkv(h).reshape(j, n // t, t, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # each (J, B, H, T, Dh)
        out = functional.scaled_dot_product_attention(q, k, v, attn_mask=self.causal_mask)
        out = out.permute(0, 1, 3, 2, 4).reshape(j, n, d)  # (J, B*T, D)
        return x + self.proj(out)


class TemporalHTNet(nn.Module):
    """Causal temporal lifter. forward(x) = decode(encode(x)); x: (B, T, J, C_in)."""

    name = "temporal_htnet"

    def __init__(self, config: TemporalHTNetConfig | None = None):
        super().__init__()
        self.config = config = config or TemporalHTNetConfig()
        js = get_joint_set(config.joint_set)
        adjacency = normalized_adjacency(js)
        d = config.embed_dim
        # Same attribute names as HTNet (embed, blocks, norm, head): its state dict loads as is.
        self.embed = JointEmbedding(config.in_channels, config.num_joints, d)
        self.blocks = nn.ModuleList(
            HierarchicalMixer(
                d, config.mlp_hidden, config.gcn_hidden, config.num_heads, js, adjacency,
                config.dropout, config.activation,
            )
            for _ in range(config.depth)
        )
        self.temporal = nn.ModuleList(
            TemporalMixer(d, config.frames, config.temporal_heads) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(d)
        self.head = RegressionHead(d, config.num_joints, js.root)

    @property
    def output_index(self) -> int:
        """Frame the runtime reads: the last (causal)."""
        return self.config.frames - 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J, C_in) -> features (B, T, J, D)."""
        t, j, c = x.shape[1], x.shape[2], x.shape[3]
        if t != self.config.frames:
            raise ValueError(f"TemporalHTNet window is {self.config.frames} frames, got {t}")
        h = self.embed(x.reshape(-1, j, c)).permute(1, 0, 2).contiguous()  # (J, B*T, D)
        for spatial, temporal in zip(self.blocks, self.temporal, strict=True):
            h = temporal(spatial(h))
        h = self.norm(h).permute(1, 0, 2)  # (B*T, J, D)
        return h.reshape(-1, t, j, h.shape[-1])

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, J, D) -> (B, T, J, 3) root-relative metres, root row exactly 0."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
