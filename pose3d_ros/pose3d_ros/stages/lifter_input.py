"""2D keypoints -> lifter input features. numpy only: shared by training and the robot runtime.

The lifter never sees pixels. It sees, per joint, ``(x, y, confidence)`` where ``x, y`` are

* taken from *undistorted normalised* image coordinates (``x = X/Z, y = Y/Z`` in the camera's
  optical frame: x right, y down), so focal length, principal point, image size and lens
  distortion are gone (camera-invariant);
* made root-relative: the pelvis (joint 0 of Human3.6M-17) is subtracted;
* divided by a robust 2D size of the person (the RMS distance of the visible joints from the
  pelvis), so the features do not depend on how far away the person is.

Two things are lost by this normalisation and kept in :class:`LifterInputInfo` for the later
metric placement step: the pelvis position (the camera ray through the person) and the 2D scale.
Because the viewing direction matters for the 3D pose expressed in the camera frame (a person at
the image border is seen obliquely), the root joint's ``(x, y)`` feature carries the pelvis ray
``(X/Z, Y/Z)`` itself (``root_ray=True``, the default), not the constant zero it would otherwise be.

Missing joints (confidence <= ``min_confidence`` or non-finite coordinates) get features
``(0, 0, 0)`` and do not influence the root or the scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_JOINTS = 17
ROOT = 0  # pelvis
HIPS = (1, 4)  # r_hip, l_hip: the pelvis is their midpoint when it is not given
MIN_SCALE = 1e-3  # in normalised image units (about 1 px at f = 1000 px)


@dataclass(frozen=True)
class LifterInputInfo:
    """What the normalisation removed, needed to place the lifted pose in metric space.

    ``root_2d``: pelvis in undistorted normalised coordinates (..., 2) (the camera ray direction).
    ``scale``: the 2D size that the root-relative coordinates were divided by (...,), in
    normalised image units; a person of metric RMS size ``s3d`` (from the lifted pose, metres)
    is at depth roughly ``s3d / scale``.
    ``valid``: (...,) False when too few joints were visible to normalise (features are all 0).
    """

    root_2d: np.ndarray
    scale: np.ndarray
    valid: np.ndarray


def robust_root(points: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The pelvis (..., 2): joint 0 if visible, else the hip midpoint, else the visible mean."""
    root = points[..., ROOT, :]
    hips_vis = visible[..., HIPS[0]] & visible[..., HIPS[1]]
    hip_mid = 0.5 * (points[..., HIPS[0], :] + points[..., HIPS[1], :])
    w = visible.astype(points.dtype)
    n = w.sum(-1, keepdims=True)
    mean_vis = (points * w[..., None]).sum(-2) / np.maximum(n, 1.0)
    out = np.where(hips_vis[..., None], hip_mid, mean_vis)
    return np.where(visible[..., ROOT, None], root, out)


def lifter_features(
    points_2d: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    min_confidence: float = 0.0,
    root_ray: bool = True,
    min_visible: int = 4,
    dtype: type = np.float32,
) -> tuple[np.ndarray, LifterInputInfo]:
    """Undistorted normalised 2D (..., 17, 2) + confidence (..., 17) -> features (..., 17, 3).

    Returns the features and the :class:`LifterInputInfo` needed to undo the normalisation.
    Works on any leading shape (a frame, a batch, a window, a batch of windows).
    """
    pts = np.asarray(points_2d, dtype=np.float64)
    if pts.shape[-2:] != (NUM_JOINTS, 2):
        raise ValueError(f"expected points (..., {NUM_JOINTS}, 2), got {pts.shape}")
    if confidence is None:
        conf = np.ones(pts.shape[:-1])
    else:
        conf = np.broadcast_to(np.asarray(confidence, dtype=np.float64), pts.shape[:-1])
    finite = np.isfinite(pts).all(-1)
    visible = finite & (conf > min_confidence)
    pts = np.where(visible[..., None], pts, 0.0)
    conf = np.where(visible, np.clip(conf, 0.0, 1.0), 0.0)

    root = robust_root(pts, visible)
    rel = pts - root[..., None, :]
    w = visible.astype(np.float64)
    n_vis = w.sum(-1)
    # RMS distance of the visible joints from the pelvis (the pelvis itself contributes 0 but
    # counts, so the estimate is consistent whether it was given or synthesised).
    scale = np.sqrt((np.square(rel).sum(-1) * w).sum(-1) / np.maximum(n_vis, 1.0))
    valid = (n_vis >= min_visible) & (scale > MIN_SCALE)
    scale = np.where(valid, scale, 1.0)
    feats_xy = rel / scale[..., None, None]
    feats_xy = np.where(visible[..., None], feats_xy, 0.0)
    if root_ray:
        feats_xy[..., ROOT, :] = np.where(valid[..., None], root, 0.0)
    feats = np.concatenate([feats_xy, conf[..., None]], axis=-1)
    feats = np.where(valid[..., None, None], feats, 0.0)
    info = LifterInputInfo(root_2d=root, scale=scale, valid=valid)
    return feats.astype(dtype, copy=False), info


def pixels_to_normalised(
    uv: np.ndarray,
    focal: np.ndarray | tuple[float, float],
    center: np.ndarray | tuple[float, float],
) -> np.ndarray:
    """Undistorted pixel coordinates -> normalised coordinates (pinhole, no distortion)."""
    f = np.asarray(focal, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)
    return (np.asarray(uv, dtype=np.float64) - c) / f


def rms_size_3d(pose_3d: np.ndarray) -> np.ndarray:
    """RMS distance of the joints from the pelvis of 3D poses (..., 17, 3) -> (...)."""
    rel = pose_3d - pose_3d[..., ROOT : ROOT + 1, :]
    return np.sqrt(np.square(rel).sum(-1).mean(-1))
