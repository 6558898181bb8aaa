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

Floor constraint (:func:`place_on_floor`): with the floor plane known (``core/floor.py``), the
pose is placed as ``s * X_j + t`` (scale ``s`` and translation ``t``, 4 unknowns). The 2D fixes
``t`` only up to the scale (``(s, t)`` and ``(k s, k t)`` project identically); the supporting
joints -- the lowest joints along the floor normal: the ankles of a standing or walking person,
the hips of one sitting on the floor -- must lie at their height above the floor, a fraction of
the person's stature ``s * H0`` (``H0`` the stature of the lifted pose), which fixes ``s``. One
Gauss-Newton fit over the reprojection rows (weighted as above) and the floor rows (standard
deviation ``floor.height_std_m``) gives ``(s, t)`` and their covariance; the reported root
covariance is its ``t`` block, so it says how well the floor pinned the depth. Feet not seen,
a lowest joint that cannot stand on the floor (knee, hand, head) or an implied stature outside
the adult range (a person on stairs, a bed or a table seen against the floor below) fall back
to the size prior, with the reason in ``Placement.fallback``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.floor import FloorPlane, floor_from_parameters
from pose3d_ros.core.parameters import SettingError, group, setting
from pose3d_ros.core.skeletons import H36M17

# Relative SD of adult stature (SD / mean of the 50/50 mix of US women and men): means NHANES
# 2015-2018 (1.7526 m men, 1.6129 m women), SDs Stoudt et al. 1965 (0.0724 m, 0.0655 m), as in
# pose3d_tools/data/augmentation.py. Mixture mean 1.6828 m; variance = mean within-sex variance
# 0.004766 + between-sex term 0.25 * 0.1397^2 = 0.004879 -> SD 0.0982 m -> 0.0982 / 1.6828 =
# 0.0584. A lifter outputs an average body, so this is how unsure its metric size is of a
# person of unknown size (pose3d_tools/test/test_body_sizes.py recomputes it).
ADULT_STATURE_REL_SD = 0.0584
# Floor to ankle joint centre as a fraction of stature: Drillis R, Contini R. Body segment
# parameters. Report 1166-03, New York University, 1966 (the segment-length diagram reproduced
# in Winter DA, Biomechanics and Motor Control of Human Movement): 0.039 H. The tools keep the
# same constant (pose3d_tools.data.augmentation.ANKLE_HEIGHT_FRAC; a tools test checks they agree).
ANKLE_HEIGHT_FRAC = 0.039
# Hip joint centres above the floor for a person sitting on it, as a fraction of stature. A
# project estimate, not a published table: the hip joint centre lies about 0.05-0.06 H above the
# ischial tuberosities the person sits on (about 9 cm for 1.70 m), soft tissue compressed.
SEATED_HIP_HEIGHT_FRAC = 0.055
_ANKLES = (3, 6)
_SEAT = (0, 1, 4)  # pelvis and hips: a person sitting on the floor
_SEAT_SUPPORT = (1, 4)
_LEG_BONES = ((1, 2, 3), (4, 5, 6))  # hip, knee, ankle
_TRUNK = (0, 7, 8, 9, 10)  # pelvis, spine, thorax, neck, head top


@dataclass(frozen=True)
class FloorSettings:
    """The floor constraint: a static plane for robots without TF, and how the fit uses it."""

    enabled: bool = setting(
        False,
        "Use the static floor plane below (camera optical frame) when no plane comes from TF.",
    )
    normal_x: float = setting(
        0.0, "Up direction (away from the floor), camera optical frame, x.", range=(-1.0, 1.0)
    )
    normal_y: float = setting(
        -1.0,
        "Up direction, camera optical frame, y (optical y points down: -1 for a level camera).",
        range=(-1.0, 1.0),
    )
    normal_z: float = setting(0.0, "Up direction, camera optical frame, z.", range=(-1.0, 1.0))
    distance_m: float = setting(
        1.2,
        "Height of the camera centre above the floor along the normal.",
        range=(0.0, 100.0),
        unit="m",
    )
    support_margin_m: float = setting(
        0.02,
        "Ankles (or hips) within this height of the lowest one stand on the floor (both feet "
        "when standing, one while the other swings).",
        range=(0.0, 1.0),
        unit="m",
    )
    height_std_m: float = setting(
        0.05,
        "Standard deviation of a supporting joint's height above the floor in the fit (ankle "
        "height spread, foot contact, the lifted pose's error from root to ankle).",
        range=(0.001, 1.0),
        unit="m",
    )
    with_size_prior: bool = setting(
        True,
        "Keep the size prior (scale_std) in the floor fit, so the floor and the average body "
        "are combined by their uncertainties (false: the floor alone fixes the size).",
    )
    min_stature_m: float = setting(
        1.40,
        "Smallest stature the floor may imply; below it the size prior is used (adults: "
        "1.68 +- 0.10 m, so about mean - 3 SD).",
        range=(0.0, 3.0),
        unit="m",
    )
    max_stature_m: float = setting(
        2.00,
        "Largest stature the floor may imply; above it the person is not on this floor "
        "(stairs, a bed, a table) and the size prior is used (about mean + 3 SD).",
        range=(0.0, 3.0),
        unit="m",
    )

    def __post_init__(self) -> None:
        if self.enabled and self.normal_x == self.normal_y == self.normal_z == 0.0:
            raise SettingError(
                "placement.floor: normal_x/y/z is the zero vector; set the up direction in the "
                "camera optical frame (a level camera: normal_y -1)"
            )

    def plane(self) -> FloorPlane | None:
        """The static plane when enabled (raises FloorPlaneError for a zero normal)."""
        if not self.enabled:
            return None
        return floor_from_parameters((self.normal_x, self.normal_y, self.normal_z), self.distance_m)


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
        ADULT_STATURE_REL_SD,
        "Relative standard deviation of the lifted pose's metric size, added to the covariance "
        "along the viewing ray (default: the adult stature spread, SD/mean of women and men).",
        range=(0.0, 1.0),
    )
    pose_offset_std_m: float = setting(
        0.02,
        "Standard deviation of an error of the lifted pose shared by all its joints (where the "
        "pelvis sits in the body), added to the root covariance in every direction; the 2D fit "
        "cannot see it (0.02 m: 95 % coverage 95-99 % on Human3.6M S9/S11, placement_eval).",
        range=(0.0, 1.0),
        unit="m",
    )
    min_depth_m: float = setting(
        0.05,
        "Roots (and joints) closer to the camera plane than this are rejected.",
        range=(0.0, 100.0),
        unit="m",
    )
    floor: FloorSettings = group(FloorSettings)


SIZE_PRIOR = "size_prior"
FLOOR = "floor"


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
    # Which constraint fixed the depth: "size_prior" (the lifter's average body size) or
    # "floor" (supporting joints on the floor plane).
    constraint: str = SIZE_PRIOR
    scale: float = 1.0  # metric size of the placed pose / the lifted pose's
    scale_std: float = float("nan")  # its standard deviation from the fit (or the prior)
    support: tuple[int, ...] = ()  # joints held on the floor (floor constraint)
    fallback: str = ""  # why the floor was not used although a plane was given

    @property
    def ok(self) -> bool:
        return not self.reason

    def joints(self, joints_rel: np.ndarray) -> np.ndarray:
        """The placed joints (J, 3), metres, camera frame: ``scale * joints_rel + root``."""
        return absolute_joints(joints_rel, self.root, self.scale)


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
    cov = cov + s.pose_offset_std_m**2 * np.eye(3)
    cov = 0.5 * (cov + cov.T)
    return Placement(
        root=t, covariance=cov, rms_error_px=rms_px, num_joints=n, scale_std=s.scale_std
    )


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


def absolute_joints(
    joints_rel: np.ndarray, root: np.ndarray, scale: float | np.ndarray = 1.0
) -> np.ndarray:
    """Joints in the camera frame: ``scale`` x root-relative joints (..., J, 3) + root (..., 3).

    A NaN root (a failed placement) gives NaN joints: never a pose stuck at the camera centre.
    """
    s = np.asarray(scale, np.float64)[..., None, None]
    return s * np.asarray(joints_rel, dtype=np.float64) + np.asarray(root, np.float64)[..., None, :]


def skeleton_stature(joints: np.ndarray) -> float:
    """Standing height (m) of an H36M-17 pose (17, 3) from its bone lengths (NaN if incomplete).

    Floor -> ankle (ANKLE_HEIGHT_FRAC of stature) + mean leg (hip-knee + knee-ankle) + trunk and
    head (pelvis-spine-thorax-neck-head top), independent of the posture; the tools' training
    uses the same law (pose3d_tools.data.augmentation.stature_from_bone_lengths, tested equal).
    """
    P = np.asarray(joints, dtype=np.float64)

    def chain(ix: Sequence[int]) -> float:
        return float(np.linalg.norm(np.diff(P[list(ix)], axis=0), axis=1).sum())

    legs = 0.5 * sum(chain(leg) for leg in _LEG_BONES)
    return (legs + chain(_TRUNK)) / (1.0 - ANKLE_HEIGHT_FRAC)


def place_person(
    joints_rel: np.ndarray,
    keypoints_norm: np.ndarray,
    confidence: np.ndarray | None,
    focal_px: float | Sequence[float] | np.ndarray,
    settings: PlacementSettings | None = None,
    floor: FloorPlane | None = None,
) -> Placement:
    """Placement with the floor constraint when ``floor`` is given, else the size prior.

    Arguments as :func:`place_root`; ``floor`` in the same camera optical frame. A person the
    floor cannot place gets the size prior with ``fallback`` saying why.
    """
    prior = place_root(joints_rel, keypoints_norm, confidence, focal_px, settings)
    if floor is None or not prior.ok:
        return prior
    return place_on_floor(joints_rel, keypoints_norm, confidence, focal_px, floor, settings, prior)


def _fallback(prior: Placement, why: str) -> Placement:
    prior.fallback = why
    return prior


def _support_joints(
    X: np.ndarray, seen: np.ndarray, up: np.ndarray, margin_m: float
) -> tuple[list[int], float, str]:
    """Joints that hold the person on the floor, their height fraction of stature, or why none.

    ``X`` (17, 3) the lifted pose, ``seen`` (17,) joints usable in 2D, ``up`` the floor normal.
    """
    finite = np.isfinite(X).all(1)
    h = np.where(finite, X @ up, np.inf)
    lowest = int(np.argmin(h))
    if not np.isfinite(h[lowest]):
        return [], 0.0, "lifted pose has no joints"
    if lowest in _ANKLES:
        group, frac, what = _ANKLES, ANKLE_HEIGHT_FRAC, "ankles"
    elif lowest in _SEAT:
        group, frac, what = _SEAT_SUPPORT, SEATED_HIP_HEIGHT_FRAC, "hips"
    else:
        name = H36M17.joints[lowest]
        return [], 0.0, f"lowest joint is the {name}: not standing or sitting on the floor"
    ref = min(h[j] for j in group)
    near = [j for j in group if h[j] <= ref + margin_m]
    used = [j for j in near if seen[j]]
    if not used:
        return [], 0.0, f"supporting joints ({what}) not seen in 2D"
    return used, frac, ""


def place_on_floor(
    joints_rel: np.ndarray,
    keypoints_norm: np.ndarray,
    confidence: np.ndarray | None,
    focal_px: float | Sequence[float] | np.ndarray,
    floor: FloorPlane,
    settings: PlacementSettings | None = None,
    prior: Placement | None = None,
) -> Placement:
    """Scale and root of a lifted pose whose supporting joints stand on ``floor``.

    Arguments as :func:`place_root`. Returns ``constraint == "floor"`` with ``scale`` (placed
    size / lifted size) and the covariance of the joint fit; or the size-prior placement
    (``prior``, computed if not given) with ``fallback`` saying why the floor was not used.
    """
    s = settings or PlacementSettings()
    fs = s.floor
    if prior is None:
        prior = place_root(joints_rel, keypoints_norm, confidence, focal_px, s)
    if not prior.ok:
        return prior
    f = _focal_pair(focal_px)
    X_all = np.asarray(joints_rel, dtype=np.float64)
    x_all = np.asarray(keypoints_norm, dtype=np.float64)
    w_all = np.ones(len(X_all)) if confidence is None else np.asarray(confidence, float).ravel()
    with np.errstate(invalid="ignore"):
        seen = np.isfinite(x_all).all(1) & np.isfinite(w_all) & (w_all > s.min_confidence)
    valid = seen & np.isfinite(X_all).all(1)
    if X_all.shape != (H36M17.num_joints, 3):
        return _fallback(prior, "the floor constraint needs Human3.6M-17 joints")
    up, d = floor.normal, floor.offset_m
    if d <= 0:
        return _fallback(prior, f"camera is not above the floor ({d:.2f} m)")
    support, frac, why = _support_joints(X_all, valid, up, fs.support_margin_m)
    if why:
        return _fallback(prior, why)
    H0 = skeleton_stature(X_all)
    if not (np.isfinite(H0) and H0 > 0):
        return _fallback(prior, "lifted pose is incomplete (no stature)")

    X, x, w = X_all[valid], x_all[valid], w_all[valid]
    w = w / w.mean()
    n = len(X)
    # One floor row for the mean of the supporting joints (their errors -- foot contact, the
    # lifted pose's leg, the plane -- are mostly shared): up . (s Xm + t) + d - frac s H0 = 0.
    Xs = X_all[support].mean(axis=0, keepdims=True)
    a_s = Xs @ up - frac * H0  # (1,) d/ds
    # Start: the size-prior solution scaled along the ray, P = s (X + t0), meets the floor.
    t0 = prior.root
    denom = -float(np.sum((Xs + t0) @ up - frac * H0))
    if denom <= 1e-9:
        return _fallback(prior, "supporting joints are not below the camera")
    p = np.concatenate([[d / denom], d / denom * t0])

    # Reprojection noise from the size-prior fit (the same weighted variance, same floor).
    r0, _ = _residuals(X, x, t0)
    dof = max(2 * n - 3, 1)
    floor_px = s.pixel_noise_floor_px / float(np.sqrt(f[0] * f[1]))
    var_r = max(float(np.sum(w[:, None] * np.square(r0)) / dof), floor_px**2)
    var_f = fs.height_std_m**2
    # The size prior as one more row, s ~ N(1, scale_std^2): floor and average body combined by
    # their uncertainties (weight 0 = the floor alone).
    w_prior = 1.0 / s.scale_std**2 if fs.with_size_prior and s.scale_std > 0 else 0.0

    def system(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stacked residuals, Jacobian (rows, 4) and row weights."""
        scale, t = p[0], p[1:]
        r, jt = _residuals(scale * X, x, t)
        P = scale * X + t
        js = (X[:, :2] - (r + x) * X[:, 2:3]) / P[:, 2:3]  # d(proj)/ds
        jac_r = np.concatenate([js[:, :, None], jt], axis=2).reshape(-1, 4)
        res_f = (scale * Xs + t) @ up + d - frac * scale * H0
        jac_f = np.concatenate([a_s[:, None], np.broadcast_to(up, (len(Xs), 3))], axis=1)
        res = np.concatenate([r.ravel(), res_f, [scale - 1.0]])
        wts = np.concatenate([np.repeat(w, 2) / var_r, np.full(len(Xs), 1.0 / var_f), [w_prior]])
        return res, np.concatenate([jac_r, jac_f, [[1.0, 0.0, 0.0, 0.0]]]), wts

    for _ in range(max(s.refine_iterations, 10)):
        if p[0] <= 0 or (p[0] * X[:, 2] + p[3] <= s.min_depth_m).any():
            break
        res, jac, wts = system(p)
        H = jac.T @ (jac * wts[:, None])
        try:
            step = np.linalg.solve(H, -jac.T @ (wts * res))
        except np.linalg.LinAlgError:
            return _fallback(prior, "floor fit is singular")
        p = p + step
        if np.abs(step).max() < 1e-10 * max(1.0, abs(p[3])):
            break
    scale, t = float(p[0]), p[1:]
    if not (np.isfinite(p).all() and scale > 0) or (scale * X[:, 2] + t[2] <= s.min_depth_m).any():
        return _fallback(prior, "floor fit put the person behind the camera")
    stature = scale * H0
    if not fs.min_stature_m <= stature <= fs.max_stature_m:
        return _fallback(
            prior,
            f"floor implies a stature of {stature:.2f} m, outside [{fs.min_stature_m:.2f}, "
            f"{fs.max_stature_m:.2f}] m: not on this floor (stairs, a bed) or not an adult",
        )
    res, jac, wts = system(p)
    r = res[: 2 * n].reshape(n, 2)
    # Covariance: the reprojection variance re-estimated at the solution, floored as above.
    var_r = max(float(np.sum(w[:, None] * np.square(r)) / dof), floor_px**2)
    wts[: 2 * n] = np.repeat(w, 2) / var_r
    try:
        cov4 = np.linalg.inv(jac.T @ (jac * wts[:, None]))
    except np.linalg.LinAlgError:
        return _fallback(prior, "floor fit is singular")
    cov = 0.5 * (cov4[1:, 1:] + cov4[1:, 1:].T) + s.pose_offset_std_m**2 * np.eye(3)
    rms_px = float(np.sqrt(np.mean(np.sum(np.square(r * f), axis=1))))
    return Placement(
        root=t.copy(),
        covariance=cov,
        rms_error_px=rms_px,
        num_joints=n,
        constraint=FLOOR,
        scale=scale,
        scale_std=float(np.sqrt(max(cov4[0, 0], 0.0))),
        support=tuple(support),
    )
