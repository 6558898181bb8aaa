"""HoT, the Hourglass Tokenizer (Li et al., CVPR 2024) on MixSTE: prune frames, then recover them.

The pose tokens of neighbouring video frames are largely redundant. HoT keeps the first
``pruning_block`` STB/TTB pairs of MixSTE at full length, then

* **Token Pruning Cluster (TPC)**: one token per frame (the mean of its joint tokens) is
  clustered by density peaks with k nearest neighbours (DPC-kNN); the ``kept_tokens`` frames with
  the highest density x separation score (the cluster centres) are kept in time order and the
  rest are dropped, so the remaining pairs run on ``kept_tokens`` frames instead of T;
* **Token Recovering Attention (TRA)**: learnable full-length queries (zero tokens + the
  temporal position embedding) cross-attend to the kept tokens and restore one token per frame
  for the regression head (seq2seq). For seq2frame only the read frame's query is evaluated.

The hourglass shape is where the saving comes from: the middle of the network sees few tokens.
``recovery: false`` is the paper's TPC-only variant: no TRA, poses are regressed for the kept
frames only (the read frame is always kept then, and is what ``forward`` returns for it).

Causal windows (the node): every temporal attention after pruning is masked by the kept frames'
original indices, TRA query t only sees kept frames <= t, and the newest frame is always kept
(``keep_output_frame``). The newest frame's output then depends on nothing newer than itself.
The *choice* of kept frames looks at the whole window, so an earlier frame's seq2seq output may
change with later frames of the same window (only the newest frame is published by the node).

ONNX: the clustering is MatMul / TopK / comparisons / Where / Gather with a static
``kept_tokens``; sorting the kept indices is a second TopK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from .mixste import MixSTE, MixSTEConfig
from .transformer import MASKED, CrossAttentionBlock, order_mask


@dataclass
class HoTMixSTEConfig(MixSTEConfig):
    pruning_block: int = 1  # l: TPC after this many STB/TTB pairs (1 <= l < depth)
    kept_tokens: int = 9  # k: frames kept after pruning (static)
    knn: int = 2  # neighbours of the DPC-kNN density
    recovery: bool = True  # TRA at the end (seq2seq); false: the TPC-only variant
    keep_output_frame: bool | None = None  # None: True when causal or without recovery

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {},
        "tiny_centred": {"causal": False},
        "tiny_tpc_only": {"recovery": False},
        "paper": {"frames": 243, "embed_dim": 512, "depth": 8, "num_heads": 8,
                  "pruning_block": 1, "kept_tokens": 81},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.pruning_block < self.depth:
            raise ValueError(f"pruning_block must be in [1, depth - 1 = {self.depth - 1}]")
        if not 1 <= self.kept_tokens < self.frames:
            raise ValueError(f"kept_tokens must be in [1, frames - 1 = {self.frames - 1}]")
        if not 1 <= self.knn < self.frames:
            raise ValueError("knn must be in [1, frames - 1]")

    @property
    def keeps_output_frame(self) -> bool:
        if self.keep_output_frame is None:
            return self.causal or not self.recovery
        return bool(self.keep_output_frame)


def token_distances(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame tokens (B, T, D) -> squared and plain pairwise distances (B, T, T), scaled by
    1/sqrt(D) so the density kernel does not depend on the width. MatMul form (no cdist)."""
    x = tokens / tokens.shape[-1] ** 0.5
    sq = (x * x).sum(-1)
    dist2 = (sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2.0 * x @ x.transpose(-1, -2)).clamp_min(0)
    return dist2, torch.sqrt(dist2 + 1e-12)


class TokenPruningCluster(nn.Module):
    """DPC-kNN over frame tokens: (B, T, D) -> indices (B, k) of the kept frames, ascending.

    density_i = exp(-mean squared distance to its knn nearest tokens); separation_i = distance
    to the nearest denser token (the largest distance for the densest); the k largest
    density x separation are the cluster centres. No parameters. ``force`` (a frame index or
    None) is always kept.
    """

    def __init__(self, kept_tokens: int, knn: int, force: int | None = None):
        super().__init__()
        self.kept_tokens = kept_tokens
        self.knn = knn
        self.force = force

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, _ = tokens.shape
        dist2, dist = token_distances(tokens)
        nearest = dist2.topk(self.knn + 1, dim=-1, largest=False).values[..., 1:]
        # Ties (identical frames, e.g. a still person) are broken towards later frames.
        order = torch.arange(t, dtype=tokens.dtype, device=tokens.device)
        density = torch.exp(-nearest.mean(-1)) + order * 1e-6
        denser = density.unsqueeze(-2) > density.unsqueeze(-1)  # [b, i, j]: j denser than i
        far = dist.flatten(1).max(-1).values.reshape(b, 1, 1).expand(b, t, t)
        separation = torch.where(denser, dist, far).min(-1).values
        score = density * separation
        if self.force is not None:
            score = score + (order == self.force).to(score.dtype) * 1e4
        kept = score.topk(self.kept_tokens, dim=-1).indices
        return kept.sort(dim=-1).values


class TokenRecoveringAttention(nn.Module):
    """Learnable full-length queries cross-attend to the kept tokens: (B, k, J, D) -> (B, Tq, J, D).

    The queries are a zero-initialised token per frame plus the backbone's temporal position
    embedding; ``query_index`` selects which frames to restore (all for seq2seq, one for
    seq2frame).
    """

    def __init__(self, dim: int, frames: int, num_heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(frames, dim))
        self.block = CrossAttentionBlock(dim, num_heads, mlp_ratio, dropout)

    def forward(self, kept: torch.Tensor, temporal_pos: torch.Tensor, query_index: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        b, _, j, d = kept.shape
        q = (self.queries + temporal_pos)[query_index]  # (Tq, D)
        q = q.reshape(1, 1, -1, d).expand(b, j, -1, d)
        out = self.block(q, kept.transpose(1, 2), mask)  # (B, J, Tq, D)
        return out.transpose(1, 2)


class HoTMixSTE(MixSTE):
    """MixSTE with TPC after pair ``pruning_block`` and TRA (or TPC-only) at the end."""

    name = "hot_mixste"

    def __init__(self, config: HoTMixSTEConfig | None = None):
        config = config or HoTMixSTEConfig()
        super().__init__(config)
        self.config: HoTMixSTEConfig = config
        force = self.output_index if config.keeps_output_frame else None
        self.pruning = TokenPruningCluster(config.kept_tokens, config.knn, force)
        self.recovery = (
            TokenRecoveringAttention(config.embed_dim, config.frames, config.num_heads,
                                     config.mlp_ratio, config.dropout)
            if config.recovery else None
        )
        self.seq2frame = False  # True: only the read frame is restored (export for the node)
        self.register_buffer("frame_index", torch.arange(config.frames), persistent=False)

    def _kept_mask(self, kept: torch.Tensor, queries: torch.Tensor | None = None):
        """Additive causal mask by original frame index, shaped for (B, J, H, Lq, Lk)."""
        if not self.config.causal:
            return None
        q = kept if queries is None else queries
        return order_mask(q, kept).unsqueeze(1).unsqueeze(1)

    def encode_pruned(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, J, C_in) -> kept-token features (B, k, J, D) and their frames (B, k)."""
        cfg = self.config
        h = self.embed_tokens(x)
        mask = self.time_mask if cfg.causal else None
        for i in range(cfg.pruning_block):
            h = self.spatial_temporal(h, i, mask)
        b, _, j, d = h.shape
        kept = self.pruning(h.mean(dim=2))
        h = h.gather(1, kept.reshape(b, -1, 1, 1).expand(b, cfg.kept_tokens, j, d))
        kept_mask = self._kept_mask(kept)
        for i in range(cfg.pruning_block, cfg.depth):
            h = self.spatial_temporal(h, i, kept_mask)
        return h, kept

    def forward_with_frames(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Poses and the frame each describes: (B, Tout, J, 3), (B, Tout).

        TRA: every frame (seq2seq) or the read frame (``seq2frame``). TPC-only: the kept frames.
        """
        h, kept = self.encode_pruned(x)
        if self.recovery is None:
            return self.decode(h), kept
        b = x.shape[0]
        if self.seq2frame:
            query = self.frame_index[self.output_index:self.output_index + 1]
        else:
            query = self.frame_index
        queries = query.reshape(1, -1).expand(b, -1)
        mask = self._kept_mask(kept, queries)
        restored = self.recovery(h, self.temporal_pos, query, mask)
        return self.decode(restored), queries

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """TRA: (B, T, J, 3) seq2seq, or (B, 1, J, 3) with ``seq2frame``.

        TPC-only: (B, 1, J, 3), the read frame (always among the kept ones).
        """
        pred, frames = self.forward_with_frames(x)
        if self.recovery is not None:
            return pred
        pick = (frames == self.output_index).to(pred.dtype)  # (B, k), exactly one 1 per row
        return (pred * pick.reshape(*pick.shape, 1, 1)).sum(1, keepdim=True)


__all__ = ["MASKED", "HoTMixSTE", "HoTMixSTEConfig", "TokenPruningCluster",
           "TokenRecoveringAttention", "token_distances"]
