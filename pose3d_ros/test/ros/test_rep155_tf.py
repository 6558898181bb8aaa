"""REP-155 output and the floor_frame TF lookup of pose3d_node, over real DDS.

The node runs as its own process (the `ros_graph` fixture); this test process sends images and
camera_info, publishes /tf_static like a robot_state_publisher would, and checks what arrives on
/tf, /humans/bodies/tracked, skeletons and /diagnostics. Expected values come from the
published skeletons and from the transform this test published, never from the node's code.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from hri_msgs.msg import IdsList
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from pose3d_msgs.msg import Skeleton, SkeletonArray
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.ros.messages import array_to_image_msg, camera_model_to_msg
from pose3d_ros.stages.placement import ANKLE_HEIGHT_FRAC, skeleton_stature

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("shared_memory_for_images")]

STARTUP_S = 90.0  # imports + three ONNX models on two busy cores
ANSWER_S = 60.0
FRAME_ID = "rep155_cam_optical"
FLOOR_FRAME = "base_footprint"
CAMERA_HEIGHT_M = 1.25
TILT_DOWN_DEG = 20.0


def _key(stamp) -> tuple[int, int]:
    return (stamp.sec, stamp.nanosec)


def _xyz(p) -> np.ndarray:
    return np.array([p.x, p.y, p.z])


class Camera:
    """The test's camera: publishes image + camera_info with one header, records the node's
    answers by stamp."""

    def __init__(self, graph, image: np.ndarray, frame_id: str = FRAME_ID) -> None:
        self.graph, self.frame_id = graph, frame_id
        node = graph.node
        qos = QoSProfile(depth=10)
        self.image_pub = node.create_publisher(Image, "image", qos)
        self.info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
        self.image = array_to_image_msg(image, "bgr8", Header())
        self.camera = CameraModel.from_fov(image.shape[1], image.shape[0], 60.0)
        self.skeletons: dict[tuple[int, int], SkeletonArray] = {}
        self.tf: dict[tuple[int, int], TFMessage] = {}
        self.tracked: dict[tuple[int, int], IdsList] = {}
        self.statuses: list[dict[str, str]] = []
        self.sent: set[tuple[int, int]] = set()
        deep = QoSProfile(depth=100)
        node.create_subscription(SkeletonArray, "skeletons", self._on_skeletons, deep)
        node.create_subscription(TFMessage, "/tf", self._on_tf, deep)
        node.create_subscription(IdsList, "/humans/bodies/tracked", self._on_tracked, deep)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, deep)

    def _on_skeletons(self, msg):
        self.skeletons[_key(msg.header.stamp)] = msg

    def _on_tf(self, msg):
        bodies = [t for t in msg.transforms if t.child_frame_id.startswith("body_")]
        if bodies:
            self.tf[_key(bodies[0].header.stamp)] = msg

    def _on_tracked(self, msg):
        self.tracked[_key(msg.header.stamp)] = msg

    def _on_diag(self, msg):
        for status in msg.status:
            if status.name.startswith("pose3d:"):
                self.statuses.append({kv.key: kv.value for kv in status.values})

    def send(self) -> Header:
        header = Header(stamp=self.graph.node.get_clock().now().to_msg(), frame_id=self.frame_id)
        info = camera_model_to_msg(self.camera, header)
        self.info_pub.publish(info)
        self.image.header = header
        self.image_pub.publish(self.image)
        self.sent.add(_key(header.stamp))
        return header

    def answer(self, what: str) -> Skeleton:
        """Send until this camera's image is answered with one skeleton; that skeleton."""

        def answered():
            return next(
                (m for k, m in self.skeletons.items() if k in self.sent and m.skeletons), None
            )

        msg = self.send_until(answered, what)
        assert len(msg.skeletons) == 1, [sk.id for sk in msg.skeletons]
        return msg.skeletons[0]

    def send_until(self, done, what: str, timeout: float = ANSWER_S, period: float = 0.7):
        self.graph.spin_until(
            lambda: self.image_pub.get_subscription_count() > 0, STARTUP_S, "the node's input"
        )
        deadline = time.monotonic() + timeout
        while True:
            self.send()
            resend = time.monotonic() + period
            while time.monotonic() < resend:
                found = done()
                if found:
                    return found
                self.graph.executor.spin_once(timeout_sec=0.05)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.graph.logs()}")


def test_rep155_bodies_and_frames_match_the_skeletons(ros_graph, messi):
    """/humans/bodies/tracked lists the skeletons' ids; body_<id> on /tf sits at the skeleton's
    mid-hip point in the image's frame with z towards the shoulders and y to the person's left;
    joint frames under body_<id> land on the skeleton's joints."""
    proc = ros_graph.start("pose3d_node", "-p", "rep155:=true")
    cam = Camera(ros_graph, messi)

    def complete():
        for key, skeletons in cam.skeletons.items():
            if skeletons.skeletons and key in cam.tf and key in cam.tracked:
                return key
        return None

    key = cam.send_until(complete, "skeletons, /tf and /humans/bodies/tracked for one image")
    skeletons, tf, tracked = cam.skeletons[key], cam.tf[key], cam.tracked[key]
    assert proc.running(), proc.log()

    assert tracked.header == skeletons.header
    assert sorted(tracked.ids) == sorted(str(sk.id) for sk in skeletons.skeletons)
    by_child = {t.child_frame_id: t for t in tf.transforms}
    for sk in skeletons.skeletons:
        joints = {k.name: _xyz(k.position) for k in sk.keypoints}
        body = by_child[f"body_{sk.id}"]
        assert body.header == skeletons.header  # parent = the image's frame, its stamp
        origin = _xyz(body.transform.translation)
        assert origin == pytest.approx((joints["l_hip"] + joints["r_hip"]) / 2, abs=1e-9)
        q = body.transform.rotation
        rot = Rotation.from_quat([q.x, q.y, q.z, q.w])
        x, y, z = rot.as_matrix().T
        trunk = (joints["l_shoulder"] + joints["r_shoulder"]) / 2 - origin
        assert z @ trunk / np.linalg.norm(trunk) == pytest.approx(1.0, abs=1e-6)
        assert y @ (joints["l_hip"] - joints["r_hip"]) > 0  # the person's left
        assert np.cross(y, z) @ x == pytest.approx(1.0, abs=1e-6)  # right-handed, x forward
        # Joint frames: parented to body_<id>, composed back onto the skeleton's joints.
        for name, suffix_name in (("l_wrist", "l_wrist"), ("head", "head"), ("thorax", "torso")):
            joint = by_child[f"{suffix_name}_{sk.id}"]
            assert joint.header.frame_id == f"body_{sk.id}"
            assert joint.header.stamp == skeletons.header.stamp
            in_camera = rot.apply(_xyz(joint.transform.translation)) + origin
            assert in_camera == pytest.approx(joints[name], abs=1e-6), name
        assert sum(t.header.frame_id == f"body_{sk.id}" for t in tf.transforms) == 17
    assert "[ERROR]" not in proc.log() and "Traceback" not in proc.log(), proc.log()


def _static_floor_transform() -> TFMessage:
    """base_footprint <- camera optical frame: the camera 1.25 m above the floor, looking
    forward and tilted 20 deg down."""
    optical_in_base = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    tilt = Rotation.from_euler("y", TILT_DOWN_DEG, degrees=True)  # about base y: nose down
    q = (tilt * Rotation.from_matrix(optical_in_base)).as_quat()
    t = TransformStamped(
        header=Header(frame_id=FLOOR_FRAME),
        child_frame_id=FRAME_ID,
        transform=Transform(
            translation=Vector3(x=0.1, y=0.0, z=CAMERA_HEIGHT_M),
            rotation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]),
        ),
    )
    return TFMessage(transforms=[t])


def test_floor_frame_from_a_static_transform_of_another_process(ros_graph, messi):
    """A /tf_static published (latched) before the node starts reaches its lookup: the node
    reports the camera height the transform says; an image whose frame is not in the tree is
    still answered, with a warning naming the missing transform."""
    static_qos = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    static_pub = ros_graph.node.create_publisher(TFMessage, "/tf_static", static_qos)
    static_pub.publish(_static_floor_transform())
    proc = ros_graph.start(
        "pose3d_node", "-p", f"floor_frame:={FLOOR_FRAME}", "-p", "diagnostics_period_s:=0.5"
    )
    cam = Camera(ros_graph, messi)

    def floor_found():
        return next((s for s in cam.statuses if s.get("floor", "").startswith("from TF")), None)

    status = cam.send_until(floor_found, "a /diagnostics status with the floor from TF")
    assert float(status["floor_camera_height_m"]) == pytest.approx(CAMERA_HEIGHT_M, abs=1e-3)
    assert status["floor"] == f"from TF {FLOOR_FRAME} <- {FRAME_ID}"
    assert "floor plane from TF frame 'base_footprint'" in proc.log()

    # A camera frame TF does not know: a specific warning, the frame is still answered.
    stranger = Camera(ros_graph, messi, frame_id="unknown_cam")
    answered_before = len(stranger.skeletons)
    stranger.send_until(
        lambda: (
            "no usable transform base_footprint <- unknown_cam" in proc.log()
            and len(stranger.skeletons) > answered_before
        ),
        "the warning and an answer for a frame outside the TF tree",
    )
    assert proc.running(), proc.log()
    assert "Traceback" not in proc.log(), proc.log()


SCALE = 1.10
UP = np.array([0.0, -0.96, -0.28])  # camera pitched down ~16 deg: the floor's up, camera frame
ANKLES = (3, 6)


def _joints(skeleton) -> np.ndarray:
    return np.array([_xyz(k.position) for k in skeleton.keypoints])


def _floor_to_camera(up: np.ndarray, distance: float) -> TFMessage:
    """base_footprint <- FRAME_ID whose floor (z = 0, z up) is {X: up @ X + distance = 0} in the
    camera frame: the rotation's third row is `up` (a point's height is R[2] @ X + t[2]), the
    other rows complete a right-handed basis; the camera sits `distance` above the floor."""
    x = np.array([1.0, 0.0, 0.0]) - up[0] * up
    x /= np.linalg.norm(x)
    rows = np.stack([x, np.cross(up, x), up])
    assert np.linalg.det(rows) == pytest.approx(1.0)
    q = Rotation.from_matrix(rows).as_quat()
    t = TransformStamped(
        header=Header(frame_id=FLOOR_FRAME),
        child_frame_id=FRAME_ID,
        transform=Transform(
            translation=Vector3(x=0.0, y=0.0, z=float(distance)),
            rotation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]),
        ),
    )
    return TFMessage(transforms=[t])


def test_floor_from_tf_places_the_person_on_it(ros_graph, messi):
    """End to end through TF: the same known answer as the floor parameters' test
    (test_floor_node.py), with the plane given as a /tf_static transform from this process.

    messi5 is first answered from a camera frame TF does not know (size prior: the lifter's
    average body). A floor is then published for a person 10 % larger: same rays, so that
    person is the prior skeleton scaled by 1.1 about the camera centre, with the supporting
    ankles at a 10 % taller body's ankle height. From the camera frame under that floor the
    node must publish the person 1.1 x as far, placed by the floor."""
    proc = ros_graph.start(
        "pose3d_node",
        "-p", f"floor_frame:={FLOOR_FRAME}",
        "-p", "pipeline.detect_every:=1",  # the same picture gives the same 2D every time
        "-p", "pipeline.placement.floor.with_size_prior:=false",
    )  # fmt: skip
    elsewhere = Camera(ros_graph, messi, frame_id="camera_not_in_tf")
    prior = elsewhere.answer("a frame from a camera TF does not know")
    assert prior.placement == Skeleton.PLACEMENT_SIZE_PRIOR
    joints = _joints(prior)
    heights = joints @ UP
    assert int(np.argmin(heights)) in ANKLES, "messi's lowest joint must be an ankle"
    support = [j for j in ANKLES if heights[j] <= heights.min() + 0.02]
    stature = SCALE * skeleton_stature(joints)
    distance = ANKLE_HEIGHT_FRAC * stature - SCALE * heights[support].mean()
    assert 0.3 < distance < 5.0, distance

    static_qos = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    ros_graph.node.create_publisher(TFMessage, "/tf_static", static_qos).publish(
        _floor_to_camera(UP, distance)
    )
    on_floor = Camera(ros_graph, messi).answer("a frame from the camera above the TF floor")
    assert on_floor.placement == Skeleton.PLACEMENT_FLOOR, proc.log()
    np.testing.assert_allclose(_xyz(on_floor.root), SCALE * _xyz(prior.root), rtol=1e-4)
    assert "Traceback" not in proc.log(), proc.log()
