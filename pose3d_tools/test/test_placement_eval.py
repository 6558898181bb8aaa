"""The runtime's placement constants agree with the tools' body-size laws, and the placement
evaluation's metrics, floors and body rescaling give known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages import placement
from pose3d_tools.data import augmentation as aug
from pose3d_tools.data import h36m
from pose3d_tools.data.cameras import Camera, load_h36m_cameras
from pose3d_tools.placement_eval import (
    CHI2_3DOF_95,
    camera_floor,
    placement_metrics,
    rescale_bodies,
)

try:
    CAMS = h36m.resolve_cameras_file()
except FileNotFoundError:
    CAMS = None


def test_ankle_height_fraction_agrees_with_the_tools() -> None:
    assert placement.ANKLE_HEIGHT_FRAC == aug.ANKLE_HEIGHT_FRAC


def test_default_scale_std_is_the_adult_stature_spread() -> None:
    mean, sd = aug.stature_moments(aug.StatureConfig())
    assert placement.ADULT_STATURE_REL_SD == pytest.approx(sd / mean, abs=5e-4)
    assert placement.PlacementSettings().scale_std == placement.ADULT_STATURE_REL_SD
    # And it is what sampled people show (the 3-SD clip changes it by < 1 %).
    statures, _ = aug.sample_statures(np.random.default_rng(3), 200_000, aug.StatureConfig())
    assert statures.std() / statures.mean() == pytest.approx(sd / mean, rel=0.02)


def test_runtime_stature_law_matches_the_tools() -> None:
    rng = np.random.default_rng(0)
    from known_poses import SKELETON_H36M17

    for _ in range(5):
        pose = SKELETON_H36M17 * rng.uniform(0.8, 1.2) + rng.normal(0, 0.03, (17, 3))
        tools = aug.stature_from_bone_lengths(H36M17.bone_lengths(pose[None]))[0]
        assert placement.skeleton_stature(pose) == pytest.approx(tools, rel=1e-12)


def test_metrics_known_answers() -> None:
    """Roots 2 % / 4 % off at 2, 4, 6 and 8 m, isotropic SD 0.05 m: per-band medians, the
    median percentage and the coverage computed by hand."""
    dist = np.array([2.0, 4.0, 6.0, 8.0])
    truth = np.stack([np.zeros(4), np.zeros(4), dist], axis=1)
    rel = np.array([0.02, 0.04, 0.02, 0.04])
    roots = truth * (1 + rel)[:, None]  # errors 40, 160, 120, 320 mm along the ray
    covs = np.broadcast_to(np.eye(3) * 0.05**2, (4, 3, 3)).copy()
    m = placement_metrics(roots, covs, truth)
    assert m["root_error_mm"] == {"<3m": 40.0, "3-5m": 160.0, "5-7m": 120.0, ">=7m": 320.0}
    assert m["root_error_pct"] == pytest.approx(3.0)
    # Inside the 95 % ellipsoid when (error / 0.05)^2 <= 7.81: 0.04 -> 0.64 yes, 0.12 -> 5.76
    # yes, 0.16 -> 10.2 no, 0.32 no.
    assert (0.12 / 0.05) ** 2 < CHI2_3DOF_95 < (0.16 / 0.05) ** 2
    assert m["root_coverage_95"] == 0.5
    # A failed placement (NaN) is left out and counted as not placed.
    roots[0] = np.nan
    assert placement_metrics(roots, covs, truth)["placed_frac"] == 0.75


def test_rescaled_bodies_get_a_stature_and_keep_their_feet() -> None:
    rng = np.random.default_rng(5)
    from known_poses import SKELETON_H36M17

    # World frame z up, standing: the level optical fixture turned upright, ankles at 0.05 m.
    upright = SKELETON_H36M17 @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).T
    upright[..., 2] += 0.05 - upright[[3, 6], 2].min()
    seq = np.repeat(upright[None, None], 3, axis=1)  # (1, 3, 17, 3)
    out = rescale_bodies(seq, "stature", rng)
    stature = aug.skeleton_stature(out)[0]
    assert 1.40 < stature < 2.05 and abs(stature - aug.skeleton_stature(seq)[0]) > 1e-3
    assert out[..., [3, 6], 2].min() == pytest.approx(0.05)
    assert rescale_bodies(seq, "s1", rng) is seq
    with pytest.raises(ValueError, match="bodies"):
        rescale_bodies(seq, "giants", rng)


def test_floor_of_a_known_camera() -> None:
    """A camera 1.6 m up looking horizontally along world +x: up is optical -y."""
    R = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # columns: optical axes
    cam = Camera(
        R,
        np.array([1.0, 2.0, 1.6]),
        np.ones(2),
        np.zeros(2),
        np.zeros(3),
        np.zeros(2),
        np.asarray(10.0),
        np.asarray(10.0),
    )
    plane = camera_floor(cam)
    np.testing.assert_allclose(plane.normal, [0.0, -1.0, 0.0], atol=1e-12)
    assert plane.offset_m == pytest.approx(1.6)


@pytest.mark.skipif(CAMS is None, reason="Human3.6M cameras.json not available")
def test_h36m_floors_put_world_points_at_their_height() -> None:
    cams = load_h36m_cameras(CAMS)
    pts = np.array([[0.3, -0.2, 0.0], [1.0, 0.5, 1.7]])
    for cam in cams.values():
        plane = camera_floor(cam)
        assert 0.5 < plane.offset_m < 3.0  # cameras on tripods / walls above the floor
        np.testing.assert_allclose(plane.height(cam.world_to_camera(pts)), pts[:, 2], atol=1e-9)
