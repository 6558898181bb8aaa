"""skeleton_markers_node: SkeletonArray on `skeletons` -> MarkerArray on `markers`.

The same checks run on markers.skeleton_markers in-process (fast) and on the node as a real
process over DDS, started with the package's params file like the launch file starts it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.core.poses import PersonPose
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.ros.markers import MarkerSettings, skeleton_markers
from pose3d_ros.ros.messages import poses_to_msg

pytestmark = pytest.mark.ros

PARAMS_FILE = Path(__file__).resolve().parents[2] / "config" / "camera_markers.yaml"
STAMP = Time(sec=1_700_000_000, nanosec=123_456_789)
FRAME = "test_cam_optical"
THORAX = H36M17.index("thorax")
# thorax missing: 16 joints; the 4 bones at the thorax go, 12 remain
EXPECTED = {3: {"joints": 17, "bone_points": 32}, 7: {"joints": 16, "bone_points": 24}}
# Generous limits for events that must happen (a busy machine is slow, never wrong).
STARTUP_S = 60.0
DELIVERY_S = 60.0


def _skeletons() -> SkeletonArray:
    rng = np.random.default_rng(5)
    poses = []
    for track_id, x in ((3, -0.6), (7, 0.8)):
        joints = rng.normal(scale=0.3, size=(17, 3)) + np.array([x, 0.0, 3.0])
        if track_id == 7:
            joints[THORAX] = np.nan
        poses.append(
            PersonPose(
                track_id=track_id,
                joint_set="h36m17",
                keypoints_2d=np.zeros((17, 2)),
                confidence=np.ones(17),
                observed=np.ones(17, bool),
                joints_3d=joints,
                root=joints[0],
            )
        )
    return poses_to_msg(Header(stamp=STAMP, frame_id=FRAME), poses)


def _xyz(p) -> tuple[float, float, float]:
    return (p.x, p.y, p.z)


def check_markers(out: MarkerArray, msg: SkeletonArray, lifetime_s: float) -> None:
    by_key = {(m.ns, m.id): m for m in out.markers}
    assert len(by_key) == len(out.markers) == 3 * len(msg.skeletons)
    for m in out.markers:
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == (STAMP.sec, STAMP.nanosec)
        assert m.header.frame_id == FRAME
        assert m.action == Marker.ADD
        assert m.lifetime.sec + m.lifetime.nanosec * 1e-9 == pytest.approx(lifetime_s)
    colours = {}
    for sk in msg.skeletons:
        finite = [_xyz(k.position) for k in sk.keypoints if math.isfinite(k.position.x)]
        joints = by_key[("joints", sk.id)]
        assert joints.type == Marker.SPHERE_LIST
        assert [_xyz(p) for p in joints.points] == finite
        assert len(joints.points) == EXPECTED[sk.id]["joints"]

        bones = by_key[("bones", sk.id)]
        assert bones.type == Marker.LINE_LIST
        assert len(bones.points) == EXPECTED[sk.id]["bone_points"]
        assert all(math.isfinite(c) for p in bones.points for c in _xyz(p))
        positions = [_xyz(k.position) for k in sk.keypoints]
        pairs = {
            (positions.index(_xyz(a)), positions.index(_xyz(b)))
            for a, b in zip(bones.points[::2], bones.points[1::2], strict=True)
        }
        assert pairs <= set(H36M17.bones)  # every line is a bone of the tree

        label = by_key[("labels", sk.id)]
        assert label.type == Marker.TEXT_VIEW_FACING
        assert str(sk.id) in label.text
        assert all(math.isfinite(c) for c in _xyz(label.pose.position))
        top = min(p[1] for p in finite)  # y points down: the label sits above the head
        assert label.pose.position.y < top

        assert joints.color == bones.color == label.color
        colours[sk.id] = (joints.color.r, joints.color.g, joints.color.b)
    assert colours[3] != colours[7]


def test_skeleton_markers_function():
    msg = _skeletons()
    out = skeleton_markers(msg, MarkerSettings(lifetime_s=2.0))
    check_markers(out, msg, 2.0)
    assert out.markers[0].color.a == pytest.approx(MarkerSettings().alpha)


def test_node_draws_skeletons_and_validates_parameter_updates(ros_graph):
    received: list[MarkerArray] = []
    qos = QoSProfile(depth=10)
    ros_graph.node.create_subscription(MarkerArray, "markers", received.append, qos)
    pub = ros_graph.node.create_publisher(SkeletonArray, "skeletons", qos)
    ros_graph.start(
        "skeleton_markers_node", "--params-file", str(PARAMS_FILE), "-p", "lifetime_s:=2.0"
    )
    ros_graph.spin_until(
        lambda: pub.get_subscription_count() > 0, STARTUP_S, "the node's subscription"
    )
    msg = _skeletons()
    pub.publish(msg)
    ros_graph.spin_until(lambda: received, DELIVERY_S, "a MarkerArray")
    check_markers(received[0], msg, 2.0)

    client = AsyncParameterClient(ros_graph.node, "skeleton_markers")
    ros_graph.spin_until(lambda: client.services_are_ready(), STARTUP_S, "parameter services")

    def set_parameter(name: str, value):
        future = client.set_parameters([Parameter(name, value=value)])
        ros_graph.spin_until(future.done, DELIVERY_S, f"set {name}")
        (result,) = future.result().results
        return result

    refused = set_parameter("alpha", 1.5)
    assert not refused.successful
    assert "alpha" in refused.reason and "range" in refused.reason, refused.reason
    refused = set_parameter("lifetime_s", -1.0)
    assert not refused.successful and "lifetime_s" in refused.reason, refused.reason
    refused = set_parameter("alpha", "opaque")
    assert not refused.successful and refused.reason

    accepted = set_parameter("alpha", 0.25)
    assert accepted.successful, accepted.reason
    future = client.get_parameters(["alpha", "lifetime_s"])
    ros_graph.spin_until(future.done, DELIVERY_S, "get parameters")
    assert [v.double_value for v in future.result().values] == [0.25, 2.0]

    received.clear()
    pub.publish(msg)
    ros_graph.spin_until(lambda: received, DELIVERY_S, "a MarkerArray after the update")
    check_markers(received[0], msg, 2.0)
    assert {m.color.a for m in received[0].markers} == {0.25}  # exact in float32
