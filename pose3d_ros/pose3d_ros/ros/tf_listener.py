"""TF lookups for a node: tf2_ros where it is installed, else /tf + /tf_static into our buffer.

On a robot tf2_ros (package tf2_ros_py) is there and is used as is. Where it is not (these
machines: ROS from PyPI wheels has no tf2_ros), the node subscribes /tf (volatile) and
/tf_static (transient local, so transforms published before the node started still arrive) and
keeps them in core/transforms.TransformBuffer. Either way `lookup` returns a core Transform or
raises a core TransformError with a specific message, so the caller has one code path.
"""

from __future__ import annotations

import threading

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from scipy.spatial.transform import Rotation
from tf2_msgs.msg import TFMessage

from pose3d_ros.core.transforms import (
    ExtrapolationError,
    NotConnectedError,
    Transform,
    TransformBuffer,
    TransformError,
    UnknownFrameError,
)
from pose3d_ros.ros.messages import transform_from_msg

# tf2's own QoS: /tf reliable, volatile, depth 100; /tf_static reliable, transient local.
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class TfLookup:
    """Looks up transforms between frames at a time, from what /tf and /tf_static carried."""

    def __init__(self, node: Node, cache_time_s: float = 10.0) -> None:
        self._node = node
        self._subscriptions: list = []
        try:
            import tf2_ros
        except ImportError:
            tf2_ros = None
        if tf2_ros is not None:
            self.backend = "tf2_ros"
            self._tf2 = tf2_ros
            self._buffer = tf2_ros.Buffer(cache_time=Duration(seconds=cache_time_s))
            self._listener = tf2_ros.TransformListener(self._buffer, node, spin_thread=False)
            return
        self.backend = "own buffer"
        self._tf2 = None
        self._lock = threading.Lock()
        self._own = TransformBuffer(cache_time_s=cache_time_s)
        self._subscriptions = [
            node.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS),
            node.create_subscription(
                TFMessage, "/tf_static", lambda m: self._on_tf(m, static=True), TF_STATIC_QOS
            ),
        ]

    def _on_tf(self, msg: TFMessage, static: bool = False) -> None:
        for t in msg.transforms:
            parent, child, stamp, quat, translation = transform_from_msg(t)
            try:
                with self._lock:
                    self._own.set_transform(parent, child, stamp, quat, translation, static)
            except ValueError as e:
                self._node.get_logger().warning(
                    f"ignoring a transform on {'/tf_static' if static else '/tf'}: {e}",
                    throttle_duration_sec=5.0,
                )

    def lookup(
        self, target: str, source: str, stamp_s: float, tolerance_s: float = 0.0
    ) -> Transform:
        """The transform mapping points in `source` into `target` at `stamp_s` (seconds).

        When the data does not reach `stamp_s` (a camera's image often arrives before the /tf
        of the same instant), the newest transform is used if it is at most `tolerance_s` away.
        """
        try:
            return self._lookup(target, source, stamp_s)[0]
        except ExtrapolationError:
            if tolerance_s <= 0:
                raise
            latest, t_latest = self._lookup(target, source, None)
            if abs(t_latest - stamp_s) > tolerance_s:
                raise
            return latest

    def _lookup(self, target: str, source: str, stamp_s: float | None) -> tuple[Transform, float]:
        """(transform, its time in s); stamp_s None: the latest time the whole chain has."""
        if self._tf2 is None:
            with self._lock:
                t = self._own.latest_common_time(target, source) if stamp_s is None else stamp_s
                # t is None only when every edge is static: valid at any time
                return self._own.lookup(target, source, t), (0.0 if t is None else t)
        tf2 = self._tf2
        when = Time() if stamp_s is None else Time(nanoseconds=round(stamp_s * 1e9))
        try:
            msg = self._buffer.lookup_transform(target, source, when)
        except tf2.LookupException as e:
            raise UnknownFrameError(str(e)) from None
        except tf2.ConnectivityException as e:
            raise NotConnectedError(str(e)) from None
        except tf2.ExtrapolationException as e:
            raise ExtrapolationError(str(e)) from None
        except tf2.TransformException as e:
            raise TransformError(str(e)) from None
        _, _, t, quat, translation = transform_from_msg(msg)
        return Transform(Rotation.from_quat(quat), translation), t

    def close(self) -> None:
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        self._subscriptions = []
        if self._tf2 is not None:
            self._listener.unregister()
