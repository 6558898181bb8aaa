"""ROS-free building blocks: poses, joint sets, cameras, boxes, settings, images, frame sources."""
