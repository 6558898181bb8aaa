"""One pose3d_node serving two cameras (`cameras.namespaces`), as a real process over DDS.

Two cameras of different image sizes and intrinsics, each on its own namespace: each gets its
skeletons on `<ns>/skeletons` with its own image header, ids from its own range (camera 0 from 1,
camera 1 from 1000001), a /diagnostics status of its own, and bad input on one camera does not
stop the other; deactivate and cleanup release every camera. A bad namespace list stops the
node at start-up in one line, exit code 2.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.ros.messages import array_to_image_msg, camera_model_to_msg

pytestmark = pytest.mark.ros

STARTUP_S = 90.0  # imports + the models on two busy cores
ANSWER_S = 60.0  # a frame of each camera through the pipeline, with re-sends
ID_BLOCK = 1_000_000  # camera k's ids start at k * ID_BLOCK + 1 (the README's contract)
CAMERAS = ("/cam_a", "/cam_b")


def _key(stamp) -> tuple[int, int]:
    return (stamp.sec, stamp.nanosec)


class Camera:
    """The test's side of one camera: image + camera_info publishers, skeletons recorder."""

    def __init__(self, graph, ns: str, image: np.ndarray, fov_deg: float) -> None:
        self.graph, self.ns, self.image = graph, ns, image
        h, w = image.shape[:2]
        self.model = CameraModel.from_fov(w, h, fov_deg)
        qos = QoSProfile(depth=10)
        node = graph.node
        self.image_pub = node.create_publisher(Image, f"{ns}/image_raw", qos)
        self.info_pub = node.create_publisher(CameraInfo, f"{ns}/camera_info", qos)
        self.skeletons: list[SkeletonArray] = []
        node.create_subscription(
            SkeletonArray, f"{ns}/skeletons", self.skeletons.append, QoSProfile(depth=100)
        )
        self.sent: dict[tuple[int, int], Header] = {}

    def connected(self) -> bool:
        return self.image_pub.get_subscription_count() > 0 and (
            self.info_pub.get_subscription_count() > 0
        )

    def send(self, image: Image | None = None) -> Header:
        """camera_info then the image (default: this camera's picture), one header."""
        header = Header(
            stamp=self.graph.node.get_clock().now().to_msg(),
            frame_id=f"{self.ns.strip('/')}_optical",
        )
        info = camera_model_to_msg(self.model, header)
        self.info_pub.publish(info)
        msg = image if image is not None else array_to_image_msg(self.image, "bgr8", header)
        msg.header = header
        self.image_pub.publish(msg)
        self.sent[_key(header.stamp)] = header
        return header

    def answered(self) -> list[SkeletonArray]:
        return [m for m in self.skeletons if _key(m.header.stamp) in self.sent and m.skeletons]


def _send_until(graph, cameras: list[Camera], done, what: str) -> None:
    deadline = time.monotonic() + ANSWER_S
    while not done():
        for c in cameras:
            c.send()
        graph.spin_for(0.5)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{graph.logs()}")


def test_one_node_serves_two_cameras(ros_graph, footage):
    proc = ros_graph.start("pose3d_node", "-p", f"cameras.namespaces:={','.join(CAMERAS)}")
    messi = cv2.imread(str(footage / "messi5.jpg"))  # 548x342, one player
    players = cv2.imread(str(footage / "basketball1.png"))  # 640x480, two players
    cam_a = Camera(ros_graph, CAMERAS[0], messi, 60.0)
    cam_b = Camera(ros_graph, CAMERAS[1], players, 50.0)
    statuses: dict[str, dict[str, str]] = {}

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for st in msg.status:
            statuses[st.name] = {kv.key: kv.value for kv in st.values}

    ros_graph.node.create_subscription(
        DiagnosticArray, "/diagnostics", on_diagnostics, QoSProfile(depth=50)
    )
    ros_graph.spin_until(
        lambda: cam_a.connected() and cam_b.connected(), STARTUP_S, "both cameras' subscriptions"
    )
    # The node serves the cameras' namespaces, not the single-camera topics.
    assert ros_graph.node.count_subscribers("/image") == 0

    # Images of different sizes, each with its own camera_info: both are answered, so each
    # camera uses its own intrinsics (one camera's CameraInfo would not fit the other's image).
    _send_until(
        ros_graph, [cam_a, cam_b], lambda: cam_a.answered() and cam_b.answered(), "both cameras"
    )
    for cam, block in ((cam_a, 0), (cam_b, 1)):
        for answer in cam.answered():
            assert answer.header == cam.sent[_key(answer.header.stamp)]  # header unchanged
            for sk in answer.skeletons:
                assert block * ID_BLOCK < sk.id < (block + 1) * ID_BLOCK, (cam.ns, sk.id)
                seen = [k.pixel for k in sk.keypoints if k.valid]
                assert seen and all(0 <= p.x < cam.image.shape[1] for p in seen)

    # Bad input on one camera: a warning, and the other camera goes on being answered.
    bad = Image(width=4, height=4, encoding="yuv422_yuy2_nope", step=8, data=bytes(32))
    cam_b.send(bad)
    ros_graph.spin_until(
        lambda: "cannot use image" in proc.log(), ANSWER_S, "the warning on cam_b's bad image"
    )
    before = len(cam_a.answered())
    _send_until(ros_graph, [cam_a], lambda: len(cam_a.answered()) > before, "cam_a after it")
    assert proc.running(), proc.log()

    # /diagnostics (from now on): one status per camera, each counting its own frames, over
    # shared models.
    statuses.clear()

    def counted(ns: str) -> bool:
        return any(
            ns in name and int(v.get("frames_processed", 0)) >= 1 for name, v in statuses.items()
        )

    ros_graph.spin_until(
        lambda: all(counted(ns) for ns in CAMERAS), ANSWER_S, "a /diagnostics status per camera"
    )
    for ns in CAMERAS:
        (values,) = [v for name, v in statuses.items() if f"camera {ns}" in name]
        assert "cross-camera batching" in values["backend"]
    (b_values,) = [v for name, v in statuses.items() if f"camera {CAMERAS[1]}" in name]
    assert int(b_values["frames_skipped"]) >= 1  # the bad image, counted on its own camera

    # Lifecycle: deactivate unsubscribes every camera, cleanup frees them, the node lives on.
    assert ros_graph.change_state("pose3d", "deactivate")
    ros_graph.spin_until(
        lambda: not cam_a.connected() and not cam_b.connected(), ANSWER_S, "unsubscribed"
    )
    assert ros_graph.change_state("pose3d", "cleanup")
    assert ros_graph.lifecycle_state("pose3d") == "unconfigured"
    assert proc.running(), proc.log()


def test_bad_camera_list_exits_with_code_2(ros_graph):
    proc = ros_graph.start("pose3d_node", "-p", "cameras.namespaces:=/cam_a,/9cam")
    assert proc.wait(STARTUP_S) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot start" in lines[0], lines
    assert "cameras.namespaces" in lines[0] and "/9cam" in lines[0], lines
