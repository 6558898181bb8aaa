"""The demo graph, described once: video_source -> pose3d -> skeleton_markers.

`launch/demo.launch.py` turns these specs into launch_ros actions (`ros/launch_actions.py`) and
`pose3d-tools demo` into processes (`ProcessGraph.start_spec`), so the two cannot drift apart.
Plain data, no rclpy and no launch: parameter values are passed through untouched, so they may be
Python values (the demo) or launch substitutions (the launch file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Topics of the demo graph, absolute so that every node and recorder agrees on them.
IMAGE_TOPIC = "/image"
CAMERA_INFO_TOPIC = "/camera_info"
SKELETONS_TOPIC = "/skeletons"
MARKERS_TOPIC = "/markers"
# image_transport's name for the compressed form of IMAGE_TOPIC (what the demo bag stores).
COMPRESSED_IMAGE_TOPIC = IMAGE_TOPIC + "/compressed"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph: what `ros2 run` / a launch Node action needs to start it.

    `params_file` names a file of the package's config/ folder (the launch file may let the user
    replace it); `parameters` override it. `lifecycle` marks a managed node that a launcher has
    to take through configure -> activate.
    """

    executable: str
    name: str
    params_file: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    lifecycle: bool = False


def demo_graph(
    source_parameters: Mapping[str, Any],
    common_parameters: Mapping[str, Any] | None = None,
    pose3d_parameters: Mapping[str, Any] | None = None,
) -> list[NodeSpec]:
    """The demo's nodes in start order (the video source last: it starts the clock running).

    `source_parameters` are video_source's (input, fov, rate, ...); `common_parameters` go to
    every node (e.g. use_sim_time); `pose3d_parameters` only to pose3d_node (e.g. a floor plane).
    """
    common = dict(common_parameters or {})
    camera = (("image", IMAGE_TOPIC), ("camera_info", CAMERA_INFO_TOPIC))
    return [
        NodeSpec(
            executable="pose3d_node",
            name="pose3d",
            params_file="pose3d.yaml",
            # skeleton_markers draws the markers in this graph; the debug image costs nothing
            # until someone (RViz) subscribes to it; REP-155 body frames on /tf for RViz/Foxglove.
            parameters={
                "publish_markers": False,
                "publish_debug_image": True,
                "rep155": True,
                **dict(pose3d_parameters or {}),
                **common,
            },
            remappings=(*camera, ("skeletons", SKELETONS_TOPIC)),
            lifecycle=True,
        ),
        NodeSpec(
            executable="skeleton_markers_node",
            name="skeleton_markers",
            params_file="camera_markers.yaml",
            parameters=common,
            remappings=(("skeletons", SKELETONS_TOPIC), ("markers", MARKERS_TOPIC)),
        ),
        NodeSpec(
            executable="video_source_node",
            name="video_source",
            params_file="camera_markers.yaml",
            parameters={**source_parameters, **common},
            remappings=camera,
        ),
    ]
