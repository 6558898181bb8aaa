"""Fuzzing a running pose3d_node's parameter updates over DDS (the validation functions
themselves are fuzzed in ../test_fuzz_parameters.py).

Hypothesis draws a handful of bad parameter sets (wrong types, NaN/inf, out of range, not one
of the choices, read-only settings while active); another process sends each through the
node's `set_parameters` service. Every parameter must be refused with a reason, the node's value
must stay as it was, and the node must keep answering (parameters, lifecycle state) and exit
cleanly at the end (ros_graph fails the test otherwise).
"""

from __future__ import annotations

import math

import cv2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import field_type, flat_settings
from pose3d_ros.ros.messages import array_to_image_msg, camera_model_to_msg
from pose3d_ros.ros.pose3d_node import Pose3DNodeSettings

pytestmark = [pytest.mark.ros, pytest.mark.timeout(300)]

NODE = "pose3d"
STARTUP_S = 90.0  # imports + three ONNX models on two busy cores
ANSWER_S = 30.0
SETTINGS = flat_settings(Pose3DNodeSettings)
INT64 = st.integers(-(2**63), 2**63 - 1)


def _wrong_type(s) -> st.SearchStrategy:
    """Values of another ROS type than the setting's (rclpy's own type check refuses them)."""
    return {
        bool: st.one_of(INT64, st.floats(), st.text(max_size=6)),
        int: st.one_of(st.floats(), st.text(max_size=6), st.booleans()),
        float: st.one_of(st.text(max_size=6), st.booleans(), INT64),
        str: st.one_of(INT64, st.floats(), st.booleans(),
                       st.lists(st.floats(allow_nan=False), min_size=1, max_size=3)),
    }[field_type(s.field)]  # fmt: skip


def _invalid(s) -> st.SearchStrategy | None:
    """Values of the right type that the setting refuses: NaN/inf, out of range, not one of the
    choices, or anything for a read-only setting while the node is active."""
    kind, spec = field_type(s.field), s.spec
    options = []
    if spec.read_only:
        options.append(st.just(s.field.default))
    if spec.choices is not None:
        options.append(st.text(max_size=8).filter(lambda v: v not in spec.choices))
    if kind is float:
        options.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    if spec.range is not None and kind is float:
        lo, hi = spec.range
        options.append(st.floats(max_value=lo, exclude_max=True, allow_infinity=False))
        options.append(st.floats(min_value=hi, exclude_min=True, allow_infinity=False))
    if spec.range is not None and kind is int:
        lo, hi = (int(x) for x in spec.range)
        options.append(st.integers(-(2**63), lo - 1))
        if hi < 2**63 - 1:
            options.append(st.integers(hi + 1, 2**63 - 1))
    return st.one_of(*options) if options else None


@st.composite
def bad_parameter_sets(draw) -> list[tuple[str, object]]:
    """One to three settings, each with a value it must refuse; the first is always of the
    right type, so the node's own validation (not only rclpy's type check) is exercised."""
    first = draw(st.sampled_from([s for s in SETTINGS if _invalid(s) is not None]))
    others = draw(st.lists(st.sampled_from(SETTINGS), max_size=2, unique_by=lambda s: s.name))
    batch = [(first.name, draw(_invalid(first)))]
    for s in others:
        if s.name != first.name:
            bad = _invalid(s)
            value = draw(_wrong_type(s) if bad is None else st.one_of(bad, _wrong_type(s)))
            batch.append((s.name, value))
    return batch


def _expect_skeletons(graph, image) -> None:
    """Send the image (with a camera_info) until the node answers it on `skeletons`."""
    node = graph.node
    h, w = image.shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)
    image_pub = node.create_publisher(Image, "image", QoSProfile(depth=10))
    info_pub = node.create_publisher(CameraInfo, "camera_info", QoSProfile(depth=10))
    answers: list[SkeletonArray] = []
    node.create_subscription(SkeletonArray, "skeletons", answers.append, 50)
    msg = array_to_image_msg(image, "bgr8", Header())

    def send_and_check() -> bool:
        if not answers:
            header = Header(stamp=node.get_clock().now().to_msg(), frame_id="cam")
            info_pub.publish(camera_model_to_msg(camera, header))
            msg.header = header
            image_pub.publish(msg)
            graph.spin_for(0.5)
        return bool(answers)

    graph.spin_until(send_and_check, ANSWER_S, "an answer on `skeletons`")


def test_bad_parameter_sets_are_refused_with_a_reason_and_the_node_keeps_answering(
    ros_graph, footage
):
    ros_graph.start("pose3d_node")
    ros_graph.spin_until(
        lambda: ros_graph.lifecycle_state(NODE, STARTUP_S) == "active", STARTUP_S, "active"
    )
    client = AsyncParameterClient(ros_graph.node, NODE)
    ros_graph.spin_until(client.services_are_ready, ANSWER_S, "parameter services")
    names = [s.name for s in SETTINGS]

    def values() -> dict:
        future = client.get_parameters(names)
        ros_graph.spin_until(future.done, ANSWER_S, "get_parameters")
        got = future.result().values
        return {n: parameter_value_to_python(v) for n, v in zip(names, got, strict=True)}

    before = values()
    sent: list = []
    reasons: list[str] = []

    @settings(max_examples=8)
    @given(bad_parameter_sets())
    def send(batch) -> None:
        future = client.set_parameters([Parameter(n, value=v) for n, v in batch])
        ros_graph.spin_until(future.done, ANSWER_S, f"set_parameters {batch}")
        results = future.result().results
        assert len(results) == len(batch)
        for (name, value), result in zip(batch, results, strict=True):
            assert not result.successful, f"{name}={value!r} was accepted"
            assert result.reason.strip(), f"{name}={value!r} refused without a reason"
        sent.append(batch)
        reasons.extend(r.reason for r in results)

    send()
    assert len(sent) == 8
    # Some refusals come from the node's validation, not only from rclpy's descriptors.
    node_checks = ("read-only", "is not one of", "must be finite")
    assert any(c in r for r in reasons for c in node_checks), reasons
    after = values()
    for name in names:
        a, b = before[name], after[name]
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), name
    assert ros_graph.lifecycle_state(NODE, ANSWER_S) == "active"
    assert ros_graph.node.count_subscribers("image") == 1
    image = cv2.imread(str(footage / "messi5.jpg"))
    assert image is not None
    _expect_skeletons(ros_graph, image)
