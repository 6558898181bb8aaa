"""The ROS 2 layer: nodes and message conversion. The only place that imports rclpy.

`NODE_SETTINGS` names each node's console script and the settings dataclass its parameters are
declared from; the README tables, the params files and the launch-file tests are checked
against it.
"""

from __future__ import annotations

import importlib

NODE_SETTINGS: dict[str, str] = {
    "video_source_node": "pose3d_ros.ros.video_source_node:VideoSourceSettings",
    "skeleton_markers_node": "pose3d_ros.ros.skeleton_markers_node:SkeletonMarkersSettings",
    "pose3d_node": "pose3d_ros.ros.pose3d_node:Pose3DNodeSettings",
}


def settings_class(executable: str) -> type:
    """The settings dataclass of a node, by console-script name."""
    module, name = NODE_SETTINGS[executable].split(":")
    return getattr(importlib.import_module(module), name)
