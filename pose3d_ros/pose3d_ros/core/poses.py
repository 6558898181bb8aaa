"""What the pipeline knows about one person in one frame, independent of ROS messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from pose3d_ros.core.skeletons import joint_set


class TrackState(IntEnum):
    """Mirrors pose3d_msgs/Skeleton TRACK_* constants."""

    TENTATIVE = 0
    CONFIRMED = 1
    COASTING = 2


def _nan(*shape: int) -> np.ndarray:
    return np.full(shape, np.nan)


@dataclass
class PersonPose:
    """One tracked person: 2D keypoints, metric 3D joints in the camera optical frame, placement.

    Arrays are in the order of ``joint_set``. 3D quantities are metres in the camera optical
    frame (x right, y down, z forward); 2D quantities are pixels of the input image.
    """

    track_id: int
    joint_set: str
    keypoints_2d: np.ndarray  # (J, 2) pixels
    confidence: np.ndarray  # (J,) 0..1
    observed: np.ndarray  # (J,) bool: seen by the 2D stage in this frame
    joints_3d: np.ndarray  # (J, 3) metres; NaN where not estimated
    root: np.ndarray = field(default_factory=lambda: _nan(3))  # (3,) metres
    root_covariance: np.ndarray = field(default_factory=lambda: _nan(3, 3))  # (3, 3) m^2
    root_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) m/s
    score: float = 0.0
    bbox: np.ndarray = field(default_factory=lambda: _nan(4))  # x_min, y_min, x_max, y_max
    state: TrackState = TrackState.CONFIRMED
    age: int = 1
    # Which constraint fixed the metric depth ("size_prior", "floor"; stages/placement.py);
    # empty when not placed.
    placement: str = ""
    # (J,) the end-to-end image model's own confidence in each 3D joint, 0..1 (estimator e2e;
    # None with a lifter, whose 3D has no confidence of its own). Not in the ROS message, whose
    # Keypoint.confidence is the 2D detector's.
    confidence_3d: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = joint_set(self.joint_set).num_joints
        self.keypoints_2d = np.asarray(self.keypoints_2d, dtype=np.float64).reshape(n, 2)
        self.confidence = np.asarray(self.confidence, dtype=np.float64).reshape(n)
        self.observed = np.asarray(self.observed, dtype=bool).reshape(n)
        self.joints_3d = np.asarray(self.joints_3d, dtype=np.float64).reshape(n, 3)
        self.root = np.asarray(self.root, dtype=np.float64).reshape(3)
        self.root_covariance = np.asarray(self.root_covariance, dtype=np.float64).reshape(3, 3)
        self.root_velocity = np.asarray(self.root_velocity, dtype=np.float64).reshape(3)
        self.bbox = np.asarray(self.bbox, dtype=np.float64).reshape(4)
        self.state = TrackState(self.state)
        if self.confidence_3d is not None:
            self.confidence_3d = np.asarray(self.confidence_3d, dtype=np.float64).reshape(n)
