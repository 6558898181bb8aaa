"""INT8 calibration inputs for the lifter (`pose3d-tools calib`): shapes, determinism, the
train/test split, and that real Human3.6M windows are normalised like the runtime's features."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _fake_h36m():
    """Two training subjects of synthetic but skeleton-shaped poses and two cameras."""
    from pose3d_tools.data.cameras import Camera

    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.3, (17, 3)) + np.array([0, 0, 1.0])
    poses = {
        s: {
            f"Walk {i}": (base + 0.02 * rng.standard_normal((60, 17, 3))).astype(np.float32)
            for i in range(2)
        }
        for s in ("S1", "S5")
    }
    cams = []
    for s in ("S1", "S5"):
        R = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # camera looking along world +y
        cams.append(
            Camera(
                R=R,
                T=np.array([0.0, -5.0, 1.0]),
                f=np.array([1145.0, 1144.0]),
                c=np.array([512.0, 515.0]),
                k=np.zeros(3),
                p=np.zeros(2),
                w=np.asarray(1000.0),
                h=np.asarray(1002.0),
                name=f"{s}_54138969",
            )
        )
    return poses, cams


def test_calibration_windows_shape_dtype_determinism():
    from pose3d_tools.calibration import calibration_windows

    poses, cams = _fake_h36m()
    a = calibration_windows(poses, cams, frames=9, count=40, seed=3)
    b = calibration_windows(poses, cams, frames=9, count=40, seed=3)
    c = calibration_windows(poses, cams, frames=9, count=40, seed=4)
    assert a.shape == (40, 9, 17, 3) and a.dtype == np.float32 and a.flags.c_contiguous
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert ((a[..., 2] >= 0) & (a[..., 2] <= 1)).all()  # confidences


def test_calibration_refuses_test_subjects():
    from pose3d_tools.calibration import calibration_windows, h36m_calibration_set

    poses, cams = _fake_h36m()
    with pytest.raises(ValueError, match="S9"):
        calibration_windows({**poses, "S9": poses["S1"]}, cams, frames=1, count=4)
    cams[0].name = "S11_54138969"
    with pytest.raises(ValueError, match="S11"):
        calibration_windows(poses, cams, frames=1, count=4)
    with pytest.raises(ValueError, match="S9"):
        h36m_calibration_set(1, 4, subjects=("S1", "S9"))


def test_calibration_from_real_h36m_and_file(tmp_path):
    from pose3d_tools.calibration import h36m_calibration_set, write_calibration_file
    from pose3d_tools.data.h36m import resolve_data_file

    try:
        resolve_data_file()
    except FileNotFoundError as e:
        pytest.skip(f"Human3.6M data not available: {e}")
    x = h36m_calibration_set(frames=1, count=64, seed=0, subjects=("S1",))
    assert x.shape == (64, 1, 17, 3) and x.dtype == np.float32
    # Normalised features, not metres or pixels: lifter_features divides pelvis-relative 2D by
    # the RMS pelvis distance of the visible joints (pelvis counted, its slot then holding the
    # root ray), so where the pelvis is seen the squared non-pelvis features sum to the number
    # of visible joints.
    xy, seen = x[..., :2], x[..., 2] > 0
    rows = seen[..., 0] & seen.any(-1)
    assert rows.mean() > 0.5
    squares = (np.square(xy[..., 1:, :]).sum(-1) * seen[..., 1:]).sum(-1)
    np.testing.assert_allclose(squares[rows], seen.sum(-1)[rows], rtol=1e-4)
    path = write_calibration_file(tmp_path / "calib.npy", x, {"seed": 0})
    np.testing.assert_array_equal(np.load(path), x)
    assert json.loads(path.with_suffix(".json").read_text())["shape"] == [64, 1, 17, 3]
