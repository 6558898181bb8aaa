"""E2E losses: Hungarian matching known answers and the coarse-to-fine thresholds."""

import math

import numpy as np
import pytest
import torch

from pose3d_tools.models.e2e_losses import (
    LossConfig,
    e2e_loss,
    hungarian_match,
    matching_cost,
)


def test_permuted_predictions_are_matched_back_to_their_permutation():
    rng = np.random.default_rng(0)
    b, j, q = 2, 17, 20
    target = torch.tensor(rng.normal(0, 0.3, (b, j, 3)), dtype=torch.float32)
    joints = torch.full((b, q, 3), 10.0)  # unused queries far away
    perms = [rng.permutation(q)[:j] for _ in range(b)]
    for i, perm in enumerate(perms):
        joints[i, perm] = target[i] + 0.001
    logits = torch.zeros(b, q, j + 1)  # uniform classes: position decides
    match = hungarian_match(logits, joints, target, class_cost=1.0, joint_cost=5.0)
    for i, perm in enumerate(perms):
        np.testing.assert_array_equal(match[i].numpy(), perm)


def test_class_probability_breaks_a_position_tie():
    target = torch.zeros(1, 1, 3)
    joints = torch.zeros(1, 2, 3)  # both queries exactly on the joint
    logits = torch.tensor([[[0.0, 0.0], [3.0, 0.0]]])  # query 1 is more sure of class 0
    assert hungarian_match(logits, joints, target).tolist() == [[1]]
    # ... unless its position is worse by more than the class gain is worth
    joints[0, 1, 0] = 0.2
    assert hungarian_match(logits, joints, target, 1.0, 5.0).tolist() == [[0]]


def test_matching_cost_is_class_probability_and_l1():
    joints = torch.tensor([[[0.1, 0.0, 0.0]]])
    target = torch.tensor([[[0.0, 0.2, 0.0]]])
    logits = torch.tensor([[[math.log(3.0), 0.0]]])  # p(class 0) = 3 / 4
    cost = matching_cost(logits, joints, target, class_cost=2.0, joint_cost=5.0)
    assert cost.item() == pytest.approx(-2.0 * 0.75 + 5.0 * 0.3, abs=1e-6)


def _layers_with_error(err_m: float, layers: int = 3, j: int = 17):
    """Baseline-shaped predictions whose every joint is off by ``err_m`` along x (L1 = err)."""
    target = torch.zeros(2, j, 3)
    joints = torch.zeros(layers, 2, j, 3)
    joints[..., 0] = err_m
    joints.requires_grad_(True)
    logits = torch.zeros(layers, 2, j, 1)
    return joints, logits, target


def test_error_under_a_layers_threshold_contributes_no_loss_there():
    cfg = LossConfig(thresholds_m=(0.10, 0.05, 0.0), decay=0.5, joint_weight=5.0,
                     score_weight=0.0)
    joints, logits, target = _layers_with_error(0.08)
    total, parts = e2e_loss(joints, logits, target, cfg, "baseline")
    assert parts["joint0"] == 0.0  # 0.08 m < 0.10 m
    assert parts["joint1"] == pytest.approx(0.03, abs=1e-6)
    assert parts["joint2"] == pytest.approx(0.08, abs=1e-6)  # last layer: threshold 0
    # weights 0.5^2, 0.5, 1 for layers 0, 1, 2
    assert total.item() == pytest.approx(5.0 * (0.5 * 0.03 + 0.08), abs=1e-6)
    total.backward()
    assert torch.all(joints.grad[0] == 0) and torch.all(joints.grad[1:, ..., 0] > 0)


def test_last_threshold_must_be_zero_and_thresholds_shrink():
    with pytest.raises(ValueError):
        LossConfig(thresholds_m=(0.1, 0.05, 0.01))
    with pytest.raises(ValueError):
        LossConfig(thresholds_m=(0.05, 0.1, 0.0))
    assert LossConfig().thresholds_m[-1] == 0.0


def test_without_coarse_to_fine_only_the_last_layer_is_supervised():
    cfg = LossConfig(coarse_to_fine=False, score_weight=0.0)
    joints, logits, target = _layers_with_error(0.08)
    total, parts = e2e_loss(joints, logits, target, cfg, "baseline")
    assert set(parts) == {"joint2"}
    assert total.item() == pytest.approx(cfg.joint_weight * 0.08, abs=1e-6)


def test_jdt_loss_uses_the_matched_queries_and_background():
    cfg = LossConfig(score_weight=0.0)
    j, q = 17, 20
    target = torch.randn(1, j, 3) * 0.3
    joints = torch.full((3, 1, q, 3), 5.0)
    joints[:, 0, 3:] = target[0]  # queries 3..19 are exact
    logits = torch.zeros(3, 1, q, j + 1)
    _, parts = e2e_loss(joints, logits, target, cfg, "jdt")
    assert parts["joint2"] == pytest.approx(0.0, abs=1e-6)
    # uniform logits: every query's cross-entropy is log(18)
    assert parts["cls2"] == pytest.approx(math.log(18), rel=1e-5)
