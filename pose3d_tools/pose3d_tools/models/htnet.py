"""HTNet: Human Topology aware Network, single-frame 2D -> 3D lifter.

Input  x: (B, T, J, C_in) per-joint features (T == 1 for HTNet; any T is processed frame by frame).
Output  : (B, T, J, 3) root-relative 3D joints in metres; the root joint is exactly 0.

    joint embedding (Linear C_in -> D, + learnable joint position embedding)
    -> depth x HierarchicalMixer (joint / part / body levels, channel split, progressive)
    -> LayerNorm                                  = encode(x): (B, T, J, D)
    -> regression head Linear(D -> 3), root zeroed = decode(features)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from pose3d_ros.core.parameters import dataclass_from_dict
from pose3d_ros.core.skeletons import joint_set as get_joint_set

from .graph import HierarchicalMixer, normalized_adjacency


class LifterConfig:
    """Mixin for lifter config dataclasses: plain-dict round trip and named presets."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None = None):
        """Plain dict -> config; ``{"preset": name}`` starts from a preset. Unknown keys raise."""
        data = dict(data or {})
        preset = data.pop("preset", None)
        values: dict[str, Any] = {}
        if preset is not None:
            if preset not in cls.presets:
                known = sorted(cls.presets)
                raise ValueError(f"{cls.__name__}: unknown preset {preset!r}; known {known}")
            values.update(cls.presets[preset])
        values.update(data)
        return dataclass_from_dict(cls, values)

    @classmethod
    def preset(cls, name: str):
        return cls.from_dict({"preset": name})


@dataclass
class HTNetConfig(LifterConfig):
    """HTNet hyper-parameters. The defaults ("small") are a CPU-trainable model: 0.29 M params,
    4.5 M MACs per frame. ``HTNetConfig.preset("paper")`` follows the published layout (3 blocks,
    width 240, MLP 1024, GCN 384): 2.2 M params (published 3.05 M; our part level is lighter),
    35 M MACs per frame (published ~31 M)."""

    num_joints: int = 17
    in_channels: int = 3
    frames: int = 1
    joint_set: str = "h36m17"
    embed_dim: int = 120  # D, divisible by 3 (joint/part/body split)
    depth: int = 3  # number of Hierarchical Mixer blocks
    mlp_hidden: int = 240  # channel-MLP hidden width
    gcn_hidden: int = 80  # joint-level GCN hidden width
    num_heads: int = 2  # body-level attention heads (on D/3 channels)
    dropout: float = 0.0
    activation: str = "silu"  # "silu" (fast on CPU), "gelu" (paper), "relu"

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {},
        "paper": {
            "embed_dim": 240, "depth": 3, "mlp_hidden": 1024, "gcn_hidden": 384, "num_heads": 8,
            "activation": "gelu",
        },
    }

    def __post_init__(self) -> None:
        if self.embed_dim % 3 or (self.embed_dim // 3) % self.num_heads:
            raise ValueError("embed_dim must be divisible by 3 and embed_dim/3 by num_heads")
        js = get_joint_set(self.joint_set)
        if js.num_joints != self.num_joints:
            raise ValueError(
                f"joint set {self.joint_set} has {js.num_joints} joints, not {self.num_joints}"
            )


class JointEmbedding(nn.Module):
    """Per-joint feature embedding: (..., J, C_in) -> (..., J, D) plus a learnable joint code."""

    def __init__(self, in_channels: int, num_joints: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(in_channels, dim)
        self.joint_pos = nn.Parameter(torch.zeros(num_joints, dim))
        nn.init.trunc_normal_(self.joint_pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + self.joint_pos


class RegressionHead(nn.Module):
    """Features (..., J, D) -> root-relative joints (..., J, 3) with the root row exactly zero."""

    def __init__(self, dim: int, num_joints: int, root: int, norm: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()
        self.fc = nn.Linear(dim, 3)
        mask = torch.ones(num_joints, 1)
        mask[root] = 0.0
        self.register_buffer("root_mask", mask, persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(features)) * self.root_mask


class HTNet(nn.Module):
    """Single-frame HTNet lifter. forward(x) = decode(encode(x)); x: (B, T, J, C_in)."""

    name = "htnet"

    def __init__(self, config: HTNetConfig | None = None):
        super().__init__()
        self.config = config = config or HTNetConfig()
        js = get_joint_set(config.joint_set)
        adjacency = normalized_adjacency(js)
        self.embed = JointEmbedding(config.in_channels, config.num_joints, config.embed_dim)
        self.blocks = nn.ModuleList(
            HierarchicalMixer(
                config.embed_dim, config.mlp_hidden, config.gcn_hidden, config.num_heads, js,
                adjacency, config.dropout, config.activation,
            )
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.embed_dim)
        self.head = RegressionHead(config.embed_dim, config.num_joints, js.root)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J, C_in) -> features (B, T, J, D); frames are independent."""
        t, j, c = x.shape[1], x.shape[2], x.shape[3]
        h = self.embed(x.reshape(-1, j, c))  # (N=B*T, J, D)
        h = h.permute(1, 0, 2).contiguous()  # joint-major (J, N, D)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h).permute(1, 0, 2)  # (N, J, D)
        return h.reshape(-1, t, j, h.shape[-1])

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, J, D) -> (B, T, J, 3) root-relative metres, root row exactly 0."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
