"""pose3d_node: camera images to tracked, metric 3D skeletons.

Subscribes `image` (or `image/compressed`) and `camera_info`; publishes `skeletons`
(pose3d_msgs/SkeletonArray, header = the input image's header), `markers`, optional
`debug_image`, and `/diagnostics`. Only the newest frame is processed: a frame that arrives while
the previous one is still being processed replaces any waiting frame (counted as dropped), so
latency never builds up and memory never grows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.core.camera import CameraInfoError, CameraModel
from pose3d_ros.core.image_encoding import ImageEncodingError
from pose3d_ros.core.parameters import group, setting
from pose3d_ros.pipeline import PipelineSettings, PosePipeline
from pose3d_ros.ros.lifecycle import run_node
from pose3d_ros.ros.markers import MarkerSettings, skeleton_markers
from pose3d_ros.ros.messages import (
    array_to_image_msg,
    camera_info_to_model,
    compressed_msg_to_bgr,
    image_msg_to_bgr,
    poses_to_msg,
)
from pose3d_ros.ros.qos import QOS_CHOICES, image_qos
from pose3d_ros.ros.ros_parameters import NodeSettings
from pose3d_ros.visualization import draw_poses_2d


@dataclass(frozen=True)
class Pose3DNodeSettings:
    compressed_input: bool = setting(
        False,
        "Subscribe sensor_msgs/CompressedImage on `image/compressed` instead of `image`",
        read_only=True,
    )
    input_qos: str = setting(
        "sensor_data",
        "QoS of the image and camera_info subscriptions (REP-2003 default)",
        choices=QOS_CHOICES,
        read_only=True,
    )
    fov_fallback_deg: float = setting(
        0.0,
        "Horizontal field of view to assume while no valid camera_info has arrived "
        "(0 = wait for camera_info and skip frames)",
        range=(0.0, 170.0),
        unit="deg",
    )
    max_image_pixels: int = setting(
        4096 * 4096,
        "Images larger than this are refused with a warning",
        range=(1, 2**31 - 1),
    )
    publish_markers: bool = setting(True, "Publish RViz markers on `markers`")
    publish_debug_image: bool = setting(
        False, "Publish the input with 2D skeletons and ids drawn on `debug_image`"
    )
    diagnostics_period_s: float = setting(
        1.0,
        "Period of /diagnostics messages",
        range=(0.1, 60.0),
        unit="s",
        read_only=True,
    )
    pipeline: PipelineSettings = group(PipelineSettings)
    markers: MarkerSettings = group(MarkerSettings)


class _Rate:
    """Events per second over a sliding window of stamps (bounded)."""

    def __init__(self, window: int = 60) -> None:
        self._t: deque[float] = deque(maxlen=window)

    def tick(self, t: float) -> None:
        self._t.append(t)

    def hz(self) -> float:
        if len(self._t) < 2 or self._t[-1] <= self._t[0]:
            return 0.0
        return (len(self._t) - 1) / (self._t[-1] - self._t[0])


class Pose3DNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("pose3d", **kwargs)
        self.settings = NodeSettings(self, Pose3DNodeSettings, on_change=self._on_change)
        s = self.settings.current
        self.pipeline = PosePipeline(s.pipeline)
        self._pipeline_lock = threading.Lock()  # settings changes never land mid-frame
        self.get_logger().info(f"pipeline ready: {self.pipeline.describe()}")

        self._camera: CameraModel | None = None
        self._camera_warned = False
        self._lock = threading.Condition()
        self._pending = None  # newest unprocessed image message
        self._stop = False
        self.frames_in = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.frames_failed = 0
        self.frames_skipped = 0  # refused: bad image, no usable camera_info
        self._last_warning: dict[str, float] = {}
        self._drop_logged = False
        self._rate_in, self._rate_out = _Rate(), _Rate()
        self._last_stages: dict[str, float] = {}
        self._last_people = 0

        # Publishers first: a frame may arrive as soon as the subscriptions exist.
        self._skeleton_pub = self.create_publisher(SkeletonArray, "skeletons", QoSProfile(depth=5))
        self._marker_pub = self.create_publisher(MarkerArray, "markers", QoSProfile(depth=5))
        self._debug_pub = self.create_publisher(Image, "debug_image", QoSProfile(depth=1))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=5))
        qos = image_qos(s.input_qos)
        if s.compressed_input:
            self.create_subscription(CompressedImage, "image/compressed", self._on_image, qos)
        else:
            self.create_subscription(Image, "image", self._on_image, qos)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos)
        self.create_timer(s.diagnostics_period_s, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="pose3d_worker", daemon=True)
        self._worker.start()

    # --- inputs (executor thread): cheap, never block -------------------------------------

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            camera = camera_info_to_model(msg)
        except CameraInfoError as e:
            self.get_logger().warning(
                f"ignoring invalid camera_info: {e}", throttle_duration_sec=5.0
            )
            return
        if camera != self._camera:
            for w in camera.warnings():
                self.get_logger().warning(f"camera_info: {w}")
            self._camera = camera

    def _on_image(self, msg) -> None:
        self.frames_in += 1
        self._rate_in.tick(time.monotonic())
        with self._lock:
            if self._pending is not None:
                self.frames_dropped += 1
                if not self._drop_logged:
                    self._drop_logged = True
                    self.get_logger().warning(
                        "frames arrive faster than they are processed: processing the newest only "
                        "(dropped frames are counted in /diagnostics)"
                    )
            self._pending = msg
            self._lock.notify()

    # --- processing (worker thread) -------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._stop:
                    self._lock.wait(0.5)
                if self._stop:
                    return
                msg, self._pending = self._pending, None
            try:
                self._process(msg)
            except Exception as e:  # one bad frame must not stop the node
                self.frames_failed += 1
                self.get_logger().error(
                    f"frame {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d} failed: "
                    f"{type(e).__name__}: {e}",
                    throttle_duration_sec=2.0,
                )

    def _warn(self, key: str, text: str, period_s: float = 5.0) -> None:
        """A warning at most every period_s per kind of problem (kinds do not hide each other)."""
        now = time.monotonic()
        if now - self._last_warning.get(key, -1e9) >= period_s:
            self._last_warning[key] = now
            self.get_logger().warning(text)

    def _camera_for(self, width: int, height: int) -> CameraModel | None:
        s = self.settings.current
        camera = self._camera
        if camera is not None:
            if (camera.width, camera.height) != (width, height):
                self.get_logger().warning(
                    f"camera_info is for {camera.width}x{camera.height} but the image is "
                    f"{width}x{height}: skipping frame",
                    throttle_duration_sec=5.0,
                )
                return None
            return camera
        if s.fov_fallback_deg > 0:
            if not self._camera_warned:
                self._camera_warned = True
                self.get_logger().warning(
                    f"no camera_info yet: ASSUMING a {s.fov_fallback_deg:.0f} deg horizontal field "
                    "of view (metric 3D depends on it)"
                )
            return CameraModel.from_fov(width, height, s.fov_fallback_deg)
        self.get_logger().warning(
            "waiting for a valid camera_info on `camera_info`; frames are skipped "
            "(set fov_fallback_deg to run without one)",
            throttle_duration_sec=5.0,
        )
        return None

    def _process(self, msg) -> None:
        s = self.settings.current
        try:
            if isinstance(msg, CompressedImage):
                image = compressed_msg_to_bgr(msg, max_pixels=s.max_image_pixels)
            else:
                image = image_msg_to_bgr(msg, max_pixels=s.max_image_pixels)
        except ImageEncodingError as e:
            self.frames_skipped += 1
            self._warn(type(e).__name__ + str(e)[:24], f"cannot use image: {e}")
            return
        if image.shape[0] * image.shape[1] > s.max_image_pixels:
            self.frames_skipped += 1
            self._warn("size", f"image {image.shape[1]}x{image.shape[0]} exceeds max_image_pixels")
            return
        camera = self._camera_for(image.shape[1], image.shape[0])
        if camera is None:
            self.frames_skipped += 1
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self._pipeline_lock:
            result = self.pipeline.process(image, camera, stamp)
        for w in result.warnings:
            self._warn(w.split(":")[0], w)
        out = poses_to_msg(msg.header, result.poses)
        self._skeleton_pub.publish(out)
        if s.publish_markers:
            self._marker_pub.publish(skeleton_markers(out, s.markers))
        if s.publish_debug_image and self._debug_pub.get_subscription_count() > 0:
            self._debug_pub.publish(
                array_to_image_msg(draw_poses_2d(image, result.poses), "bgr8", msg.header)
            )
        self.frames_processed += 1
        self._rate_out.tick(time.monotonic())
        self._last_stages = result.timings_ms
        self._last_people = len(result.poses)

    # --- parameters and diagnostics -------------------------------------------------------

    def _on_change(self, old: Pose3DNodeSettings, new: Pose3DNodeSettings) -> None:
        if new.pipeline != old.pipeline:
            with self._pipeline_lock:
                self.pipeline.update_settings(new.pipeline)  # raises SettingError if it cannot

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(
            name=f"{self.get_name()}: pipeline", hardware_id=self.pipeline.describe()
        )
        stalled = self.frames_in > 0 and self._rate_out.hz() == 0.0 and self.frames_processed == 0
        status.level = (
            DiagnosticStatus.WARN if (self._camera is None or stalled) else DiagnosticStatus.OK
        )
        if self._camera is not None:
            status.message = "running"
        elif self.settings.current.fov_fallback_deg > 0:
            status.message = "running on an ASSUMED field of view (no valid camera_info)"
        else:
            status.message = "waiting for camera_info"
        values = {
            "input_rate_hz": f"{self._rate_in.hz():.2f}",
            "output_rate_hz": f"{self._rate_out.hz():.2f}",
            "frames_in": str(self.frames_in),
            "frames_processed": str(self.frames_processed),
            "frames_dropped": str(self.frames_dropped),
            "frames_failed": str(self.frames_failed),
            "frames_skipped": str(self.frames_skipped),
            "people": str(self._last_people),
            "backend": self.pipeline.describe(),
        }
        values.update({f"stage_ms.{k}": f"{v:.2f}" for k, v in self._last_stages.items()})
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._worker.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    return run_node(Pose3DNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
