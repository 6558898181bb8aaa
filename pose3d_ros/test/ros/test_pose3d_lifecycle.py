"""pose3d_node as a managed (lifecycle) node, driven from another process over DDS.

The test process plays the lifecycle manager: it asks `pose3d/get_state` and requests transitions
through `pose3d/change_state`, as nav2's lifecycle manager or `ros2 lifecycle set` would, and
checks what each state means on the graph (subscriptions, publishers, answers).
"""

from __future__ import annotations

import shutil

import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.assets import find_model_dir
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.ros.messages import array_to_image_msg, camera_model_to_msg

pytestmark = pytest.mark.ros

NODE = "pose3d"
STARTUP_S = 90.0  # imports + three ONNX models on two busy cores
ANSWER_S = 45.0




class Camera:
    """The test's camera: image + camera_info with one header, re-sent until answered."""

    def __init__(self, graph, image) -> None:
        self.graph = graph
        node = graph.node
        self.image = array_to_image_msg(image, "bgr8", Header())
        h, w = image.shape[:2]
        self.camera = CameraModel.from_fov(w, h, 60.0)
        self.image_pub = node.create_publisher(Image, "image", QoSProfile(depth=10))
        self.info_pub = node.create_publisher(
            type(camera_model_to_msg(self.camera, Header())), "camera_info", QoSProfile(depth=10)
        )
        self.answers: list[SkeletonArray] = []
        node.create_subscription(SkeletonArray, "skeletons", self.answers.append, 50)

    def send(self) -> tuple[int, int]:
        header = Header(stamp=self.graph.node.get_clock().now().to_msg(), frame_id="cam")
        self.info_pub.publish(camera_model_to_msg(self.camera, header))
        self.image.header = header
        self.image_pub.publish(self.image)
        return (header.stamp.sec, header.stamp.nanosec)

    def expect_answer(self) -> SkeletonArray:
        sent: set[tuple[int, int]] = set()

        def answered() -> SkeletonArray | None:
            return next(
                (m for m in self.answers if (m.header.stamp.sec, m.header.stamp.nanosec) in sent),
                None,
            )

        def send_and_check() -> bool:
            if answered() is None:
                sent.add(self.send())
                self.graph.spin_for(0.5)
            return answered() is not None

        self.graph.spin_until(send_and_check, ANSWER_S, "an answer on `skeletons`")
        return answered()


def _subscribers(graph, topic: str) -> int:
    return graph.node.count_subscribers(topic)


def test_managed_node_waits_for_the_manager_and_follows_every_transition(ros_graph, messi):
    """autostart:=false: unconfigured until told; configure loads the models and creates the
    (inactive) publishers; activate subscribes and answers; deactivate unsubscribes; activate
    again answers without reloading; cleanup returns to unconfigured."""
    proc = ros_graph.start("pose3d_node", "-p", "autostart:=false")
    assert ros_graph.lifecycle_state(NODE, STARTUP_S) == "unconfigured"
    # Nothing of the pipeline exists yet: no models loaded, no topics.
    assert "pipeline ready" not in proc.log()
    assert _subscribers(ros_graph, "image") == 0
    assert ros_graph.node.count_publishers("skeletons") == 0

    assert ros_graph.change_state(NODE, "configure")
    assert ros_graph.lifecycle_state(NODE) == "inactive"
    assert "pipeline ready" in proc.log()
    ros_graph.spin_until(
        lambda: ros_graph.node.count_publishers("skeletons") == 1, 30, "the skeletons publisher"
    )
    assert _subscribers(ros_graph, "image") == 0  # inactive: not listening

    camera = Camera(ros_graph, messi)
    assert ros_graph.change_state(NODE, "activate")
    assert ros_graph.lifecycle_state(NODE) == "active"
    ros_graph.spin_until(lambda: _subscribers(ros_graph, "image") == 1, 30, "the subscription")
    assert len(camera.expect_answer().skeletons) >= 1

    assert ros_graph.change_state(NODE, "deactivate")
    assert ros_graph.lifecycle_state(NODE) == "inactive"
    ros_graph.spin_until(
        lambda: _subscribers(ros_graph, "image") + _subscribers(ros_graph, "camera_info") == 0,
        30,
        "the image and camera_info subscriptions to go",
    )

    loads = proc.log().count("pipeline ready")
    assert ros_graph.change_state(NODE, "activate")
    assert len(camera.expect_answer().skeletons) >= 1
    assert proc.log().count("pipeline ready") == loads  # models stayed loaded while inactive

    assert ros_graph.change_state(NODE, "deactivate")
    assert ros_graph.change_state(NODE, "cleanup")
    assert ros_graph.lifecycle_state(NODE) == "unconfigured"
    ros_graph.spin_until(
        lambda: ros_graph.node.count_publishers("skeletons") == 0, 30, "the publishers to go"
    )
    # An impossible transition is refused and changes nothing.
    assert not ros_graph.change_state(NODE, "activate")
    assert ros_graph.lifecycle_state(NODE) == "unconfigured"
    assert proc.running(), proc.log()
    assert "Traceback" not in proc.log()


def test_configure_failure_leaves_the_node_unconfigured_and_alive(ros_graph, messi, tmp_path):
    """A missing lifter: configure fails with the reason in the log, the node stays alive in
    unconfigured; a read-only setting may be corrected there, and configure then succeeds."""
    missing = tmp_path / "no_such_lifter.onnx"
    proc = ros_graph.start(
        "pose3d_node", "-p", "autostart:=false", "-p", f"pipeline.lifter.model:={missing}"
    )
    assert ros_graph.lifecycle_state(NODE, STARTUP_S) == "unconfigured"
    assert not ros_graph.change_state(NODE, "configure")
    assert ros_graph.lifecycle_state(NODE) == "unconfigured"
    errors = [line for line in proc.log().splitlines() if "[ERROR]" in line]
    assert len(errors) == 1, proc.log()
    assert "configure failed" in errors[0] and str(missing) in errors[0]
    assert proc.running(), proc.log()

    client = AsyncParameterClient(ros_graph.node, NODE)
    ros_graph.spin_until(client.services_are_ready, 30, "parameter services")
    future = client.set_parameters([Parameter("pipeline.lifter.model", value="htnet_small")])
    ros_graph.spin_until(future.done, 30, "set pipeline.lifter.model")
    (result,) = future.result().results
    assert result.successful, result.reason  # read-only only while configured

    assert ros_graph.change_state(NODE, "configure")
    assert ros_graph.change_state(NODE, "activate")
    assert ros_graph.lifecycle_state(NODE) == "active"
    assert len(Camera(ros_graph, messi).expect_answer().skeletons) >= 1

    future = client.set_parameters([Parameter("pipeline.lifter.model", value=str(missing))])
    ros_graph.spin_until(future.done, 30, "set pipeline.lifter.model while active")
    (result,) = future.result().results
    assert not result.successful and "read-only" in result.reason


def test_autostart_is_active_and_visible_to_other_processes(ros_graph):
    """The default: `ros2 run pose3d_ros pose3d_node` configures and activates itself."""
    proc = ros_graph.start("pose3d_node")
    ros_graph.spin_until(
        lambda: ros_graph.lifecycle_state(NODE, STARTUP_S) == "active", STARTUP_S, "active"
    )
    assert _subscribers(ros_graph, "image") == 1
    assert "pipeline ready" in proc.log()


def test_corrupt_model_with_autostart_exits_2_naming_the_file_and_the_fix(ros_graph, tmp_path):
    """A corrupt model at start-up: one line naming the file and the command that rebuilds it."""
    models = tmp_path / "models"
    shutil.copytree(find_model_dir(), models)
    manifest_files = sorted(p for p in models.glob("*.onnx"))
    assert manifest_files, f"no built models in {find_model_dir()}"
    corrupt = next(p for p in manifest_files if "ssdlite" in p.name)  # the person detector
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))

    proc = ros_graph.start("pose3d_node", "-p", f"pipeline.model_dir:={models}")
    assert proc.wait(STARTUP_S) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(corrupt) in lines[0] and "corrupt" in lines[0]
    # the tools' console script that builds the models, into the folder the node was given
    assert f"pose3d-tools models build --model-dir {models}" in lines[0]
