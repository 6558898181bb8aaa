"""Conversion between ROS messages and the ROS-free core types.

Everything that knows a message's field layout lives here, so the core never sees a message and
the nodes never index a numpy array by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import Point, TransformStamped, Vector3
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from pose3d_msgs.msg import BoundingBox2D, Keypoint, Skeleton, SkeletonArray
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.image_encoding import (
    array_to_image_fields,
    decode_compressed,
    image_to_array,
    to_bgr8,
)
from pose3d_ros.core.poses import PersonPose
from pose3d_ros.core.skeletons import joint_set

_NAN = float("nan")


# --- images -------------------------------------------------------------------------------


def image_msg_to_bgr(msg: Image, max_pixels: int | None = None) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 BGR (raises ImageEncodingError with the reason)."""
    kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
    array = image_to_array(
        msg.height, msg.width, msg.encoding, msg.step, msg.data, bool(msg.is_bigendian), **kwargs
    )
    return to_bgr8(array, msg.encoding)


def compressed_msg_to_bgr(msg: CompressedImage, max_pixels: int | None = None) -> np.ndarray:
    """Decodes only after checking the size in the PNG/JPEG header against max_pixels."""
    kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
    return decode_compressed(msg.format, bytes(msg.data), **kwargs)


def array_to_image_msg(array: np.ndarray, encoding: str, header: Header) -> Image:
    fields = array_to_image_fields(array, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.step = fields.height, fields.width, fields.step
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.data = fields.data
    return msg


# --- camera ----------------------------------------------------------------------------------


def camera_info_to_model(msg: CameraInfo) -> CameraModel:
    """sensor_msgs/CameraInfo -> CameraModel (raises CameraInfoError naming the bad field)."""
    return CameraModel.from_camera_info_fields(
        width=msg.width,
        height=msg.height,
        k=list(msg.k),
        d=list(msg.d),
        r=list(msg.r),
        p=list(msg.p),
        distortion_model=msg.distortion_model,
        frame_id=msg.header.frame_id,
    )


def camera_model_to_msg(camera: CameraModel, header: Header) -> CameraInfo:
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = camera.distortion_model or "plumb_bob"
    msg.d = [float(x) for x in np.ravel(camera.D)] or [0.0] * 5
    msg.k = [float(x) for x in np.ravel(camera.K)]
    msg.r = [float(x) for x in np.ravel(camera.R)]
    msg.p = [float(x) for x in np.ravel(camera.P)]
    return msg


# --- skeletons -------------------------------------------------------------------------------


def _point(xyz: Sequence[float]) -> Point:
    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def pose_to_skeleton_msg(pose: PersonPose) -> Skeleton:
    js = joint_set(pose.joint_set)
    msg = Skeleton()
    msg.id = int(pose.track_id)
    msg.tracking_state = int(pose.state)
    msg.age = int(pose.age)
    msg.joint_set = js.name
    keypoints = []
    for j, name in enumerate(js.joints):
        kp = Keypoint()
        kp.index = j
        kp.name = name
        kp.position = _point(pose.joints_3d[j])
        u, v = pose.keypoints_2d[j]
        kp.pixel = Point(x=float(u), y=float(v), z=0.0)
        kp.confidence = float(pose.confidence[j]) if math.isfinite(pose.confidence[j]) else 0.0
        kp.valid = bool(pose.observed[j])
        keypoints.append(kp)
    msg.keypoints = keypoints
    msg.root = _point(pose.root)
    cov = pose.root_covariance
    msg.root_covariance = (
        [float(x) for x in cov.ravel()] if np.isfinite(cov).all() else [-1.0] + [0.0] * 8
    )
    msg.placement = pose.placement
    v = pose.root_velocity
    msg.root_velocity = Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))
    msg.score = float(pose.score)
    b = pose.bbox
    msg.bbox = BoundingBox2D(
        x_min=float(b[0]), y_min=float(b[1]), x_max=float(b[2]), y_max=float(b[3])
    )
    return msg


def poses_to_msg(header: Header, poses: Sequence[PersonPose]) -> SkeletonArray:
    """One SkeletonArray for one input image; `header` must be the image's header, unchanged."""
    return SkeletonArray(header=header, skeletons=[pose_to_skeleton_msg(p) for p in poses])


def skeleton_msg_to_pose(msg: Skeleton) -> PersonPose:
    """The inverse of pose_to_skeleton_msg, for subscribers written in Python."""
    kps = msg.keypoints
    cov = np.asarray(msg.root_covariance, dtype=np.float64)
    return PersonPose(
        track_id=msg.id,
        joint_set=msg.joint_set,
        keypoints_2d=[(k.pixel.x, k.pixel.y) for k in kps],
        confidence=[k.confidence for k in kps],
        observed=[k.valid for k in kps],
        joints_3d=[(k.position.x, k.position.y, k.position.z) for k in kps],
        root=(msg.root.x, msg.root.y, msg.root.z),
        root_covariance=np.full(9, np.nan) if cov[0] < 0 else cov,
        placement=msg.placement,
        root_velocity=(msg.root_velocity.x, msg.root_velocity.y, msg.root_velocity.z),
        score=msg.score,
        bbox=(msg.bbox.x_min, msg.bbox.y_min, msg.bbox.x_max, msg.bbox.y_max),
        state=msg.tracking_state,
        age=msg.age,
    )


# --- transforms (TF) ----------------------------------------------------------------------


def transform_to_msg(
    header: Header, child_frame_id: str, translation: Sequence[float], quaternion_xyzw=None
) -> TransformStamped:
    """header.frame_id <- child_frame_id: the transform maps points in the child frame into the
    header's frame (tf2's convention), at header.stamp; translation (3,) metres, rotation as a
    unit quaternion x, y, z, w (None: identity). Fields are filled in place: a crowd's frames
    are hundreds of these per image."""
    msg = TransformStamped()
    msg.header = header
    msg.child_frame_id = child_frame_id
    t = msg.transform.translation
    t.x, t.y, t.z = float(translation[0]), float(translation[1]), float(translation[2])
    if quaternion_xyzw is not None:
        q = msg.transform.rotation
        q.x, q.y, q.z, q.w = (float(v) for v in quaternion_xyzw)
    return msg


def transform_from_msg(msg: TransformStamped) -> tuple[str, str, float, np.ndarray, np.ndarray]:
    """(parent, child, stamp in s, quaternion x y z w (4,), translation (3,) m) of a TF edge."""
    r, t = msg.transform.rotation, msg.transform.translation
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    return (
        msg.header.frame_id,
        msg.child_frame_id,
        stamp,
        np.array([r.x, r.y, r.z, r.w]),
        np.array([t.x, t.y, t.z]),
    )
