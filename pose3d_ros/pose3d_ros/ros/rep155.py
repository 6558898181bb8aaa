"""REP-155 (ROS4HRI) output: `/humans/bodies/tracked` and the body and joint frames on /tf.

For each frame's people, one hri_msgs/IdsList on `/humans/bodies/tracked` (ids = track ids as
strings, header = the image's) and one tf2_msgs/TFMessage on /tf holding, per person,
`body_<id>` parented to the image's frame (core/body_frames.py: origin at the mid-hip point,
x forward, z up) and every estimated joint as `<link>_<id>` parented to `body_<id>`, all at the
image's stamp. One TFMessage per frame keeps the message count bounded whatever the crowd.
A node serving several cameras lists every camera's bodies in one list (Rep155Publisher).
"""

from __future__ import annotations

import threading
import weakref
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


class _Shared:
    """One node's REP-155 publishers and the latest ids of each camera frame."""

    def __init__(self, node: LifecycleNode) -> None:
        self.tf = node.create_lifecycle_publisher(TFMessage, "/tf", TF_QOS)
        self.tracked = node.create_lifecycle_publisher(IdsList, TRACKED_TOPIC, QoSProfile(depth=5))
        self.users = 0
        self.lock = threading.Lock()
        self.ids_by_frame: dict[str, tuple[float, list[str]]] = {}  # frame_id -> (stamp s, ids)


_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # node -> _Shared
_SHARED_LOCK = threading.Lock()


class Rep155Publisher:
    """Publishes one image's REP-155 output (the publishers are lifecycle publishers: they send
    only while the node is active).

    REP-155's `/humans/bodies/tracked` is *the* list of tracked bodies, so every publisher made
    for one node (one per camera when a node serves several) shares the two topics and lists
    the bodies of every camera: this image's, plus each other camera frame's latest bodies if
    that frame's image is at most `max_age_s` from this one (a camera that stops drops out).
    """

    def __init__(self, node: LifecycleNode, max_age_s: float = 1.0) -> None:
        self._node = node
        self.max_age_s = float(max_age_s)
        with _SHARED_LOCK:
            shared = _SHARED.get(node)
            if shared is None:
                shared = _SHARED[node] = _Shared(node)
            shared.users += 1
        self._shared: _Shared | None = shared

    def publish(self, header: Header, poses: Sequence[PersonPose]) -> None:
        shared = self._shared
        if shared is None:
            return  # destroyed
        tf, tracked = rep155_messages(header, poses)
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        with shared.lock:
            shared.ids_by_frame[header.frame_id] = (stamp, list(tracked.ids))
            others = [
                ids
                for frame, (t, ids) in shared.ids_by_frame.items()
                if frame != header.frame_id and abs(stamp - t) <= self.max_age_s
            ]
        tracked.ids = list(dict.fromkeys([*tracked.ids, *(i for ids in others for i in ids)]))
        if tf.transforms:
            shared.tf.publish(tf)
        shared.tracked.publish(tracked)

    def destroy(self) -> None:
        """Release this user; the last one destroys the publishers."""
        shared, self._shared = self._shared, None
        if shared is None:
            return
        with _SHARED_LOCK:
            shared.users -= 1
            if shared.users > 0:
                return
            _SHARED.pop(self._node, None)
        for pub in (shared.tf, shared.tracked):
            self._node.destroy_lifecycle_publisher(pub)
