"""RViz markers for skeletons: joints as spheres, bones as lines, a label with the track id."""

from __future__ import annotations

import math
from dataclasses import dataclass

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from pose3d_msgs.msg import Skeleton, SkeletonArray
from pose3d_ros.core.parameters import setting
from pose3d_ros.core.skeletons import joint_set
from pose3d_ros.visualization import track_colour_rgb

NS_JOINTS = "joints"
NS_BONES = "bones"
NS_LABELS = "labels"


@dataclass(frozen=True)
class MarkerSettings:
    lifetime_s: float = setting(
        0.5,
        "How long markers stay visible without an update, so people who leave disappear",
        range=(0.0, 60.0),
        unit="s",
    )
    joint_diameter_m: float = setting(
        0.06, "Diameter of joint spheres", range=(0.001, 1.0), unit="m"
    )
    bone_width_m: float = setting(0.025, "Width of bone lines", range=(0.001, 1.0), unit="m")
    label_height_m: float = setting(
        0.12, "Height of the id label text", range=(0.01, 2.0), unit="m"
    )
    alpha: float = setting(0.9, "Marker opacity", range=(0.0, 1.0))


def track_colour(track_id: int, alpha: float = 1.0) -> ColorRGBA:
    """The track's colour of the image overlays (visualization.track_colour_rgb)."""
    r, g, b = track_colour_rgb(track_id)
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _finite(p: Point) -> bool:
    return math.isfinite(p.x) and math.isfinite(p.y) and math.isfinite(p.z)


def _lifetime(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=round((seconds - sec) * 1e9))


def skeleton_markers(msg: SkeletonArray, settings: MarkerSettings) -> MarkerArray:
    """Markers for every skeleton, in the skeletons' frame and at their stamp.

    Marker ids are the track ids within three namespaces, so an update replaces a person's
    markers and the lifetime removes them once the person is gone.
    """
    out = MarkerArray()
    for sk in msg.skeletons:
        out.markers.extend(_person_markers(msg, sk, settings))
    return out


def _base(msg: SkeletonArray, sk: Skeleton, ns: str, kind: int, s: MarkerSettings) -> Marker:
    m = Marker()
    m.header = msg.header
    m.ns = ns
    m.id = int(sk.id)
    m.type = kind
    m.action = Marker.ADD
    m.pose = Pose(orientation=Quaternion(w=1.0))
    m.color = track_colour(sk.id, s.alpha)
    m.lifetime = _lifetime(s.lifetime_s)
    m.frame_locked = False
    return m


def _person_markers(msg: SkeletonArray, sk: Skeleton, s: MarkerSettings) -> list[Marker]:
    positions = [kp.position for kp in sk.keypoints]
    joints = _base(msg, sk, NS_JOINTS, Marker.SPHERE_LIST, s)
    joints.scale = Vector3(x=s.joint_diameter_m, y=s.joint_diameter_m, z=s.joint_diameter_m)
    joints.points = [p for p in positions if _finite(p)]

    bones = _base(msg, sk, NS_BONES, Marker.LINE_LIST, s)
    bones.scale = Vector3(x=s.bone_width_m)
    try:
        pairs = joint_set(sk.joint_set).bones
    except KeyError:
        pairs = ()
    for parent, child in pairs:
        if child < len(positions) and _finite(positions[parent]) and _finite(positions[child]):
            bones.points.extend([positions[parent], positions[child]])

    label = _base(msg, sk, NS_LABELS, Marker.TEXT_VIEW_FACING, s)
    label.scale = Vector3(z=s.label_height_m)
    label.text = f"id {sk.id}"
    finite = [p for p in positions if _finite(p)]
    if finite:
        # Above the highest joint: optical frames have y pointing down.
        top = min(finite, key=lambda p: p.y)
        label.pose.position = Point(x=top.x, y=top.y - 0.15, z=top.z)
    elif _finite(sk.root):
        label.pose.position = sk.root
    else:
        return [joints, bones]
    return [joints, bones, label]
