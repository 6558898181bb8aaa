"""REP-155 (ROS4HRI) output: `/humans/bodies/tracked` and the body and joint frames on /tf.

For each frame's people, one hri_msgs/IdsList on `/humans/bodies/tracked` (ids = track ids as
strings, header = the image's) and one tf2_msgs/TFMessage on /tf holding, per person,
`body_<id>` parented to the image's frame (core/body_frames.py: origin at the mid-hip point,
x forward, z up) and every estimated joint as `<link>_<id>` parented to `body_<id>`, all at the
image's stamp. One TFMessage per frame keeps the message count bounded whatever the crowd.
"""

from __future__ import annotations

from collections.abc import Sequence

from hri_msgs.msg import IdsList
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from pose3d_ros.core.body_frames import body_frame
from pose3d_ros.core.poses import PersonPose
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.ros.messages import transform_to_msg
from pose3d_ros.ros.tf_listener import TF_QOS

TRACKED_TOPIC = "/humans/bodies/tracked"


def body_frame_id(track_id: int) -> str:
    return f"body_{track_id}"


def rep155_messages(header: Header, poses: Sequence[PersonPose]) -> tuple[TFMessage, IdsList]:
    """The frame's TF message and tracked-body list. A person whose hips or shoulders were not
    estimated gets no frame and is not listed, so every listed id has its `body_<id>` frame."""
    transforms, ids = [], []
    for pose in poses:
        if pose.joint_set != H36M17.name:
            continue
        frame = body_frame(pose.joints_3d, pose.joint_set)
        if frame is None:
            continue
        body = body_frame_id(pose.track_id)
        ids.append(str(pose.track_id))
        transforms.append(transform_to_msg(header, body, frame.origin, frame.rotation.as_quat()))
        in_body = Header(stamp=header.stamp, frame_id=body)
        for link, xyz in frame.joints.items():  # positions only: identity rotation
            transforms.append(transform_to_msg(in_body, f"{link}_{pose.track_id}", xyz))
    return TFMessage(transforms=transforms), IdsList(header=header, ids=ids)


class Rep155Publisher:
    """The two lifecycle publishers (they send only while the node is active)."""

    def __init__(self, node: LifecycleNode) -> None:
        self._node = node
        self._tf = node.create_lifecycle_publisher(TFMessage, "/tf", TF_QOS)
        self._tracked = node.create_lifecycle_publisher(IdsList, TRACKED_TOPIC, QoSProfile(depth=5))

    def publish(self, header: Header, poses: Sequence[PersonPose]) -> None:
        tf, tracked = rep155_messages(header, poses)
        if tf.transforms:
            self._tf.publish(tf)
        self._tracked.publish(tracked)

    def destroy(self) -> None:
        for pub in (self._tf, self._tracked):
            self._node.destroy_lifecycle_publisher(pub)
