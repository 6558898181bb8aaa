"""Floor-constrained placement (stages/placement.py) on known scenes: an upright synthetic
person of known size stands (or sits) at a known place on a known floor, seen by a pitched,
distorted camera; the lifted pose handed to the placement has the *average* size (1.0), the
person is 10 % larger, so only the floor can recover where they are."""

from __future__ import annotations

import math

import numpy as np
import pytest
from known_poses import DISTORTED_CAMERA, SKELETON_H36M17

from pose3d_ros.core.floor import floor_from_transform
from pose3d_ros.core.parameters import build_settings
from pose3d_ros.stages.placement import (
    ADULT_STATURE_REL_SD,
    ANKLE_HEIGHT_FRAC,
    FLOOR,
    SEATED_HIP_HEIGHT_FRAC,
    SIZE_PRIOR,
    PlacementSettings,
    place_on_floor,
    place_person,
    skeleton_stature,
)

CAMERA = DISTORTED_CAMERA
CAMERA_HEIGHT_M = 1.3
PITCH_DEG = 10.0  # looking down
# Level optical frame (x right, y down, z forward) -> floor frame (x forward, y left, z up).
LEVEL_TO_FLOOR = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
FLOOR_ONLY = {"floor.with_size_prior": False}


def _camera_pose() -> tuple[np.ndarray, np.ndarray]:
    """floor <- camera optical frame: columns of R are the optical axes in the floor frame."""
    p = math.radians(PITCH_DEG)
    right = np.array([0.0, -1.0, 0.0])
    forward = np.array([math.cos(p), 0.0, -math.sin(p)])
    return np.stack([right, np.cross(forward, right), forward], axis=1), np.array(
        [0.0, 0.0, CAMERA_HEIGHT_M]
    )


R_CAM, T_CAM = _camera_pose()
FLOOR_PLANE = floor_from_transform(R_CAM, T_CAM)


def _scene(
    pose_level: np.ndarray = SKELETON_H36M17,
    size: float = 1.10,
    support: tuple[int, ...] = (3, 6),
    frac: float = ANKLE_HEIGHT_FRAC,
    forward_m: float = 4.0,
    left_m: float = 0.4,
    raised_m: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lifted pose at average size in the camera orientation (17, 3), undistorted 2D (17, 2),
    true root in the camera frame (3,)) of a person ``size`` x the lifted pose whose ``support``
    joints are ``frac`` of their stature (+ ``raised_m``) above the floor."""
    upright = pose_level @ LEVEL_TO_FLOOR.T  # floor-frame orientation, pelvis at 0
    stature = size * skeleton_stature(pose_level)
    lowest = size * upright[list(support), 2].min()
    pelvis = np.array([forward_m, left_m, frac * stature + raised_m - lowest])
    joints_cam = (size * upright + pelvis - T_CAM) @ R_CAM  # R^T (X - t)
    lifted = upright @ R_CAM  # the same body at size 1 in the camera orientation
    pixels = CAMERA.project(joints_cam)
    assert ((pixels >= 0) & (pixels < (CAMERA.width, CAMERA.height))).all(), "out of view"
    return lifted, CAMERA.undistort_pixels(pixels), joints_cam[0]


def _settings(**values) -> PlacementSettings:
    return build_settings(PlacementSettings, values)


def test_scene_is_what_it_claims() -> None:
    lifted, _, root = _scene()
    truth = 1.10 * lifted + root
    heights = FLOOR_PLANE.height(truth)
    stature = 1.10 * skeleton_stature(SKELETON_H36M17)  # checked by hand below
    assert heights[[3, 6]] == pytest.approx(ANKLE_HEIGHT_FRAC * stature, abs=1e-9)
    assert heights.min() == pytest.approx(heights[3])  # the ankles are the lowest joints
    assert np.linalg.norm(root) == pytest.approx(math.hypot(4.0, 0.4, 1.3 - heights[0]), 0.01)


@pytest.mark.parametrize("forward_m", [2.5, 4.0, 6.5])
def test_floor_recovers_the_size_and_root_of_a_larger_person(forward_m: float) -> None:
    lifted, xy, root = _scene(forward_m=forward_m)
    s = _settings(**FLOOR_ONLY)
    placed = place_person(lifted, xy, None, (CAMERA.fx, CAMERA.fy), s, FLOOR_PLANE)
    assert placed.ok and placed.constraint == FLOOR, placed.fallback
    assert placed.support == (3, 6)
    assert placed.scale == pytest.approx(1.10, abs=1e-6)
    np.testing.assert_allclose(placed.root, root, atol=1e-5)
    np.testing.assert_allclose(placed.joints(lifted), 1.10 * lifted + root, atol=1e-5)
    # The size prior places the same 2D as an average body: everything 1/1.1 along the rays.
    prior = place_person(lifted, xy, None, (CAMERA.fx, CAMERA.fy), s, None)
    assert prior.constraint == SIZE_PRIOR and prior.scale == 1.0
    np.testing.assert_allclose(prior.root, root / 1.10, atol=1e-5)
    assert np.linalg.norm(prior.root - root) > 0.08 * np.linalg.norm(root)
    # The floor's covariance is tighter along the ray than the size prior's.
    ray = root / np.linalg.norm(root)
    assert ray @ placed.covariance @ ray < 0.7 * (ray @ prior.covariance @ ray)


def test_default_fit_weighs_the_floor_against_the_size_prior() -> None:
    """With the size prior kept (default), the scale lands between 1 (average body) and the
    floor's 1.10, nearer the floor: floor rows with SD 0.05 m (the ankle height moves by about
    the camera height, 1.3 m, per unit of scale) against a prior SD of 5.84 %."""
    lifted, xy, _ = _scene()
    placed = place_person(lifted, xy, None, (CAMERA.fx, CAMERA.fy), None, FLOOR_PLANE)
    assert placed.constraint == FLOOR
    assert 1.05 < placed.scale < 1.10
    # One floor row (the ankles' mean) of weight (1.25 / 0.05)^2 against (1 / 0.0584)^2:
    # s - 1 ~ 0.1 * 0.68.
    w_floor = (1.25 / 0.05) ** 2
    w_prior = 1 / ADULT_STATURE_REL_SD**2
    assert placed.scale - 1 == pytest.approx(0.1 * w_floor / (w_floor + w_prior), rel=0.1)


def test_sitting_on_the_floor_is_held_by_the_hips() -> None:
    seated = SKELETON_H36M17.copy()
    # Legs stretched forward (level frame: z forward, y down), ankles 3 cm above the hips.
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        seated[knee] = seated[hip] + [0.0, -0.015, 0.45]
        seated[ankle] = seated[knee] + [0.0, -0.015, 0.43]
    lifted, xy, root = _scene(seated, support=(1, 4), frac=SEATED_HIP_HEIGHT_FRAC, left_m=-0.3)
    placed = place_person(
        lifted, xy, None, (CAMERA.fx, CAMERA.fy), _settings(**FLOOR_ONLY), FLOOR_PLANE
    )
    assert placed.constraint == FLOOR, placed.fallback
    assert placed.support == (1, 4)
    assert placed.scale == pytest.approx(1.10, abs=1e-6)
    np.testing.assert_allclose(placed.root, root, atol=1e-5)


def test_feet_not_seen_fall_back_to_the_size_prior() -> None:
    lifted, xy, root = _scene()
    conf = np.ones(17)
    conf[[3, 6]] = 0.0
    placed = place_person(lifted, xy, conf, (CAMERA.fx, CAMERA.fy), None, FLOOR_PLANE)
    assert placed.ok and placed.constraint == SIZE_PRIOR
    assert "ankles" in placed.fallback and "not seen" in placed.fallback
    np.testing.assert_allclose(placed.root, root / 1.10, atol=1e-4)
    # One foot seen is enough when it is the lower one (both are on the floor here).
    conf[3] = 1.0
    one = place_person(
        lifted, xy, conf, (CAMERA.fx, CAMERA.fy), _settings(**FLOOR_ONLY), FLOOR_PLANE
    )
    assert one.constraint == FLOOR and one.support == (3,)
    np.testing.assert_allclose(one.root, root, atol=1e-5)


def test_person_on_a_platform_falls_back_with_the_implied_stature() -> None:
    """On a 0.5 m step the feet's rays meet the floor far behind the person: the floor would
    make them 1.3 / (1.3 - 0.5) ~ 1.6 x larger, a 2.9 m adult."""
    lifted, xy, root = _scene(size=1.0, raised_m=0.5)
    placed = place_person(lifted, xy, None, (CAMERA.fx, CAMERA.fy), None, FLOOR_PLANE)
    assert placed.ok and placed.constraint == SIZE_PRIOR
    assert "stature" in placed.fallback and "outside" in placed.fallback
    np.testing.assert_allclose(placed.root, root, atol=1e-4)  # the average body is right here


def test_lowest_joint_that_cannot_stand_falls_back() -> None:
    upside_down = SKELETON_H36M17 * [1.0, -1.0, 1.0]  # a handstand: the head is lowest
    lifted, xy, _ = _scene(upside_down, support=(10,), frac=0.05)
    placed = place_person(lifted, xy, None, (CAMERA.fx, CAMERA.fy), None, FLOOR_PLANE)
    assert placed.constraint == SIZE_PRIOR and "lowest joint is the" in placed.fallback


def test_camera_below_the_floor_falls_back() -> None:
    lifted, xy, _ = _scene()
    below = floor_from_transform(R_CAM, T_CAM - [0.0, 0.0, 2.0])
    placed = place_on_floor(lifted, xy, None, (CAMERA.fx, CAMERA.fy), below)
    assert placed.constraint == SIZE_PRIOR and "not above the floor" in placed.fallback


def test_floor_covariance_covers_the_truth_95_percent_of_the_time() -> None:
    """2 px of 2D noise and a foot contact that varies by the assumed 0.05 m SD: the true root
    lies inside the reported 95 % ellipsoid in 90-99 % of 400 trials (chi-square, 3 dof)."""
    s = _settings(**FLOOR_ONLY, pose_offset_std_m=0.0)
    rng = np.random.default_rng(7)
    inside, errors = [], []
    for _ in range(400):
        # An average-size person (a 10 % larger one would exceed the 2.0 m stature bound
        # when the foot noise raises them by 2 SD).
        lifted, _, root = _scene(size=1.0, raised_m=rng.normal(0.0, 0.05))
        truth = CAMERA.project(lifted + root)
        noisy = CAMERA.undistort_pixels(truth + rng.normal(0.0, 2.0, truth.shape))
        placed = place_person(lifted, noisy, None, (CAMERA.fx, CAMERA.fy), s, FLOOR_PLANE)
        assert placed.constraint == FLOOR
        e = placed.root - root
        inside.append(e @ np.linalg.solve(placed.covariance, e) <= 7.8147)
        errors.append(np.linalg.norm(e) / np.linalg.norm(root))
    assert 0.90 <= np.mean(inside) <= 0.99
    assert np.median(errors) < 0.03  # about 3 % of the distance with 5 cm foot-height noise


def test_stature_of_the_fixture_from_its_bones() -> None:
    # Legs (mean of right and left): hip-knee (0.02, 0.45, 0.03) / (0.02, 0.45, 0.02),
    # knee-ankle (0.01, 0.43, 0.05) / (0.01, 0.43, 0.04); trunk: 0.25, (0.25, 0.03), (0.1, 0.02),
    # (0.12, 0.03).
    right = math.sqrt(0.02**2 + 0.45**2 + 0.03**2) + math.sqrt(0.01**2 + 0.43**2 + 0.05**2)
    left = math.sqrt(0.02**2 + 0.45**2 + 0.02**2) + math.sqrt(0.01**2 + 0.43**2 + 0.04**2)
    legs = 0.5 * (right + left)
    trunk = 0.25 + math.hypot(0.25, 0.03) + math.hypot(0.1, 0.02) + math.hypot(0.12, 0.03)
    expected = (legs + trunk) / (1 - 0.039)
    assert skeleton_stature(SKELETON_H36M17) == pytest.approx(expected, rel=1e-9)
