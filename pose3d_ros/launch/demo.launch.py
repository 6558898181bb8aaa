"""The whole graph on a video (or a USB camera) with RViz: what `make demo` runs.

    ros2 launch pose3d_ros demo.launch.py input:=/path/to/vtest.avi
    ros2 launch pose3d_ros demo.launch.py input:=/dev/video0 camera_info_file:=$HOME/cam.yaml

video_source -> `/image`, `/camera_info` -> pose3d -> `/skeletons` -> skeleton_markers
-> `/markers`, and RViz with config/pose3d.rviz. The graph itself (nodes, fixed parameters,
topics) is pose3d_ros.ros.demo_graph, the same description `make demo` starts; pose3d runs as a
managed node that this launch file configures, then activates.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from pose3d_ros.ros.demo_graph import demo_graph
from pose3d_ros.ros.launch_actions import graph_actions

PACKAGE = "pose3d_ros"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)

    arguments = [
        DeclareLaunchArgument(
            "input",
            description="Video file, image folder, still image, or camera (index or /dev/videoN)",
        ),
        DeclareLaunchArgument(
            "camera_info_file",
            default_value="",
            description="camera_calibration YAML; empty = assume horizontal_fov_deg",
        ),
        DeclareLaunchArgument(
            "horizontal_fov_deg",
            default_value="60.0",
            description="Assumed horizontal field of view without a camera_info_file",
        ),
        DeclareLaunchArgument(
            "loop",
            default_value="false",
            choices=["true", "false"],
            description="Play the input in a loop",
        ),
        DeclareLaunchArgument(
            "frame_id",
            default_value="camera_optical_frame",
            description="Optical frame of the images (RViz's fixed frame)",
        ),
        DeclareLaunchArgument(
            "pose3d_params_file",
            default_value=os.path.join(share, "config", "pose3d.yaml"),
            description="ROS parameters file for pose3d_node",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "camera_markers.yaml"),
            description="ROS parameters file for video_source and skeleton_markers",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="Use the /clock topic",
        ),
        DeclareLaunchArgument(
            "rviz", default_value="true", choices=["true", "false"], description="Start RViz"
        ),
    ]

    source_parameters = {
        "input": ParameterValue(LaunchConfiguration("input"), value_type=str),
        "camera_info_file": ParameterValue(LaunchConfiguration("camera_info_file"), value_type=str),
        "horizontal_fov_deg": ParameterValue(
            LaunchConfiguration("horizontal_fov_deg"), value_type=float
        ),
        "loop": ParameterValue(LaunchConfiguration("loop"), value_type=bool),
        "frame_id": ParameterValue(LaunchConfiguration("frame_id"), value_type=str),
    }
    nodes = graph_actions(
        demo_graph(source_parameters, {"use_sim_time": use_sim_time}),
        {
            "pose3d.yaml": LaunchConfiguration("pose3d_params_file"),
            "camera_markers.yaml": LaunchConfiguration("params_file"),
        },
        output="screen",
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        output="log",
        arguments=[
            "-d",
            os.path.join(share, "config", "pose3d.rviz"),
            "-f",
            LaunchConfiguration("frame_id"),
        ],
        parameters=[{"use_sim_time": use_sim_time}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*arguments, *nodes, rviz])
