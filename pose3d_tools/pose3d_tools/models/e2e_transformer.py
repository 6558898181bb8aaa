"""End-to-end image -> 3D pose transformer (DETR-style; seeds/e2e_3d_hpe_transformer_zh.txt).

    model = build_e2e({"variant": "jdt"})
    joints, confidence = model(image)          # (B, 17, 3) m root-relative crop axes, (B, 17)

Reading order, as in the paper:
* **Backbone**: a small ResNet gives three levels (strides 8, 16, 32 of the crop).
* **Input projection**: 1 x 1 conv + GroupNorm per level to the hidden size; tokens flattened and
  given a 2D **sine positional encoding** plus a learnable **level encoding**.
* **Encoder**: layers of multi-scale deformable self-attention (each token samples a few points
  around its own position on every level) + feed-forward.
* **Decoder**: joint queries; each layer does self-attention among the queries, deformable
  cross-attention to the encoder memory around the query's reference point, feed-forward, then
  predicts 3D joints as a correction of its reference. **Iterative refinement**: that prediction
  (detached, as in Deformable DETR) is the next layer's reference (3D, and its image point for
  sampling).
* **Heads**: the *baseline* ("force-aligned") has J queries, query j is joint j, and uses the last
  level only; a per-joint score head gives the confidence. The **Joint Detection Transformer**
  (JDT) has N = 100 queries, a class head over J joint types + background and a 3D regression
  head; at inference each joint type takes the query with the highest probability of that type
  (class probability alone), inside the graph (ArgMax + one-hot MatMul).

Frames and units: joints in metres, root-relative (pelvis exactly 0 in the output), in the crop's
axes (x right, y down, z forward; see ``pose3d_ros.stages.crops.camera_to_crop_axes``). The image
point of a 3D reference is (0.5, 0.5) + s * (x, y) with one learnt scale s (metres -> crop
fraction, starting at 1 / 2.4 m: a crop is 1.4 x the joints' extent), i.e. perspective about the
crop centre is ignored, as the contract ignores off-centre perspective.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pose3d_tools.models.deformable_attention import MultiScaleDeformableAttention
from pose3d_tools.models.resnet import ResNetBackbone, ResNetConfig
from pose3d_tools.models.transformer import FeedForward, MultiHeadAttention

VARIANTS = ("baseline", "jdt")
LEVEL_STRIDES = (8, 16, 32)


@dataclass
class E2EConfig:
    variant: str = "jdt"  # "baseline" (J aligned queries, last level) | "jdt" (N queries)
    input_size: int = 128
    num_joints: int = 17
    num_queries: int = 100  # JDT only; the baseline has num_joints
    dim: int = 96
    heads: int = 4
    points: int = 4  # sampling points per head and level
    encoder_layers: int = 1
    decoder_layers: int = 3
    ffn_dim: int = 192
    dropout: float = 0.0
    crop_metres: float = 2.4  # initial metres -> crop-fraction scale of reference points
    # Iterative refinement passes each layer's prediction on detached (Deformable DETR: every
    # layer learns from its own supervision); False lets the last layer's loss reach the earlier
    # layers through the chain (training without per-layer supervision).
    detach_references: bool = True
    backbone: ResNetConfig = field(default_factory=ResNetConfig)

    def __post_init__(self) -> None:
        if isinstance(self.backbone, dict):
            bb = dict(self.backbone)
            for k in ("channels", "blocks"):
                if k in bb:
                    bb[k] = tuple(bb[k])
            self.backbone = ResNetConfig(**bb)
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {self.variant!r}")
        if self.input_size % 32:
            raise ValueError("input_size must be a multiple of 32")

    @property
    def levels(self) -> int:
        return 1 if self.variant == "baseline" else len(LEVEL_STRIDES)

    @property
    def queries(self) -> int:
        return self.num_joints if self.variant == "baseline" else self.num_queries

    @property
    def spatial_shapes(self) -> list[tuple[int, int]]:
        strides = LEVEL_STRIDES[-self.levels:]
        return [(self.input_size // s, self.input_size // s) for s in strides]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> E2EConfig:
        """From a plain dict (YAML, a checkpoint); unknown keys raise."""
        from pose3d_ros.core.parameters import dataclass_from_dict

        return dataclass_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sine_position_encoding(height: int, width: int, dim: int,
                           temperature: float = 10000.0) -> torch.Tensor:
    """DETR's 2D sine encoding (H * W, dim): half the channels encode y, half x, each as
    sin/cos pairs of the normalised coordinate (0, 2 pi] at geometric frequencies."""
    if dim % 4:
        raise ValueError("dim must be divisible by 4")
    quarter = dim // 4
    ys = (torch.arange(height, dtype=torch.float32) + 1) / height * 2 * math.pi
    xs = (torch.arange(width, dtype=torch.float32) + 1) / width * 2 * math.pi
    freq = temperature ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    y, x = torch.meshgrid(ys, xs, indexing="ij")

    def enc(c: torch.Tensor) -> torch.Tensor:
        a = c.reshape(-1, 1) / freq
        return torch.cat([a.sin(), a.cos()], -1)

    return torch.cat([enc(y), enc(x)], -1)


def token_reference_points(shapes: list[tuple[int, int]]) -> torch.Tensor:
    """(sum H_l W_l, 2) normalised (x, y) pixel centres of every token, level after level."""
    refs = []
    for h, w in shapes:
        y, x = torch.meshgrid((torch.arange(h, dtype=torch.float32) + 0.5) / h,
                              (torch.arange(w, dtype=torch.float32) + 0.5) / w, indexing="ij")
        refs.append(torch.stack([x.reshape(-1), y.reshape(-1)], -1))
    return torch.cat(refs, 0)


class DeformableEncoderLayer(nn.Module):
    """Token + MSDeformAttn(token + pos, own position, tokens), then feed-forward (post-norm)."""

    def __init__(self, cfg: E2EConfig):
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(cfg.dim, cfg.heads, cfg.spatial_shapes,
                                                       cfg.points)
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.ffn = FeedForward(cfg.dim, cfg.ffn_dim, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor,
                reference: torch.Tensor) -> torch.Tensor:
        x = self.norm1(tokens + self.drop(self.self_attn(tokens + pos, reference, tokens)))
        return self.norm2(x + self.drop(self.ffn(x)))


class DeformableDecoderLayer(nn.Module):
    """Query self-attention, deformable cross-attention to the memory, feed-forward (post-norm)."""

    def __init__(self, cfg: E2EConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.dim, cfg.heads)
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.cross_attn = MultiScaleDeformableAttention(cfg.dim, cfg.heads, cfg.spatial_shapes,
                                                        cfg.points)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.ffn = FeedForward(cfg.dim, cfg.ffn_dim, cfg.dropout)
        self.norm3 = nn.LayerNorm(cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor, reference: torch.Tensor,
                memory: torch.Tensor) -> torch.Tensor:
        x = self.norm1(queries + self.drop(self.self_attn(queries + query_pos)))
        x = self.norm2(x + self.drop(self.cross_attn(x + query_pos, reference, memory)))
        return self.norm3(x + self.drop(self.ffn(x)))


class JointHead(nn.Module):
    """3D regression head: MLP(query) -> a correction (m) of the query's reference joint."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 3))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class E2EPoseTransformer(nn.Module):
    """Crop (B, 3, S, S) normalised RGB -> joints (B, J, 3) m, confidence (B, J) in [0, 1]."""

    name = "e2e_pose_transformer"

    def __init__(self, config: E2EConfig | None = None):
        super().__init__()
        self.config = cfg = config or E2EConfig()
        self.backbone = ResNetBackbone(cfg.backbone)
        level_channels = self.backbone.level_channels[-cfg.levels:]
        groups = math.gcd(32, cfg.dim)
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, cfg.dim, 1), nn.GroupNorm(groups, cfg.dim))
            for c in level_channels)
        self.level_embed = nn.Parameter(torch.randn(cfg.levels, cfg.dim) * 0.02)
        shapes = cfg.spatial_shapes
        pos = torch.cat([sine_position_encoding(h, w, cfg.dim) for h, w in shapes], 0)
        self.register_buffer("position_encoding", pos, persistent=False)
        self.register_buffer("token_reference", token_reference_points(shapes), persistent=False)
        self.register_buffer("level_index", torch.cat(
            [torch.full((h * w,), i, dtype=torch.long) for i, (h, w) in enumerate(shapes)]),
            persistent=False)
        self.encoder = nn.ModuleList(DeformableEncoderLayer(cfg)
                                     for _ in range(cfg.encoder_layers))
        # Joint queries: a content vector and an initial 3D reference each.
        q = cfg.queries
        self.query_content = nn.Parameter(torch.randn(q, cfg.dim) * 0.02)
        self.query_reference = nn.Parameter(torch.randn(q, 3) * 0.15)
        self.query_pos = nn.Sequential(nn.Linear(3, cfg.dim), nn.ReLU(inplace=True),
                                       nn.Linear(cfg.dim, cfg.dim))
        self.image_scale = nn.Parameter(torch.tensor(1.0 / cfg.crop_metres))
        self.image_centre = nn.Parameter(torch.full((2,), 0.5))
        self.decoder = nn.ModuleList(DeformableDecoderLayer(cfg)
                                     for _ in range(cfg.decoder_layers))
        self.joint_heads = nn.ModuleList(JointHead(cfg.dim) for _ in range(cfg.decoder_layers))
        # JDT: J joint types + background; baseline: one score logit per (aligned) joint.
        classes = cfg.num_joints + 1 if cfg.variant == "jdt" else 1
        self.class_heads = nn.ModuleList(nn.Linear(cfg.dim, classes)
                                         for _ in range(cfg.decoder_layers))
        self.register_buffer("query_index", torch.arange(q), persistent=False)

    @property
    def variant(self) -> str:
        return self.config.variant

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Backbone -> flattened multi-scale tokens -> encoder memory (B, sum H_l W_l, D)."""
        levels = self.backbone(image)[-self.config.levels:]
        tokens = torch.cat([proj(x).flatten(2).transpose(1, 2)
                            for proj, x in zip(self.input_proj, levels, strict=True)], 1)
        pos = self.position_encoding + self.level_embed[self.level_index]
        ref = self.token_reference.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        for layer in self.encoder:
            tokens = layer(tokens, pos, ref)
        return tokens

    def image_point(self, joints: torch.Tensor) -> torch.Tensor:
        """3D reference (..., 3) m -> normalised crop point (..., 2) (perspective ignored)."""
        return self.image_centre + self.image_scale * joints[..., :2]

    def forward_layers(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every decoder layer's prediction: joints (layers, B, Q, 3) m and logits
        (layers, B, Q, C) (C = J + 1 for JDT, 1 score for the baseline)."""
        memory = self.encode(image)
        b = image.shape[0]
        x = self.query_content.unsqueeze(0).expand(b, -1, -1)
        reference = self.query_reference.unsqueeze(0).expand(b, -1, -1)
        joints, logits = [], []
        for i, (layer, joint_head, class_head) in enumerate(
                zip(self.decoder, self.joint_heads, self.class_heads, strict=True)):
            # the learnt initial reference is not detached, so it learns
            ref = reference.detach() if i > 0 and self.config.detach_references else reference
            x = layer(x, self.query_pos(ref), self.image_point(ref), memory)
            pred = ref + joint_head(x)
            joints.append(pred)
            logits.append(class_head(x))
            reference = pred  # iterative refinement: the next layer starts here
        return torch.stack(joints), torch.stack(logits)

    def assign(self, joints: torch.Tensor, logits: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last layer's queries -> per joint type (B, J, 3), confidence (B, J).

        JDT: joint type j takes the query with the highest probability of class j (class
        probability alone, as at the paper's inference); its confidence is that probability.
        Baseline: query j is joint j, confidence the sigmoid of its score.
        """
        if self.variant == "baseline":
            return joints, torch.sigmoid(logits[..., 0])
        prob = logits.softmax(-1)[..., : self.config.num_joints]  # (B, Q, J)
        best = prob.argmax(1)  # (B, J)
        one_hot = (self.query_index.view(1, -1, 1) == best.unsqueeze(1)).to(prob.dtype)
        chosen = torch.matmul(one_hot.transpose(1, 2), joints)  # (B, J, 3)
        return chosen, (one_hot * prob).sum(1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        joints, logits = self.forward_layers(image)
        chosen, confidence = self.assign(joints[-1], logits[-1])
        return chosen - chosen[:, :1], confidence


def build_e2e(config: dict[str, Any] | E2EConfig | None = None) -> E2EPoseTransformer:
    """The model from a plain config dict (as stored in a checkpoint) or a config."""
    cfg = config if isinstance(config, E2EConfig) else E2EConfig.from_dict(config)
    return E2EPoseTransformer(cfg)


def gflops_per_crop(model: E2EPoseTransformer) -> float:
    """GFLOPs of one crop's forward, counted as ``pose3d_tools.flops`` counts the lifters
    (FlopCounterMode at batch 1: matmul-type ops and convolutions, FLOPs = 2 x MACs; grid_sample,
    norms and activations not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    s = model.config.input_size
    was = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:  # (no_grad trips its module tracker)
            model(torch.zeros(1, 3, s, s))
    finally:
        model.train(was)
    return counter.get_total_flops() / 1e9
