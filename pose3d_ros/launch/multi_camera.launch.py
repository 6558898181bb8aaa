"""One pose3d_node process per camera, for robots that prefer a process per camera.

    ros2 launch pose3d_ros multi_camera.launch.py cameras:=/front_camera,/rear_camera

Node k is `pose3d` in camera k's namespace: it subscribes `<camera>/image_raw` (or
`<camera>/image_raw/compressed` with `compressed_input`) and `<camera>/camera_info`, and
publishes `<camera>/skeletons`, `<camera>/markers`, `<camera>/debug_image` and `/diagnostics`:
the same topics as one pose3d_node serving all of them with
`-p cameras.namespaces:=/front_camera,/rear_camera`, which loads the models once and batches the
cameras' inferences (see the README's "Several cameras" for the measured difference). Every node
loads its own models and counts its own ids from 1, so ids are unique per camera topic.

Each node is managed (lifecycle): this launch file starts it with autostart off, requests
configure and activates it once configure has succeeded. Settings come from `params_file`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.parameter_descriptions import ParameterValue

from pose3d_ros.camera_set import parse_namespaces
from pose3d_ros.ros.demo_graph import NodeSpec
from pose3d_ros.ros.launch_actions import spec_actions

PACKAGE = "pose3d_ros"


def camera_nodes(context, cameras, params_file, use_sim_time) -> list:
    """A managed pose3d_node per camera namespace of the `cameras` argument (comma-separated;
    a bad namespace stops the launch with the reason)."""
    namespaces = parse_namespaces(context.perform_substitution(cameras))
    if not namespaces:
        raise ValueError("cameras: give at least one camera namespace, e.g. cameras:=/front")
    spec = NodeSpec(
        executable="pose3d_node",
        name="pose3d",
        params_file="pose3d.yaml",
        parameters={"use_sim_time": ParameterValue(use_sim_time, value_type=bool)},
        # In the camera's namespace: `image` -> <camera>/image_raw, camera_info as it is.
        remappings=(("image", "image_raw"), ("image/compressed", "image_raw/compressed")),
        lifecycle=True,
    )
    return [
        action
        for ns in namespaces
        for action in spec_actions(spec, params_file, namespace=ns, output="screen")
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "cameras",
            default_value="/camera_0,/camera_1",
            description="Comma-separated camera namespaces, one pose3d_node each",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "pose3d.yaml"),
            description="ROS parameters file for every pose3d_node",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="Use the /clock topic (bag playback, simulation)",
        ),
    ]
    nodes = OpaqueFunction(
        function=camera_nodes,
        kwargs={
            "cameras": LaunchConfiguration("cameras"),
            "params_file": LaunchConfiguration("params_file"),
            "use_sim_time": LaunchConfiguration("use_sim_time"),
        },
    )
    return LaunchDescription([*arguments, nodes])
