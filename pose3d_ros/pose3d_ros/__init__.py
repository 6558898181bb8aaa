"""pose3d_ros: camera images to tracked, metric 3D human skeletons.

The package is a ROS-free core (joint sets, cameras, image encodings, models, tracking, ...) with a
thin ROS layer in ``pose3d_ros.ros``; only that subpackage imports rclpy.
"""

__version__ = "0.1.0"
