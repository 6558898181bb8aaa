"""The generated pose3d_msgs types: fields, constants and a CDR round trip through rclpy."""

from __future__ import annotations

import math

from geometry_msgs.msg import Point
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

from pose3d_msgs.msg import BoundingBox2D, Keypoint, Skeleton, SkeletonArray


def test_tracking_state_constants():
    assert (Skeleton.TRACK_TENTATIVE, Skeleton.TRACK_CONFIRMED, Skeleton.TRACK_COASTING) == (
        0,
        1,
        2,
    )


def test_round_trip_through_cdr():
    header = Header(frame_id="head_camera_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 1700000000, 123456789
    kp = Keypoint(
        index=13,
        name="l_wrist",
        position=Point(x=0.1, y=-0.2, z=float("nan")),
        pixel=Point(x=320.5, y=200.25),
        confidence=0.75,
        valid=False,
    )
    sk = Skeleton(
        id=42,
        tracking_state=Skeleton.TRACK_COASTING,
        age=7,
        joint_set="h36m17",
        keypoints=[kp],
        root=Point(x=0.0, y=0.1, z=3.5),
        root_covariance=[0.01, 0, 0, 0, 0.01, 0, 0, 0, 0.2],
        score=0.9,
        bbox=BoundingBox2D(x_min=10.0, y_min=20.0, x_max=110.0, y_max=300.0),
    )
    msg = SkeletonArray(header=header, skeletons=[sk])
    back = deserialize_message(serialize_message(msg), SkeletonArray)
    assert back.header == header
    b = back.skeletons[0]
    assert (b.id, b.tracking_state, b.age, b.joint_set) == (42, 2, 7, "h36m17")
    assert b.keypoints[0].name == "l_wrist" and b.keypoints[0].index == 13
    assert math.isnan(b.keypoints[0].position.z) and not b.keypoints[0].valid
    assert b.root.z == 3.5 and list(b.root_covariance)[8] == 0.2
    assert (b.bbox.x_min, b.bbox.y_max) == (10.0, 300.0)
