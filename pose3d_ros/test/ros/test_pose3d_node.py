"""pose3d_node as a real process over DDS: camera images in, tracked metric 3D skeletons out.

Every test starts the node's console script on its own DDS domain (the `ros_graph` fixture) and
talks to it through the test's rclpy node: real footage through video_source_node, bad inputs the
node must survive, parameters at start-up and at run time, and newest-frame-only processing.

The node subscribes its inputs best effort (sensor data QoS), so the helpers re-send until the
node has visibly reacted (an answer on `skeletons`, a line in its log) instead of assuming that
one message gets through; every wait is on a condition, with generous time limits for a busy
machine.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from pose3d_msgs.msg import Skeleton, SkeletonArray
from pose3d_ros.core.camera import CameraModel, save_camera_yaml
from pose3d_ros.core.image_encoding import encode_compressed
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.ros.markers import NS_JOINTS
from pose3d_ros.ros.messages import array_to_image_msg, camera_model_to_msg

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("shared_memory_for_images")]

NODE = "pose3d"
STARTUP_S = 90.0  # imports + three ONNX models on two busy cores
ANSWER_S = 45.0  # one frame through the pipeline, with re-sends
WARNING_S = 45.0  # includes the node's 5 s log throttle
DELIVERY_S = 60.0  # messages already sent, still on their way to a busy test process
FRAME_ID = "test_cam_optical"

VIDEO_FRAMES = 24
VIDEO_RATE_HZ = 2.5  # slow enough that most frames are processed on a slow CPU
VIDEO_FRAME_ID = "vtest_optical"
# Plausible adult bone lengths [m] (generous: a monocular lifter on 100 px tall people).
BONE_RANGES_M = {
    ("r_hip", "r_knee"): (0.25, 0.65),
    ("l_hip", "l_knee"): (0.25, 0.65),
    ("r_knee", "r_ankle"): (0.2, 0.65),
    ("l_knee", "l_ankle"): (0.2, 0.65),
}
MIN_CONSECUTIVE = 5  # messages in a row that carry the most frequent (walking) person's id

# Where the people of vtest.avi's first VIDEO_FRAMES frames can be, seen through the demo's
# assumed 60 deg horizontal field of view (fx = (768 / 2) / tan(30 deg) = 665 px), derived
# without the pipeline: standing people there are 72-106 px tall (measured by hand on frames 0
# and 23; widened to 60-130 px for people half out of the picture or bending), adults are
# 1.5-1.9 m tall, and the camera looks down on the square by at most 40 deg, which foreshortens a
# standing person by cos(40 deg) = 0.77 at most. Pinhole: depth = fx * stature * foreshortening /
# pixel height, so 665 * 1.5 * 0.77 / 130 = 5.9 m to 665 * 1.9 * 1.0 / 60 = 21 m; a further 15 %
# either way for the monocular lifter's scale error.
VTEST_FOV_DEG = 60.0
VTEST_PERSON_PX = (60.0, 130.0)
ADULT_STATURE_M = (1.5, 1.9)
MAX_FORESHORTENING = math.cos(math.radians(40.0))
LIFTER_SCALE_ERROR = 0.15


def vtest_depth_band(fx: float) -> tuple[float, float]:
    near = fx * ADULT_STATURE_M[0] * MAX_FORESHORTENING / VTEST_PERSON_PX[1]
    far = fx * ADULT_STATURE_M[1] / VTEST_PERSON_PX[0]
    return near * (1 - LIFTER_SCALE_ERROR), far * (1 + LIFTER_SCALE_ERROR)


BURST_FRAMES = 60
BURST_RATE_HZ = 30.0
WARM_FRAMES = 6  # more than detect_every: the fastest frames (tracked crops) are among them


# --- helpers ------------------------------------------------------------------------------


def _key(stamp) -> tuple[int, int]:
    return (stamp.sec, stamp.nanosec)


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _finite(p) -> bool:
    return math.isfinite(p.x) and math.isfinite(p.y) and math.isfinite(p.z)


def _distance(a, b) -> float:
    return math.dist((a.x, a.y, a.z), (b.x, b.y, b.z))


def _status(array: DiagnosticArray) -> dict[str, str] | None:
    """The pose3d_node status of a /diagnostics message as a dict (None if not ours)."""
    for st in array.status:
        if st.name.startswith(f"{NODE}:"):
            values = {kv.key: kv.value for kv in st.values}
            values["_message"] = st.message
            return values
    return None


def _counts(status: dict[str, str]) -> dict[str, int]:
    keys = ("frames_in", "frames_processed", "frames_dropped", "frames_failed")
    return {k: int(status[k]) for k in keys}


def _warnings(proc, text: str) -> int:
    return sum(1 for line in proc.log().splitlines() if "[WARN]" in line and text in line)


class Peer:
    """The test's side of one pose3d_node: publishers of its inputs, recorders of its outputs."""

    def __init__(self, graph, *, compressed: bool = False) -> None:
        self.graph = graph
        node = graph.node
        qos = QoSProfile(depth=10)
        if compressed:
            self.image_pub = node.create_publisher(CompressedImage, "image/compressed", qos)
        else:
            self.image_pub = node.create_publisher(Image, "image", qos)
        self.info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
        self.skeletons: list[SkeletonArray] = []
        self.statuses: list[tuple[float, dict[str, str]]] = []  # (receipt time, values)
        node.create_subscription(
            SkeletonArray, "skeletons", self._on_skeletons, QoSProfile(depth=100)
        )
        node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diag, QoSProfile(depth=50)
        )

    def _on_skeletons(self, msg: SkeletonArray) -> None:
        self.skeletons.append(msg)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        status = _status(msg)
        if status is not None:
            self.statuses.append((time.monotonic(), status))

    def wait_connected(self) -> None:
        self.graph.spin_until(
            lambda: (
                self.image_pub.get_subscription_count() > 0
                and self.info_pub.get_subscription_count() > 0
            ),
            STARTUP_S,
            "pose3d_node's image and camera_info subscriptions",
        )

    def header(self) -> Header:
        return Header(stamp=self.graph.node.get_clock().now().to_msg(), frame_id=FRAME_ID)

    def send(self, image, *, camera: CameraModel | None = None, info: CameraInfo | None = None):
        """Publish `image` (a message, its header replaced; None: none) after the camera_info, if
        any, with the same header, as a camera driver does; returns the header."""
        header = self.header()
        if camera is not None:
            info = camera_model_to_msg(camera, header)
        if info is not None:
            info.header = header
            self.info_pub.publish(info)
        if image is not None:
            image.header = header
            self.image_pub.publish(image)
        return header

    def answers(self, stamps) -> list[SkeletonArray]:
        return [m for m in self.skeletons if _key(m.header.stamp) in stamps]

    def send_until(
        self,
        send: Callable[[], Header],
        done: Callable[[], bool],
        what: str,
        timeout: float,
        period: float = 0.5,
    ) -> set[tuple[int, int]]:
        """Call `send` every `period` s until `done()`; returns the stamps sent."""
        stamps: set[tuple[int, int]] = set()
        deadline = time.monotonic() + timeout
        while True:
            stamps.add(_key(send().stamp))
            resend = time.monotonic() + period
            while time.monotonic() < resend:
                if done():
                    return stamps
                self.graph.executor.spin_once(timeout_sec=0.05)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}\n{self.graph.logs()}"
                )

    def expect_answer(self, send: Callable[[], Header], what: str) -> SkeletonArray:
        """Send until a SkeletonArray for one of the sent frames arrives; it carries the frame's
        header unchanged."""
        sent: dict[tuple[int, int], Header] = {}

        def send_and_remember() -> Header:
            header = send()
            sent[_key(header.stamp)] = header
            return header

        self.send_until(send_and_remember, lambda: self.answers(sent), what, ANSWER_S)
        answer = self.answers(sent)[0]
        assert answer.header == sent[_key(answer.header.stamp)]
        return answer

    def expect_warning(self, proc, text: str, send: Callable[[], Header]) -> None:
        """Send until the node logs a new warning containing `text`; the frames sent are not
        answered and the node keeps running."""
        before = _warnings(proc, text)
        stamps = self.send_until(
            send, lambda: _warnings(proc, text) > before, f"a warning {text!r}", WARNING_S
        )
        assert proc.running(), proc.log()
        assert not self.answers(stamps), f"a frame that had to be skipped was answered ({text})"

    def status_after(self, t: float, ready: Callable[[dict[str, str]], bool], what: str):
        """The first /diagnostics status received after monotonic time `t` that is `ready`."""

        def found():
            return next((s for at, s in self.statuses if at > t and ready(s)), None)

        self.graph.spin_until(lambda: found() is not None, DELIVERY_S, what)
        return found()


def _image(array: np.ndarray, encoding: str = "bgr8") -> Image:
    return array_to_image_msg(array, encoding, Header())


def _raw(width: int, height: int, encoding: str, step: int, data: bytes) -> Image:
    msg = Image(width=width, height=height, encoding=encoding, step=step)
    msg.data = data
    return msg


# --- 1. real footage, end to end ----------------------------------------------------------


def test_video_to_tracked_metric_skeletons(ros_graph, footage, tmp_path):
    """vtest.avi through video_source_node and pose3d_node: every SkeletonArray has its image's
    header, h36m17 skeletons with plausible metric 3D, and a walking person keeps its id."""
    width, height = 768, 576
    # The demo's assumption, written as a calibration (so the node assumes nothing itself).
    camera = CameraModel.from_fov(width, height, VTEST_FOV_DEG)
    fx = (width / 2) / math.tan(math.radians(VTEST_FOV_DEG / 2))
    assert camera.K[0, 0] == pytest.approx(fx)
    near_m, far_m = vtest_depth_band(fx)
    yaml_path = tmp_path / "vtest.yaml"
    save_camera_yaml(camera, yaml_path, "vtest")

    node = ros_graph.node
    deep = QoSProfile(depth=100)
    images: list[Image] = []
    markers: list[MarkerArray] = []
    node.create_subscription(Image, "image", images.append, deep)
    node.create_subscription(MarkerArray, "markers", markers.append, deep)
    peer = Peer(ros_graph)  # skeletons and /diagnostics

    pose3d = ros_graph.start("pose3d_node")
    # Start the video once this test is matched to the node's output (models load first).
    ros_graph.spin_until(
        lambda: node.count_publishers("skeletons") > 0, STARTUP_S, "pose3d_node's publishers"
    )
    source = ros_graph.start(
        "video_source_node",
        "-p", f"input:={footage / 'vtest.avi'}",
        "-p", f"camera_info_file:={yaml_path}",
        "-p", f"frame_id:={VIDEO_FRAME_ID}",
        "-p", f"rate:={VIDEO_RATE_HZ}",
        "-p", f"max_frames:={VIDEO_FRAMES}",
        "-p", "wait_for_subscribers:=2",  # pose3d_node and this test
    )  # fmt: skip
    ros_graph.spin_until(
        lambda: not source.running(), STARTUP_S + VIDEO_FRAMES / VIDEO_RATE_HZ + 30, "the video"
    )
    assert source.popen.returncode == 0, source.log()
    ros_graph.spin_until(lambda: len(images) == VIDEO_FRAMES, DELIVERY_S, "all images")
    headers = {_key(m.header.stamp): m.header for m in images}
    assert all(h.frame_id == VIDEO_FRAME_ID for h in headers.values())

    # Newest-frame-only: the last image that reached the node is processed; over shared memory
    # that is the last one (the one before it in case the last was lost).
    last = {_key(m.header.stamp) for m in images[-2:]}
    ros_graph.spin_until(lambda: peer.answers(last), ANSWER_S, "the last frames' skeletons")
    done = time.monotonic()
    status = peer.status_after(
        done, lambda s: int(s["frames_processed"]) >= len(peer.skeletons), "final diagnostics"
    )
    ros_graph.spin_until(
        lambda: (
            sum(1 for m in markers if m.markers) == sum(1 for m in peer.skeletons if m.skeletons)
        ),
        DELIVERY_S,
        "a MarkerArray for every non-empty SkeletonArray",
    )
    arrays = peer.skeletons
    assert pose3d.running(), pose3d.log()

    # Headers: each output is for one input image, in order, its header unchanged.
    for msg in arrays:
        assert msg.header == headers[_key(msg.header.stamp)]
    stamps = [_seconds(m.header.stamp) for m in arrays]
    assert all(b > a for a, b in itertools.pairwise(stamps)), "answers out of order"

    # Skeletons: Human3.6M-17, unique ids per message, plausible metric 3D for confirmed people.
    confirmed = 0
    for msg in arrays:
        ids = [sk.id for sk in msg.skeletons]
        assert len(ids) == len(set(ids)), f"duplicate ids in one message: {ids}"
        for sk in msg.skeletons:
            assert sk.joint_set == "h36m17"
            assert [k.name for k in sk.keypoints] == list(H36M17.joints)
            assert [k.index for k in sk.keypoints] == list(range(17))
            if sk.tracking_state != Skeleton.TRACK_CONFIRMED:
                continue
            confirmed += 1
            assert _finite(sk.root) and near_m < sk.root.z < far_m, (sk.root, near_m, far_m)
            assert all(_finite(k.position) for k in sk.keypoints if k.valid)
            for k in sk.keypoints:
                if k.valid:
                    assert -0.1 * width <= k.pixel.x <= 1.1 * width, k
                    assert -0.1 * height <= k.pixel.y <= 1.1 * height, k
            joints = {k.name: k.position for k in sk.keypoints}
            for (a, b), (lo, hi) in BONE_RANGES_M.items():
                length = _distance(joints[a], joints[b])
                assert lo <= length <= hi, f"id {sk.id}: {a}-{b} is {length:.2f} m"
    assert confirmed >= 5, f"only {confirmed} confirmed skeletons in {len(arrays)} messages"

    # Stable ids: the most frequent id is in many consecutive messages (a walking person).
    counts = Counter(sk.id for m in arrays for sk in m.skeletons)
    best_id, _ = counts.most_common(1)[0]
    present = [any(sk.id == best_id for sk in m.skeletons) for m in arrays]
    longest = max(len(list(run)) for seen, run in itertools.groupby(present) if seen)
    assert longest >= MIN_CONSECUTIVE, f"id {best_id} in at most {longest} messages in a row"

    # Markers: same header as the skeletons, one set of markers per person.
    by_stamp = {_key(m.header.stamp): m for m in arrays}
    for out in (m for m in markers if m.markers):
        stamp = _key(out.markers[0].header.stamp)
        assert stamp in by_stamp
        msg = by_stamp[stamp]
        assert all(mk.header == msg.header for mk in out.markers)
        assert {mk.id for mk in out.markers if mk.ns == NS_JOINTS} == {
            sk.id for sk in msg.skeletons
        }

    # /diagnostics: counts that add up, and the backend that the log announced.
    counts = _counts(status)
    # Reliable KEEP_LAST(5) may overwrite an unacknowledged answer when the test process is
    # starved of CPU; the node's own count is the reference.
    assert counts["frames_processed"] - 2 <= len(arrays) <= counts["frames_processed"]
    assert counts["frames_failed"] == 0
    assert len(arrays) <= counts["frames_in"] <= VIDEO_FRAMES
    skipped = counts["frames_in"] - counts["frames_processed"] - counts["frames_dropped"]
    # The very first image may be handled before the first camera_info reaches the node.
    assert 0 <= skipped <= 1, status
    assert status["backend"] and f"pipeline ready: {status['backend']}" in pose3d.log()
    assert status["_message"] == "running"
    log = pose3d.log()
    assert "ASSUMING" not in log and "[ERROR]" not in log and "Traceback" not in log, log


# --- 2. bad inputs ------------------------------------------------------------------------

MAX_PIXELS = 300_000  # messi5 (548x342) passes, vtest's 768x576 does not


def test_bad_raw_inputs_are_skipped_with_a_warning(ros_graph, messi):
    """Each bad input is skipped with its own warning and the next good frame is answered.

    Image problems share one log call that is throttled to one line per 5 s, so the cases are
    interleaved with camera_info problems (other log calls) and each waits for its own line.
    """
    proc = ros_graph.start("pose3d_node", "-p", f"max_image_pixels:={MAX_PIXELS}")
    peer = Peer(ros_graph)
    peer.wait_connected()
    h, w = messi.shape[:2]
    good = _image(messi)
    camera = CameraModel.from_fov(w, h, 60.0)

    def answered(*, with_camera: bool = True) -> None:
        cam = camera if with_camera else None
        answer = peer.expect_answer(lambda: peer.send(good, camera=cam), "a good frame")
        assert len(answer.skeletons) >= 1

    # No camera_info at all: the node waits (skipping frames) and says why.
    peer.expect_warning(proc, "waiting for a valid camera_info", lambda: peer.send(good))

    # An uncalibrated CameraInfo (K all zeros) is refused; so the node still waits.
    zeros = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
    peer.expect_warning(
        proc, "ignoring invalid camera_info: K is all zeros", lambda: peer.send(good, info=zeros)
    )
    answered()

    # Unsupported encoding.
    bayer = _raw(w, h, "bayer_rggb8", w, bytes(w * h))
    peer.expect_warning(
        proc, "cannot use image: unsupported image encoding 'bayer_rggb8'", lambda: peer.send(bayer)
    )
    answered()

    # camera_info for another image size.
    other = CameraModel.from_fov(640, 480, 60.0)
    peer.expect_warning(
        proc,
        f"camera_info is for 640x480 but the image is {w}x{h}: skipping frame",
        lambda: peer.send(good, camera=other),
    )
    answered()

    # Empty image.
    peer.expect_warning(
        proc, "cannot use image: empty image: 0x0", lambda: peer.send(_raw(0, 0, "bgr8", 0, b""))
    )
    answered()

    # NaN in K is refused; the last valid camera_info stays in use.
    nan = camera_model_to_msg(camera, Header())
    nan.k[0] = float("nan")
    peer.expect_warning(
        proc, "ignoring invalid camera_info: K contains NaN", lambda: peer.send(None, info=nan)
    )
    answered(with_camera=False)

    # More pixels than max_image_pixels: refused before the data is looked at.
    big = _raw(768, 576, "bgr8", 768 * 3, bytes(768 * 576 * 3))
    peer.expect_warning(
        proc,
        f"cannot use image: image of 768x576 = {768 * 576} pixels exceeds max_pixels={MAX_PIXELS}",
        lambda: peer.send(big),
    )
    answered()

    # Data shorter than height * step.
    short = _raw(w, h, "bgr8", w * 3, bytes(good.data)[: w * 3 * h // 2])
    peer.expect_warning(proc, "cannot use image: image data too short", lambda: peer.send(short))
    answered()

    status = peer.status_after(time.monotonic(), lambda s: True, "diagnostics")
    assert _counts(status)["frames_failed"] == 0  # refused inputs are not pipeline failures
    assert "Traceback" not in proc.log()


def test_compressed_garbage_and_field_of_view_fallback(ros_graph, footage, messi):
    """compressed_input: undecodable bytes and too large images are skipped with a warning; with
    fov_fallback_deg the node runs without any camera_info and logs the assumption."""
    proc = ros_graph.start(
        "pose3d_node",
        "-p", "compressed_input:=true",
        "-p", "fov_fallback_deg:=60.0",
        "-p", f"max_image_pixels:={MAX_PIXELS}",
    )  # fmt: skip
    peer = Peer(ros_graph, compressed=True)
    peer.wait_connected()
    garbage = CompressedImage(format="jpeg")
    garbage.data = np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes()
    peer.expect_warning(
        proc, "cannot use image: cannot decode compressed image", lambda: peer.send(garbage)
    )

    def jpeg(image: np.ndarray) -> CompressedImage:
        fields = encode_compressed(image, "jpeg")
        msg = CompressedImage(format=fields.format)
        msg.data = fields.data
        return msg

    big = jpeg(cv2.imread(str(footage / "basketball1.png")))  # 640x480 > MAX_PIXELS
    peer.expect_warning(proc, "640x480", lambda: peer.send(big))
    assert _warnings(proc, "exceeds max") >= 1

    answer = peer.expect_answer(lambda: peer.send(jpeg(messi)), "a JPEG frame")
    assert len(answer.skeletons) >= 1
    assert _warnings(proc, "no camera_info yet: ASSUMING a 60 deg horizontal field of view") == 1
    status = peer.status_after(time.monotonic(), lambda s: True, "diagnostics")
    assert int(status["frames_processed"]) >= 1 and int(status["frames_failed"]) == 0


# --- 3. parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "reason"),
    [
        ("pipeline.detector.max_people:=0", "pipeline.detector.max_people"),
        ("pipeline.backend:=cuda", "pipeline.backend: 'cuda' is not one of"),
        ("pipeline.lifter.model:=no_such_lifter", "lifter 'no_such_lifter' not found"),
        ("pipeline.refinement.model:=no_such_refiner", "refiner 'no_such_refiner' not found"),
    ],
)
def test_invalid_parameters_at_start_up_exit_with_code_2(ros_graph, param, reason):
    proc = ros_graph.start("pose3d_node", "-p", param)
    assert proc.wait(STARTUP_S) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot start" in lines[0] and reason in lines[0], lines


def test_parameters_at_run_time(ros_graph, messi):
    """A valid change is accepted and applied to the next frame; read-only and out-of-range
    values are refused with the reason."""
    proc = ros_graph.start("pose3d_node", "-p", "fov_fallback_deg:=60.0")
    peer = Peer(ros_graph)
    client = AsyncParameterClient(ros_graph.node, NODE)
    ros_graph.spin_until(client.services_are_ready, STARTUP_S, "parameter services")
    good = _image(messi)

    def set_parameter(name: str, value):
        future = client.set_parameters([Parameter(name, value=value)])
        ros_graph.spin_until(future.done, DELIVERY_S, f"set {name}")
        (result,) = future.result().results
        return result

    def get_parameter(name: str):
        future = client.get_parameters([name])
        ros_graph.spin_until(future.done, DELIVERY_S, f"get {name}")
        return future.result().values[0]

    threshold = "pipeline.detector.score_threshold"
    pose_threshold = "pipeline.proposals.blazepose_score_threshold"
    for name in (threshold, pose_threshold):  # both detectors: no real detection scores 1.0
        result = set_parameter(name, 1.0)
        assert result.successful, result.reason
        assert get_parameter(name).double_value == 1.0
    answer = peer.expect_answer(lambda: peer.send(good), "a frame with threshold 1.0")
    assert len(answer.skeletons) == 0

    result = set_parameter(pose_threshold, 0.5)
    assert result.successful, result.reason
    result = set_parameter(threshold, 0.4)
    assert result.successful, result.reason
    answer = peer.expect_answer(lambda: peer.send(good), "a frame with threshold 0.4")
    assert len(answer.skeletons) >= 1
    assert f"parameters updated: {threshold}=0.4" in proc.log()

    result = set_parameter("pipeline.lifter.model", "htnet_small")
    assert not result.successful
    assert "pipeline.lifter.model" in result.reason and "read-only" in result.reason
    assert get_parameter("pipeline.lifter.model").string_value == "htnet_small"

    result = set_parameter(threshold, 1.5)
    assert not result.successful and threshold in result.reason, result.reason
    assert get_parameter(threshold).double_value == 0.4
    assert proc.running()


# --- 4. newest frame only -----------------------------------------------------------------


def test_only_the_newest_frame_is_processed(ros_graph, messi):
    """Frames arriving faster than they are processed replace each other instead of queueing."""
    proc = ros_graph.start("pose3d_node", "-p", "fov_fallback_deg:=60.0")
    peer = Peer(ros_graph)
    peer.wait_connected()
    good = _image(messi)
    # Warm up (models, discovery, tracking) and learn how fast frames of this kind are processed:
    # later frames follow the tracked crops and skip the detector, so they are the fast ones.
    for _ in range(WARM_FRAMES):
        peer.expect_answer(lambda: peer.send(good), "a warm-up frame")
    peer.status_after(time.monotonic(), lambda s: True, "diagnostics after the warm-up")
    totals = [float(st["stage_ms.total"]) for _, st in peer.statuses if "stage_ms.total" in st]
    fastest_ms = min(totals)
    # 10x faster than the fastest frame was processed (30 Hz at least, 500 Hz at most).
    rate_hz = min(500.0, max(BURST_RATE_HZ, 1e4 / fastest_ms))

    sent: list[tuple[int, int]] = []
    start = time.monotonic()
    for i in range(BURST_FRAMES):
        sent.append(_key(peer.send(good).stamp))
        next_slot = start + (i + 1) / rate_hz
        while time.monotonic() < next_slot:
            ros_graph.executor.spin_once(timeout_sec=max(0.0, next_slot - time.monotonic()))
    burst_end = time.monotonic()

    # Idle: every frame that arrived was processed or dropped (all have arrived by then).
    status = peer.status_after(
        burst_end + 0.5,
        lambda s: (
            int(s["frames_in"]) == int(s["frames_processed"]) + int(s["frames_dropped"])
            and int(s["frames_processed"]) == len(peer.skeletons)
        ),
        "the node to go idle after the burst",
    )
    counts = _counts(status)
    order = {stamp: i for i, stamp in enumerate(sent)}
    answered = [
        order[_key(m.header.stamp)] for m in peer.skeletons if _key(m.header.stamp) in order
    ]
    assert answered, "no frame of the burst was processed"
    assert len(answered) <= BURST_FRAMES // 3, f"{len(answered)} of {BURST_FRAMES} processed"
    assert answered == sorted(answered), "an older frame was processed after a newer one"
    assert counts["frames_dropped"] >= BURST_FRAMES // 2, status
    assert counts["frames_failed"] == 0
    # The last frame processed is (one of) the last published: no backlog is worked off.
    assert answered[-1] >= BURST_FRAMES - 4, f"last processed frame: {answered[-1]}"
    assert _warnings(proc, "frames arrive faster than they are processed") == 1


# --- 5. a model failing on some frames --------------------------------------------------------

SHIPPED_LIFTER = Path(__file__).resolve().parents[2] / "lifters" / "htnet_small.onnx"


def batch_one_lifter(path: Path) -> Path:
    """The shipped lifter with a Reshape to a fixed batch of 1 appended to its output: it lifts
    one person exactly like the original and fails inside ONNX Runtime for two or more."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(SHIPPED_LIFTER)
    graph = model.graph
    out = graph.output[0].name
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == out:
                node.output[i] = f"{out}_any_batch"
    dims = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim[1:]]
    graph.initializer.append(
        helper.make_tensor("batch_1_shape", TensorProto.INT64, [1 + len(dims)], [1, *dims])
    )
    graph.node.append(
        helper.make_node("Reshape", [f"{out}_any_batch", "batch_1_shape"], [out], "batch_1_only")
    )
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_a_lifter_failing_on_crowded_frames_is_logged_once_counted_and_survived(
    ros_graph, footage, messi, tmp_path
):
    """Frames with several people make the lifter raise inside ONNX Runtime: the node logs that
    once, counts every such frame in /diagnostics, and keeps answering one-person frames."""
    lifter = batch_one_lifter(tmp_path / "batch_one_lifter.onnx")
    proc = ros_graph.start(
        "pose3d_node",
        "-p", f"pipeline.lifter.model:={lifter}",
        "-p", "pipeline.detect_every:=1",  # each frame's people are its own detections
        "-p", "fov_fallback_deg:=60.0",
    )  # fmt: skip
    peer = Peer(ros_graph)
    peer.wait_connected()
    one_person = _image(messi)
    capture = cv2.VideoCapture(str(footage / "vtest.avi"))
    ok, crowd_array = capture.read()  # three people on the square (frame 0)
    capture.release()
    assert ok
    crowd = _image(crowd_array)

    first = peer.expect_answer(lambda: peer.send(one_person), "a one-person frame")
    assert len(first.skeletons) == 1

    def failed() -> int:
        return max((int(st["frames_failed"]) for _, st in peer.statuses), default=0)

    # Crowded frames are not answered; re-send (every 0.5 s) until the node has failed on six,
    # which spans more than any log throttle period would hide.
    stamps = peer.send_until(
        lambda: peer.send(crowd), lambda: failed() >= 6, "six failed frames", WARNING_S * 2
    )
    assert not peer.answers(stamps), "a frame whose lifting failed was answered"
    assert proc.running(), proc.log()

    after = peer.expect_answer(lambda: peer.send(one_person), "a one-person frame after failures")
    # The crowd's tracks may still coast (no joints); the one person seen is lifted.
    seen = [sk for sk in after.skeletons if sk.tracking_state != Skeleton.TRACK_COASTING]
    assert len(seen) == 1, after.skeletons
    assert _finite(seen[0].root) and any(k.valid for k in seen[0].keypoints)

    errors = [line for line in proc.log().splitlines() if "[ERROR]" in line]
    assert len(errors) == 1, errors  # once per kind of failure, however many frames fail
    assert "failed" in errors[0] and "BackendError" in errors[0] and "batch_1_only" in errors[0]
    # ... and nothing else in the process repeats it (ONNX Runtime's own log included).
    assert sum("batch_1_only" in line for line in proc.log().splitlines()) == 1, proc.log()
    assert "Traceback" not in proc.log()


def test_a_lying_person_through_pose3d_node(ros_graph, messi):
    """messi5 turned 90 degrees (the player lies along the image's x axis, head to the left):
    the fused front end finds him (the pedestrian detector alone does not) and pose3d_node
    publishes one skeleton whose 2D body axis (pelvis -> head) is horizontal, with finite 3D."""
    lying = np.ascontiguousarray(np.rot90(messi, 1))  # counter-clockwise: his head points left
    proc = ros_graph.start("pose3d_node")
    peer = Peer(ros_graph)
    peer.wait_connected()
    h, w = lying.shape[:2]
    answer = peer.expect_answer(
        lambda: peer.send(_image(lying), camera=CameraModel.from_fov(w, h, 60.0)),
        "a frame of a lying person",
    )
    assert len(answer.skeletons) == 1, [s.id for s in answer.skeletons]
    joints = {k.name: k for k in answer.skeletons[0].keypoints}
    pelvis, head = joints["pelvis"].pixel, joints["head"].pixel
    assert joints["pelvis"].valid and joints["head"].valid
    dx, dy = head.x - pelvis.x, head.y - pelvis.y
    assert dx < 0 and abs(dx) > 2 * abs(dy), (dx, dy)  # head to the left of the hips
    assert _finite(joints["pelvis"].position) and joints["pelvis"].position.z > 0.5
    assert "Traceback" not in proc.log()
