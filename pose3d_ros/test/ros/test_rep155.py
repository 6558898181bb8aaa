"""ros/rep155.py without DDS: the messages of one image, and one tracked list per node.

A node serving several cameras makes one Rep155Publisher per camera; REP-155's
`/humans/bodies/tracked` is nevertheless the one list of tracked bodies, so the publishers of
one node share their topics and list every camera's recent bodies.
"""

from __future__ import annotations

import numpy as np
import pytest
from known_poses import SKELETON_H36M17
from std_msgs.msg import Header

from pose3d_ros.core.poses import PersonPose
from pose3d_ros.ros.rep155 import TRACKED_TOPIC, Rep155Publisher, rep155_messages


class FakePublisher:
    def __init__(self, topic: str) -> None:
        self.topic, self.sent = topic, []

    def publish(self, msg) -> None:
        self.sent.append(msg)


class FakeNode:
    def __init__(self) -> None:
        self.publishers: dict[str, FakePublisher] = {}
        self.destroyed: list[str] = []

    def create_lifecycle_publisher(self, _type, topic, _qos):
        assert topic not in self.publishers, f"a second publisher on {topic}"
        self.publishers[topic] = FakePublisher(topic)
        return self.publishers[topic]

    def destroy_lifecycle_publisher(self, pub) -> None:
        self.destroyed.append(pub.topic)


def person(track_id: int, x: float = 0.0) -> PersonPose:
    return PersonPose(
        track_id=track_id,
        joint_set="h36m17",
        keypoints_2d=np.zeros((17, 2)),
        confidence=np.ones(17),
        observed=np.ones(17, bool),
        joints_3d=SKELETON_H36M17 + np.array([x, 0.0, 4.0]),
    )


def header(frame_id: str, t: float) -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = int(t), round((t % 1) * 1e9)
    return h


def test_one_image_gives_body_and_joint_frames_and_the_list():
    no_hips = person(9)
    no_hips.joints_3d[[1, 4]] = np.nan  # r_hip, l_hip
    tf, tracked = rep155_messages(header("cam", 5.0), [person(3), person(4, 1.0), no_hips])
    assert tracked.ids == ["3", "4"]  # no frame for 9, so not listed
    bodies = [t for t in tf.transforms if t.child_frame_id.startswith("body_")]
    assert [b.child_frame_id for b in bodies] == ["body_3", "body_4"]
    assert all(b.header.frame_id == "cam" for b in bodies)
    assert len(tf.transforms) == 2 * 18
    # body_3 at the mid-hip point of the skeleton (camera frame)
    mid_hip = (SKELETON_H36M17[1] + SKELETON_H36M17[4]) / 2 + np.array([0.0, 0.0, 4.0])
    t = bodies[0].transform.translation
    assert [t.x, t.y, t.z] == pytest.approx(mid_hip)


def test_cameras_of_one_node_share_one_tracked_list():
    node = FakeNode()
    front, back = Rep155Publisher(node), Rep155Publisher(node)
    tracked = node.publishers[TRACKED_TOPIC]
    front.publish(header("front_optical", 10.0), [person(1)])
    back.publish(header("back_optical", 10.1), [person(1001), person(1002, 1.0)])
    assert tracked.sent[-1].ids == ["1001", "1002", "1"]
    assert tracked.sent[-1].header.frame_id == "back_optical"
    front.publish(header("front_optical", 10.2), [])
    assert tracked.sent[-1].ids == ["1001", "1002"]  # nobody in front any more
    back.publish(header("back_optical", 12.0), [person(1001)])
    assert tracked.sent[-1].ids == ["1001"]  # the front camera's list is 1.8 s old
    assert len(node.publishers["/tf"].sent) == 3  # one TFMessage per image with bodies
    front.destroy()
    front.destroy()  # twice is harmless
    assert node.destroyed == []  # the back camera still publishes
    back.destroy()
    assert sorted(node.destroyed) == sorted(["/tf", TRACKED_TOPIC])
