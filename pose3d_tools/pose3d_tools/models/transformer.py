"""Transformer layers shared by the video pose transformers (MixSTE, HoT) and the image models.

Attention is written out (MatMul, Add, Softmax) rather than through
``scaled_dot_product_attention`` so that every exported graph is plain ONNX that TensorRT
parses, with masks as additive tensors of any broadcastable shape. Masks use a large finite
negative value (:data:`MASKED`) instead of -inf: a query whose keys are all masked then gets a
uniform average instead of NaN.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MASKED = -1e4  # additive attention mask value for "may not attend"


def causal_mask(frames: int) -> torch.Tensor:
    """(T, T) additive mask: query t sees keys <= t."""
    return torch.full((frames, frames), MASKED).triu(1)


def order_mask(query_index: torch.Tensor, key_index: torch.Tensor) -> torch.Tensor:
    """Additive mask from frame indices: query at frame i sees keys at frames <= i.

    query_index (..., Lq), key_index (..., Lk) integer frame numbers -> (..., Lq, Lk).
    """
    later = key_index.unsqueeze(-2) > query_index.unsqueeze(-1)
    return later.to(torch.float32) * MASKED


class MultiHeadAttention(nn.Module):
    """Multi-head attention over the second-last axis of (..., L, D) tensors.

    Self-attention when ``context`` is None, else cross-attention from ``x`` (queries) to
    ``context`` (keys and values). ``mask`` is additive, broadcastable to (..., H, Lq, Lk).
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., L, D) -> (..., H, L, Dh)."""
        shape = (*x.shape[:-1], self.num_heads, self.head_dim)
        return x.reshape(shape).transpose(-3, -2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self._heads(self.q(x))
        k, v = self.kv(context).chunk(2, dim=-1)
        k, v = self._heads(k), self._heads(v)
        logits = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        if mask is not None:
            logits = logits + mask
        out = torch.matmul(logits.softmax(dim=-1), v)  # (..., H, Lq, Dh)
        out = out.transpose(-3, -2)
        return self.proj(out.reshape((*out.shape[:-2], -1)))


class FeedForward(nn.Module):
    """Position-wise MLP: Linear, GELU, Linear."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    """Pre-LN transformer block: x + MHA(LN x), then + MLP(LN x). Self-attention over axis -2."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask=mask))
        return x + self.drop(self.mlp(self.norm2(x)))


class CrossAttentionBlock(nn.Module):
    """Pre-LN cross-attention block: q + MHA(LN q, LN context), then + MLP(LN q)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, context: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        x = queries + self.drop(self.attn(self.norm_q(queries), self.norm_kv(context), mask))
        return x + self.drop(self.mlp(self.norm2(x)))
