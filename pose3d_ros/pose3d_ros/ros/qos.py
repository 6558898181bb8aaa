"""QoS choices: best-effort sensor data for camera input (REP-2003), reliable on request."""

from __future__ import annotations

from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos import QoSReliabilityPolicy as Reliability

QOS_CHOICES = ("sensor_data", "reliable")


def image_qos(choice: str, depth: int = 1) -> QoSProfile:
    """QoS for image/camera_info subscriptions.

    `sensor_data` (best effort) matches both reliable and best-effort publishers; `reliable`
    only matches reliable ones but never drops. Depth stays small: the newest frame is the one
    that matters.
    """
    if choice not in QOS_CHOICES:
        raise ValueError(f"unknown QoS {choice!r}; one of {QOS_CHOICES}")
    profile = QoSProfile(depth=depth)
    profile.history = qos_profile_sensor_data.history
    profile.durability = qos_profile_sensor_data.durability
    profile.reliability = (
        Reliability.BEST_EFFORT if choice == "sensor_data" else Reliability.RELIABLE
    )
    return profile
