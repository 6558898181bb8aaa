"""Tests for pose3d_ros.stages.depth_fusion on depth images of known scenes.

The scene: a person 10 % larger than the lifter's average body (the lifted pose is the average
one), root at a known point 4 m in front of the camera, torso flat and facing the camera, drawn
into a depth image as its torso surface SURFACE_M in front of the joint centres, in front of a
wall 8 m away. Monocular placement then puts the root 10 % too near (the 2D looks like an
average body at 4 / 1.1 m); the depth has to bring it back.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from known_poses import SKELETON_H36M17

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.depth_fusion import (
    DepthImageError,
    DepthSettings,
    depth_image,
    fuse_depth,
)
from pose3d_ros.stages.placement import PlacementSettings, place_root

CAMERA = CameraModel.from_fov(640, 480, 60.0)
ROOT = np.array([0.2, 0.1, 4.0])
SIZE = 1.1  # the person is 10 % larger than the lifted (average) body
WALL_M = 8.0
SURFACE_M = 0.08  # the scene's torso surface in front of the joint centres
TORSO = [H36M17.index(j) for j in ("l_shoulder", "r_shoulder", "l_hip", "r_hip")]
AVERAGE = SKELETON_H36M17.copy()
AVERAGE[TORSO, 2] = 0.0  # a flat torso: every torso joint at the root's depth
SETTINGS = DepthSettings(surface_offset_m=SURFACE_M)


def _person() -> tuple[np.ndarray, np.ndarray]:
    """The true joints (17, 3) in the camera frame and their pixels (17, 2)."""
    joints = SIZE * AVERAGE + ROOT
    return joints, CAMERA.project(joints)


def _scene(margin_m: float = 0.06, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Depth (H, W) float32 metres: the torso (hull of shoulders and hips grown by margin_m)
    at its surface depth in front of the wall, drawn at ``size`` over the same field of view."""
    joints, _ = _person()
    torso = joints[TORSO]
    centre = torso.mean(0)
    grown = (
        centre + (torso - centre) * (1 + margin_m / np.linalg.norm(torso - centre, axis=1))[:, None]
    )
    w, h = size
    hull = CAMERA.project(grown) * (w / CAMERA.width, h / CAMERA.height)
    depth = np.full((h, w), WALL_M, np.float32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(hull).astype(np.int32)), 1)
    depth[mask > 0] = ROOT[2] - SURFACE_M
    return depth


def _monocular():
    _, pixels = _person()
    placed = place_root(AVERAGE, CAMERA.undistort_pixels(pixels), None, CAMERA.fx)
    assert placed.ok, placed.reason
    return placed


def _fuse(depth: np.ndarray, encoding: str = "32FC1", settings: DepthSettings = SETTINGS):
    _, pixels = _person()
    return fuse_depth(
        _monocular(),
        AVERAGE,
        pixels,
        CAMERA.undistort_pixels(pixels),
        np.ones(17),
        depth_image(depth, encoding),
        (CAMERA.width, CAMERA.height),
        settings,
    )


def test_monocular_placement_is_off_by_the_body_size() -> None:
    """Guard: without depth the root is 10 % too near, along the ray (the premise)."""
    np.testing.assert_allclose(_monocular().root, ROOT / SIZE, atol=2e-3)


def test_depth_brings_a_larger_body_to_its_true_distance() -> None:
    fused = _fuse(_scene())
    assert fused.used, fused.reason
    assert fused.joints_used == 4
    mono_error = np.linalg.norm(_monocular().root - ROOT)
    error = np.linalg.norm(fused.placement.root - ROOT)
    assert mono_error > 0.35
    assert error < 0.02, fused.placement.root
    assert fused.root_depth_m == pytest.approx(ROOT[2], abs=2e-3)
    # The lateral position moves with the depth (along the ray): x and y are right too.
    np.testing.assert_allclose(fused.placement.root[:2], ROOT[:2], atol=5e-3)
    if hasattr(fused.placement, "constraint"):
        assert fused.placement.constraint == "depth"


def test_fused_covariance_is_the_information_sum_along_depth() -> None:
    """Scalar Kalman update on z: 1/var = 1/var_prior + 1/var_depth, with var_depth from the
    noise model (1 % of 4 m + 5 mm, common to all joints; offset spread over 4 joints)."""
    s = SETTINGS
    mono = _monocular()
    counted = getattr(mono, "scale_std", 0.0)  # the size prior already in the placement
    prior_zz = mono.covariance[2, 2] + (s.prior_scale_std**2 - counted**2) * mono.root[2] ** 2
    var_depth = (0.005 + 0.01 * 4.0) ** 2 + 0.03**2 / 4
    fused = _fuse(_scene())
    assert fused.root_depth_std_m == pytest.approx(np.sqrt(var_depth), rel=1e-3)
    var_depth = (0.005 + 0.01 * fused.root_depth_m) ** 2 + 0.03**2 / 4  # at the measured z
    expected = 1.0 / (1.0 / prior_zz + 1.0 / var_depth)
    assert fused.placement.covariance[2, 2] == pytest.approx(expected, rel=1e-6)
    assert np.all(np.linalg.eigvalsh(fused.placement.covariance) > 0)


def test_16uc1_millimetres_give_the_same_answer() -> None:
    metres = _fuse(_scene())
    millimetres = _fuse(np.round(_scene() * 1000).astype(np.uint16), "16UC1")
    assert millimetres.used, millimetres.reason
    np.testing.assert_allclose(millimetres.placement.root, metres.placement.root, atol=1e-3)


def test_wrong_units_are_refused_with_the_reason() -> None:
    with pytest.raises(DepthImageError, match="16UC1 depth values look like metres"):
        depth_image(np.round(_scene()).astype(np.uint16), "16UC1")
    with pytest.raises(DepthImageError, match="32FC1 depth values look like millimetres"):
        depth_image(_scene() * 1000, "32FC1")
    with pytest.raises(DepthImageError, match="not supported"):
        depth_image(_scene(), "mono8")
    with pytest.raises(DepthImageError, match="needs an HxW float32"):
        depth_image(_scene().astype(np.float64), "32FC1")


def test_holes_and_nan_are_ignored() -> None:
    rng = np.random.default_rng(3)
    depth = _scene()
    holes = rng.uniform(size=depth.shape) < 0.5
    depth[holes & (rng.uniform(size=depth.shape) < 0.5)] = np.nan
    depth[holes] = np.where(np.isnan(depth[holes]), np.nan, 0.0)
    fused = _fuse(depth)
    assert fused.used, fused.reason
    assert np.linalg.norm(fused.placement.root - ROOT) < 0.02


def test_a_torso_in_a_hole_is_not_measured() -> None:
    depth = _scene()
    depth[depth < WALL_M] = 0.0  # the sensor saw nothing of the person (black clothes, sun)
    fused = _fuse(depth)
    assert not fused.used
    assert "too few valid depth samples" in fused.reason
    np.testing.assert_array_equal(fused.placement.root, _monocular().root)


def test_an_image_with_no_depth_at_all_gives_a_reason() -> None:
    fused = _fuse(np.full((480, 640), np.nan, np.float32))
    assert not fused.used and "too few valid depth samples" in fused.reason


def test_patches_straddling_the_silhouette_keep_the_body() -> None:
    """No margin: each torso keypoint is on the silhouette's corner, so most of its patch is
    the wall 4 m behind; the near cluster is still the body."""
    depth = _scene(margin_m=0.0)
    _, pixels = _person()
    u, v = np.round(pixels[TORSO[0]]).astype(int)
    patch = depth[v - 4 : v + 5, u - 4 : u + 5]
    assert (patch == WALL_M).mean() > 0.5, "the scene must put the wall in the patch"
    fused = _fuse(depth)
    assert fused.used, fused.reason
    assert abs(fused.root_depth_m - ROOT[2]) < 0.01


@pytest.mark.parametrize("size", [(320, 240), (1280, 960)], ids=["half", "double"])
def test_depth_of_another_resolution_is_mapped_by_scaling(size) -> None:
    fused = _fuse(_scene(size=size))
    assert fused.used, fused.reason
    assert np.linalg.norm(fused.placement.root - ROOT) < 0.02


def test_depth_of_another_aspect_ratio_is_refused() -> None:
    fused = _fuse(np.full((480, 848), 3.9, np.float32))
    assert not fused.used and "different aspect ratios" in fused.reason


def test_an_occluded_joint_is_dropped() -> None:
    """A hand 0.6 m in front of one hip: that joint disagrees with the other three."""
    depth = _scene()
    _, pixels = _person()
    u, v = np.round(pixels[TORSO[2]]).astype(int)
    depth[v - 10 : v + 11, u - 10 : u + 11] = ROOT[2] - 0.6
    fused = _fuse(depth)
    assert fused.used, fused.reason
    assert fused.joints_used == 3
    assert abs(fused.root_depth_m - ROOT[2]) < 0.01


def test_of_two_agreeing_pairs_the_farther_is_used():
    """Arms folded 0.25 m in front of both shoulders: two joints say 0.25 m nearer, two (the
    hips) are right. Occlusion only makes depth too near, so the farther pair wins."""
    depth = _scene()
    _, pixels = _person()
    for j in TORSO[:2]:
        u, v = np.round(pixels[j]).astype(int)
        depth[v - 10 : v + 11, u - 10 : u + 11] = ROOT[2] - SURFACE_M - 0.25
    fused = _fuse(depth)
    assert fused.used, fused.reason
    assert fused.joints_used == 2
    assert abs(fused.root_depth_m - ROOT[2]) < 0.01


def test_torso_joints_that_disagree_are_not_used() -> None:
    depth = _scene()
    _, pixels = _person()
    for k, j in enumerate(TORSO):
        u, v = np.round(pixels[j]).astype(int)
        depth[v - 10 : v + 11, u - 10 : u + 11] = 3.0 + 0.5 * k
    fused = _fuse(depth)
    assert not fused.used and "inconsistent depth" in fused.reason


def test_depth_far_from_the_monocular_estimate_is_not_trusted() -> None:
    """Someone else 2 m behind the person fills the torso's pixels: 6 m against 3.6 m from the
    body size is more than 5 sigma (10 % size prior) apart."""
    depth = _scene()
    depth[depth < WALL_M] = 6.0
    fused = _fuse(depth)
    assert not fused.used
    assert "disagrees with the monocular placement" in fused.reason
    assert fused.root_depth_m == pytest.approx(6.0 + SURFACE_M, abs=2e-3)


def test_a_failed_placement_stays_failed() -> None:
    _, pixels = _person()
    failed = place_root(np.full((17, 3), np.nan), CAMERA.undistort_pixels(pixels), None, CAMERA.fx)
    fused = fuse_depth(
        failed,
        AVERAGE,
        pixels,
        CAMERA.undistort_pixels(pixels),
        np.ones(17),
        depth_image(_scene(), "32FC1"),
        (640, 480),
    )
    assert not fused.used and "no monocular placement" in fused.reason


def test_a_size_prior_already_in_the_placement_is_not_counted_twice() -> None:
    """Placements reporting no size uncertainty and the adult stature spread end at the same
    prior (prior_scale_std along the ray), so at the same fused covariance."""
    _, pixels = _person()
    norm = CAMERA.undistort_pixels(pixels)
    fused = []
    for scale_std in (0.0, 0.0584):
        placed = place_root(AVERAGE, norm, None, CAMERA.fx, PlacementSettings(scale_std=scale_std))
        depth = depth_image(_scene(), "32FC1")
        fused.append(
            fuse_depth(placed, AVERAGE, pixels, norm, np.ones(17), depth, (640, 480), SETTINGS)
        )
    np.testing.assert_allclose(fused[0].placement.covariance, fused[1].placement.covariance)


def test_the_fused_body_is_scaled_to_its_distance() -> None:
    """The 2D fixes the root only up to the body's size: at the true distance the placed body
    is the true one, 10 % larger than the lifted pose."""
    fused = _fuse(_scene())
    if not hasattr(fused.placement, "scale"):
        pytest.skip("Placement has no scale field")
    assert fused.placement.scale == pytest.approx(SIZE, rel=5e-3)
    joints, _ = _person()
    np.testing.assert_allclose(fused.placement.joints(AVERAGE), joints, atol=0.02)


# --- through PosePipeline, with the real models --------------------------------------------


def test_pipeline_places_the_player_at_the_depth_image(model_dir, footage):
    """messi5.jpg with a flat depth image 15 % beyond where the body size puts him: the root
    follows the depth (torso surface + offset), the pose says "depth"; a depth image with wrong
    aspect ratio leaves the monocular root and says why."""
    from pose3d_ros.pipeline import PipelineSettings, PosePipeline

    image = cv2.imread(str(footage / "messi5.jpg"))
    camera = CameraModel.from_fov(image.shape[1], image.shape[0], 60.0)
    settings = PipelineSettings(backend="onnxruntime", model_dir=str(model_dir))
    mono = PosePipeline(settings).process(image, camera, 0.0).poses[0]
    plane_m = 1.15 * mono.root[2]
    flat = np.full(image.shape[:2], plane_m, np.float32)

    result = PosePipeline(settings).process(image, camera, 0.0, depth_image(flat, "32FC1"))
    pose = result.poses[0]
    assert pose.placement == "depth", result.warnings
    # The flat scene puts every torso joint's surface at plane_m; the lifted torso's own depth
    # (a leaning player: shoulders nearer than hips) spreads the joints by up to +-0.15 m.
    expected = plane_m + DepthSettings().surface_offset_m
    assert abs(pose.root[2] - expected) < 0.15, (pose.root, expected)
    assert abs(mono.root[2] - expected) > 0.25
    assert pose.root_covariance[2, 2] < mono.root_covariance[2, 2]

    wide = np.full((image.shape[0], 2 * image.shape[1]), plane_m, np.float32)
    result = PosePipeline(settings).process(image, camera, 0.0, depth_image(wide, "32FC1"))
    assert result.poses[0].placement == "size_prior"
    assert any("depth not used" in w and "aspect" in w for w in result.warnings), result.warnings
