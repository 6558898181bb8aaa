"""Losses of the end-to-end pose transformer: bipartite matching and coarse-to-fine supervision.

* **Hungarian matcher** (JDT): per image, the N predicted joints and the J ground-truth joints are
  matched one-to-one at minimum cost ``-lambda_cls * p_q(j) + lambda_reg * |b_q - g_j|_1``
  (class probability of the joint's type and L1 position error, as DETR and the paper), solved
  with ``scipy.optimize.linear_sum_assignment``. Unmatched queries are background. The baseline
  needs no matcher: query j is joint j.
* **Coarse-to-fine joint loss**: every decoder layer l is supervised; a joint whose L1 error (m,
  summed over x, y, z) is under the layer's threshold x_l contributes nothing at that layer
  (loss max(0, e - x_l)), the thresholds shrink layer by layer to 0 at the last layer, and layer l
  is weighted by gamma^(L - 1 - l) (decay towards the early layers). Without coarse-to-fine only the
  last layer is supervised (threshold 0, weight 1) and the configs set the model's
  ``detach_references`` False, so that loss trains the earlier layers through the refinement
  chain; the architecture (each layer refining the previous layer's prediction) is the same.
* **Class loss** (JDT): cross-entropy over J + 1 classes, matched queries to their joint type, the
  rest to background with a smaller weight (``background_weight``, DETR's eos_coef).
* **Score loss** (baseline): a per-joint confidence trained to tell whether the last layer's joint
  is within ``score_radius_m`` of the truth (binary cross-entropy).

The seed's equations did not survive translation (images), so the threshold values and the decay
are this project's choices, stated in ``LossConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch.nn import functional


@dataclass
class LossConfig:
    coarse_to_fine: bool = True
    thresholds_m: tuple[float, ...] = (0.10, 0.05, 0.0)  # per decoder layer, L1 m; last = 0
    decay: float = 0.5  # layer l weight = decay ** (layers - 1 - l)
    joint_weight: float = 5.0  # lambda_reg in the loss
    class_weight: float = 1.0  # lambda_cls in the loss
    background_weight: float = 0.1
    match_class: float = 1.0  # lambda_cls in the matching cost
    match_joint: float = 5.0  # lambda_reg in the matching cost
    score_weight: float = 0.1  # baseline confidence head
    score_radius_m: float = 0.1

    def __post_init__(self) -> None:
        self.thresholds_m = tuple(float(t) for t in self.thresholds_m)
        if self.thresholds_m and self.thresholds_m[-1] != 0.0:
            raise ValueError("the last decoder layer's threshold must be 0")
        if any(b > a for a, b in zip(self.thresholds_m, self.thresholds_m[1:], strict=False)):
            raise ValueError("coarse-to-fine thresholds must shrink layer by layer")

    def layer_plan(self, layers: int) -> list[tuple[int, float, float]]:
        """(layer, threshold m, weight) of every supervised decoder layer."""
        if not self.coarse_to_fine:
            return [(layers - 1, 0.0, 1.0)]
        if len(self.thresholds_m) != layers:
            raise ValueError(f"{len(self.thresholds_m)} thresholds for {layers} decoder layers")
        return [(i, self.thresholds_m[i], self.decay ** (layers - 1 - i)) for i in range(layers)]


def matching_cost(logits: torch.Tensor, joints: torch.Tensor, target: torch.Tensor,
                  class_cost: float, joint_cost: float) -> torch.Tensor:
    """(B, Q, J) cost of giving query q ground-truth joint j: -class_cost * p_q(j) +
    joint_cost * L1(b_q, g_j). logits (B, Q, J + 1), joints (B, Q, 3), target (B, J, 3)."""
    num_joints = target.shape[1]
    prob = logits.softmax(-1)[..., :num_joints]
    l1 = torch.cdist(joints, target, p=1)
    return -class_cost * prob + joint_cost * l1


@torch.no_grad()
def hungarian_match(logits: torch.Tensor, joints: torch.Tensor, target: torch.Tensor,
                    class_cost: float = 1.0, joint_cost: float = 5.0) -> torch.Tensor:
    """(B, J) index of the query matched to each ground-truth joint (minimum total cost)."""
    cost = matching_cost(logits.float(), joints.float(), target.float(), class_cost,
                         joint_cost).cpu().numpy()
    out = np.empty(cost.shape[::2], dtype=np.int64)
    for b, c in enumerate(cost):
        rows, cols = linear_sum_assignment(c)
        out[b, cols] = rows
    return torch.from_numpy(out).to(joints.device)


def thresholded_joint_error(pred: torch.Tensor, target: torch.Tensor,
                            threshold_m: float) -> torch.Tensor:
    """Mean of max(0, |pred - target|_1 - threshold) over joints and images (m)."""
    err = (pred - target).abs().sum(-1)
    return functional.relu(err - threshold_m).mean()


def e2e_loss(joints: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
             cfg: LossConfig, variant: str) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts. joints (layers, B, Q, 3) m, logits (layers, B, Q, C),
    target (B, J, 3) m root-relative in crop axes."""
    layers, b, q, _ = joints.shape
    num_joints = target.shape[1]
    total = joints.new_zeros(())
    parts: dict[str, float] = {}
    for layer, threshold, weight in cfg.layer_plan(layers):
        pred, logit = joints[layer], logits[layer]
        if variant == "jdt":
            match = hungarian_match(logit, pred, target, cfg.match_class, cfg.match_joint)
            matched = pred.gather(1, match.unsqueeze(-1).expand(-1, -1, 3))
            classes = torch.full((b, q), num_joints, dtype=torch.long, device=pred.device)
            classes.scatter_(1, match, torch.arange(num_joints, device=pred.device).expand(b, -1))
            class_w = torch.ones(num_joints + 1, device=pred.device)
            class_w[-1] = cfg.background_weight
            cls = functional.cross_entropy(logit.reshape(b * q, -1), classes.reshape(-1),
                                           weight=class_w)
            total = total + weight * cfg.class_weight * cls
            parts[f"cls{layer}"] = float(cls.detach())
        else:
            matched = pred
        joint = thresholded_joint_error(matched, target, threshold)
        total = total + weight * cfg.joint_weight * joint
        parts[f"joint{layer}"] = float(joint.detach())
    if variant == "baseline" and cfg.score_weight > 0:
        with torch.no_grad():
            close = (torch.linalg.vector_norm(joints[-1] - target, dim=-1)
                     < cfg.score_radius_m).to(joints.dtype)
        score = functional.binary_cross_entropy_with_logits(logits[-1][..., 0], close)
        total = total + cfg.score_weight * score
        parts["score"] = float(score.detach())
    return total, parts
