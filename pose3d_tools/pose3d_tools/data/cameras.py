"""Cameras: the 4 Human3.6M cameras (with their real lens distortion) and virtual robot cameras.

Convention (verified on ``cameras.json``, see the data README): ``R`` is the camera-to-world
rotation (its columns are the camera axes in world coordinates) and ``T`` the camera centre in
world coordinates, so ``X_cam = R.T @ (X_world - T)``; camera frame x right, y down, z forward
(the ROS optical frame). Pixels: ``u = f_x * x_d + c_x`` with ``(x_d, y_d)`` the distorted
normalised coordinates of Human3.6M's model (3 radial ``k``, 2 tangential ``p``)::

    r2 = x^2 + y^2;  radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3;  tan = p1 y + p2 x
    x_d = x (radial + tan) + p2 r2;  y_d = y (radial + tan) + p1 r2

Every function broadcasts: a :class:`Camera` may hold one camera (``R`` (3, 3)) or a batch
(``R`` (B, 3, 3)); points are (..., 3) for one camera or (B, ..., 3) for a batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Camera:
    R: np.ndarray  # (..., 3, 3) camera-to-world rotation
    T: np.ndarray  # (..., 3) camera centre in the world, metres
    f: np.ndarray  # (..., 2) focal lengths, px
    c: np.ndarray  # (..., 2) principal point, px
    k: np.ndarray  # (..., 3) radial distortion
    p: np.ndarray  # (..., 2) tangential distortion (Human3.6M order p1, p2)
    w: np.ndarray  # (...) image width, px
    h: np.ndarray  # (...) image height, px
    name: str = ""

    @property
    def batched(self) -> bool:
        return np.ndim(self.R) == 3

    def __len__(self) -> int:
        return len(self.R) if self.batched else 1

    def __getitem__(self, i) -> Camera:
        if not self.batched:
            raise TypeError("not a camera batch")
        return Camera(self.R[i], self.T[i], self.f[i], self.c[i], self.k[i], self.p[i],
                      self.w[i], self.h[i], self.name)

    # -- geometry ---------------------------------------------------------------------------
    def _apply(self, points: np.ndarray, fn):
        points = np.asarray(points, dtype=np.float64)
        if not self.batched:
            return fn(points, self.R, self.T)
        b = len(self.R)
        flat = points.reshape(b, -1, 3)
        out = fn(flat, self.R, self.T[:, None, :])
        return out.reshape(points.shape)

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        return self._apply(points, lambda x, r, t: (x - t) @ r)

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        return self._apply(points, lambda x, r, t: x @ np.swapaxes(r, -1, -2) + t)

    def _bcast(self, arr: np.ndarray, ndim: int) -> np.ndarray:
        """Per-camera (B, n) -> (B, 1, ..., 1, n) against points of ``ndim`` dims."""
        arr = np.asarray(arr, dtype=np.float64)
        if not self.batched:
            return arr
        return arr.reshape(arr.shape[:1] + (1,) * (ndim - 2) + arr.shape[1:])

    def project(self, points_cam: np.ndarray, distort: bool = True) -> np.ndarray:
        """Camera-frame points (..., 3) -> pixels (..., 2)."""
        points_cam = np.asarray(points_cam, dtype=np.float64)
        xy = normalise(points_cam)
        if distort:
            xy = distort_normalised(xy, self._bcast(self.k, xy.ndim), self._bcast(self.p, xy.ndim))
        return xy * self._bcast(self.f, xy.ndim) + self._bcast(self.c, xy.ndim)

    def project_world(self, points_world: np.ndarray, distort: bool = True) -> np.ndarray:
        return self.project(self.world_to_camera(points_world), distort)

    def pixels_to_normalised(self, uv: np.ndarray, undistort: bool = True,
                             iterations: int = 10) -> np.ndarray:
        """Pixels (..., 2) -> undistorted normalised coordinates (x/z, y/z) (..., 2)."""
        uv = np.asarray(uv, dtype=np.float64)
        xy = (uv - self._bcast(self.c, uv.ndim)) / self._bcast(self.f, uv.ndim)
        if undistort:
            xy = undistort_normalised(xy, self._bcast(self.k, uv.ndim),
                                      self._bcast(self.p, uv.ndim), iterations)
        return xy

    def in_image(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv)
        w = self._bcast(np.asarray(self.w)[..., None], uv.ndim)[..., 0]
        h = self._bcast(np.asarray(self.h)[..., None], uv.ndim)[..., 0]
        return (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)


def normalise(points_cam: np.ndarray, min_depth: float = 1e-3) -> np.ndarray:
    z = np.maximum(points_cam[..., 2:3], min_depth)
    return points_cam[..., :2] / z


def distort_normalised(xy: np.ndarray, k: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Human3.6M radial + tangential distortion of normalised coordinates (..., 2)."""
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k[..., 0] * r2 + k[..., 1] * r2 * r2 + k[..., 2] * r2 * r2 * r2
    tan = p[..., 0] * y + p[..., 1] * x
    xd = x * (radial + tan) + p[..., 1] * r2
    yd = y * (radial + tan) + p[..., 0] * r2
    return np.stack([xd, yd], axis=-1)


def undistort_normalised(xy_d: np.ndarray, k: np.ndarray, p: np.ndarray,
                         iterations: int = 10) -> np.ndarray:
    """Invert :func:`distort_normalised` by fixed-point iteration (converges for real lenses)."""
    xy = xy_d.copy()
    for _ in range(iterations):
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1 + k[..., 0] * r2 + k[..., 1] * r2 * r2 + k[..., 2] * r2 * r2 * r2
        tan = p[..., 0] * y + p[..., 1] * x
        x_new = (xy_d[..., 0] - p[..., 1] * r2) / (radial + tan)
        y_new = (xy_d[..., 1] - p[..., 0] * r2) / (radial + tan)
        xy = np.stack([x_new, y_new], axis=-1)
    return xy


def stack_cameras(cams: list[Camera]) -> Camera:
    """A batch from a list of single cameras."""
    return Camera(*(np.stack([np.asarray(getattr(c, a), dtype=np.float64) for c in cams])
                    for a in ("R", "T", "f", "c", "k", "p", "w", "h")), name="batch")


def load_h36m_cameras(path: str | os.PathLike | None = None) -> dict[str, Camera]:
    """``cameras.json`` -> ``{"S9_54138969": Camera, ...}``."""
    from pose3d_tools.data.h36m import resolve_cameras_file

    with open(resolve_cameras_file(path)) as fh:
        raw = json.load(fh)
    cams = {}
    for key, d in sorted(raw.items()):
        cams[key] = Camera(
            R=np.asarray(d["R"], dtype=np.float64).reshape(3, 3),
            T=np.asarray(d["T"], dtype=np.float64).reshape(3),
            f=np.asarray(d["f"], dtype=np.float64).reshape(2),
            c=np.asarray(d["c"], dtype=np.float64).reshape(2),
            k=np.asarray(d["k"], dtype=np.float64).reshape(3),
            p=np.asarray(d["p"], dtype=np.float64).reshape(2),
            w=np.asarray(float(d["w"])),
            h=np.asarray(float(d["h"])),
            name=key,
        )
    return cams


def subject_cameras(cams: dict[str, Camera], subject: str) -> list[Camera]:
    """The (4) cameras calibrated for one subject, sorted by camera id."""
    out = [c for k, c in sorted(cams.items()) if k.split("_")[0] == subject]
    if not out:
        raise KeyError(f"no cameras for subject {subject}")
    return out


# -- virtual robot cameras --------------------------------------------------------------------
@dataclass
class RobotCameraConfig:
    """Ranges for random head cameras of a mobile robot looking at a person."""

    hfov_deg: tuple[float, float] = (55.0, 100.0)
    image_sizes: tuple[tuple[int, int], ...] = ((640, 480), (848, 480), (1280, 720), (1920, 1080))
    height_m: tuple[float, float] = (0.5, 1.8)  # camera height above the floor
    distance_m: tuple[float, float] = (1.5, 7.0)  # horizontal distance camera -> pelvis
    aim_height_m: tuple[float, float] = (0.4, 1.4)  # height on the person the camera points at
    aim_yaw_frac: float = 0.35  # random yaw of the person in the image, fraction of the hfov
    aim_pitch_frac: float = 0.25  # random pitch offset, fraction of the vfov
    roll_deg: float = 4.0
    principal_jitter_frac: float = 0.03
    aspect_jitter: float = 0.01  # fy/fx - 1
    extra: dict = field(default_factory=dict)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def look_rotation(forward: np.ndarray, roll: np.ndarray | float = 0.0) -> np.ndarray:
    """Camera-to-world rotations (..., 3, 3) for optical axes ``forward`` (..., 3), world z up."""
    forward = _normalize(np.asarray(forward, dtype=np.float64))
    up = np.zeros_like(forward)
    up[..., 2] = 1.0
    right = _normalize(np.cross(forward, up))
    down = np.cross(forward, right)
    roll = np.asarray(roll, dtype=np.float64)[..., None]
    cr, sr = np.cos(roll), np.sin(roll)
    right, down = cr * right + sr * down, -sr * right + cr * down
    return np.stack([right, down, forward], axis=-1)


def sample_robot_cameras(rng: np.random.Generator, target: np.ndarray,
                         cfg: RobotCameraConfig | None = None) -> Camera:
    """Random robot head cameras (a batch of len(target)) looking at people at ``target`` (B, 3).

    ``target`` is the pelvis in world coordinates (z up, floor at 0). No lens distortion: a
    robot's images are rectified (or undistorted from CameraInfo) before keypoints are used.
    """
    cfg = cfg or RobotCameraConfig()
    target = np.asarray(target, dtype=np.float64)
    b = len(target)
    sizes = np.asarray(cfg.image_sizes, dtype=np.float64)
    wh = sizes[rng.integers(0, len(sizes), b)]
    w, h = wh[:, 0], wh[:, 1]
    hfov = np.deg2rad(rng.uniform(*cfg.hfov_deg, b))
    fx = 0.5 * w / np.tan(0.5 * hfov)
    fy = fx * (1 + rng.uniform(-cfg.aspect_jitter, cfg.aspect_jitter, b))
    vfov = 2 * np.arctan(0.5 * h / fy)
    az = rng.uniform(0, 2 * np.pi, b)
    dist = rng.uniform(*cfg.distance_m, b)
    centre = np.stack([target[:, 0] + dist * np.cos(az), target[:, 1] + dist * np.sin(az),
                       rng.uniform(*cfg.height_m, b)], axis=-1)
    aim = np.stack([target[:, 0], target[:, 1], rng.uniform(*cfg.aim_height_m, b)], axis=-1)
    d = aim - centre
    yaw = np.arctan2(d[:, 1], d[:, 0]) + rng.uniform(-1, 1, b) * cfg.aim_yaw_frac * hfov
    pitch = np.arctan2(d[:, 2], np.linalg.norm(d[:, :2], axis=-1))
    pitch = pitch + rng.uniform(-1, 1, b) * cfg.aim_pitch_frac * vfov
    fwd = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], -1)
    roll = np.deg2rad(rng.uniform(-cfg.roll_deg, cfg.roll_deg, b))
    R = look_rotation(fwd, roll)
    c = np.stack([w, h], -1) * (0.5 + rng.uniform(-1, 1, (b, 2)) * cfg.principal_jitter_frac)
    return Camera(R=R, T=centre, f=np.stack([fx, fy], -1), c=c, k=np.zeros((b, 3)),
                  p=np.zeros((b, 2)), w=w, h=h, name="robot")
