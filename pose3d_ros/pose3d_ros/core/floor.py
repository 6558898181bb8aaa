"""The floor plane in the camera optical frame.

Why: a monocular lifter cannot know a person's absolute size, so the depth of a placed person
follows the lifter's average body. A robot usually knows where its camera is above the floor
(TF, or a fixed mounting): people standing or sitting on that floor then have their supporting
joints at a known height, which fixes the size (``stages/placement.py``). This module holds only
the plane: one representation, built from a TF transform or from a plane given as parameters.

Frames: the camera optical frame of REP-103 (x right, y down, z forward, metres). The plane is
``{X : normal @ X + offset_m = 0}`` with ``normal`` the unit *up* direction (away from the floor),
so ``normal @ X + offset_m`` is the height of ``X`` above the floor and ``offset_m`` is the
height of the camera centre above the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A unit normal may carry float32 round-off from a message; anything further off is a mistake.
_UNIT_TOLERANCE = 1e-6
# A rotation from TF is orthonormal to float precision; 1e-4 allows float32 quaternions.
_ROTATION_TOLERANCE = 1e-4


class FloorPlaneError(ValueError):
    """A floor plane (or the transform it comes from) that cannot describe a real floor."""


@dataclass(frozen=True)
class FloorPlane:
    """The floor in the camera optical frame; ``height(X) = normal @ X + offset_m`` (metres)."""

    normal: np.ndarray  # (3,) unit, camera optical frame, pointing up (away from the floor)
    offset_m: float  # height of a point X above the floor = normal @ X + offset_m

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64)
        if n.shape != (3,) or not np.isfinite(n).all():
            raise FloorPlaneError(f"floor normal must be 3 finite numbers, got {self.normal!r}")
        if abs(float(np.linalg.norm(n)) - 1.0) > _UNIT_TOLERANCE:
            raise FloorPlaneError(
                f"floor normal must be a unit vector, got length {np.linalg.norm(n):.6g} "
                "(use floor_from_parameters to normalise)"
            )
        offset = float(self.offset_m)
        if not np.isfinite(offset):
            raise FloorPlaneError(f"floor offset must be finite, got {self.offset_m!r}")
        n = n / np.linalg.norm(n)
        n.setflags(write=False)
        object.__setattr__(self, "normal", n)
        object.__setattr__(self, "offset_m", offset)

    @property
    def camera_height_m(self) -> float:
        """Height of the camera centre above the floor (metres)."""
        return self.offset_m

    def height(self, points: np.ndarray) -> np.ndarray:
        """Height above the floor (metres) of camera-frame points (..., 3) -> (...)."""
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset_m


def floor_from_transform(rotation: np.ndarray, translation: np.ndarray) -> FloorPlane:
    """Floor plane from the transform floor_frame <- camera frame (``X_floor = R @ X_cam + t``).

    The floor frame's z axis points up and its z = 0 is the floor (REP-103 ``base_footprint`` or
    ``map``-like frames), so the height of a camera point is the z row: ``R[2] @ X + t[2]``.
    ``rotation`` (3, 3) must be a proper rotation; ``translation`` (3,) metres.
    """
    R = np.asarray(rotation, dtype=np.float64)
    t = np.asarray(translation, dtype=np.float64)
    if R.shape != (3, 3) or t.shape != (3,):
        raise FloorPlaneError(
            f"expected rotation (3, 3) and translation (3,), got {R.shape}, {t.shape}"
        )
    if not (np.isfinite(R).all() and np.isfinite(t).all()):
        raise FloorPlaneError("floor transform has non-finite values")
    if (
        np.abs(R @ R.T - np.eye(3)).max() > _ROTATION_TOLERANCE
        or abs(np.linalg.det(R) - 1.0) > _ROTATION_TOLERANCE
    ):
        raise FloorPlaneError("floor transform rotation is not a proper rotation matrix")
    up = R[2] / np.linalg.norm(R[2])
    return FloorPlane(normal=up, offset_m=float(t[2]))


def floor_from_parameters(normal: np.ndarray, distance: float) -> FloorPlane:
    """Floor plane given in the camera optical frame, e.g. from parameters or ``--floor``.

    ``normal`` (3,): the up direction (away from the floor) in the camera optical frame, any
    non-zero length (normalised here); ``distance``: height of the camera centre above the floor
    along that normal (metres). A level camera 1.2 m up: normal (0, -1, 0) (optical y is down),
    distance 1.2.
    """
    n = np.asarray(normal, dtype=np.float64).ravel()
    if n.shape != (3,) or not np.isfinite(n).all():
        raise FloorPlaneError(f"floor normal must be 3 finite numbers, got {normal!r}")
    length = float(np.linalg.norm(n))
    if length < 1e-9:
        raise FloorPlaneError("floor normal must not be the zero vector")
    d = float(distance)
    if not np.isfinite(d):
        raise FloorPlaneError(f"floor distance must be finite, got {distance!r}")
    return FloorPlane(normal=n / length, offset_m=d)
