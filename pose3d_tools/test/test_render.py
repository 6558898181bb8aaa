"""Rendered training crops (pose3d_tools.data.render): ray-cast capsule geometry against the
pinhole projection, the crop contract, held-out subjects, determinism, occluders, licences."""

from __future__ import annotations

import numpy as np
import pytest
from known_poses import SKELETON_H36M17

from pose3d_ros.stages.crops import crop_to_camera_axes, roi_transforms, rois_from_boxes
from pose3d_tools.data.backgrounds import SOURCES, Backgrounds
from pose3d_tools.data.cameras import Camera
from pose3d_tools.data.h36m import TEST_SUBJECTS, default_data_dir
from pose3d_tools.data.render import (
    ARRAYS,
    RenderConfig,
    Renderer,
    build_dataset,
    cast_rays,
    crop_rays,
    image_to_crop,
    joint_visibility,
    load_dataset,
    project_pinhole,
    sample_rng,
)

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
LICENCES = {"GPL-2+", "Apache-2.0 AND BSD-3-Clause", "CC0-1.0", "public-domain"}
HAVE_DATA = (default_data_dir() / "cameras.json").is_file()


def _crop_around(points_px: np.ndarray, n: int, angle: float = 0.0):
    box = np.concatenate([points_px.min(0), points_px.max(0)])
    roi = rois_from_boxes(box, 1.6)[0]
    roi[3] = angle
    rays, M = crop_rays(K, roi, n)
    return roi, rays, M


@pytest.mark.parametrize("angle", [0.0, 0.4])
def test_a_capsule_silhouette_is_centred_on_its_projected_midpoint_with_its_projected_width(
    angle,
):
    a, b, r = np.array([0.3, -0.2, 3.0]), np.array([0.7, -0.1, 3.0]), 0.06
    ends_px = project_pinhole(K, np.stack([a, b]))
    roi, rays, M = _crop_around(ends_px, 128, angle)
    _, index = cast_rays(rays, K, M, a[None], b[None], np.array([r]))
    v, u = np.nonzero(index == 0)
    centroid_image = M @ np.array([u.mean(), v.mean(), 1.0])
    mid_px = project_pinhole(K, 0.5 * (a + b))
    assert np.linalg.norm(centroid_image - mid_px) * 128 / roi[2] < 1.0  # crop pixels
    # Area (crop px): a 2r x |ab| rectangle and a disc of radius r, at 500 px/m / 3 m.
    px_per_m = 500.0 / 3.0 * 128 / roi[2]
    expected = (2 * r * np.linalg.norm(b - a) + np.pi * r**2) * px_per_m**2
    assert abs(len(u) - expected) < 0.05 * expected


def test_the_ray_on_the_optical_axis_meets_a_transverse_capsule_at_its_front():
    # An odd crop centred on the principal point: its middle pixel's ray is (0, 0, 1).
    roi = np.array([320.0, 240.0, 65.0, 0.0])
    rays, M = crop_rays(K, roi, 65)
    np.testing.assert_allclose(rays[32, 32], [0.0, 0.0, 1.0], atol=1e-12)
    depth, _ = cast_rays(rays, K, M, np.array([[-0.2, 0.0, 3.0]]), np.array([[0.2, 0.0, 3.0]]),
                         np.array([0.1]))
    assert depth[32, 32] == pytest.approx(2.9, abs=1e-9)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_the_nearer_capsule_hides_the_farther_one_whatever_their_order(order):
    near = (np.array([-0.3, 0.0, 3.0]), np.array([0.3, 0.0, 3.0]), 0.05)  # horizontal
    far = (np.array([0.0, -0.3, 4.0]), np.array([0.0, 0.3, 4.0]), 0.08)  # vertical, behind
    caps = [near, far]
    a = np.stack([caps[i][0] for i in order])
    b = np.stack([caps[i][1] for i in order])
    r = np.array([caps[i][2] for i in order])
    roi = np.array([320.0, 240.0, 129.0, 0.0])
    rays, M = crop_rays(K, roi, 129)
    depth, index = cast_rays(rays, K, M, a, b, r)
    near_id, far_id = order.index(0), order.index(1)
    assert index[64, 64] == near_id  # the crossing, on the optical axis
    assert depth[64, 64] == pytest.approx(2.95, abs=1e-9)
    # Above the horizontal capsule only the vertical one is there: 0.1 m up at 4 m = 12.5 px.
    assert index[64 - 12, 64] == far_id
    assert depth[64 - 12, 64] < 4.0


def test_visibility_is_false_under_an_occluder_behind_another_part_or_far_behind_its_own():
    n = 10
    depth = np.full((n, n), 2.93)  # everywhere: part 0, 7 cm in front of the joints at 3 m
    index = np.zeros((n, n), np.int64)
    depth[5, 5], index[5, 5] = 2.5, 1  # part 1 (not joint 1's) in front of joint 1
    depth[2, 6] = 2.5  # joint 2's own part 0, but 0.5 m in front: the far side hidden
    occluded = np.zeros((n, n), bool)
    occluded[7, 7] = True
    member = np.zeros((17, 2), bool)
    member[:, 0] = True
    joints_2d = np.zeros((17, 2))
    joints_2d[:5] = [[7.2, 6.8], [5.0, 5.0], [6.0, 2.0], [-1.0, 3.0], [3.0, 3.0]]
    visible = joint_visibility(joints_2d, np.full(17, 3.0), depth, index, occluded,
                               np.full(17, 0.05), member, np.ones(17, bool))
    assert visible[:5].tolist() == [False, False, False, False, True]


# -- a renderer over one known pose -----------------------------------------------------------
def _world_pose() -> np.ndarray:
    """The known skeleton (x right, y down, z forward) stood up in a z-up world, pelvis 0.95 m."""
    s = SKELETON_H36M17
    return np.stack([s[:, 0], -s[:, 2], 0.95 - s[:, 1]], -1)


def _camera() -> Camera:
    # Looking along world +y from 4 m away at 1.2 m height: camera x = world x, y = -z.
    R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    return Camera(R=R, T=np.array([0.0, -4.0, 1.2]), f=np.array([600.0, 600.0]),
                  c=np.array([320.0, 240.0]), k=np.zeros(3), p=np.zeros(2), w=np.array(640.0),
                  h=np.array(480.0), name="test")


def _backgrounds() -> Backgrounds:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(2)]
    return Backgrounds(images, [{"file": f"noise{i}", "licence": "CC0-1.0"} for i in range(2)])


def _renderer(**cfg) -> Renderer:
    return Renderer(_world_pose()[None], [_camera()], _backgrounds(),
                    RenderConfig(robot_camera_prob=0.0, **cfg), subjects=("S1",))


@pytest.mark.parametrize("rotation_prob", [0.0, 1.0])
def test_targets_are_root_relative_crop_axes_that_project_onto_the_2d_joints(rotation_prob):
    renderer = _renderer(rotation_prob=rotation_prob)
    for i in range(4):
        s = renderer.sample(sample_rng(1, i))
        assert s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8
        np.testing.assert_array_equal(s.joints[0], 0.0)
        # Back to the camera frame by the contract's inverse, put at the root, projected with
        # the pinhole camera, then into the crop by roi_transforms: the stored 2D joints.
        cam = crop_to_camera_axes(s.joints.astype(np.float64), s.roi[3]) + s.root
        px = project_pinhole(s.K, cam)
        crop = image_to_crop(roi_transforms(s.roi, 128)[0], px)
        np.testing.assert_allclose(crop, s.joints_2d, atol=1e-3)
        # The person's true size: the pelvis-head distance is a real bone chain (>0.5 m).
        assert 0.5 < np.linalg.norm(s.joints[10]) < 1.0
        # The joints' box was scaled by 1.4 (+- jitter) into the crop: they fill ~1/1.4 of it.
        extent = (s.joints_2d.max(0) - s.joints_2d.min(0)).max()
        assert 128 / 1.4 * 0.8 < extent < 128 / 1.4 * 1.25


def test_without_augmentation_the_target_is_the_camera_frame_pose_minus_root_in_crop_axes():
    from pose3d_ros.stages.crops import camera_to_crop_axes
    from pose3d_tools.data.augmentation import AugmentConfig

    fixed = AugmentConfig(scale_range=(1.0, 1.0), bone_std=0.0, flip_prob=0.0, max_offset_m=0.0,
                          random_heading=False)
    renderer = _renderer(rotation_prob=1.0, augment=fixed)
    camera_frame = _camera().world_to_camera(_world_pose())
    for i in range(3):
        s = renderer.sample(sample_rng(2, i))
        assert abs(s.roi[3]) > 0
        np.testing.assert_allclose(s.root, camera_frame[0], atol=1e-9)
        expected = camera_to_crop_axes(camera_frame - camera_frame[0], s.roi[3])
        np.testing.assert_allclose(s.joints, expected, atol=1e-6)


def test_same_seed_gives_identical_samples_and_another_seed_does_not():
    renderer = _renderer()
    a = [renderer.sample(sample_rng(7, i)) for i in range(3)]
    b = [renderer.sample(sample_rng(7, i)) for i in range(3)]
    c = renderer.sample(sample_rng(8, 0))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.joints, y.joints)
        np.testing.assert_array_equal(x.visible, y.visible)
    assert not np.array_equal(a[0].image, c.image)


def test_occluders_hide_joints():
    def visible_fraction(prob: float) -> float:
        renderer = _renderer(occluder_prob=prob, max_occluders=2, occluder_max_cover=1.0)
        return float(np.mean([renderer.sample(sample_rng(3, i)).visible for i in range(30)]))

    assert visible_fraction(1.0) < visible_fraction(0.0) - 0.05


def test_a_built_dataset_is_memory_mappable_with_its_meta(tmp_path):
    meta = build_dataset(_renderer(), 5, tmp_path, seed=4, split="train", chunk=2, log=False)
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    assert images.shape == (5, 128, 128, 3) and images.dtype == np.uint8
    for name, (shape, dtype) in ARRAYS.items():
        arr = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
        assert arr.shape == (5, *shape(128)) and arr.dtype == dtype
    # Chunking does not change a sample: sample 3 rendered alone is the stored one.
    np.testing.assert_array_equal(images[3], _renderer().sample(sample_rng(4, 3)).image)
    arrays, on_disk = load_dataset(tmp_path)
    assert set(arrays) == set(ARRAYS) and arrays["joints"].shape == (5, 17, 3)
    assert on_disk["seed"] == 4 and on_disk["subjects"] == ["S1"] and meta["n"] == 5
    assert all(src["licence"] for src in on_disk["backgrounds"])


def test_every_background_source_has_a_recorded_licence():
    assert len(SOURCES) >= 20
    for package, path, licence, holder in SOURCES:
        assert package in ("opencv-doc", "mate-backgrounds", "scikit-image==0.26.0")
        assert path and holder
        assert licence in LICENCES


@pytest.mark.skipif(not HAVE_DATA, reason="Human3.6M data not available")
def test_the_test_split_renders_only_s9_and_s11():
    from pose3d_tools.data.h36m import FrameTable, load_positions

    renderer = Renderer.for_split("test", backgrounds=_backgrounds())
    assert set(renderer.subjects) == set(TEST_SUBJECTS)
    assert {c.name.split("_")[0] for c in renderer.cameras} == set(TEST_SUBJECTS)
    held_out = FrameTable(load_positions(subjects=TEST_SUBJECTS)).positions
    np.testing.assert_array_equal(renderer.poses, held_out)
    s = renderer.sample(sample_rng(0, 0))
    assert s.image.shape == (128, 128, 3)


def test_occluders_paint_over_the_pixels_they_report_and_nothing_else():
    from pose3d_tools.data.render import apply_occluders

    n = 64
    image = np.full((n, n, 3), 77.0, np.float32)
    body = np.zeros((n, n), bool)
    body[10:54, 24:40] = True
    joints_2d = np.tile([[32.0, 32.0]], (17, 1))
    cfg = RenderConfig(max_occluders=2, occluder_photo_prob=0.0, occluder_max_cover=1.0)
    covered = 0
    for i in range(10):
        img = image.copy()
        occluded = apply_occluders(np.random.default_rng(i), img, joints_2d, body,
                                   _backgrounds(), cfg)
        changed = (img != 77.0).any(-1)
        assert not changed[~occluded].any()  # nothing painted outside the reported mask
        covered += np.count_nonzero(occluded & body)
    assert covered > 0


def test_rendering_into_a_rotated_crop_equals_warping_the_rendered_image_by_the_contract():
    import cv2

    from pose3d_tools.data.body_shapes import body_parts

    # A 256 x 256 image: the ROI centred on the middle pixel with side 256 maps crop = image.
    k_img = np.array([[300.0, 0.0, 127.5], [0.0, 300.0, 127.5], [0.0, 0.0, 1.0]])
    joints = SKELETON_H36M17 + np.array([0.1, 0.05, 3.5])
    parts = body_parts(joints, np.array([0.0, -1.0, 0.0]))
    full_roi = np.array([127.5, 127.5, 256.0, 0.0])
    rays, M = crop_rays(k_img, full_roi, 256)
    np.testing.assert_allclose(M, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    _, full = cast_rays(rays, k_img, M, parts.a, parts.b, parts.r)
    uv = project_pinhole(k_img, joints)
    roi = rois_from_boxes(np.concatenate([uv.min(0), uv.max(0)]), 1.4)[0]
    roi[3] = 0.3
    S = 96
    warped = cv2.warpAffine((full >= 0).astype(np.uint8) * 255, roi_transforms(roi, S)[0],
                            (S, S), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) >= 128
    rays_c, M_c = crop_rays(k_img, roi, S)
    _, direct = cast_rays(rays_c, k_img, M_c, parts.a, parts.b, parts.r)
    direct = direct >= 0
    # Resampling differs only along the outline: a few percent of the silhouette.
    assert np.count_nonzero(direct != warped) < 0.05 * np.count_nonzero(direct)
    assert np.count_nonzero(direct) > 0.1 * S * S
