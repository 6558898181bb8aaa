"""Human3.6M loader, cameras and augmentation. Skipped when the data is not on this machine."""

import dataclasses

import numpy as np
import pytest

from pose3d_ros.core.skeletons import H36M17
from pose3d_tools.data import augmentation as aug
from pose3d_tools.data import cameras as cam
from pose3d_tools.data import h36m

try:
    DATA = h36m.resolve_data_file()
    CAMS = h36m.resolve_cameras_file()
except FileNotFoundError:  # pragma: no cover - depends on the machine
    DATA = CAMS = None
needs_data = pytest.mark.skipif(DATA is None, reason="Human3.6M data not available")


@pytest.fixture(scope="module")
def s9():
    return h36m.load_positions(DATA, subjects=["S9"])


@pytest.fixture(scope="module")
def cameras():
    return cam.load_h36m_cameras(CAMS)


def test_select_17_of_32():
    arr = np.arange(2 * 32 * 3, dtype=np.float32).reshape(2, 32, 3)
    out = h36m.select_17(arr)
    assert out.shape == (2, 17, 3)
    np.testing.assert_array_equal(out[:, 1], arr[:, 1])
    np.testing.assert_array_equal(out[:, 16], arr[:, 27])
    with pytest.raises(ValueError):
        h36m.select_17(np.zeros((2, 20, 3)))


def test_loader_reads_32_joint_container(tmp_path):
    raw = {"S1": {"walking_1": np.random.default_rng(0).normal(size=(5, 32, 3))}}
    path = tmp_path / "data_3d_h36m.npz"
    np.savez(path, positions_3d=np.array(raw, dtype=object))
    poses = h36m.load_positions(tmp_path)  # a directory works too
    assert poses["S1"]["walking_1"].shape == (5, 17, 3)
    assert poses["S1"]["walking_1"].dtype == np.float32


def test_splits_are_enforced():
    assert not set(h36m.TRAIN_SUBJECTS) & set(h36m.TEST_SUBJECTS)
    with pytest.raises(ValueError):
        h36m.check_subjects(["S1", "S9"], "train")
    with pytest.raises(ValueError):
        h36m.load_split("test", DATA, ["S1"])


@needs_data
def test_load_subject(s9):
    clips = s9["S9"]
    assert len(clips) > 10
    arr = next(iter(clips.values()))
    assert arr.ndim == 3 and arr.shape[1:] == (17, 3) and arr.dtype == np.float32
    # Metres, z up, floor near 0: the pelvis is about 1 m high, bones have S1's lengths.
    assert 0.7 < arr[:, 0, 2].mean() < 1.2
    bones = H36M17.bone_lengths(arr)
    assert np.all(bones.std(0) < 1e-3)


@needs_data
def test_frame_table_windows(s9):
    table = h36m.FrameTable(s9)
    start = table.clips[1][2]
    idx = table.window_indices(np.array([start, start + 30]), 5, causal=True, step=2)
    np.testing.assert_array_equal(idx[0], [start] * 5)  # edge-padded at the clip start
    np.testing.assert_array_equal(idx[1], start + np.array([22, 24, 26, 28, 30]))
    idx = table.window_indices(np.array([start + 30]), 5, causal=False)
    np.testing.assert_array_equal(idx[0], start + np.arange(28, 33))
    assert len(table.fingerprint) == 16


@needs_data
def test_camera_convention(s9, cameras):
    pose = next(iter(s9["S9"].values()))[:1]
    for c in cam.subject_cameras(cameras, "S9"):
        xc = c.world_to_camera(pose)
        assert 3.5 < xc[0, 0, 2] < 6.0  # 4-5.5 m in front
        uv = c.project(xc)
        assert np.all(np.abs(uv[0, 0] - c.c) < 250)  # near the image centre
        np.testing.assert_allclose(c.camera_to_world(xc), pose, atol=1e-9)
        # Undistortion inverts the real lens distortion.
        np.testing.assert_allclose(c.pixels_to_normalised(uv), xc[..., :2] / xc[..., 2:], atol=1e-9)
        assert np.abs(c.project(xc, distort=False) - uv).max() > 0.1  # distortion is applied


def test_distortion_round_trip_far_from_centre():
    k, p = np.array([-0.2, 0.25, -0.003]), np.array([-0.0014, -0.001])
    xy = np.random.default_rng(0).uniform(-0.4, 0.4, size=(100, 2))
    back = cam.undistort_normalised(cam.distort_normalised(xy, k, p), k, p, iterations=30)
    np.testing.assert_allclose(back, xy, atol=1e-7)


def test_robot_cameras_look_at_the_person():
    rng = np.random.default_rng(0)
    target = np.tile([0.5, -1.0, 1.0], (200, 1))
    c = cam.sample_robot_cameras(rng, target)
    eye = np.tile(np.eye(3), (200, 1, 1))
    np.testing.assert_allclose(c.R @ np.swapaxes(c.R, 1, 2), eye, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(c.R), 1.0, atol=1e-9)
    xc = c.world_to_camera(target[:, None, :])[:, 0]
    assert np.all(xc[:, 2] > 1.0)  # in front
    uv = c.project(xc[:, None, :])[:, 0]
    assert c.in_image(uv[:, None, :]).mean() > 0.95
    assert np.all((c.T[:, 2] >= 0.5) & (c.T[:, 2] <= 1.8))


def test_bone_factors_and_flip():
    rng = np.random.default_rng(0)
    pose = rng.normal(scale=0.3, size=(4, 3, 17, 3))
    f = aug.bone_factors(rng, 4, aug.AugmentConfig())
    out = aug.apply_bone_factors(pose, f)
    ratio = H36M17.bone_lengths(out) / H36M17.bone_lengths(pose)
    np.testing.assert_allclose(ratio, np.broadcast_to(f[:, None], ratio.shape), rtol=1e-9)
    # Left and right bones share their factor.
    bones = list(H36M17.bones)
    i_l, i_r = bones.index((12, 13)), bones.index((15, 16))
    np.testing.assert_allclose(f[:, i_l], f[:, i_r])
    flipped = aug.flip_lr(pose, np.array([True, False, True, False]))
    np.testing.assert_array_equal(flipped[1], pose[1])
    mask = np.array([True, False, True, False])
    np.testing.assert_allclose(aug.flip_lr(flipped, np.ones(4, bool)), aug.flip_lr(pose, ~mask))


def test_placement_keeps_shape():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(8, 2, 17, 3))
    placed = aug.place_in_volume(pose, rng, aug.AugmentConfig())
    np.testing.assert_allclose(H36M17.bone_lengths(placed), H36M17.bone_lengths(pose))
    assert np.all(np.linalg.norm(placed[:, -1, 0, :2], axis=-1) <= 1.5 + 1e-9)
    np.testing.assert_allclose(placed[..., 2], pose[..., 2])


def test_detector_noise_properties():
    rng = np.random.default_rng(0)
    xy = rng.normal(scale=0.1, size=(400, 3, 17, 2))
    cfg = aug.NoiseConfig(clean_prob=0.25, end_missing_prob=0.3)
    noisy, conf = aug.detector_noise(rng, xy, cfg)
    clean = np.all(noisy == xy, axis=(1, 2, 3)) & np.all(conf == 1, axis=(1, 2))
    assert 0.15 < clean.mean() < 0.35
    missing = conf == 0
    assert missing[..., list(H36M17.end_joints)].mean() > missing[..., [7, 8]].mean()
    assert np.all(conf[~clean] <= 1) and np.all(conf >= 0)
    # Pelvis confidence follows the hips (the runtime makes the pelvis from them).
    np.testing.assert_array_equal(conf[..., 0], np.minimum(conf[..., 1], conf[..., 4]))
    err = np.linalg.norm(noisy - xy, axis=-1)[~clean]
    size = aug.size_2d(xy)[~clean][..., None]
    assert np.median(err / size) < 0.1


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_detector_jitter_correlation(rho):
    """jitter_correlation sets the lag-1 correlation of the jitter between frames and leaves its
    spread alone (a stationary AR(1) process has lag-k correlation rho**k)."""
    rng = np.random.default_rng(1)
    xy = np.zeros((3000, 12, 17, 2))
    xy[..., 1:, 0] = np.linspace(-0.2, 0.2, 16)  # a fixed 2D shape so the error scale is fixed
    cfg = aug.NoiseConfig(clean_prob=0.0, jitter_frac=(0.05, 0.05), outlier_prob=0.0,
                          swap_prob=0.0, end_missing_prob=0.0, random_missing_prob=0.0,
                          jitter_correlation=rho)
    noisy, _ = aug.detector_noise(rng, xy, cfg)
    e = (noisy - xy)[:, :, 7, 0]  # one non-end joint, x: (N, T)
    sigma = 0.05 * aug.size_2d(xy[0, 0])
    np.testing.assert_allclose(e.std(axis=0), sigma, rtol=0.06)  # every frame, same spread
    for lag in (1, 3):
        c = np.corrcoef(e[:, 5], e[:, 5 + lag])[0, 1]
        assert abs(c - rho**lag) < 0.05, (lag, c)
    with pytest.raises(ValueError):
        aug.detector_noise(rng, xy[:2], dataclasses.replace(cfg, jitter_correlation=1.0))
