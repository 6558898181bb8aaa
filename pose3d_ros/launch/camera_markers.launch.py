"""A camera or video as a ROS camera, skeletons drawn as RViz markers, and RViz itself.

    ros2 launch pose3d_ros camera_markers.launch.py input:=/dev/video0
    ros2 launch pose3d_ros camera_markers.launch.py input:=clip.mp4 loop:=true rviz:=false

Nodes (all in `namespace`):
  video_source      input -> `image`, `camera_info`
  skeleton_markers  `skeletons_topic` (pose3d_msgs/SkeletonArray) -> `markers` (MarkerArray)
  rviz2             config/pose3d.rviz, fixed frame = `frame_id` (only when rviz:=true)

Skeletons come from the pose estimator or a bag. Node settings come from `params_file`; the
launch arguments below override the file's values for the parameters they name.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "pose3d_ros"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)

    arguments = [
        DeclareLaunchArgument(
            "input",
            description="Video file, image folder, still image, or camera (index or /dev/videoN)",
        ),
        DeclareLaunchArgument(
            "camera_info_file",
            default_value="",
            description="camera_calibration YAML with the intrinsics; empty = horizontal_fov_deg",
        ),
        DeclareLaunchArgument(
            "horizontal_fov_deg",
            default_value="60.0",
            description="Assumed horizontal field of view when there is no camera_info_file",
        ),
        DeclareLaunchArgument(
            "rate",
            default_value="0.0",
            description="Publish rate in Hz; 0 = the input's own frame rate",
        ),
        DeclareLaunchArgument(
            "loop",
            default_value="false",
            choices=["true", "false"],
            description="Start the input again at its end instead of stopping",
        ),
        DeclareLaunchArgument(
            "frame_id",
            default_value="camera_optical_frame",
            description="Optical frame of the camera images (also RViz's fixed frame)",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="", description="Namespace of all nodes and topics"
        ),
        DeclareLaunchArgument(
            "skeletons_topic",
            default_value="skeletons",
            description="pose3d_msgs/SkeletonArray topic to draw",
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
            description="Use the /clock topic (bag playback, simulation)",
        ),
        DeclareLaunchArgument(
            "rviz",
            default_value="true",
            choices=["true", "false"],
            description="Start RViz with config/pose3d.rviz",
        ),
    ]

    namespace = LaunchConfiguration("namespace")
    params_file = LaunchConfiguration("params_file")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)

    video_source = Node(
        package=PACKAGE,
        executable="video_source_node",
        name="video_source",
        namespace=namespace,
        output="screen",
        parameters=[
            params_file,
            {
                # value_type keeps e.g. input:=0 (a camera index) a string for the node.
                "input": ParameterValue(LaunchConfiguration("input"), value_type=str),
                "camera_info_file": ParameterValue(
                    LaunchConfiguration("camera_info_file"), value_type=str
                ),
                "horizontal_fov_deg": ParameterValue(
                    LaunchConfiguration("horizontal_fov_deg"), value_type=float
                ),
                "rate": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                "loop": ParameterValue(LaunchConfiguration("loop"), value_type=bool),
                "frame_id": ParameterValue(LaunchConfiguration("frame_id"), value_type=str),
                "use_sim_time": use_sim_time,
            },
        ],
    )

    skeleton_markers = Node(
        package=PACKAGE,
        executable="skeleton_markers_node",
        name="skeleton_markers",
        namespace=namespace,
        output="screen",
        parameters=[params_file, {"use_sim_time": use_sim_time}],
        remappings=[("skeletons", LaunchConfiguration("skeletons_topic"))],
    )

    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=namespace,
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

    return LaunchDescription([*arguments, video_source, skeleton_markers, rviz])
