"""The ROS 2 layer: nodes and message conversion. The only place that imports rclpy."""
