"""Rotated square regions of interest (ROIs) for the landmark model, as arrays.

A ROI is one row ``(cx, cy, side, angle)``: centre and side in image pixels (pixel centres at
integers, the convention of ``keypoints2d``), ``angle`` in radians with the crop's "up" pointing
along (sin a, -cos a) in the image -- MediaPipe's ``rotation``: 0 for an upright person, +pi/2
for a person lying with the head to the right, pi for one upside down. Every person proposal
(BlazePose detector, SSDLite box, tracked landmarks) becomes such a row, so the 2D stage warps
all of them the same way (one affine per crop) and maps landmarks back exactly.
"""

from __future__ import annotations

import numpy as np

from pose3d_ros.stages.pose_detection import ROI_SCALE, normalize_radians

# BlazePose's auxiliary landmarks 33 (body centre = mid-hip) and 34 (full-body scale/rotation
# point): the same two points as the detector's keypoints 0 and 1, so a tracked person's next
# ROI is built exactly like a detection's.
AUX_CENTRE, AUX_SCALE = 33, 34


def empty_rois() -> np.ndarray:
    return np.zeros((0, 4))


def rois_from_boxes(
    boxes: np.ndarray, crop_scale: float, angles: np.ndarray | None = None
) -> np.ndarray:
    """Axis-aligned person boxes (N, 4) -> ROIs: square of ``crop_scale`` x the longer side,
    centred on the box, rotated by ``angles`` (0 when None or NaN)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    side = np.maximum(crop_scale * (boxes[:, 2:] - boxes[:, :2]).max(1), 1.0)
    a = np.zeros(len(boxes)) if angles is None else np.nan_to_num(np.asarray(angles, float))
    return np.column_stack([centre, side, a])


def rois_from_alignment_points(
    centre: np.ndarray, scale_point: np.ndarray, scale: float = ROI_SCALE
) -> np.ndarray:
    """(N, 2) mid-hip points and (N, 2) scale/rotation points (pixels) -> ROIs, MediaPipe's
    alignment rect: side = 2 |p1 - p0| x ``scale``, the p0 -> p1 direction up in the crop."""
    c = np.asarray(centre, np.float64).reshape(-1, 2)
    d = np.asarray(scale_point, np.float64).reshape(-1, 2) - c
    side = 2.0 * np.hypot(d[:, 0], d[:, 1]) * scale
    angle = np.arctan2(d[:, 0], -d[:, 1])  # = pi/2 - atan2(-dy, dx), wrapped
    return np.column_stack([c, side, angle])


def roi_transforms(rois: np.ndarray, size: int) -> np.ndarray:
    """(N, 2, 3) affine maps from crop pixels to image pixels (pixel centres at integers), for
    ``cv2.warpAffine(..., WARP_INVERSE_MAP)``; the crop's middle (size - 1) / 2 lands on the
    ROI centre."""
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    side = np.maximum(rois[:, 2], 1.0)
    a = np.nan_to_num(rois[:, 3])
    cos, sin = np.cos(a) * side / size, np.sin(a) * side / size
    M = np.empty((len(rois), 2, 3))
    M[:, 0, 0], M[:, 0, 1] = cos, -sin
    M[:, 1, 0], M[:, 1, 1] = sin, cos
    middle = np.full(2, (size - 1) / 2.0)
    M[:, :, 2] = rois[:, :2] - M[:, :, :2] @ middle
    return M


def roi_corners(rois: np.ndarray) -> np.ndarray:
    """(N, 4, 2) corners of each rotated square, image pixels."""
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    h = rois[:, 2:3] / 2
    cos, sin = np.cos(rois[:, 3:4]), np.sin(rois[:, 3:4])
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    x = local[None, :, 0] * h * cos - local[None, :, 1] * h * sin
    y = local[None, :, 0] * h * sin + local[None, :, 1] * h * cos
    return np.stack([x + rois[:, :1], y + rois[:, 1:2]], -1)


def roi_bounding_boxes(rois: np.ndarray) -> np.ndarray:
    """(N, 4) axis-aligned boxes around each rotated square (x_min, y_min, x_max, y_max)."""
    c = roi_corners(rois)
    return np.concatenate([c.min(1), c.max(1)], 1)


def far_from_upright(rois: np.ndarray, threshold_rad: float) -> np.ndarray:
    """(N,) bool: |angle| (wrapped to [-pi, pi)) above ``threshold_rad``."""
    a = np.array([abs(normalize_radians(float(x))) for x in np.asarray(rois)[:, 3]])
    return a > threshold_rad if len(a) else np.zeros(0, bool)


def camera_to_crop_axes(points: np.ndarray, angle: float) -> np.ndarray:
    """3D vectors (..., 3) in camera optical axes -> the axes of a crop rotated by ``angle``.

    The crop's x axis is the image direction (cos a, sin a) and its y (down) is (-sin a, cos a)
    (see :func:`roi_transforms`); z (forward) is unchanged. An image model looking at a rotated
    crop sees the person in these axes; off-centre perspective is ignored.
    """
    p = np.asarray(points, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = p.copy()
    out[..., 0] = c * p[..., 0] + s * p[..., 1]
    out[..., 1] = -s * p[..., 0] + c * p[..., 1]
    return out


def crop_to_camera_axes(points: np.ndarray, angle: float) -> np.ndarray:
    """Inverse of :func:`camera_to_crop_axes`."""
    return camera_to_crop_axes(points, -angle)
