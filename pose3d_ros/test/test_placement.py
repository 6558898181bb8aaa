"""Tests for pose3d_ros.stages.placement: synthetic H36M-17 people at known positions,
projected through
a distorted camera, undistorted back and placed again."""

from __future__ import annotations

import numpy as np
import pytest
from known_poses import DISTORTED_CAMERA, SKELETON_H36M17

from pose3d_ros.core.parameters import build_settings
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.placement import (
    Placement,
    PlacementSettings,
    absolute_joints,
    place_root,
    place_root_from_pixels,
)

CAMERA = DISTORTED_CAMERA
SKELETON = SKELETON_H36M17
ROOTS = [np.array([0.3, -0.1, 3.0]), np.array([-1.2, 0.4, 6.5])]


def _project(root: np.ndarray) -> np.ndarray:
    pix = CAMERA.project(SKELETON + root)
    assert np.isfinite(pix).all()
    assert ((pix >= 0) & (pix < (CAMERA.width, CAMERA.height))).all(), "person must be in view"
    return pix


def test_skeleton_fixture_is_h36m17() -> None:
    assert SKELETON.shape == (H36M17.num_joints, 3)
    assert np.all(SKELETON[H36M17.root] == 0)


@pytest.mark.parametrize("root", ROOTS, ids=["3m", "6.5m"])
def test_exact_2d_recovers_the_root_within_1mm(root: np.ndarray) -> None:
    result = place_root_from_pixels(CAMERA, SKELETON, _project(root))
    assert result.ok, result.reason
    assert result.num_joints == 17
    np.testing.assert_allclose(result.root, root, atol=1e-3)
    assert result.rms_error_px < 1e-6
    np.testing.assert_allclose(absolute_joints(SKELETON, result.root), SKELETON + root, atol=1e-3)


def test_distortion_matters() -> None:
    """Guard against a test that passes by accident: ignoring the lens misplaces the person."""
    root = ROOTS[1]
    pix = _project(root)
    naive = (pix - (CAMERA.cx, CAMERA.cy)) / (CAMERA.fx, CAMERA.fy)
    wrong = place_root(SKELETON, naive, None, CAMERA.fx)
    # Measured: 0.11 m too far, although the fit looks fine (0.36 px RMS).
    assert np.linalg.norm(wrong.root - root) > 0.05


def test_linear_solution_alone_is_exact_without_noise() -> None:
    settings = build_settings(PlacementSettings, {"refine_iterations": 0})
    root = ROOTS[0]
    result = place_root_from_pixels(CAMERA, SKELETON, _project(root), settings=settings)
    np.testing.assert_allclose(result.root, root, atol=1e-9)


def test_refinement_minimises_the_true_reprojection_error() -> None:
    """The linear solution weights each joint by its depth; with an arm reaching towards the
    camera at 1.8 m the depths differ and Gauss-Newton lowers the reprojection error in every
    trial (measured: by 0.012 px on average, and 4 % less root error: a small correction)."""
    skeleton = SKELETON.copy()
    skeleton[[12, 13]] = [[0.30, -0.45, -0.35], [0.35, -0.45, -0.70]]
    root = np.array([0.1, 0.2, 1.8])
    pix = CAMERA.project(skeleton + root)
    linear = build_settings(PlacementSettings, {"refine_iterations": 0})
    rng = np.random.default_rng(0)
    gains = []
    for _ in range(50):
        noisy = pix + rng.normal(0.0, 2.0, pix.shape)
        refined = place_root_from_pixels(CAMERA, skeleton, noisy)
        plain = place_root_from_pixels(CAMERA, skeleton, noisy, settings=linear)
        gains.append(plain.rms_error_px - refined.rms_error_px)
    assert min(gains) > 0.0


@pytest.mark.parametrize("root", ROOTS, ids=["3m", "6.5m"])
def test_two_pixel_noise_error_is_small_and_covariance_is_calibrated(root: np.ndarray) -> None:
    # The skeleton's size is exact here: no body-size term in the covariance (scale_std 0).
    exact_size = build_settings(PlacementSettings, {"scale_std": 0.0, "pose_offset_std_m": 0.0})
    rng = np.random.default_rng(42)
    pix = _project(root)
    errors, stds, rms = [], [], []
    for _ in range(300):
        noisy = pix + rng.normal(0.0, 2.0, pix.shape)
        result = place_root_from_pixels(CAMERA, SKELETON, noisy, settings=exact_size)
        assert result.ok
        errors.append(result.root - root)
        stds.append(np.sqrt(np.diag(result.covariance)))
        rms.append(result.rms_error_px)
    errors, stds = np.array(errors), np.array(stds)
    # Every trial within 5 % of the depth (measured: worst 2.2 % at 3 m, 4.0 % at 6.5 m).
    assert np.abs(errors[:, 2]).max() < 0.05 * root[2]
    assert np.linalg.norm(errors, axis=1).max() < 0.05 * root[2]
    # The predicted standard deviation matches the observed spread within 30 %.
    observed = np.sqrt(np.mean(np.square(errors), axis=0))
    np.testing.assert_allclose(stds.mean(axis=0), observed, rtol=0.3)
    # Depth is the weak direction of a monocular placement.
    var = np.mean(np.square(stds), axis=0)
    assert var[2] > 5 * var[0] and var[2] > 5 * var[1]
    # 2 px per coordinate -> RMS 2D error distance about 2*sqrt(2) px (minus the 3 fitted dof).
    assert 2.0 < np.mean(rms) < 3.0


def test_covariance_floor_when_the_fit_is_perfect() -> None:
    root = ROOTS[0]
    # The 2D term alone: exact size, exact pose.
    exact_size = build_settings(PlacementSettings, {"scale_std": 0.0, "pose_offset_std_m": 0.0})
    result = place_root_from_pixels(CAMERA, SKELETON, _project(root), settings=exact_size)
    var = np.diag(result.covariance)
    assert (var > 0).all()
    assert var[2] > var[0] and var[2] > var[1]
    # Doubling the pixel floor doubles the standard deviations of a perfect fit.
    doubled = build_settings(
        PlacementSettings,
        {"pixel_noise_floor_px": 2.0, "scale_std": 0.0, "pose_offset_std_m": 0.0},
    )
    result2 = place_root_from_pixels(CAMERA, SKELETON, _project(root), settings=doubled)
    np.testing.assert_allclose(np.diag(result2.covariance), 4 * var, rtol=1e-6)


def test_scale_uncertainty_inflates_the_covariance_along_the_ray() -> None:
    root = ROOTS[0]
    settings = build_settings(PlacementSettings, {"scale_std": 0.05})
    result = place_root_from_pixels(CAMERA, SKELETON, _project(root), settings=settings)
    ray = root / np.linalg.norm(root)
    along = ray @ result.covariance @ ray
    assert np.sqrt(along) == pytest.approx(0.05 * np.linalg.norm(root), rel=0.05)


def test_five_missing_joints_still_work() -> None:
    root = ROOTS[1]
    pix = _project(root)
    conf = np.ones(17)
    pix[[3, 6, 10, 13, 16]] = np.nan  # ankles, head, wrists
    conf[[2, 5]] = 0.0  # knees: present but zero confidence
    pix[2] = pix[5] = (1e4, -1e4)  # garbage at the zero-confidence joints must not matter
    result = place_root_from_pixels(CAMERA, SKELETON, pix, conf)
    assert result.ok, result.reason
    assert result.num_joints == 10
    np.testing.assert_allclose(result.root, root, atol=1e-3)


def test_confidence_weights_down_weight_an_outlier() -> None:
    root = ROOTS[0]
    pix = _project(root)
    pix[13] += (40.0, -30.0)  # a wrist detected on the wrong limb
    conf = np.ones(17)
    unweighted = place_root_from_pixels(CAMERA, SKELETON, pix, conf)
    conf[13] = 0.01
    weighted = place_root_from_pixels(CAMERA, SKELETON, pix, conf)
    err_u = np.linalg.norm(unweighted.root - root)
    err_w = np.linalg.norm(weighted.root - root)
    assert err_w < 0.2 * err_u


def test_missing_3d_joints_are_excluded() -> None:
    root = ROOTS[0]
    joints = SKELETON.copy()
    joints[[12, 15]] = np.nan
    result = place_root_from_pixels(CAMERA, joints, _project(root))
    assert result.num_joints == 15
    np.testing.assert_allclose(result.root, root, atol=1e-3)


def _assert_failed(result: Placement, words: str) -> None:
    assert not result.ok
    assert words in result.reason
    assert np.isnan(result.root).all() and np.isnan(result.covariance).all()
    assert np.isnan(absolute_joints(SKELETON, result.root)).all()


def test_too_few_joints_give_nan_with_reason() -> None:
    pix = _project(ROOTS[0])
    conf = np.zeros(17)
    conf[[0, 1]] = 1.0
    _assert_failed(place_root_from_pixels(CAMERA, SKELETON, pix, conf), "2 valid joints, need 3")
    _assert_failed(place_root_from_pixels(CAMERA, SKELETON, np.full((17, 2), np.nan)), "0 valid")


def test_person_behind_the_camera_gives_nan_with_reason() -> None:
    # The 2D pose of a person in front, but the 3D pose mirrored through the camera centre:
    # the only consistent translation is behind the camera.
    xy = CAMERA.undistort_pixels(_project(ROOTS[0]))
    flipped = -SKELETON
    result = place_root(flipped, xy, None, CAMERA.fx)
    assert not result.ok
    assert "front of the camera" in result.reason or "behind the camera" in result.reason


def test_collapsed_2d_gives_nan_with_reason() -> None:
    xy = np.zeros((17, 2))  # every joint on the same ray: depth is unobservable
    result = place_root(np.zeros((17, 3)), xy, None, 500.0)
    assert not result.ok and "singular" in result.reason


def test_bad_shapes_and_focal_raise() -> None:
    with pytest.raises(ValueError, match="expected joints"):
        place_root(SKELETON, np.zeros((16, 2)), None, 500.0)
    with pytest.raises(ValueError, match="focal"):
        place_root(SKELETON, np.zeros((17, 2)), None, 0.0)
