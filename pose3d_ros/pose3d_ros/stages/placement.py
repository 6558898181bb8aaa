"""Metric placement: where in the camera frame a root-relative lifted pose stands.

Why: a lifter outputs joints relative to the pelvis (root at 0), but a robot needs to know where
the person *is* (complaint 9). With a metric root-relative pose ``X_j`` (metres, camera
orientation) and the person's undistorted normalised 2D keypoints ``x_j``, the root translation
``t`` is the one that makes ``X_j + t`` project onto ``x_j``. The body's known metric size is
what fixes the depth, so the depth is only as good as the lifted pose's scale (a 5 % too large
skeleton is placed 5 % too far); ``scale_std`` lets the reported covariance include that.

Method:

1. linear least squares from ``x_j (Z_j + t_z) = X_j + t_x`` and ``y_j (Z_j + t_z) = Y_j + t_y``
   (3 unknowns, 2 equations per valid joint, rows weighted by the joint's confidence);
2. a few Gauss-Newton steps on the true reprojection error in normalised coordinates (the
   linear residual is the reprojection error multiplied by each joint's depth);
3. covariance ``s^2 (J^T W J)^-1`` with ``s^2`` the weighted residual variance, floored at
   ``(pixel_noise_floor_px / f)^2`` so that a perfect fit does not claim infinite precision; the
   floor is expressed through the focal length because residuals are in normalised units.

Degenerate input (too few valid joints, a singular system, a root or a joint on or behind the
camera) gives a NaN root and NaN covariance with a ``reason``; it never raises for bad data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import setting


@dataclass(frozen=True)
class PlacementSettings:
    """Metric placement of lifted poses from their 2D keypoints and the camera intrinsics."""

    min_valid_joints: int = setting(
        3, "Fewest joints with 2D and 3D needed to place a person.", range=(3, 1000)
    )
    min_confidence: float = setting(
        0.0, "Joints with confidence at or below this are excluded.", range=(0.0, 1.0)
    )
    refine_iterations: int = setting(
        5,
        "Gauss-Newton steps on the reprojection error after the linear solution (0 = linear).",
        range=(0, 100),
    )
    pixel_noise_floor_px: float = setting(
        1.0,
        "Smallest 2D noise assumed for the covariance, whatever the fit residual.",
        range=(0.0, 1000.0),
        unit="px",
    )
    scale_std: float = setting(
        0.0,
        "Relative standard deviation of the lifted pose's metric size, added to the covariance "
        "along the viewing ray (0.05 = the skeleton size is known to 5 %).",
        range=(0.0, 1.0),
    )
    min_depth_m: float = setting(
        0.05,
        "Roots (and joints) closer to the camera plane than this are rejected.",
        range=(0.0, 100.0),
        unit="m",
    )


def _nan(*shape: int) -> np.ndarray:
    return np.full(shape, np.nan)


@dataclass
class Placement:
    """Result of :func:`place_root`. ``reason`` is empty when the placement succeeded."""

    root: np.ndarray = field(default_factory=lambda: _nan(3))  # (3,) metres, camera frame
    covariance: np.ndarray = field(default_factory=lambda: _nan(3, 3))  # (3, 3) m^2
    rms_error_px: float = float("nan")  # unweighted RMS reprojection error of the used joints
    num_joints: int = 0  # joints used
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


def _focal_pair(focal_px: float | Sequence[float] | np.ndarray) -> np.ndarray:
    f = np.broadcast_to(np.asarray(focal_px, dtype=np.float64), (2,)).copy()
    if not (np.isfinite(f).all() and (f > 0).all()):
        raise ValueError(f"focal length must be positive and finite, got {focal_px}")
    return f


def place_root(
    joints_rel: np.ndarray,
    keypoints_norm: np.ndarray,
    confidence: np.ndarray | None,
    focal_px: float | Sequence[float] | np.ndarray,
    settings: PlacementSettings | None = None,
) -> Placement:
    """Root translation of a root-relative pose from its 2D keypoints.

    ``joints_rel`` (J, 3) metres in the camera orientation (x right, y down, z forward);
    ``keypoints_norm`` (J, 2) undistorted normalised image coordinates (``CameraModel.
    undistort_pixels``); ``confidence`` (J,) weights (None = all 1); ``focal_px`` the focal
    length in pixels, a number or (fx, fy), used only to express pixel errors and the noise
    floor. Joints missing in 2D (NaN, confidence <= ``min_confidence``) or 3D (NaN) are excluded.
    """
    s = settings or PlacementSettings()
    f = _focal_pair(focal_px)
    X = np.asarray(joints_rel, dtype=np.float64)
    x = np.asarray(keypoints_norm, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 3 or x.shape != (X.shape[0], 2):
        raise ValueError(f"expected joints (J, 3) and keypoints (J, 2), got {X.shape}, {x.shape}")
    w = np.ones(len(X)) if confidence is None else np.asarray(confidence, np.float64).ravel()
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(X).all(1) & np.isfinite(x).all(1) & np.isfinite(w)
        valid &= w > s.min_confidence
    n = int(valid.sum())
    if n < s.min_valid_joints:
        return Placement(num_joints=n, reason=f"{n} valid joints, need {s.min_valid_joints}")
    X, x, w = X[valid], x[valid], w[valid]
    w = w / w.mean()  # weights relative to the average joint: the noise level stays in s^2

    # 1. Linear least squares: [1, 0, -x_j] t = x_j Z_j - X_j (and the same for y).
    A = np.zeros((n, 2, 3))
    A[:, 0, 0] = A[:, 1, 1] = 1.0
    A[:, :, 2] = -x
    b = x * X[:, 2:3] - X[:, :2]
    sw = np.sqrt(w)[:, None, None]
    try:
        t, *_ = np.linalg.lstsq((A * sw).reshape(-1, 3), (b * sw[..., 0]).ravel(), rcond=None)
        normal = np.einsum("nki,nkj->ij", A * sw, A * sw)
        if np.linalg.cond(normal) > 1e12:
            raise np.linalg.LinAlgError("singular")
    except np.linalg.LinAlgError:
        return Placement(num_joints=n, reason="degenerate 2D keypoints (singular system)")

    # 2. Gauss-Newton on the reprojection error r_j = (X_j + t)_xy / (Z_j + t_z) - x_j.
    for _ in range(s.refine_iterations):
        depth = X[:, 2] + t[2]
        if (depth <= s.min_depth_m).any():
            break  # the linear solution is reported (and rejected) below
        r, jac = _residuals(X, x, t)
        JW = jac * w[:, None, None]
        H = np.einsum("nki,nkj->ij", JW, jac)
        g = np.einsum("nki,nk->i", JW, r)
        try:
            step = np.linalg.solve(H, -g)
        except np.linalg.LinAlgError:
            break
        t = t + step
        if np.abs(step).max() < 1e-10 * max(1.0, abs(t[2])):
            break

    if not np.isfinite(t).all():
        return Placement(num_joints=n, reason="placement did not converge")
    if t[2] <= s.min_depth_m:
        return Placement(
            num_joints=n, reason=f"root depth {t[2]:.3f} m is not in front of the camera"
        )
    if (X[:, 2] + t[2] <= s.min_depth_m).any():
        return Placement(num_joints=n, reason="a joint of the placed pose is behind the camera")

    # 3. Covariance from the weighted residual variance, floored by the pixel noise.
    r, jac = _residuals(X, x, t)
    rms_px = float(np.sqrt(np.mean(np.sum(np.square(r * f), axis=1))))
    dof = max(2 * n - 3, 1)
    s2 = float(np.sum(w[:, None] * np.square(r)) / dof)
    floor = s.pixel_noise_floor_px / float(np.sqrt(f[0] * f[1]))
    s2 = max(s2, floor * floor)
    H = np.einsum("nki,nkj->ij", jac * w[:, None, None], jac)
    try:
        cov = s2 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return Placement(num_joints=n, reason="degenerate 2D keypoints (singular system)")
    if s.scale_std > 0:
        # Error of the metric size moves the person along the ray through the root.
        cov = cov + s.scale_std**2 * np.outer(t, t)
    cov = 0.5 * (cov + cov.T)
    return Placement(root=t, covariance=cov, rms_error_px=rms_px, num_joints=n)


def _residuals(X: np.ndarray, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reprojection residuals (n, 2) in normalised units and their Jacobian (n, 2, 3) wrt t."""
    P = X + t
    inv_z = 1.0 / P[:, 2]
    proj = P[:, :2] * inv_z[:, None]
    jac = np.zeros((len(X), 2, 3))
    jac[:, 0, 0] = jac[:, 1, 1] = inv_z
    jac[:, :, 2] = -proj * inv_z[:, None]
    return proj - x, jac


def place_root_from_pixels(
    camera: CameraModel,
    joints_rel: np.ndarray,
    pixels: np.ndarray,
    confidence: np.ndarray | None = None,
    settings: PlacementSettings | None = None,
) -> Placement:
    """:func:`place_root` from raw (distorted) pixels: undistorts them with ``camera`` first."""
    return place_root(
        joints_rel, camera.undistort_pixels(pixels), confidence, (camera.fx, camera.fy), settings
    )


def absolute_joints(joints_rel: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Joints in the camera frame: root-relative joints (..., J, 3) + root (..., 3).

    A NaN root (a failed placement) gives NaN joints: never a pose stuck at the camera centre.
    """
    return np.asarray(joints_rel, dtype=np.float64) + np.asarray(root, np.float64)[..., None, :]
