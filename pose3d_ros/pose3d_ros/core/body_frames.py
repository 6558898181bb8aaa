"""REP-155 body frames from a 3D skeleton: where `body_<id>` is and which way its axes point.

REP-155 (ROS4HRI, draft), section "Body Frames": the frame `body_<bodyID>` has its origin at the
mid point of the line connecting the hips, its parent is the sensor frame the body was estimated
in, its x axis points forward (out of the body) and its z axis towards the head (up when the
person stands); y follows from REP-103's right-handed axes (x forward, y left, z up), so it points
to the person's left. Other skeleton points are frames parented to `body_<bodyID>`, named after
the REP's kinematic model and suffixed `_<bodyID>`.

How the axes are built from Human3.6M-17 joints (camera optical frame, metres):
- origin o = (l_hip + r_hip) / 2 (the REP's definition, not the lifter's pelvis joint);
- z = unit(mid-shoulder - o): "towards the head" along the trunk (the head joint itself moves
  with nodding; the shoulders do not);
- y = the person's left, from both hip and shoulder lines, (l_hip - r_hip) + (l_shoulder -
  r_shoulder), with its component along z removed (Gram-Schmidt), then normalised;
- x = y cross z, which is forward: for a person facing the camera, left is the image's right
  (+x optical) and up is -y optical, so x = (+x) cross (-y) = -z optical, towards the camera.

Joint frames carry positions only: monocular lifting gives no limb twist, so their axes are the
body frame's (identity rotation). Which of the REP's link names each joint takes is in
REP155_LINK_NAMES.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from pose3d_ros.core.skeletons import H36M17, joint_set

# Human3.6M-17 joint -> REP-155 link name (the REP's kinematic model: body, waist, torso, head,
# {l,r}_{shoulder,elbow,wrist,hip,knee,ankle}); joints the model lacks keep their own name.
REP155_LINK_NAMES: dict[str, str] = {
    "pelvis": "pelvis",
    "spine": "waist",
    "thorax": "torso",
    "neck": "neck",
    "head": "head",
    **{
        f"{side}_{part}": f"{side}_{part}"
        for side in ("l", "r")
        for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    },
}
# Below this length (metres) a trunk or hip/shoulder line gives no direction.
_MIN_LENGTH_M = 0.02


@dataclass(frozen=True)
class BodyFrame:
    """`body_<id>` in the camera frame, and the joints in `body_<id>`."""

    origin: np.ndarray  # (3,) metres, camera optical frame: mid-hip point
    rotation: Rotation  # body axes in the camera frame: p_camera = rotation.apply(p_body) + origin
    joints: dict[str, np.ndarray]  # REP-155 link name -> (3,) metres in the body frame


def body_frame(joints_3d: np.ndarray, joint_set_name: str = H36M17.name) -> BodyFrame | None:
    """The REP-155 body frame of one skeleton (J, 3) in the camera optical frame (metres);
    None when the hips or shoulders are missing (NaN) or too close to give directions."""
    js = joint_set(joint_set_name)
    if js.name != H36M17.name:
        raise ValueError(f"body frames need the h36m17 joint set, got {js.name!r}")
    p = np.asarray(joints_3d, dtype=np.float64).reshape(js.num_joints, 3)
    l_hip, r_hip = p[js.index("l_hip")], p[js.index("r_hip")]
    l_sh, r_sh = p[js.index("l_shoulder")], p[js.index("r_shoulder")]
    if not np.isfinite(np.stack([l_hip, r_hip, l_sh, r_sh])).all():
        return None
    origin = (l_hip + r_hip) / 2
    up = (l_sh + r_sh) / 2 - origin
    if np.linalg.norm(up) < _MIN_LENGTH_M:
        return None
    z = up / np.linalg.norm(up)
    left = (l_hip - r_hip) + (l_sh - r_sh)
    left = left - (left @ z) * z
    if np.linalg.norm(left) < _MIN_LENGTH_M:
        return None
    y = left / np.linalg.norm(left)
    x = np.cross(y, z)
    axes = np.column_stack([x, y, z])  # body axes in camera coordinates
    in_body = (p - origin) @ axes  # row j: axes.T @ (p_j - origin)
    joints = {
        REP155_LINK_NAMES[name]: in_body[j]
        for j, name in enumerate(js.joints)
        if np.isfinite(in_body[j]).all()
    }
    return BodyFrame(origin=origin, rotation=Rotation.from_matrix(axes), joints=joints)
