"""Multi-scale deformable attention (Zhu et al., Deformable DETR) in pure PyTorch.

Each query attends to a few sampled points per head and feature level instead of to every token:
sampling offsets and attention weights are predicted from the query, the points sit around the
query's reference point, and the features there are read by bilinear interpolation
(``grid_sample``, ONNX ``GridSample`` from opset 16). No custom CUDA op, so it runs and exports
anywhere.

Coordinates: a reference point is (x, y) normalised to [0, 1] over the whole map (x = 0 the left
edge, x = 1 the right edge), the same for every level; pixel i of a level with W columns has its
centre at (i + 0.5) / W (``align_corners=False``). Points outside the map read zeros.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional


def sample_levels(values: list[torch.Tensor], locations: torch.Tensor,
                  weights: torch.Tensor) -> torch.Tensor:
    """Weighted sum of bilinear samples over levels and points.

    values: per level (B * H, Dh, H_l, W_l) head-split feature maps;
    locations: (B, Lq, H, L, P, 2) normalised (x, y); weights: (B, Lq, H, L, P).
    Returns (B, Lq, H * Dh), head-major channels.
    """
    b, lq, heads, _, points, _ = locations.shape
    grids = 2.0 * locations - 1.0  # grid_sample's [-1, 1] corners-at-edges convention
    out = None
    for level, value in enumerate(values):
        grid = grids[:, :, :, level].transpose(1, 2).reshape(b * heads, lq, points, 2)
        sampled = functional.grid_sample(value, grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)  # (B * H, Dh, Lq, P)
        w = weights[:, :, :, level].transpose(1, 2).reshape(b * heads, 1, lq, points)
        term = (sampled * w).sum(-1)  # (B * H, Dh, Lq)
        out = term if out is None else out + term
    dh = out.shape[1]
    return out.reshape(b, heads * dh, lq).transpose(1, 2)


class MultiScaleDeformableAttention(nn.Module):
    """MSDeformAttn(z_q, p_q, {x_l}) = W_o sum_h sum_l sum_k A_hlqk W_v x_l(phi_l(p_q) + dp_hlqk).

    ``spatial_shapes`` (H_l, W_l) are fixed at construction (the crop size is fixed), so the
    exported graph has no data-dependent shapes.
    """

    def __init__(self, dim: int, heads: int, spatial_shapes: list[tuple[int, int]],
                 points: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.points = dim, heads, points
        self.spatial_shapes = [tuple(int(v) for v in s) for s in spatial_shapes]
        self.levels = len(self.spatial_shapes)
        self.sampling_offsets = nn.Linear(dim, heads * self.levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * self.levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        # Offsets are in pixels of each level: divide by (W_l, H_l) to normalise.
        wh = torch.tensor([[w, h] for h, w in self.spatial_shapes], dtype=torch.float32)
        self.register_buffer("offset_normaliser", wh, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's start: point k of head h at k pixels along direction h; uniform A."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.heads, dtype=torch.float32) * (2 * math.pi / self.heads)
        grid = torch.stack([angles.cos(), angles.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values
        grid = grid.view(self.heads, 1, 1, 2).repeat(1, self.levels, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def split_levels(self, value: torch.Tensor) -> list[torch.Tensor]:
        """(B, sum H_l W_l, D) flattened tokens -> per level (B * heads, D / heads, H_l, W_l)."""
        b = value.shape[0]
        dh = self.dim // self.heads
        maps, start = [], 0
        for h, w in self.spatial_shapes:
            v = value[:, start:start + h * w].reshape(b, h * w, self.heads, dh)
            maps.append(v.permute(0, 2, 3, 1).reshape(b * self.heads, dh, h, w))
            start += h * w
        return maps

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor,
                value: torch.Tensor) -> torch.Tensor:
        """query (B, Lq, D), reference_points (B, Lq, 2) normalised (x, y), value (B, Lin, D)
        with Lin = sum H_l W_l -> (B, Lq, D)."""
        b, lq, _ = query.shape
        maps = self.split_levels(self.value_proj(value))
        offsets = self.sampling_offsets(query).view(b, lq, self.heads, self.levels, self.points, 2)
        offsets = offsets / self.offset_normaliser.view(1, 1, 1, self.levels, 1, 2)
        locations = reference_points.view(b, lq, 1, 1, 1, 2) + offsets
        weights = self.attention_weights(query).view(b, lq, self.heads,
                                                     self.levels * self.points)
        weights = weights.softmax(-1).view(b, lq, self.heads, self.levels, self.points)
        return self.output_proj(sample_levels(maps, locations, weights))
