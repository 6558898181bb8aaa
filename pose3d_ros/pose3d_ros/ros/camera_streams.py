"""Several cameras in one pose3d_node (`cameras.namespaces`): one CameraStream per camera.

Camera `<ns>`: `<ns>/image_raw` (or `<ns>/image_raw/compressed` with `compressed_input`),
`<ns>/camera_info` and, with `depth_input.enabled`, `<ns>/depth` in; `<ns>/skeletons`,
`<ns>/markers`, `<ns>/debug_image` out (the topics multi_camera.launch.py gives one node per
camera). Every camera has its own pipeline (tracker, smoothing, windows, camera model), newest-
frame slot and worker thread, so cameras are processed concurrently; the pipelines share the
node's models through the cross-camera BatchingBackend (camera_set.py), and camera k's ids start
at k * 1000000 + 1.

One home for the per-frame code: a stream is this camera's state (the attributes pose3d_node
keeps for its single camera) run by pose3d_node's own methods (decode, camera_info, depth match,
floor from TF, pipeline, publish, failures counted and logged once per kind), so both modes
behave the same. Shared by all cameras: parameters, models, the TF listener (floor_frame),
/diagnostics (one status per camera).
"""

from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.camera_set import parse_namespaces, shared_pipelines
from pose3d_ros.pipeline import PipelineSettings, PosePipeline
from pose3d_ros.ros.pose3d_node import Pose3DNode
from pose3d_ros.ros.qos import image_qos
from pose3d_ros.ros.rep155 import Rep155Publisher


class _StatusCollector:
    """Takes the DiagnosticArray a stream's diagnostics method publishes, for the node's one."""

    def __init__(self) -> None:
        self.statuses: list[DiagnosticStatus] = []

    def publish(self, array: DiagnosticArray) -> None:
        self.statuses.extend(array.status)


class CameraStream:
    """One camera of a multi-camera pose3d_node (see the module docstring)."""

    # pose3d_node's per-camera methods, run on this stream's state.
    _reset_state = Pose3DNode._reset_state
    _on_camera_info = Pose3DNode._on_camera_info
    _on_image = Pose3DNode._on_image
    _on_depth = Pose3DNode._on_depth
    _depth_for = Pose3DNode._depth_for
    _work = Pose3DNode._work
    _failed = Pose3DNode._failed
    _warn = Pose3DNode._warn
    _camera_for = Pose3DNode._camera_for
    _floor_plane = Pose3DNode._floor_plane
    _process = Pose3DNode._process
    _publish_diagnostics = Pose3DNode._publish_diagnostics
    _streams = None  # a stream is one camera

    def __init__(self, node: Pose3DNode, namespace: str, pipeline: PosePipeline) -> None:
        self.node = node
        self.namespace = namespace
        self.pipeline: PosePipeline | None = pipeline
        self._pipeline_lock = threading.Lock()
        self._lock = threading.Condition()
        self._worker: threading.Thread | None = None
        self._subscriptions_in: list = []
        self._logger = node.get_logger().get_child(namespace.strip("/").replace("/", "."))
        s = node.settings.current
        depth5 = QoSProfile(depth=5)
        create = node.create_lifecycle_publisher
        self._skeleton_pub = create(SkeletonArray, self.topic("skeletons"), depth5)
        self._marker_pub = create(MarkerArray, self.topic("markers"), depth5)
        self._debug_pub = create(Image, self.topic("debug_image"), QoSProfile(depth=1))
        self._rep155 = Rep155Publisher(node) if s.rep155 else None
        self._tf = node._tf  # one TF listener for the node (floor_frame)
        self._diag_pub = None
        self._reset_state()

    # --- what the node's methods read from `self` -----------------------------------------

    @property
    def settings(self):
        return self.node.settings

    def get_logger(self):
        return self._logger

    def get_name(self) -> str:
        return f"{self.node.get_name()} camera {self.namespace}"

    def get_clock(self):
        return self.node.get_clock()

    def topic(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    # --- lifecycle ------------------------------------------------------------------------

    def activate(self) -> None:
        """Start the worker, then subscribe in the camera's namespace."""
        s = self.node.settings.current
        with self._lock:
            self._stop = False
            self._pending = None
        self._worker = threading.Thread(
            target=self._work, name=f"pose3d_worker{self.namespace}", daemon=True
        )
        self._worker.start()
        qos = image_qos(s.input_qos)
        sub = self.node.create_subscription
        if s.compressed_input:
            image = sub(CompressedImage, self.topic("image_raw/compressed"), self._on_image, qos)
        else:
            image = sub(Image, self.topic("image_raw"), self._on_image, qos)
        info = sub(CameraInfo, self.topic("camera_info"), self._on_camera_info, qos)
        self._subscriptions_in = [image, info]
        if s.depth_input.enabled:
            self._subscriptions_in.append(sub(Image, self.topic("depth"), self._on_depth, qos))

    def deactivate(self) -> None:
        """Unsubscribe and stop the worker (it finishes the frame in progress)."""
        for s in self._subscriptions_in:
            self.node.destroy_subscription(s)
        self._subscriptions_in = []
        with self._lock:
            self._stop = True
            self._pending = None
            self._lock.notify()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            self._worker = None

    def release(self) -> None:
        self.deactivate()
        for pub in (self._skeleton_pub, self._marker_pub, self._debug_pub):
            self.node.destroy_lifecycle_publisher(pub)
        if self._rep155 is not None:
            self._rep155.destroy()
            self._rep155 = None
        with self._pipeline_lock:
            self.pipeline = None

    def update_settings(self, new: PipelineSettings) -> None:
        with self._pipeline_lock:
            if self.pipeline is not None:
                self.pipeline.update_settings(new)

    def status(self) -> list[DiagnosticStatus]:
        """This camera's /diagnostics status (the node's own fields and wording)."""
        collector = _StatusCollector()
        self._diag_pub = collector
        self._publish_diagnostics()
        return collector.statuses


class CameraStreams:
    """The cameras of one node: built at configure, driven by the node's lifecycle."""

    def __init__(self, streams: list[CameraStream]) -> None:
        self.streams = streams

    @staticmethod
    def check(namespaces: str) -> list[str]:
        """The parameter's namespaces (SettingError naming the fix), before anything loads."""
        return parse_namespaces(namespaces)

    @classmethod
    def configure(cls, node: Pose3DNode, pipeline: PosePipeline) -> CameraStreams | None:
        """A stream per namespace of `cameras.namespaces`, their pipelines over `pipeline`'s
        models; None when the list is empty (the node serves `image` itself)."""
        s = node.settings.current
        namespaces = cls.check(s.cameras.namespaces)
        if not namespaces:
            return None
        pipelines = shared_pipelines(
            s.pipeline,
            len(namespaces),
            s.cameras.batch_window_ms,
            s.cameras.max_batch,
            models=pipeline.models,
        )
        return cls([CameraStream(node, ns, p) for ns, p in zip(namespaces, pipelines, strict=True)])

    def describe(self) -> str:
        return f"{len(self.streams)} cameras ({', '.join(s.namespace for s in self.streams)})"

    def activate(self) -> None:
        for s in self.streams:
            s.activate()

    def deactivate(self) -> None:
        for s in self.streams:
            s.deactivate()

    def release(self) -> None:
        for s in self.streams:
            s.release()

    def update_settings(self, new: PipelineSettings) -> None:
        for s in self.streams:
            s.update_settings(new)

    def statuses(self) -> list[DiagnosticStatus]:
        return [status for s in self.streams for status in s.status()]
