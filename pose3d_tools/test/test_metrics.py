"""Known-answer tests of the pose metrics and of the lifter input normalisation."""

import numpy as np
import pytest

from pose3d_ros.stages.lifter_input import lifter_features, rms_size_3d
from pose3d_tools import metrics


def _poses(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 17, 3))


def _rotation(seed=1):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def test_mpjpe_of_constant_offset_is_the_offset():
    gt = _poses()
    offset = np.array([0.03, -0.04, 0.0])  # |offset| = 0.05
    assert metrics.mpjpe(gt + offset, gt) == pytest.approx(0.05)
    # Root alignment removes a constant offset entirely.
    assert metrics.mpjpe(gt + offset, gt, root=0) == pytest.approx(0.0, abs=1e-12)


def test_procrustes_of_similar_copy_is_zero():
    gt = _poses()
    pred = 1.7 * gt @ _rotation().T + np.array([0.3, -2.0, 5.0])
    assert metrics.mpjpe(pred, gt) > 0.5
    assert metrics.p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    aligned = metrics.procrustes_align(pred, gt)
    np.testing.assert_allclose(aligned, gt, atol=1e-9)


def test_procrustes_does_not_reflect():
    gt = _poses(3)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert metrics.p_mpjpe(mirrored, gt) > 1e-3


def test_n_mpjpe_removes_scale_only():
    gt = _poses()
    assert metrics.n_mpjpe(0.5 * gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert metrics.n_mpjpe(gt @ _rotation().T, gt) > 0.1


def test_mpjve_constant_offset_is_zero_and_per_joint_shapes():
    seq = np.cumsum(_poses(10), axis=0)
    assert metrics.mpjve(seq + 1.0, seq) == pytest.approx(0.0, abs=1e-12)
    # A drift of 1 cm per frame along x is a velocity error of 1 cm.
    drift = np.arange(10)[:, None, None] * np.array([0.01, 0, 0])
    assert metrics.mpjve(seq + drift, seq) == pytest.approx(0.01)
    assert metrics.per_joint_error(seq, seq).shape == (10, 17)
    s = metrics.summary(seq + np.array([0.001, 0, 0]), seq)
    assert s["mpjpe"] == pytest.approx(1.0)


def test_lifter_features_invariances():
    rng = np.random.default_rng(0)
    pts = rng.normal(scale=0.1, size=(4, 17, 2)) + np.array([0.2, -0.1])
    conf = np.ones((4, 17))
    f1, info1 = lifter_features(pts, conf, root_ray=False)
    # Scaling the person about the root (farther away) leaves the features unchanged.
    root = pts[:, :1]
    f2, info2 = lifter_features(root + 0.5 * (pts - root), conf, root_ray=False)
    np.testing.assert_allclose(f1, f2, atol=1e-6)
    np.testing.assert_allclose(info2.scale, 0.5 * info1.scale)
    # Translating it changes only the root ray.
    f3, _ = lifter_features(pts + 0.3, conf, root_ray=True)
    f4, _ = lifter_features(pts, conf, root_ray=True)
    np.testing.assert_allclose(f3[:, 1:], f4[:, 1:], atol=1e-6)
    np.testing.assert_allclose(f3[:, 0, :2], pts[:, 0] + 0.3, atol=1e-6)
    assert f1.shape == (4, 17, 3) and f1.dtype == np.float32
    assert np.all(f1[:, 0, :2] == 0)
    # RMS size of the normalised joints is 1.
    rms = np.sqrt((f1[..., :2] ** 2).sum(-1).mean(-1))
    np.testing.assert_allclose(rms, 1.0, atol=1e-6)


def test_lifter_features_missing_joints():
    rng = np.random.default_rng(1)
    pts = rng.normal(scale=0.1, size=(17, 2))
    conf = np.ones(17)
    conf[[3, 13]] = 0.0
    pts[16] = np.nan
    feats, info = lifter_features(pts, conf)
    assert np.all(feats[[3, 13, 16]] == 0)
    assert info.valid
    # The pelvis falls back to the hip midpoint when it is missing.
    conf[0] = 0.0
    feats, info = lifter_features(pts, conf, root_ray=True)
    np.testing.assert_allclose(info.root_2d, 0.5 * (pts[1] + pts[4]))
    # Too few joints: invalid, all zero.
    feats, info = lifter_features(pts, np.eye(17)[5])
    assert not info.valid and np.all(feats == 0)


def test_rms_size_3d():
    pose = np.zeros((17, 3))
    pose[1:, 0] = 1.0
    assert rms_size_3d(pose) == pytest.approx(np.sqrt(16 / 17))
