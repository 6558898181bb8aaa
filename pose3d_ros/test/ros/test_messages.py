"""Conversions between ROS messages and the core types (pose3d_ros.ros.messages)."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.image_encoding import image_to_array
from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.core.skeletons import joint_set
from pose3d_ros.ros.messages import (
    array_to_image_msg,
    camera_info_to_model,
    camera_model_to_msg,
    image_msg_to_bgr,
    pose_to_skeleton_msg,
    poses_to_msg,
    skeleton_msg_to_pose,
)


def _f32(a: np.ndarray) -> np.ndarray:
    """Values a float32 message field carries exactly."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _pose(name: str = "h36m17", seed: int = 0, **kwargs) -> PersonPose:
    n = joint_set(name).num_joints
    rng = np.random.default_rng(seed)
    joints = rng.normal(size=(n, 3)) + np.array([0.0, 0.0, 4.0])
    joints[5] = np.nan
    values = dict(
        track_id=42,
        joint_set=name,
        keypoints_2d=rng.uniform(0, 640, size=(n, 2)),
        confidence=_f32(rng.uniform(0, 1, size=n)),
        observed=rng.uniform(size=n) > 0.3,
        joints_3d=joints,
        root=[0.1, -0.2, 4.5],
        root_velocity=[0.5, 0.0, -0.25],
        score=0.75,
        bbox=[10.5, 20.0, 200.25, 400.0],
        state=TrackState.COASTING,
        age=17,
    )
    values.update(kwargs)
    return PersonPose(**values)


def _assert_same_pose(a: PersonPose, b: PersonPose) -> None:
    assert (a.track_id, a.joint_set, a.state, a.age) == (b.track_id, b.joint_set, b.state, b.age)
    np.testing.assert_array_equal(a.keypoints_2d, b.keypoints_2d)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    np.testing.assert_array_equal(a.observed, b.observed)
    np.testing.assert_array_equal(a.joints_3d, b.joints_3d)  # NaN == NaN here
    np.testing.assert_array_equal(a.root, b.root)
    np.testing.assert_array_equal(a.root_covariance, b.root_covariance)
    np.testing.assert_array_equal(a.root_velocity, b.root_velocity)
    np.testing.assert_array_equal(a.bbox, b.bbox)
    assert a.score == b.score


def test_pose_round_trip_with_unknown_covariance():
    pose = _pose()
    msg = pose_to_skeleton_msg(pose)
    assert msg.root_covariance[0] == -1.0  # the "unknown" marker of Skeleton.msg
    back = skeleton_msg_to_pose(msg)
    assert back.root_covariance.shape == (3, 3) and np.isnan(back.root_covariance).all()
    _assert_same_pose(pose, back)
    assert np.isnan(back.joints_3d[5]).all() and np.isfinite(back.joints_3d[6]).all()
    assert isinstance(back.state, TrackState) and back.state is TrackState.COASTING


def test_pose_round_trip_with_known_covariance():
    cov = np.diag([0.01, 0.02, 0.5]) + 0.001
    pose = _pose(root_covariance=cov)
    msg = pose_to_skeleton_msg(pose)
    assert list(msg.root_covariance) == pytest.approx(cov.ravel().tolist())
    back = skeleton_msg_to_pose(msg)
    np.testing.assert_array_equal(back.root_covariance, cov)
    _assert_same_pose(pose, back)


def test_skeleton_fields():
    pose = _pose()
    msg = pose_to_skeleton_msg(pose)
    assert (msg.id, msg.tracking_state, msg.age, msg.joint_set) == (42, 2, 17, "h36m17")
    assert msg.score == pytest.approx(0.75)
    assert (msg.bbox.x_min, msg.bbox.y_min, msg.bbox.x_max, msg.bbox.y_max) == (
        10.5,
        20.0,
        200.25,
        400.0,
    )
    assert (msg.root.x, msg.root.y, msg.root.z) == (0.1, -0.2, 4.5)
    kp = msg.keypoints[3]
    assert (kp.position.x, kp.position.y, kp.position.z) == tuple(pose.joints_3d[3])
    assert (kp.pixel.x, kp.pixel.y, kp.pixel.z) == (*pose.keypoints_2d[3], 0.0)
    assert kp.valid == bool(pose.observed[3])


def test_non_finite_confidence_is_sent_as_zero():
    confidence = np.full(17, 0.5)
    confidence[2] = np.nan
    confidence[3] = np.inf
    msg = pose_to_skeleton_msg(_pose(confidence=confidence))
    assert [k.confidence for k in msg.keypoints][:5] == [0.5, 0.5, 0.0, 0.0, 0.5]


@pytest.mark.parametrize("name", ["h36m17", "coco17", "blazepose33"])
def test_keypoint_names_and_indices_follow_the_joint_set(name):
    msg = pose_to_skeleton_msg(_pose(name))
    js = joint_set(name)
    assert msg.joint_set == name
    assert [k.index for k in msg.keypoints] == list(range(js.num_joints))
    assert [k.name for k in msg.keypoints] == list(js.joints)


def test_poses_to_msg_keeps_the_image_header():
    header = Header(stamp=Time(sec=1_700_000_123, nanosec=456_789), frame_id="cam_optical")
    poses = [_pose(seed=1, track_id=3), _pose(seed=2, track_id=7)]
    msg = poses_to_msg(header, poses)
    assert msg.header.stamp.sec == 1_700_000_123 and msg.header.stamp.nanosec == 456_789
    assert msg.header.frame_id == "cam_optical"
    assert header == Header(stamp=Time(sec=1_700_000_123, nanosec=456_789), frame_id="cam_optical")
    assert [s.id for s in msg.skeletons] == [3, 7]
    for pose, sk in zip(poses, msg.skeletons, strict=True):
        _assert_same_pose(pose, skeleton_msg_to_pose(sk))
    assert poses_to_msg(header, []).skeletons == []


# --- camera ------------------------------------------------------------------------------------


def test_camera_model_round_trip():
    camera = CameraModel.from_camera_info_fields(
        640,
        480,
        [500.0, 0.0, 320.5, 0.0, 505.0, 240.25, 0.0, 0.0, 1.0],
        [-0.2, 0.05, 0.001, -0.002, 0.0],
        [1, 0, 0, 0, 1, 0, 0, 0, 1],
        [480.0, 0.0, 321.0, 0.0, 0.0, 485.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        "plumb_bob",
        frame_id="cam_optical",
    )
    header = Header(stamp=Time(sec=5), frame_id="cam_optical")
    msg = camera_model_to_msg(camera, header)
    assert (msg.width, msg.height, msg.distortion_model) == (640, 480, "plumb_bob")
    assert msg.header.frame_id == "cam_optical" and msg.header.stamp.sec == 5
    assert list(msg.k) == [500.0, 0.0, 320.5, 0.0, 505.0, 240.25, 0.0, 0.0, 1.0]
    assert list(msg.p)[:3] == [480.0, 0.0, 321.0]
    back = camera_info_to_model(msg)
    assert back == camera
    np.testing.assert_array_equal(back.D, camera.D)


def test_camera_without_distortion_round_trip():
    camera = CameraModel.from_fov(320, 240, 90.0)
    msg = camera_model_to_msg(camera, Header(frame_id="c"))
    # ROS consumers expect a model name: no distortion is plumb_bob with zero coefficients
    assert msg.distortion_model == "plumb_bob" and list(msg.d) == [0.0] * 5
    back = camera_info_to_model(msg)
    np.testing.assert_array_equal(back.K, camera.K)
    np.testing.assert_array_equal(back.P, camera.P)
    np.testing.assert_array_equal(back.R, np.eye(3))
    assert not back.has_distortion
    assert back.horizontal_fov_deg == pytest.approx(90.0)


# --- images ------------------------------------------------------------------------------------


def _bgr(h: int = 5, w: int = 7) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(("encoding", "channels"), [("bgr8", 3), ("rgb8", 3), ("mono8", 1)])
def test_image_msg_round_trip(encoding, channels):
    bgr = _bgr()
    array = {"bgr8": bgr, "rgb8": bgr[:, :, ::-1], "mono8": bgr[:, :, 1]}[encoding]
    header = Header(stamp=Time(sec=9, nanosec=10), frame_id="cam")
    msg = array_to_image_msg(array, encoding, header)
    assert (msg.height, msg.width, msg.encoding, msg.step) == (5, 7, encoding, 7 * channels)
    assert msg.is_bigendian == 0 and len(msg.data) == 5 * 7 * channels
    assert msg.header.frame_id == "cam" and msg.header.stamp.nanosec == 10
    raw = image_to_array(msg.height, msg.width, msg.encoding, msg.step, msg.data)
    np.testing.assert_array_equal(raw, array)
    shown = image_msg_to_bgr(msg)
    assert shown.shape == (5, 7, 3) and shown.dtype == np.uint8
    if encoding == "mono8":
        np.testing.assert_array_equal(shown, np.repeat(array[:, :, None], 3, axis=2))
    else:
        np.testing.assert_array_equal(shown, bgr)  # channel order restored


def test_image_msg_refuses_a_mismatched_array():
    from pose3d_ros.core.image_encoding import ImageEncodingError

    with pytest.raises(ImageEncodingError, match="mono8"):
        array_to_image_msg(_bgr(), "mono8", Header())
    with pytest.raises(ImageEncodingError, match="uint8"):
        array_to_image_msg(_bgr().astype(np.float32), "bgr8", Header())


def test_placement_constraint_round_trips_with_the_message_constants() -> None:
    from pose3d_msgs.msg import Skeleton
    from pose3d_ros.stages.placement import FLOOR, SIZE_PRIOR

    assert (Skeleton.PLACEMENT_FLOOR, Skeleton.PLACEMENT_SIZE_PRIOR) == (FLOOR, SIZE_PRIOR)
    for value in (FLOOR, SIZE_PRIOR, ""):
        msg = pose_to_skeleton_msg(_pose(placement=value))
        assert msg.placement == value
        assert skeleton_msg_to_pose(msg).placement == value
