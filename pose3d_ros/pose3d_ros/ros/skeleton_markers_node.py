"""skeleton_markers_node: pose3d_msgs/SkeletonArray on `skeletons` -> MarkerArray on `markers`."""

from __future__ import annotations

from dataclasses import dataclass

from rclpy.node import Node
from rclpy.qos import QoSProfile
from visualization_msgs.msg import MarkerArray

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.ros.lifecycle import run_node
from pose3d_ros.ros.markers import MarkerSettings, skeleton_markers
from pose3d_ros.ros.ros_parameters import NodeSettings


@dataclass(frozen=True)
class SkeletonMarkersSettings(MarkerSettings):
    pass


class SkeletonMarkersNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("skeleton_markers", **kwargs)
        self.settings = NodeSettings(self, SkeletonMarkersSettings)
        self._pub = self.create_publisher(MarkerArray, "markers", QoSProfile(depth=5))
        self._sub = self.create_subscription(SkeletonArray, "skeletons", self._on_skeletons, 5)

    def _on_skeletons(self, msg: SkeletonArray) -> None:
        self._pub.publish(skeleton_markers(msg, self.settings.current))


def main(args: list[str] | None = None) -> int:
    return run_node(SkeletonMarkersNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
