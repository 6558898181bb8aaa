"""Known 3D poses for known-answer tests (projected through known cameras, then recovered)."""

import numpy as np

from pose3d_ros.core.camera import CameraModel

# A 640x480 camera with strong plumb_bob distortion, for placement tests that go through the
# real undistortion (values like a webcam's calibration).
DISTORTED_CAMERA = CameraModel(
    640,
    480,
    K=np.array([[505.0, 0.0, 318.5], [0.0, 498.0, 241.25], [0.0, 0.0, 1.0]]),
    D=np.array([-0.25, 0.08, 1e-3, -5e-4, -0.01]),
    distortion_model="plumb_bob",
)

# Human3.6M-17 pose in metres around the pelvis (x right, y down, z forward), arms apart.
SKELETON_H36M17 = np.array(
    [
        [0.00, 0.00, 0.00],
        [-0.13, 0.00, 0.02],
        [-0.15, 0.45, 0.05],
        [-0.16, 0.88, 0.10],
        [0.13, 0.00, -0.02],
        [0.15, 0.45, 0.00],
        [0.16, 0.88, 0.04],
        [0.00, -0.25, 0.00],
        [0.00, -0.50, -0.03],
        [0.00, -0.60, -0.05],
        [0.00, -0.72, -0.02],
        [0.18, -0.48, 0.00],
        [0.42, -0.45, 0.10],
        [0.60, -0.55, 0.20],
        [-0.18, -0.48, 0.00],
        [-0.40, -0.30, -0.10],
        [-0.45, -0.05, -0.25],
    ]
)

# A standing person seen from the front as H36M-17 image points: x right / y down, in units of
# body height (head top 0.72/1.65 above the pelvis), pelvis at the origin. Used by the tracking
# and re-attachment tests to draw synthetic people.
STANDING_2D = (
    np.array(
        [
            [0.00, 0.00],
            [-0.13, 0.00],
            [-0.15, 0.45],
            [-0.16, 0.88],
            [0.13, 0.00],
            [0.15, 0.45],
            [0.16, 0.88],
            [0.00, -0.25],
            [0.00, -0.50],
            [0.00, -0.60],
            [0.00, -0.72],
            [0.18, -0.48],
            [0.25, -0.25],
            [0.28, 0.00],
            [-0.18, -0.48],
            [-0.25, -0.25],
            [-0.28, 0.00],
        ]
    )
    / 1.65
)
