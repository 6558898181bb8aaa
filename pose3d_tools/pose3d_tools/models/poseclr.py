"""PoseCLR: contrastive pre-training of a lifter's encoder on multi-view 2D projections.

Two views of a sample are 2D projections of the same 3D pose from different virtual cameras
(provided by the data pipeline). They are a positive pair; every other view in the batch is a
negative. The loss is NT-Xent (normalised-temperature cross entropy, SimCLR/InfoNCE):

    z = normalize(g(pool(encoder.encode(view))))           one vector per sample, (B, P)
    loss = mean over the 2B views of  -log softmax_j(sim(z_i, z_j) / tau)[positive(i)],  j != i

After pre-training, ``poseclr.encoder`` (the lifter) keeps its encoder weights and is trained
supervised as usual; the projection head g is discarded.

    clr = PoseCLR(build_lifter("nanohtnet"), projection_dim=64)
    loss = clr(view_a, view_b)      # views: (B, T, 17, C_in)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


class PoseCLR(nn.Module):
    """Contrastive wrapper around a lifter with ``encode(x) -> (B, T, J, D)``."""

    def __init__(
        self,
        encoder_model: nn.Module,
        projection_dim: int = 64,
        temperature: float = 0.1,
        hidden_dim: int | None = None,
    ):
        super().__init__()
        if not hasattr(encoder_model, "encode"):
            raise TypeError("encoder_model must provide encode(x) -> (B, T, J, D)")
        self.encoder = encoder_model
        dim = self._feature_dim(encoder_model)
        hidden = hidden_dim or dim
        # Projection head g: pooled (B, 2D) -> (B, P). Mean and max pooling over frames and joints.
        self.projector = nn.Sequential(
            nn.Linear(2 * dim, hidden),
            nn.LayerNorm(hidden),
            nn.SiLU(),
            nn.Linear(hidden, projection_dim),
        )
        self.temperature = temperature

    @staticmethod
    def _feature_dim(model: nn.Module) -> int:
        config = getattr(model, "config", None)
        dim = getattr(config, "embed_dim", None)
        if dim is None:
            raise ValueError("cannot infer the encoder feature width (config.embed_dim)")
        return int(dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Views (B, T, J, C_in) -> L2-normalised projections (B, P)."""
        features = self.encoder.encode(x)  # (B, T, J, D)
        # mean and max over frames and joints: (B, 2D)
        pooled = torch.cat([features.mean(dim=(1, 2)), features.amax(dim=(1, 2))], dim=-1)
        return functional.normalize(self.projector(pooled), dim=-1)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor) -> torch.Tensor:
        """NT-Xent loss of the B positive pairs (view_a[i], view_b[i]) against 2B-2 negatives."""
        if view_a.shape != view_b.shape:
            raise ValueError(f"view shapes differ: {tuple(view_a.shape)} vs {tuple(view_b.shape)}")
        b = view_a.shape[0]
        z = self.embed(torch.cat([view_a, view_b], dim=0))  # (2B, P)
        return nt_xent(z[:b], z[b:], self.temperature)


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent on L2-normalised embeddings (B, P) where (z_a[i], z_b[i]) are positives."""
    b = z_a.shape[0]
    if b < 2:
        raise ValueError("NT-Xent needs at least 2 samples (negatives come from the batch)")
    z = torch.cat([z_a, z_b], dim=0)  # (2B, P)
    logits = z @ z.t() / temperature  # (2B, 2B)
    self_mask = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    idx = torch.arange(b, device=z.device)
    targets = torch.cat([idx + b, idx])  # positive of i is i+B, of i+B is i
    return functional.cross_entropy(logits, targets)
