"""Synthetic depth of capsule bodies (pose3d_tools.data.synthetic_depth): known surfaces, and the
runtime's fusion on it putting a larger-than-average body at its true distance."""

from __future__ import annotations

import numpy as np
import pytest
from known_poses import SKELETON_H36M17

from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.placement import place_root
from pose3d_tools.data.cameras import Camera
from pose3d_tools.data.synthetic_depth import (
    DepthNoise,
    body_depth,
    depth_placement,
    render_torso_patches,
)

CAMERA = Camera(
    R=np.eye(3), T=np.zeros(3), f=np.array([1000.0, 1000.0]), c=np.array([500.0, 500.0]),
    k=np.zeros(3), p=np.zeros(2), w=np.array(1000), h=np.array(1000),
)  # fmt: skip
TORSO = [H36M17.index(j) for j in ("l_shoulder", "r_shoulder", "l_hip", "r_hip")]
FLAT = SKELETON_H36M17.copy()
FLAT[TORSO, 2] = 0.0  # torso facing the camera
EXACT = DepthNoise(pixel_rel=0.0, frame_rel=0.0, hole_frac=0.0, joint_hole_prob=0.0, patch_px=12)


def test_the_ray_through_a_hip_meets_the_hip_girdle_in_front_of_it():
    """Hip girdle: radius 0.09 m, perpendicular to the optical axis through the left hip."""
    l_hip = FLAT[H36M17.index("l_hip")]
    joints = FLAT - l_hip + (0.0, 0.0, 4.0)
    z = body_depth(np.array([[0.0, 0.0], [1.0, 0.0]]), joints)
    assert z[0] == pytest.approx(4.0 - 0.09, abs=1e-9)
    assert np.isnan(z[1])  # 45 deg to the side: nothing there


def test_rendered_patches_show_the_body_before_the_wall_and_nothing_elsewhere():
    joints = FLAT + np.array([0.0, 0.0, 10.0])  # 12 px = 0.12 m: shoulder patches pass the edge
    pixels = CAMERA.project(joints)
    depth = render_torso_patches(CAMERA, joints, pixels[TORSO], np.random.default_rng(0), EXACT)
    hip = np.round(pixels[H36M17.index("r_hip")]).astype(int)
    assert depth.values[hip[1], hip[0]] == pytest.approx(10.0 - 0.09, abs=1e-3)
    u, v = np.round(pixels[H36M17.index("l_shoulder")]).astype(int)
    patch = depth.values[v - 12 : v + 13, u - 12 : u + 13]
    assert np.isclose(patch, 10.0 + EXACT.background_m).any()  # the wall above the shoulder
    assert depth.values[0, 0] == 0  # not rendered: missing


@pytest.mark.parametrize("distance", [3.0, 6.0])
def test_depth_puts_a_body_10_percent_larger_at_its_distance(distance):
    """The lifted pose is the average body; the person is 10 % larger. Monocular placement is
    10 % too near; with noisy, holey depth (1 % per pixel, 0.5 % per frame) the fused root is
    within 1.5 % of the distance (one frame; the evaluation gives the medians)."""
    truth = 1.1 * FLAT + (0.3, 0.2, distance)
    xy = truth[:, :2] / truth[:, 2:]
    mono = place_root(FLAT, xy, None, CAMERA.f)
    assert np.linalg.norm(mono.root - truth[0]) > 0.08 * distance
    errors = []
    for seed in range(5):
        fused = depth_placement(
            mono, FLAT, xy, np.ones(17), truth, CAMERA, np.random.default_rng(seed)
        )
        assert fused.constraint == "depth", fused.fallback
        errors.append(np.linalg.norm(fused.root - truth[0]) / distance)
    assert max(errors) < 0.015, errors


def test_a_torso_without_depth_falls_back_with_the_reason():
    truth = FLAT + np.array([0.0, 0.0, 4.0])
    xy = truth[:, :2] / truth[:, 2:]
    mono = place_root(FLAT, xy, None, CAMERA.f)
    holes = DepthNoise(joint_hole_prob=1.0)
    fused = depth_placement(
        mono, FLAT, xy, np.ones(17), truth, CAMERA, np.random.default_rng(0), holes
    )
    assert fused.constraint == "size_prior"
    assert "too few valid depth samples" in fused.fallback
    np.testing.assert_array_equal(fused.root, mono.root)


def test_placement_eval_depth_mode_places_people_at_their_depth():
    """placement_eval.place_all with mode "depth": the size-prior root of a body 10 % larger
    is 10 % too near, the depth mode's is within 1.5 % of the distance and says "depth"."""
    from pose3d_ros.stages.placement import PlacementSettings
    from pose3d_tools.placement_eval import place_all

    truths = np.stack([1.1 * FLAT + np.array([0.2, 0.1, z]) for z in (3.5, 5.5)])
    data = {
        "cameras": np.array(["cam", "cam"]),
        "keypoints": truths[..., :2] / truths[..., 2:],
        "confidence": np.ones((2, 17)),
        "joints_cam": truths,
    }
    pred = np.stack([FLAT, FLAT])
    cameras = {"cam": CAMERA}
    prior = place_all(pred, data, cameras, "size_prior", PlacementSettings())
    depth = place_all(pred, data, cameras, "depth", PlacementSettings())
    distance = truths[:, 0, 2]
    prior_err = np.linalg.norm(prior["roots"] - truths[:, 0], axis=1) / distance
    depth_err = np.linalg.norm(depth["roots"] - truths[:, 0], axis=1) / distance
    assert (prior_err > 0.08).all(), prior_err
    assert (depth_err < 0.015).all(), depth_err
    assert list(depth["constraint"]) == ["depth", "depth"]
