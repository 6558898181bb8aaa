"""Tests for pose3d_ros.core.floor: the floor plane from a TF transform and from parameters,
checked against hand-built camera poses (known heights), and the validation of bad planes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pose3d_ros.core.floor import (
    FloorPlane,
    FloorPlaneError,
    floor_from_parameters,
    floor_from_transform,
)


def _pitched_camera(height_m: float, pitch_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """floor <- camera optical frame for a camera ``height_m`` up, looking down by ``pitch``.

    Floor frame: x forward, y left, z up. Optical axes in it: x (right) = -y_floor, z (forward)
    tilted down by the pitch, y (down) = z x x. Columns of R are those axes.
    """
    p = math.radians(pitch_deg)
    right = np.array([0.0, -1.0, 0.0])
    forward = np.array([math.cos(p), 0.0, -math.sin(p)])
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1), np.array([0.3, -0.2, height_m])


def test_level_camera_from_parameters() -> None:
    plane = floor_from_parameters([0.0, -2.0, 0.0], 1.2)  # any length: normalised
    np.testing.assert_allclose(plane.normal, [0.0, -1.0, 0.0])
    assert plane.camera_height_m == 1.2
    # The camera centre is 1.2 m up; a point 1.2 m below it (optical y down) is on the floor;
    # a point 0.5 m above the camera is 1.7 m up, wherever it is in front.
    np.testing.assert_allclose(
        plane.height([[0, 0, 0], [0.4, 1.2, 5.0], [-1, -0.5, 3]]), [1.2, 0.0, 1.7]
    )


def test_transform_of_a_pitched_camera_gives_known_heights() -> None:
    R, t = _pitched_camera(1.5, 20.0)
    plane = floor_from_transform(R, t)
    assert np.linalg.norm(plane.normal) == pytest.approx(1.0)
    assert plane.offset_m == pytest.approx(1.5)
    # Along the optical axis the height drops by sin(20 deg) per metre: the axis meets the floor
    # at 1.5 / sin(20 deg) = 4.386 m.
    hit = 1.5 / math.sin(math.radians(20.0))
    assert plane.height([0.0, 0.0, hit]) == pytest.approx(0.0, abs=1e-12)
    assert plane.height([0.0, 0.0, 2.0]) == pytest.approx(1.5 - 2.0 * math.sin(math.radians(20)))
    # Straight up in the floor frame, 1 m above the camera: R^T (up) in the optical frame.
    above = R.T @ np.array([0.0, 0.0, 1.0])
    assert plane.height(above) == pytest.approx(2.5)
    # "Up" in the optical frame of a camera pitched down points mostly along -y, partly -z.
    assert plane.normal[1] < -0.9 and plane.normal[2] < 0


def test_transform_heights_match_the_floor_frame_z() -> None:
    R, t = _pitched_camera(0.8, -10.0)  # looking up a little
    plane = floor_from_transform(R, t)
    pts = np.random.default_rng(1).normal(0.0, 3.0, (20, 3))
    np.testing.assert_allclose(plane.height(pts), (pts @ R.T + t)[:, 2], atol=1e-12)


@pytest.mark.parametrize(
    ("normal", "offset", "words"),
    [
        ([0.0, -0.5, 0.0], 1.0, "unit vector"),
        ([0.0, np.nan, 1.0], 1.0, "3 finite"),
        ([0.0, 1.0], 1.0, "3 finite"),
        ([0.0, -1.0, 0.0], np.inf, "finite"),
    ],
)
def test_bad_planes_are_rejected(normal, offset, words: str) -> None:
    with pytest.raises(FloorPlaneError, match=words):
        FloorPlane(np.asarray(normal, dtype=float), offset)


def test_bad_parameters_and_transforms_are_rejected() -> None:
    with pytest.raises(FloorPlaneError, match="zero vector"):
        floor_from_parameters([0.0, 0.0, 0.0], 1.0)
    with pytest.raises(FloorPlaneError, match="finite"):
        floor_from_parameters([0.0, -1.0, 0.0], float("nan"))
    R, t = _pitched_camera(1.0, 5.0)
    with pytest.raises(FloorPlaneError, match="proper rotation"):
        floor_from_transform(2.0 * R, t)
    with pytest.raises(FloorPlaneError, match="proper rotation"):
        floor_from_transform(R @ np.diag([1.0, 1.0, -1.0]), t)  # a reflection
    with pytest.raises(FloorPlaneError, match="expected rotation"):
        floor_from_transform(R, t[:2])


def test_plane_is_immutable() -> None:
    plane = floor_from_parameters([0.0, -1.0, 0.0], 1.0)
    with pytest.raises(ValueError):
        plane.normal[0] = 1.0
