"""pose3d_node on an existing camera: tracked, metric 3D skeletons from its images.

    ros2 launch pose3d_ros pose3d.launch.py camera:=/head_camera
    ros2 launch pose3d_ros pose3d.launch.py image:=/cam/color/image_raw \
        camera_info:=/cam/color/camera_info params_file:=my_pose3d.yaml

Subscribes `<camera>/image_raw` and `<camera>/camera_info` (or the explicit `image` /
`camera_info` topics), publishes `skeletons`, `markers`, `debug_image` and `/diagnostics` in
`namespace`. Settings come from `params_file` (config/pose3d.yaml lists every one).

pose3d_node is a managed (lifecycle) node: this launch file starts it with autostart off and
then requests configure (loads and verifies the models) and, once that succeeded, activate.
With a lifecycle manager of your own, start the node yourself with `autostart:=false` instead.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue

from pose3d_ros.ros.launch_actions import configure_then_activate

PACKAGE = "pose3d_ros"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    camera = LaunchConfiguration("camera")

    arguments = [
        DeclareLaunchArgument(
            "camera", default_value="/camera", description="Camera namespace of the driver"
        ),
        DeclareLaunchArgument(
            "image",
            default_value=[camera, "/image_raw"],
            description="Image topic (default: <camera>/image_raw)",
        ),
        DeclareLaunchArgument(
            "camera_info",
            default_value=[camera, "/camera_info"],
            description="CameraInfo topic (default: <camera>/camera_info)",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="", description="Namespace of the node and its outputs"
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "pose3d.yaml"),
            description="ROS parameters file for pose3d_node",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="Use the /clock topic (bag playback, simulation)",
        ),
    ]

    pose3d = LifecycleNode(
        package=PACKAGE,
        executable="pose3d_node",
        name="pose3d",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "use_sim_time": ParameterValue(
                    LaunchConfiguration("use_sim_time"), value_type=bool
                ),
                "autostart": False,  # this launch file drives configure -> activate
            },
        ],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
            # A compressed stream is image_transport's `<image>/compressed`.
            (
                "image/compressed",
                PythonExpression(["'", LaunchConfiguration("image"), "/compressed'"]),
            ),
        ],
    )
    return LaunchDescription([*arguments, pose3d, *configure_then_activate(pose3d)])
