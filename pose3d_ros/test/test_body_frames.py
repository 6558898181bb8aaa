"""core/body_frames.py: REP-155 `body_<id>` frames from skeletons of known orientation.

The skeleton is written in REP-155 body coordinates (x forward out of the chest, y to the
person's left, z towards the head, origin at the mid-hip point), placed in the camera optical
frame (x right, y down, z forward) by a rotation worked out by hand for each scene, and the frame
recovered from the camera-frame joints must give that rotation back and put every joint where
it was written.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pose3d_ros.core.body_frames import REP155_LINK_NAMES, body_frame
from pose3d_ros.core.skeletons import H36M17

# A symmetric person in body coordinates (metres): hips 0.2 m apart, shoulders 0.36 m apart
# 0.48 m above the hips, head slightly forward.
BODY = {
    "pelvis": (0.0, 0.0, 0.03),
    "r_hip": (0.0, -0.10, 0.0),
    "r_knee": (0.02, -0.10, -0.45),
    "r_ankle": (0.0, -0.10, -0.88),
    "l_hip": (0.0, 0.10, 0.0),
    "l_knee": (0.02, 0.10, -0.45),
    "l_ankle": (0.0, 0.10, -0.88),
    "spine": (0.0, 0.0, 0.25),
    "thorax": (0.0, 0.0, 0.50),
    "neck": (0.02, 0.0, 0.58),
    "head": (0.06, 0.0, 0.70),
    "l_shoulder": (0.0, 0.18, 0.48),
    "l_elbow": (0.0, 0.22, 0.20),
    "l_wrist": (0.10, 0.22, -0.02),
    "r_shoulder": (0.0, -0.18, 0.48),
    "r_elbow": (0.0, -0.22, 0.20),
    "r_wrist": (0.10, -0.22, -0.02),
}
BODY_POINTS = np.array([BODY[name] for name in H36M17.joints])

# Columns: the body axes (x forward, y left, z up) in camera optical coordinates.
# Facing the camera, upright: forward = towards the camera (-z), left = image right (+x),
# up = image up (-y).
FACING_CAMERA = np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]], dtype=float)
# Lying on the back on a floor the camera looks across, head to the image right: up (towards the
# head) = +x, forward (out of the chest) = the ceiling = -y, left = z cross x = -z (towards the
# camera).
LYING_HEAD_RIGHT = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)


def in_camera(rotation: np.ndarray, mid_hip: np.ndarray) -> np.ndarray:
    return BODY_POINTS @ rotation.T + mid_hip


@pytest.mark.parametrize(
    "rotation",
    [
        FACING_CAMERA,
        LYING_HEAD_RIGHT,
        # facing the camera, then turned 60 deg to the person's left about their own up axis
        FACING_CAMERA @ Rotation.from_euler("z", 60, degrees=True).as_matrix(),
        # leaning 30 deg forward (about the person's left axis)
        FACING_CAMERA @ Rotation.from_euler("y", 30, degrees=True).as_matrix(),
    ],
    ids=["facing", "lying", "turned60", "leaning30"],
)
def test_known_orientation_is_recovered(rotation):
    mid_hip = np.array([0.4, 0.3, 3.5])
    frame = body_frame(in_camera(rotation, mid_hip))
    assert frame is not None
    assert frame.origin == pytest.approx(mid_hip)
    assert frame.rotation.as_matrix() == pytest.approx(rotation, abs=1e-9)
    # Every joint where it was written, under its REP-155 link name.
    for name, xyz in BODY.items():
        assert frame.joints[REP155_LINK_NAMES[name]] == pytest.approx(xyz, abs=1e-9), name


def test_facing_camera_axes_in_words():
    """The REP's sentences, checked on the camera frame directly: x out of the body (towards a
    camera the person faces), z towards the head (image up), y to the person's left."""
    frame = body_frame(in_camera(FACING_CAMERA, np.array([0.0, 0.0, 4.0])))
    x, y, z = frame.rotation.as_matrix().T
    assert x @ np.array([0, 0, -1.0]) == pytest.approx(1.0)  # towards the camera
    assert z @ np.array([0, -1.0, 0]) == pytest.approx(1.0)  # image up
    assert y @ np.array([1.0, 0, 0]) == pytest.approx(1.0)  # their left = image right
    assert frame.joints["l_hip"][1] > 0 > frame.joints["r_hip"][1]
    assert frame.joints["head"][2] > frame.joints["torso"][2] > frame.joints["waist"][2] > 0


def test_twisted_trunk_and_noise_still_give_a_rotation():
    rng = np.random.default_rng(0)
    points = in_camera(FACING_CAMERA, np.array([0.0, 0.0, 3.0]))
    points += rng.normal(0, 0.01, points.shape)
    frame = body_frame(points)
    m = frame.rotation.as_matrix()
    assert m.T @ m == pytest.approx(np.eye(3), abs=1e-9)
    assert np.linalg.det(m) == pytest.approx(1.0)
    assert m == pytest.approx(FACING_CAMERA, abs=0.1)


def test_missing_or_degenerate_skeletons_give_none():
    points = in_camera(FACING_CAMERA, np.array([0.0, 0.0, 3.0]))
    no_hip = points.copy()
    no_hip[H36M17.index("l_hip")] = np.nan
    assert body_frame(no_hip) is None
    collapsed = points.copy()
    for j in ("l_shoulder", "r_shoulder"):
        collapsed[H36M17.index(j)] = collapsed[H36M17.index(j.replace("shoulder", "hip"))]
    assert body_frame(collapsed) is None  # no trunk direction
    # A joint the lifter did not estimate is left out of the joint frames only.
    no_wrist = points.copy()
    no_wrist[H36M17.index("l_wrist")] = np.nan
    frame = body_frame(no_wrist)
    assert frame is not None and "l_wrist" not in frame.joints and "r_wrist" in frame.joints
    with pytest.raises(ValueError, match="h36m17"):
        body_frame(np.zeros((17, 3)), "coco17")
