"""Pinhole camera model built from sensor_msgs/CameraInfo fields, with lens distortion.

The lifter works in metric camera coordinates while detectors report raw image pixels, so every
2D keypoint crosses this model once (``undistort_pixels`` / ``back_project``) and every 3D
overlay crosses it back (``project``). It is kept free of ROS so the offline tools, the tests and
the nodes share one implementation; the node turns a CameraInfo message into a ``CameraModel`` by
passing its fields to ``CameraModel.from_camera_info_fields``.

Conventions (those of ROS image_geometry and OpenCV):

* pixel ``(u, v)`` has its origin at the centre of the top-left pixel, ``u`` to the right and
  ``v`` down; the camera frame is x right, y down, z forward (optical frame);
* all methods work on the raw (distorted, unrectified) image using ``K`` and ``D``; ``R`` and
  ``P`` are carried along for the rectified image and for round-tripping CameraInfo;
* normalised image coordinates are ``(x/z, y/z)`` of the undistorted ray.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cv2
import numpy as np
import yaml

PLUMB_BOB = "plumb_bob"
RATIONAL_POLYNOMIAL = "rational_polynomial"
EQUIDISTANT = "equidistant"
NO_DISTORTION = ""

#: Number of distortion coefficients each supported model expects (an empty D is always allowed).
DISTORTION_COEFFICIENTS: dict[str, int] = {
    PLUMB_BOB: 5,
    RATIONAL_POLYNOMIAL: 8,
    EQUIDISTANT: 4,
    NO_DISTORTION: 0,
}

# OpenCV's default of 5 fixed-point iterations leaves errors of a tenth of a pixel to whole
# pixels near the image corners for ordinary lenses; 200 iterations reach ~1e-12 px there.
# (cv2.undistortPointsIter has taken criteria since OpenCV 4.0; the fisheye model is solved here.)
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)
# Newton on the fisheye angle converges quadratically: a handful of steps reach 1e-15 rad.
_EQUIDISTANT_MAX_ITERATIONS = 50
_EQUIDISTANT_TOLERANCE = 1e-15
# An undistorted point whose re-projection misses its pixel by more than this did not converge
# (typically a pixel beyond the radius where the distortion polynomial folds back): NaN.
_MAX_REPROJECTION_ERROR_PX = 1e-3

_ZERO3 = np.zeros(3)
_MAX_IMAGE_SIZE = 2**32 - 1  # CameraInfo.width/height are uint32


class CameraInfoError(ValueError):
    """Camera calibration that cannot describe a real camera (or a file that cannot be read)."""


def _supported_models() -> str:
    return ", ".join(repr(m) for m in DISTORTION_COEFFICIENTS)


def _as_matrix(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraInfoError(f"{name} must be numeric: {exc}") from None
    if arr.size != math.prod(shape):
        raise CameraInfoError(
            f"{name} must have {math.prod(shape)} elements ({'x'.join(map(str, shape))}), "
            f"got {arr.size} (shape {arr.shape})"
        )
    if arr.ndim > 1 and arr.shape != shape:
        raise CameraInfoError(f"{name} must be {'x'.join(map(str, shape))}, got shape {arr.shape}")
    return arr.reshape(shape)


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=np.float64, copy=True)
    arr.setflags(write=False)
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = [int(i) for i in np.flatnonzero(bad)]
        raise CameraInfoError(
            f"{name} contains NaN or inf (flat indices {where}): {arr.ravel().tolist()}"
        )


def _points(name: str, value: Any, dim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}), got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class CameraModel:
    """Intrinsics and lens distortion of one camera, as carried by sensor_msgs/CameraInfo.

    Arrays are read-only copies, so a model can be shared between threads and cached safely.
    ``R`` and ``P`` default to the ROS "unset" value (all zeros), which is replaced by the
    identity and by ``[K | 0]`` respectively, as image_geometry does for monocular cameras.
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = NO_DISTORTION
    R: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    P: np.ndarray = field(default_factory=lambda: np.zeros((3, 4)))
    frame_id: str = ""

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            try:
                integral = not isinstance(value, bool) and float(value).is_integer()
            except OverflowError:  # an int too large for a float: refused as too large below
                integral = True
            except (TypeError, ValueError):
                integral = False
            if not integral:
                raise CameraInfoError(f"image {name} must be an integer, got {value!r}")
            if value <= 0:
                raise CameraInfoError(
                    f"image {name} must be positive, got {value} (uncalibrated camera?)"
                )
            if value > _MAX_IMAGE_SIZE:
                raise CameraInfoError(
                    f"image {name} must be at most {_MAX_IMAGE_SIZE} (CameraInfo's uint32), "
                    f"got {value}"
                )
            object.__setattr__(self, name, int(value))

        K = _as_matrix("K", self.K, (3, 3))
        _check_finite("K", K)
        if not K.any():
            raise CameraInfoError("K is all zeros: the camera is not calibrated")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraInfoError(
                f"K focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}"
            )
        if K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1:
            raise CameraInfoError(
                "K must be upper triangular with K[2,2] = 1 "
                f"([[fx, s, cx], [0, fy, cy], [0, 0, 1]]), got {K.tolist()}"
            )

        model = self.distortion_model
        if not isinstance(model, str) or model not in DISTORTION_COEFFICIENTS:
            raise CameraInfoError(
                f"unsupported distortion_model {model!r}; supported: {_supported_models()}"
            )
        try:
            D = np.array(self.D, dtype=np.float64).ravel()
        except (TypeError, ValueError) as exc:
            raise CameraInfoError(f"D must be numeric: {exc}") from None
        _check_finite("D", D)
        expected = DISTORTION_COEFFICIENTS[model]
        if model == NO_DISTORTION and D.size and not D.any():
            D = np.zeros(0)  # some drivers send zeros with no model: harmless, means none
        if model == NO_DISTORTION and D.size:
            raise CameraInfoError(
                f"D has {D.size} non-zero coefficients but no distortion_model is set; "
                f"set one of {_supported_models()}"
            )
        if D.size not in (0, expected):
            raise CameraInfoError(
                f"D has {D.size} coefficients but {model!r} needs {expected} (or none)"
            )

        R = _as_matrix("R", self.R, (3, 3))
        _check_finite("R", R)
        if not R.any():
            R = np.eye(3)
        P = _as_matrix("P", self.P, (3, 4))
        _check_finite("P", P)
        if not P.any():
            P = np.hstack([K, np.zeros((3, 1))])

        object.__setattr__(self, "K", _frozen(K))
        object.__setattr__(self, "D", _frozen(D))
        object.__setattr__(self, "R", _frozen(R))
        object.__setattr__(self, "P", _frozen(P))
        object.__setattr__(self, "frame_id", str(self.frame_id))

    def _key(self) -> tuple[Any, ...]:
        # "+ 0.0" turns -0.0 into 0.0 so that the two compare (and hash) equal.
        arrays = ((a.shape, (a + 0.0).tobytes()) for a in (self.K, self.D, self.R, self.P))
        return (self.width, self.height, self.distortion_model, self.frame_id, *arrays)

    def __eq__(self, other: object) -> bool:
        # Lets a node rebuild its geometry only when a (30 Hz) CameraInfo actually changes.
        if not isinstance(other, CameraModel):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_camera_info_fields(
        cls,
        width: int,
        height: int,
        k: Sequence[float],
        d: Sequence[float],
        r: Sequence[float],
        p: Sequence[float],
        distortion_model: str,
        frame_id: str = "",
    ) -> CameraModel:
        """Build from the flat arrays of a CameraInfo message, checking each field's length."""
        arrays = {}
        for name, value, size in (("k", k, 9), ("d", d, None), ("r", r, 9), ("p", p, 12)):
            try:
                arr = np.array(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise CameraInfoError(f"CameraInfo.{name} must be numeric: {exc}") from None
            if arr.ndim != 1:
                raise CameraInfoError(
                    f"CameraInfo.{name} must be a flat sequence, got shape {arr.shape}"
                )
            if size is not None and arr.size != size:
                raise CameraInfoError(
                    f"CameraInfo.{name} must have {size} elements, got {arr.size}"
                )
            arrays[name] = arr
        return cls(
            width=width,
            height=height,
            K=arrays["k"].reshape(3, 3),
            D=arrays["d"],
            distortion_model=distortion_model,
            R=arrays["r"].reshape(3, 3),
            P=arrays["p"].reshape(3, 4),
            frame_id=frame_id,
        )

    @classmethod
    def from_fov(
        cls, width: int, height: int, horizontal_fov_deg: float, frame_id: str = ""
    ) -> CameraModel:
        """Ideal camera for when no calibration exists (a video file, a simulator's FOV).

        The FOV spans the outer edges of the border pixels, so ``horizontal_fov_deg`` of the
        result returns the value given here.
        """
        if not 0.0 < horizontal_fov_deg < 180.0:
            raise CameraInfoError(
                f"horizontal_fov_deg must be in (0, 180) for a pinhole camera, "
                f"got {horizontal_fov_deg}"
            )
        if width <= 0 or height <= 0:
            raise CameraInfoError(f"image size must be positive, got {width}x{height}")
        f = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2.0)
        K = np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0, 0, 1]])
        return cls(width=width, height=height, K=K, frame_id=frame_id)

    # ------------------------------------------------------------------ properties

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def has_distortion(self) -> bool:
        """False when pixels map to rays by K alone (empty D, or all-zero polynomial D).

        An all-zero equidistant D is still a fisheye (angle-linear) lens, not a pinhole.
        """
        if self.D.size == 0:
            return False
        return self.distortion_model == EQUIDISTANT or bool(self.D.any())

    @property
    def horizontal_fov_deg(self) -> float:
        """Angle between the rays through the left and right image edges, from K only.

        Distortion is ignored: this is the FOV of the ideal pinhole part of the model.
        """
        left = (self.cx + 0.5) / self.fx
        right = (self.width - 0.5 - self.cx) / self.fx
        return math.degrees(math.atan(left) + math.atan(right))

    @property
    def vertical_fov_deg(self) -> float:
        """As ``horizontal_fov_deg``, between the top and bottom image edges."""
        top = (self.cy + 0.5) / self.fy
        bottom = (self.height - 0.5 - self.cy) / self.fy
        return math.degrees(math.atan(top) + math.atan(bottom))

    def warnings(self) -> list[str]:
        """Plausibility problems that do not stop the model from working but hint at a bad
        calibration (log them once when a camera is configured)."""
        out = []
        if not 0.0 <= self.cx <= self.width:
            out.append(f"principal point cx={self.cx:g} is outside the image [0, {self.width}]")
        if not 0.0 <= self.cy <= self.height:
            out.append(f"principal point cy={self.cy:g} is outside the image [0, {self.height}]")
        ratio = self.fx / self.fy
        if not 0.5 <= ratio <= 2.0:
            out.append(f"fx/fy = {ratio:.3g}: pixels this far from square are unusual")
        if self.K[0, 1] != 0:
            out.append(f"K has skew {self.K[0, 1]:g}, which projection ignores (as OpenCV does)")
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-3):
            out.append("R is not a rotation matrix (R @ R.T != I)")
        if self.distortion_model == EQUIDISTANT and self.D.size == 0:
            out.append(
                "distortion_model 'equidistant' without coefficients: treated as an "
                "undistorted pinhole camera, not a fisheye"
            )
        return out

    # ------------------------------------------------------------------ geometry

    def project(self, points_cam: Any) -> np.ndarray:
        """Pixels of 3D points given in the camera optical frame, lens distortion included.

        Points on or behind the image plane (z <= 0), non-finite points and points outside the
        region where the lens model is valid (see ``normalised_to_pixels``) give NaN.
        """
        pts = _points("points_cam", points_cam, 3)
        z = pts[..., 2]
        valid = np.isfinite(pts).all(axis=-1) & (z > 0)
        safe_z = np.where(valid, z, 1.0)[..., None]
        xy = np.where(valid[..., None], pts[..., :2] / safe_z, np.nan)
        return self.normalised_to_pixels(xy)

    def normalised_to_pixels(self, xy: Any) -> np.ndarray:
        """Pixels of normalised image coordinates (x/z, y/z), lens distortion included.

        Rays beyond the radius where the distortion polynomial folds back give NaN: the
        polynomial would put them at a plausible but wrong place, often inside the image.
        """
        xy = _points("xy", xy, 2)
        shape = xy.shape
        flat = xy.reshape(-1, 2)
        out = np.full(flat.shape, np.nan)
        ok = np.isfinite(flat).all(axis=1)
        if ok.any():
            pix = self._distort(flat[ok])
            pix[~self._in_lens_domain(flat[ok])] = np.nan
            out[ok] = pix
        return out.reshape(shape)

    def undistort_pixels(self, pixels: Any) -> np.ndarray:
        """Normalised image coordinates ((u-cx)/fx, (v-cy)/fy with lens distortion removed).

        NaN pixels, and pixels the iterative inversion cannot reach (beyond the radius where
        the distortion polynomial folds back), give NaN without affecting the others.
        """
        pix = _points("pixels", pixels, 2)
        shape = pix.shape
        flat = pix.reshape(-1, 2)
        out = np.full(flat.shape, np.nan)
        ok = np.isfinite(flat).all(axis=1)
        if ok.any():
            out[ok] = self._undistort(flat[ok])
        return out.reshape(shape)

    def back_project(self, pixels: Any, depth: Any) -> np.ndarray:
        """3D points in the camera frame on the rays through ``pixels`` with z equal to ``depth``.

        ``depth`` is the z coordinate (as in a depth image), not the distance along the ray;
        it broadcasts against ``pixels[..., 0]``.
        """
        xy = self.undistort_pixels(pixels)
        z = np.asarray(depth, dtype=np.float64)
        xy, z = np.broadcast_arrays(xy, z[..., None])
        z = np.where(np.isnan(xy).any(axis=-1, keepdims=True), np.nan, z[..., :1])
        return np.concatenate([xy * z, z], axis=-1)

    def scaled(self, sx: float, sy: float | None = None) -> CameraModel:
        """Camera of the image resized by factors ``sx``, ``sy`` (cv2.resize semantics).

        Pixel centres sit at integer coordinates, so a pixel coordinate maps as
        ``u' = (u + 0.5) * sx - 0.5``; the image size is rounded to whole pixels.
        """
        sy = sx if sy is None else sy
        if not (sx > 0 and sy > 0 and math.isfinite(sx) and math.isfinite(sy)):
            raise ValueError(f"scale factors must be positive and finite, got {sx}, {sy}")
        return self._rescaled(round(self.width * sx), round(self.height * sy), sx, sy)

    def resized(self, new_width: int, new_height: int) -> CameraModel:
        """Camera of the image resized to ``new_width`` x ``new_height`` (cv2.resize)."""
        if new_width <= 0 or new_height <= 0:
            raise ValueError(f"new image size must be positive, got {new_width}x{new_height}")
        return self._rescaled(
            new_width, new_height, new_width / self.width, new_height / self.height
        )

    def _rescaled(self, width: int, height: int, sx: float, sy: float) -> CameraModel:
        S = np.array([[sx, 0.0, 0.5 * (sx - 1.0)], [0.0, sy, 0.5 * (sy - 1.0)], [0, 0, 1]])
        return CameraModel(
            width=width,
            height=height,
            K=S @ self.K,
            D=self.D,
            distortion_model=self.distortion_model,
            R=self.R,
            P=S @ self.P,
            frame_id=self.frame_id,
        )

    # ------------------------------------------------------------------ OpenCV plumbing

    def _distort(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) finite normalised coordinates -> (N, 2) pixels."""
        if not self.has_distortion:
            return xy * (self.fx, self.fy) + (self.cx, self.cy)
        rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1).reshape(-1, 1, 3)
        K = np.ascontiguousarray(self.K)
        D = np.ascontiguousarray(self.D)
        if self.distortion_model == EQUIDISTANT:
            pix, _ = cv2.fisheye.projectPoints(rays, _ZERO3, _ZERO3, K, D)
        else:
            pix, _ = cv2.projectPoints(rays, _ZERO3, _ZERO3, K, D)
        return pix.reshape(-1, 2)

    def _undistort(self, pix: np.ndarray) -> np.ndarray:
        """(N, 2) finite pixels -> (N, 2) normalised coordinates (NaN where not converged)."""
        if not self.has_distortion:
            return (pix - (self.cx, self.cy)) / (self.fx, self.fy)
        if self.distortion_model == EQUIDISTANT:
            xy = self._undistort_equidistant(pix)
        else:
            src = np.ascontiguousarray(pix.reshape(-1, 1, 2))
            K = np.ascontiguousarray(self.K)
            D = np.ascontiguousarray(self.D)
            xy = cv2.undistortPointsIter(src, K, D, None, None, _UNDISTORT_CRITERIA)
            xy = xy.reshape(-1, 2).astype(np.float64)
        reprojected = self._distort(xy)
        with np.errstate(invalid="ignore"):
            error = np.linalg.norm(reprojected - pix, axis=1)
        xy[~((error <= _MAX_REPROJECTION_ERROR_PX) & self._in_lens_domain(xy))] = np.nan
        return xy

    def _undistort_equidistant(self, pix: np.ndarray) -> np.ndarray:
        """(N, 2) finite pixels -> (N, 2) normalised coordinates for the fisheye model.

        Our own Newton solve of theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8) rather than
        ``cv2.fisheye.undistortPoints``: its ``criteria`` argument only arrived in OpenCV 4.6
        (Humble and JetPack ship 4.5.4), and one solver gives one accuracy on every version.
        Skew is ignored, as ``cv2.fisheye.projectPoints`` (``_distort``) ignores it.
        """
        k1, k2, k3, k4 = self.D
        yd = (pix[:, 1] - self.cy) / self.fy
        xd = (pix[:, 0] - self.cx) / self.fx
        theta_d = np.hypot(xd, yd)
        theta = theta_d.copy()
        for _ in range(_EQUIDISTANT_MAX_ITERATIONS):
            t2 = theta * theta
            f = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d
            df = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
            with np.errstate(divide="ignore", invalid="ignore"):
                step = f / df
            theta = theta - step
            if not np.any(np.abs(step) > _EQUIDISTANT_TOLERANCE):  # NaN steps stop too
                break
        # Rays at or beyond 90 degrees (or a diverged solve) have no pinhole coordinates.
        usable = np.isfinite(theta) & (theta >= 0) & (theta < 0.5 * math.pi)
        safe = np.where(usable, theta, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(theta_d > 1e-12, np.tan(safe) / theta_d, 1.0)
        xy = np.stack([xd * scale, yd * scale], axis=1)
        xy[~usable] = np.nan
        return xy

    @cached_property
    def max_normalised_radius(self) -> float:
        """Radius (in normalised coordinates) up to which the lens model is valid.

        Past the first radius where the distorted radius stops growing with the undistorted one,
        the fitted polynomial has no physical meaning and no unique inverse; ``inf`` when no such
        radius exists within a 175 degree field of view.
        """
        if not self.has_distortion:
            return math.inf
        d = self.D
        if self.distortion_model == EQUIDISTANT:
            theta = np.linspace(0.0, math.radians(87.5), 20001)
            t2 = theta * theta
            distorted = theta * (1 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3]))))
            radius = np.tan(theta)
        else:
            radius = np.linspace(0.0, math.tan(math.radians(87.5)), 50001)
            r2 = radius * radius
            k = np.zeros(8)
            k[: d.size] = d
            num = 1 + r2 * (k[0] + r2 * (k[1] + r2 * k[4]))
            den = 1 + r2 * (k[5] + r2 * (k[6] + r2 * k[7]))
            with np.errstate(divide="ignore", invalid="ignore"):
                distorted = radius * num / den
        growing = np.diff(distorted) > 0  # False also for NaN (a pole of the rational model)
        if growing.all():
            return math.inf
        return float(radius[np.argmin(growing)])

    def _in_lens_domain(self, xy: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.hypot(xy[:, 0], xy[:, 1]) < self.max_normalised_radius


# ---------------------------------------------------------------------- camera_info YAML

_MATRICES = {
    # key: (attribute, required, (rows, cols), or None for a single row of any length)
    "camera_matrix": ("K", True, (3, 3)),
    "distortion_coefficients": ("D", True, None),
    "rectification_matrix": ("R", False, (3, 3)),
    "projection_matrix": ("P", False, (3, 4)),
}


def _yaml_error(path: str | os.PathLike[str], message: str) -> CameraInfoError:
    return CameraInfoError(f"{os.fspath(path)}: {message}")


def _read_int(path: str | os.PathLike[str], doc: Mapping[str, Any], key: str) -> int:
    if key not in doc:
        raise _yaml_error(path, f"missing key {key!r}")
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _yaml_error(path, f"key {key!r} must be an integer, got {value!r}")
    return value


def _read_float(path: str | os.PathLike[str], key: str, value: Any) -> float:
    # yaml-cpp writes e.g. 1e-05, which YAML 1.1 (PyYAML) reads as a string.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _yaml_error(path, f"key {key!r}: {value!r} is not a number")
    try:
        return float(value)
    except ValueError:
        raise _yaml_error(path, f"key {key!r}: {value!r} is not a number") from None


def _read_matrix(
    path: str | os.PathLike[str], key: str, node: Any, shape: tuple[int, int] | None
) -> np.ndarray:
    if not isinstance(node, Mapping):
        raise _yaml_error(path, f"key {key!r} must be a mapping with rows, cols and data")
    for sub in ("rows", "cols", "data"):
        if sub not in node:
            raise _yaml_error(path, f"key {key!r} is missing {sub!r}")
    rows, cols, data = node["rows"], node["cols"], node["data"]
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in (rows, cols)):
        raise _yaml_error(path, f"key {key!r}: rows and cols must be integers >= 0")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise _yaml_error(path, f"key {key!r}: data must be a list, got {data!r}")
    if rows * cols != len(data):
        raise _yaml_error(
            path,
            f"key {key!r}: rows*cols = {rows}*{cols} = {rows * cols} but data has "
            f"{len(data)} values",
        )
    if shape is not None and (rows, cols) != shape:
        raise _yaml_error(path, f"key {key!r} must be {shape[0]}x{shape[1]}, got {rows}x{cols}")
    if shape is None and rows > 1 and cols > 1:
        raise _yaml_error(path, f"key {key!r} must be a single row, got {rows}x{cols}")
    values = np.array([_read_float(path, key, v) for v in data], dtype=np.float64)
    return values.reshape(shape) if shape is not None else values


def load_camera_yaml(path: str | os.PathLike[str], frame_id: str = "") -> CameraModel:
    """Read a camera_info YAML as written by camera_calibration / camera_info_manager.

    ``rectification_matrix`` and ``projection_matrix`` may be omitted (identity and [K | 0]);
    every other key is required so that a truncated file is not mistaken for a calibration.
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, f"not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise _yaml_error(path, f"not UTF-8 text: {exc}") from None
    if not isinstance(doc, Mapping):
        kind = type(doc).__name__
        raise _yaml_error(path, f"expected a mapping of camera_info keys, got {kind}")

    width = _read_int(path, doc, "image_width")
    height = _read_int(path, doc, "image_height")
    if "distortion_model" not in doc:
        raise _yaml_error(path, "missing key 'distortion_model'")
    model = doc["distortion_model"]
    if model is None:
        model = NO_DISTORTION
    if not isinstance(model, str):
        raise _yaml_error(path, f"key 'distortion_model' must be a string, got {model!r}")

    matrices: dict[str, np.ndarray] = {}
    for key, (attr, required, shape) in _MATRICES.items():
        if key not in doc:
            if required:
                raise _yaml_error(path, f"missing key {key!r}")
            continue
        matrices[attr] = _read_matrix(path, key, doc[key], shape)
    try:
        return CameraModel(
            width=width, height=height, distortion_model=model, frame_id=frame_id, **matrices
        )
    except CameraInfoError as exc:
        raise _yaml_error(path, str(exc)) from None


def _format_float(x: float) -> str:
    # Shortest round-trip repr, but with a '.' so YAML 1.1 readers see a float, not a string.
    s = repr(float(x))
    if "e" in s and "." not in s:
        mantissa, exponent = s.split("e")
        s = f"{mantissa}.0e{exponent}"
    return s


def _format_matrix(key: str, values: np.ndarray, rows: int, cols: int) -> str:
    data = ", ".join(_format_float(v) for v in np.ravel(values))
    return f"{key}:\n  rows: {rows}\n  cols: {cols}\n  data: [{data}]\n"


def _format_string(s: str) -> str:
    try:
        plain = bool(s) and yaml.safe_load(s) == s and "\n" not in s
    except yaml.YAMLError:
        plain = False
    return s if plain else json.dumps(s)  # a JSON string is a valid YAML scalar


def save_camera_yaml(
    camera: CameraModel, path: str | os.PathLike[str], camera_name: str = "camera"
) -> None:
    """Write ``camera`` in the camera_calibration layout, with floats that round-trip exactly."""
    text = (
        f"image_width: {camera.width}\n"
        f"image_height: {camera.height}\n"
        f"camera_name: {_format_string(camera_name)}\n"
        + _format_matrix("camera_matrix", camera.K, 3, 3)
        + f"distortion_model: {_format_string(camera.distortion_model)}\n"
        + _format_matrix("distortion_coefficients", camera.D, 1, camera.D.size)
        + _format_matrix("rectification_matrix", camera.R, 3, 3)
        + _format_matrix("projection_matrix", camera.P, 3, 4)
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
