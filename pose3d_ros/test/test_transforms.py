"""core/transforms.py: the TF buffer used when tf2_ros is missing.

Expected values are worked out by hand from the frames' definitions (REP-103 body axes, REP-103
optical axes), not from the buffer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pose3d_ros.core.transforms import (
    ExtrapolationError,
    NotConnectedError,
    Transform,
    TransformBuffer,
    UnknownFrameError,
)

# base_link (x forward, y left, z up) <- camera optical frame (x right, y down, z forward):
# optical z = base x, optical x = -base y, optical y = -base z. Columns: optical axes in base.
OPTICAL_IN_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def quat(matrix_or_rotation) -> np.ndarray:
    r = matrix_or_rotation
    return (r if isinstance(r, Rotation) else Rotation.from_matrix(r)).as_quat()


def yaw(deg: float) -> np.ndarray:
    h = math.radians(deg) / 2
    return np.array([0.0, 0.0, math.sin(h), math.cos(h)])


@pytest.fixture
def robot() -> TransformBuffer:
    """world <- base_link (dynamic: at 1 m along x, turned 90 deg left), base_link <- camera
    (static: 1 m up, looking forward), base_link <- camera2 (static: 0.5 m up, looking left)."""
    tf = TransformBuffer()
    for t in (0.0, 10.0):
        tf.set_transform("world", "base_link", t, yaw(90.0), [1.0, 0.0, 0.0])
    tf.set_transform("base_link", "camera", 0.0, quat(OPTICAL_IN_BASE), [0, 0, 1.0], static=True)
    left = Rotation.from_euler("z", 90, degrees=True) * Rotation.from_matrix(OPTICAL_IN_BASE)
    tf.set_transform("base_link", "camera2", 0.0, quat(left), [0, 0, 0.5], static=True)
    return tf


def test_chain_through_the_tree(robot):
    # A point 2 m in front of the camera: in base_link (2, 0, 1); the base is turned 90 deg left,
    # so base x is world y: world (1, 0, 0) + (0, 2, 1) = (1, 2, 1).
    t = robot.lookup("world", "camera", 5.0)
    assert t.apply([0.0, 0.0, 2.0]) == pytest.approx([1.0, 2.0, 1.0])
    # A point 1 m to the camera's right (optical +x) is base -y, i.e. world +x.
    assert t.apply([1.0, 0.0, 0.0]) == pytest.approx([2.0, 0.0, 1.0])
    # The other way round is the inverse.
    back = robot.lookup("camera", "world", 5.0)
    assert back.apply([1.0, 2.0, 1.0]) == pytest.approx([0.0, 0.0, 2.0])


def test_siblings_meet_at_their_common_parent(robot):
    # camera2 looks along base +y from 0.5 m up; a point 1 m in front of it is base (0, 1, 0.5),
    # which camera (at base (0, 0, 1), looking along +x) sees 1 m to its left (optical -x) and
    # 0.5 m below (optical +y), at depth 0.
    t = robot.lookup("camera", "camera2")
    assert t.apply([0.0, 0.0, 1.0]) == pytest.approx([-1.0, 0.5, 0.0])


def test_static_edges_hold_at_any_time(robot):
    a = robot.lookup("base_link", "camera", -1e6)
    b = robot.lookup("base_link", "camera", 1e6)
    assert a.apply([0, 0, 0]) == pytest.approx([0, 0, 1.0])
    assert b.apply([0, 0, 0]) == pytest.approx([0, 0, 1.0])


def test_interpolation_slerps_rotation_and_lerps_translation():
    tf = TransformBuffer()
    tf.set_transform("odom", "base", 0.0, yaw(0.0), [0.0, 0.0, 0.0])
    tf.set_transform("odom", "base", 2.0, yaw(90.0), [2.0, 0.0, 0.0])
    t = tf.lookup("odom", "base", 0.5)  # a quarter of the way: 22.5 deg, 0.5 m
    a = math.radians(22.5)
    assert t.apply([1.0, 0.0, 0.0]) == pytest.approx([0.5 + math.cos(a), math.sin(a), 0.0])
    assert t.translation == pytest.approx([0.5, 0.0, 0.0])
    # Out-of-order samples are sorted; an exact stamp returns the sample.
    tf.set_transform("odom", "base", 1.0, yaw(30.0), [7.0, 0.0, 0.0])
    assert tf.lookup("odom", "base", 1.0).translation == pytest.approx([7.0, 0.0, 0.0])


def test_extrapolation_is_an_error_naming_the_edge_and_the_gap(robot):
    with pytest.raises(ExtrapolationError, match=r"world <- base_link.*future by 2\.000"):
        robot.lookup("world", "camera", 12.0)
    with pytest.raises(ExtrapolationError, match="past"):
        robot.lookup("camera", "world", -0.5)


def test_unknown_and_unconnected_frames():
    tf = TransformBuffer()
    tf.set_transform("a", "b", 0.0, yaw(0), [0, 0, 0], static=True)
    tf.set_transform("c", "d", 0.0, yaw(0), [0, 0, 0], static=True)
    with pytest.raises(UnknownFrameError, match="'floor' does not exist"):
        tf.lookup("floor", "b")
    with pytest.raises(NotConnectedError, match="'d' and 'b' are not connected"):
        tf.lookup("d", "b")
    assert tf.lookup("b", "b").apply([1, 2, 3]) == pytest.approx([1, 2, 3])


def test_latest_common_time_is_the_oldest_newest_sample():
    tf = TransformBuffer()
    for t in (0.0, 1.0, 2.0):
        tf.set_transform("map", "odom", t, yaw(0), [t, 0, 0])
    for t in (0.0, 1.0):
        tf.set_transform("odom", "base", t, yaw(0), [0, 10 * t, 0])
    assert tf.latest_common_time("map", "base") == 1.0
    assert tf.lookup("map", "base").translation == pytest.approx([1.0, 10.0, 0.0])


def test_history_is_bounded_by_time_and_count():
    tf = TransformBuffer(cache_time_s=1.0, max_samples=5)
    for i in range(100):
        tf.set_transform("odom", "base", i * 0.1, yaw(0), [i, 0, 0])
    newest = 9.9
    tf.lookup("odom", "base", newest - 0.4)  # inside the 5 newest samples
    with pytest.raises(ExtrapolationError):
        tf.lookup("odom", "base", newest - 0.5)  # older than the 5 kept samples
    tf = TransformBuffer(cache_time_s=1.0, max_samples=1000)
    for i in range(100):
        tf.set_transform("odom", "base", i * 0.1, yaw(0), [i, 0, 0])
    tf.lookup("odom", "base", newest - 0.95)
    with pytest.raises(ExtrapolationError):
        tf.lookup("odom", "base", newest - 1.2)


def test_reparenting_and_bad_input():
    tf = TransformBuffer()
    tf.set_transform("a", "x", 0.0, yaw(0), [1, 0, 0], static=True)
    tf.set_transform("b", "x", 0.0, yaw(0), [2, 0, 0], static=True)
    with pytest.raises(UnknownFrameError):
        tf.lookup("a", "x")  # a is forgotten: x has a new parent
    assert tf.lookup("b", "x").translation == pytest.approx([2, 0, 0])
    for bad in (
        ("", "x", [0, 0, 0, 1], [0, 0, 0]),
        ("x", "x", [0, 0, 0, 1], [0, 0, 0]),
        ("a", "y", [0, 0, 0, 0], [0, 0, 0]),
        ("a", "y", [0, 0, 0, 1], [np.nan, 0, 0]),
    ):
        with pytest.raises(ValueError):
            tf.set_transform(bad[0], bad[1], 0.0, bad[2], bad[3])


def test_transform_algebra():
    a = Transform(Rotation.from_euler("z", 90, degrees=True), np.array([1.0, 0, 0]))
    b = Transform(Rotation.from_euler("x", 90, degrees=True), np.array([0, 0, 2.0]))
    p = np.array([0.3, -0.2, 0.7])
    assert (a * b).apply(p) == pytest.approx(a.apply(b.apply(p)))
    assert (a * a.inverse()).apply(p) == pytest.approx(p)
