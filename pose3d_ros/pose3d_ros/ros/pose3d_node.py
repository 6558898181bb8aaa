"""pose3d_node: camera images to tracked, metric 3D skeletons (a managed lifecycle node).

Subscribes `image` (or `image/compressed`) and `camera_info`; publishes `skeletons`
(pose3d_msgs/SkeletonArray, header = the input image's header), `markers`, optional
`debug_image`, and `/diagnostics`. Only the newest frame is processed: a frame that arrives while
the previous one is still being processed replaces any waiting frame (counted as dropped), so
latency never builds up and memory never grows.

Lifecycle (REP-2012 style, as a lifecycle manager or `ros2 lifecycle set` drives it):
configure loads and verifies the models (a missing or corrupt model fails the transition with the
reason; the node stays `unconfigured`), activate subscribes and starts processing, deactivate
stops processing and unsubscribes, cleanup frees the models. With `autostart` (the default) the
node configures and activates itself, so `ros2 run pose3d_ros pose3d_node` just works; other
processes see readiness as `pose3d/get_state` == active.
"""

from __future__ import annotations

import re
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.assets import AssetError
from pose3d_ros.backends.base import BackendError
from pose3d_ros.camera_set import CameraSetSettings, parse_namespaces
from pose3d_ros.core.camera import CameraInfoError, CameraModel
from pose3d_ros.core.floor import FloorPlane, FloorPlaneError, floor_from_transform
from pose3d_ros.core.image_encoding import ImageEncodingError
from pose3d_ros.core.parameters import SettingError, group, setting
from pose3d_ros.core.transforms import TransformError
from pose3d_ros.pipeline import PipelineSettings, PosePipeline
from pose3d_ros.ros.depth_sync import DepthInputSettings, DepthSync, depth_from_fields
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
from pose3d_ros.ros.rep155 import Rep155Publisher
from pose3d_ros.ros.ros_parameters import NodeSettings
from pose3d_ros.ros.tf_listener import TfLookup
from pose3d_ros.stages.depth_fusion import DepthImage
from pose3d_ros.visualization import draw_poses_2d

# What makes `configure` fail (a setup problem, reported in one line): anything else is a bug.
CONFIGURE_ERRORS = (AssetError, BackendError, SettingError)


@dataclass(frozen=True)
class Pose3DNodeSettings:
    autostart: bool = setting(
        True,
        "Configure and activate at start-up; false: wait in `unconfigured` for a lifecycle "
        "manager (configure -> activate through `<node>/change_state`)",
        read_only=True,
    )
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
    floor_frame: str = setting(
        "",
        "TF frame of the floor (z up, floor at z = 0, e.g. base_footprint): each image's camera "
        "pose in it is looked up at the image stamp (/tf, /tf_static) and people on the floor "
        "are placed on it; empty = off",
        read_only=True,
    )
    floor_tf_tolerance_s: float = setting(
        0.1,
        "How far the newest floor_frame transform may be from the image stamp when TF has no "
        "data at the stamp itself",
        range=(0.0, 10.0),
        unit="s",
    )
    rep155: bool = setting(
        False,
        "REP-155 (ROS4HRI) output: `/humans/bodies/tracked` (hri_msgs/IdsList) and frames "
        "body_<id> + <joint>_<id> on /tf (tf2_msgs/TFMessage)",
        read_only=True,
    )
    depth_input: DepthInputSettings = group(DepthInputSettings)
    cameras: CameraSetSettings = group(CameraSetSettings)
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


class Pose3DNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("pose3d", **kwargs)
        self.pipeline: PosePipeline | None = None
        self._skeleton_pub = self._marker_pub = self._debug_pub = self._diag_pub = None
        self._rep155: Rep155Publisher | None = None  # rep155: true
        self._tf: TfLookup | None = None  # floor_frame set
        self._streams = None  # cameras.namespaces: ros/camera_streams.py
        self._quiet_configure = False
        # Parameters exist from the start (a manager may set them before configure); settings
        # marked read-only can change only while the node is unconfigured.
        self.settings = NodeSettings(
            self,
            Pose3DNodeSettings,
            on_change=self._on_change,
            read_only_when=lambda: self.pipeline is not None,
        )
        self._pipeline_lock = threading.Lock()  # settings changes never land mid-frame
        self._lock = threading.Condition()
        self._worker: threading.Thread | None = None
        self._subscriptions_in: list = []
        self._diag_timer = None
        self._configure_error: Exception | None = None
        self._reset_state()
        if self.settings.current.autostart:
            self._autostart()

    def _reset_state(self) -> None:
        """Counters and per-run state: fresh on every configure."""
        self._camera: CameraModel | None = None
        self._camera_warned = False
        self._pending = None  # newest unprocessed image message
        self._stop = False
        self.frames_in = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.frames_failed = 0
        self.frames_skipped = 0  # refused: bad image, no usable camera_info
        self._last_warning: dict[str, float] = {}
        self._failure_kinds: set[str] = set()
        self._drop_logged = False
        self._rate_in, self._rate_out = _Rate(), _Rate()
        self._last_stages: dict[str, float] = {}
        self._last_people = 0
        self._floor_status = "no image yet"  # floor_frame: the last lookup's outcome
        self._floor_height_m = float("nan")
        self._depth = DepthSync(self.settings.current.depth_input)

    def _autostart(self) -> None:
        """configure + activate now; a setup problem is raised (the caller exits with code 2)."""
        self._quiet_configure = True  # the caller reports the error in one line
        try:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise self._configure_error or RuntimeError("configure failed")
        finally:
            self._quiet_configure = False
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError("activate failed (see the log)")

    # --- lifecycle transitions ------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and verify the models; publishers exist (inactive) from here on."""
        s = self.settings.current
        self._configure_error = None
        try:
            parse_namespaces(s.cameras.namespaces)  # a bad list fails before models load
            pipeline = PosePipeline(s.pipeline)
        except CONFIGURE_ERRORS as e:
            self._configure_error = e
            if not self._quiet_configure:
                self.get_logger().error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        except Exception as e:  # a bug: rclpy would swallow it, so say what happened
            self._configure_error = e
            if not self._quiet_configure:
                self.get_logger().error(f"configure failed:\n{traceback.format_exc()}")
            return TransitionCallbackReturn.FAILURE
        with self._pipeline_lock:
            self.pipeline = pipeline
        self._reset_state()
        self.get_logger().info(f"pipeline ready: {pipeline.describe()}")
        # Lifecycle publishers: they send only while the node is active.
        depth5 = QoSProfile(depth=5)
        self._skeleton_pub = self.create_lifecycle_publisher(SkeletonArray, "skeletons", depth5)
        self._marker_pub = self.create_lifecycle_publisher(MarkerArray, "markers", depth5)
        self._debug_pub = self.create_lifecycle_publisher(Image, "debug_image", QoSProfile(depth=1))
        self._diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", depth5)
        if s.rep155:
            self._rep155 = Rep155Publisher(self)
        if s.floor_frame:  # subscribed from configure on: /tf_static is latched, /tf is not
            self._tf = TfLookup(self)
            self.get_logger().info(
                f"floor plane from TF frame {s.floor_frame!r} ({self._tf.backend})"
            )
        if s.cameras.namespaces:  # several cameras, one set of models
            from pose3d_ros.ros.camera_streams import CameraStreams  # it imports this module

            self._streams = CameraStreams.configure(self, pipeline)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the worker, then subscribe (publishers first: a frame may arrive at once)."""
        ret = super().on_activate(state)  # enables the lifecycle publishers
        s = self.settings.current
        if self._streams is not None:  # several cameras: each subscribes in its namespace
            self._streams.activate()
            self._diag_timer = self.create_timer(s.diagnostics_period_s, self._publish_diagnostics)
            self.get_logger().info(f"active: processing {self._streams.describe()}")
            return ret
        with self._lock:
            self._stop = False
            self._pending = None
        self._worker = threading.Thread(target=self._work, name="pose3d_worker", daemon=True)
        self._worker.start()
        qos = image_qos(s.input_qos)
        if s.compressed_input:
            image_sub = self.create_subscription(
                CompressedImage, "image/compressed", self._on_image, qos
            )
        else:
            image_sub = self.create_subscription(Image, "image", self._on_image, qos)
        info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos)
        self._subscriptions_in = [image_sub, info_sub]
        if s.depth_input.enabled:  # same QoS as the image: a depth camera's sensor stream
            self._depth = DepthSync(s.depth_input)
            sub = self.create_subscription(Image, "depth", self._on_depth, qos)
            self._subscriptions_in.append(sub)
        self._diag_timer = self.create_timer(s.diagnostics_period_s, self._publish_diagnostics)
        self.get_logger().info("active: processing images")
        return ret

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop processing; the models stay loaded for a quick re-activate."""
        self._stop_processing()
        self.get_logger().info("inactive: not subscribed, not processing")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the models and the publishers (back to unconfigured)."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error while in state {state.label}: cleaning up")
        self._release()
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def _stop_processing(self) -> None:
        if self._streams is not None:
            self._streams.deactivate()
        for sub in self._subscriptions_in:
            self.destroy_subscription(sub)
        self._subscriptions_in = []
        if self._diag_timer is not None:
            self._diag_timer.cancel()
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        with self._lock:
            self._stop = True
            self._pending = None
            self._lock.notify()
        if self._worker is not None:
            self._worker.join(timeout=30.0)  # finishes the frame in progress
            self._worker = None

    def _release(self) -> None:
        self._stop_processing()
        for name in ("_skeleton_pub", "_marker_pub", "_debug_pub", "_diag_pub"):
            pub = getattr(self, name, None)
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
                setattr(self, name, None)
        if self._rep155 is not None:
            self._rep155.destroy()
            self._rep155 = None
        if self._tf is not None:
            self._tf.close()
            self._tf = None
        if self._streams is not None:
            self._streams.release()
            self._streams = None
        with self._pipeline_lock:
            self.pipeline = None  # the backends (ONNX Runtime sessions) go with it

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

    def _on_depth(self, msg: Image) -> None:
        """Check an aligned depth image (ros/depth_sync.py) and keep it for matching."""
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        try:
            depth = depth_from_fields(
                msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian,
                max_pixels=self.settings.current.max_image_pixels,
            )  # fmt: skip
        except ImageEncodingError as e:
            self._depth.refuse()
            self._warn("depth:" + str(e)[:24], f"cannot use depth image: {e}")
            return
        self._depth.push(stamp, depth)

    def _depth_for(self, stamp: float, image) -> DepthImage | None:
        """The depth image matched to this frame, or None (with a throttled warning why)."""
        current = self.settings.current.depth_input
        if not current.enabled:
            return None
        self._depth.settings = current  # slop_s may change at run time
        depth, problem = self._depth.match(stamp, image.shape[1], image.shape[0])
        if problem:
            self._warn("depth:" + problem[:24], f"depth not used for this frame: {problem}")
        return depth

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
                self._failed(msg, e)

    def _failed(self, msg, error: Exception) -> None:
        """Count a frame the pipeline failed on; log each kind of failure once (the count is in
        /diagnostics), so a model that fails on every crowded frame does not flood the log."""
        self.frames_failed += 1
        kind = _failure_kind(error)
        if kind in self._failure_kinds:
            return
        self._failure_kinds.add(kind)
        self.get_logger().error(
            f"frame {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d} failed: "
            f"{type(error).__name__}: {error} (later failures of this kind are only counted in "
            "/diagnostics frames_failed)"
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

    def _floor_plane(self, frame_id: str, stamp: float) -> FloorPlane | None:
        """The floor in this image's camera frame from TF at the image stamp; None (with a
        throttled warning naming the cause) when TF cannot say: placement then falls back."""
        s = self.settings.current
        try:
            t = self._tf.lookup(s.floor_frame, frame_id, stamp, s.floor_tf_tolerance_s)
            plane = floor_from_transform(t.matrix, t.translation)
        except (TransformError, FloorPlaneError) as e:
            self._floor_status = f"no floor from TF: {e}"
            self._floor_height_m = float("nan")
            self._warn(
                "floor_frame",
                f"floor_frame: no usable transform {s.floor_frame} <- "
                f"{frame_id or '(image has no frame_id)'} at t={stamp:.3f}: {e}; people are "
                "placed without the floor until it is found",
            )
            return None
        self._floor_status = f"from TF {s.floor_frame} <- {frame_id}"
        self._floor_height_m = plane.camera_height_m
        return plane

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
        floor = self._floor_plane(msg.header.frame_id, stamp) if self._tf is not None else None
        with self._pipeline_lock:
            if self.pipeline is None:
                return  # cleaned up meanwhile
            if self._tf is not None:
                self.pipeline.set_floor(floor)
            result = self.pipeline.process(image, camera, stamp, self._depth_for(stamp, image))
        for w in result.warnings:
            self._warn(w.split(":")[0], w)
        out = poses_to_msg(msg.header, result.poses)
        self._skeleton_pub.publish(out)
        if self._rep155 is not None:
            self._rep155.publish(msg.header, result.poses)
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
                if self.pipeline is not None:  # unconfigured: used at the next configure
                    self.pipeline.update_settings(new.pipeline)  # SettingError if it cannot
            if self._streams is not None:
                self._streams.update_settings(new.pipeline)

    def _publish_diagnostics(self) -> None:
        pipeline = self.pipeline
        if pipeline is None or self._diag_pub is None:
            return
        status = DiagnosticStatus(
            name=f"{self.get_name()}: pipeline", hardware_id=pipeline.describe()
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
            **(
                {
                    "floor": self._floor_status,
                    "floor_camera_height_m": f"{self._floor_height_m:.3f}",
                }
                if self._tf is not None
                else {}
            ),
            "backend": pipeline.describe(),
        }
        values.update({f"stage_ms.{k}": f"{v:.2f}" for k, v in self._last_stages.items()})
        if self.settings.current.depth_input.enabled:
            values.update(self._depth.counts())
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        if self._streams is not None:  # one status per camera (the node's own is unused)
            array.status = self._streams.statuses()
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def close(self) -> None:
        """Ctrl-C / SIGTERM: stop the worker and free the models, whatever the state."""
        self._release()


def _failure_kind(error: Exception) -> str:
    """What makes two failures 'the same': the exception type and its message without numbers
    (shapes and counts differ from frame to frame, the cause does not)."""
    text = re.sub(r"\d+", "#", str(error))[:120]
    return f"{type(error).__name__}: {text}"


def main(args: list[str] | None = None) -> int:
    return run_node(Pose3DNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
