"""One-Euro smoothing of 2D keypoints (Casiez, Roussel, Vogel, CHI 2012), vectorised over joints.

Why 2D and why One-Euro: jitter in the 3D output comes mostly from frame-to-frame noise of the
2D detector, and smoothing the 2D keypoints *before* lifting works better than smoothing the 3D
result (users' complaint 5; mmpose#1455). The One-Euro filter is a first-order low-pass whose
cutoff rises with the speed of the signal: a still person is smoothed hard (little jitter), a
fast movement raises the cutoff so the filter follows with little lag.

Design points:

* time-stamp driven: every update uses the real ``dt`` since that joint's last observation,
  so dropped or irregular frames do not change the filter's time constants;
* a missing joint (confidence <= ``min_confidence`` or a non-finite coordinate) does not update
  the state and is returned as given (NaN stays NaN): the filter never invents a joint and a
  NaN never enters the state;
* a joint unseen for longer than ``max_gap_s`` restarts from its next observation instead of
  sliding from a stale position; time going backwards (a looped bag) restarts the joint too;
* the cutoff of a joint depends on the *speed* of the joint (norm over its coordinates), so x
  and y of one joint are smoothed alike and a diagonal motion is not distorted.

The units of ``beta`` are those of the signal: the pipeline filters undistorted *normalised*
image coordinates (pixels / focal length), so ``beta`` is in Hz per (normalised unit / s); for
pixel coordinates divide it by the focal length in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from pose3d_ros.core.parameters import setting


@dataclass(frozen=True)
class OneEuroSettings:
    """Smoothing of the 2D keypoints before lifting."""

    enabled: bool = setting(True, "Smooth the 2D keypoints with a One-Euro filter before lifting.")
    min_cutoff: float = setting(
        1.0,
        "Cutoff frequency for a still joint; lower = smoother but laggier.",
        range=(0.01, 100.0),
        unit="Hz",
    )
    beta: float = setting(
        5.0,
        "Cutoff increase per unit of joint speed (normalised image units per second); "
        "higher = less lag on fast motion. 0 gives a plain low-pass.",
        range=(0.0, 1000.0),
        unit="Hz s",
    )
    d_cutoff: float = setting(
        1.0, "Cutoff frequency of the speed estimate.", range=(0.01, 100.0), unit="Hz"
    )
    min_confidence: float = setting(
        0.0,
        "Joints with confidence at or below this are missing: they neither update nor move.",
        range=(0.0, 1.0),
    )
    max_gap_s: float = setting(
        0.5,
        "A joint unseen for longer than this restarts from its next observation.",
        range=(0.0, 3600.0),
        unit="s",
    )


def smoothing_factor(cutoff: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray:
    """Exponential smoothing factor of a first-order low-pass with ``cutoff`` Hz over ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / np.asarray(dt, dtype=np.float64))


class OneEuroFilter:
    """One-Euro filter of one point set (J, D) (one person's keypoints), with per-joint state.

    Call it once per frame: ``smoothed = f(stamp, keypoints, confidence)``.
    """

    def __init__(self, settings: OneEuroSettings | None = None) -> None:
        self.settings = settings or OneEuroSettings()
        self._x: np.ndarray | None = None  # (J, D) last filtered value
        self._dx: np.ndarray | None = None  # (J, D) filtered derivative
        self._t: np.ndarray | None = None  # (J,) stamp of the last update, NaN = no state

    def reset(self) -> None:
        """Forget everything (the next observation of each joint is passed through)."""
        self._x = self._dx = self._t = None

    @property
    def initialised(self) -> np.ndarray:
        """(J,) bool: joints that have a state (empty before the first call)."""
        if self._t is None:
            return np.zeros(0, dtype=bool)
        return np.isfinite(self._t)

    def __call__(
        self, stamp: float, values: np.ndarray, confidence: np.ndarray | None = None
    ) -> np.ndarray:
        """Filter ``values`` (J, D) observed at ``stamp`` seconds; returns a new (J, D) array.

        ``confidence`` (J,) marks missing joints (see the module docstring); None = all present.
        """
        x = np.array(values, dtype=np.float64)  # copy: the result is returned
        if x.ndim != 2:
            raise ValueError(f"values must be (J, D), got shape {x.shape}")
        n = x.shape[0]
        valid = np.isfinite(x).all(axis=1)
        if confidence is not None:
            conf = np.asarray(confidence, dtype=np.float64).reshape(n)
            with np.errstate(invalid="ignore"):
                valid &= conf > self.settings.min_confidence
        if not self.settings.enabled:
            return x
        if self._x is None or self._x.shape != x.shape:
            self._x = np.zeros_like(x)
            self._dx = np.zeros_like(x)
            self._t = np.full(n, np.nan)
        assert self._dx is not None and self._t is not None

        s = self.settings
        stamp = float(stamp)
        dt = stamp - self._t  # NaN where no state yet
        with np.errstate(invalid="ignore"):
            restart = valid & ~((dt >= 0.0) & (dt <= s.max_gap_s))  # no state, gap or backwards
            duplicate = valid & (dt == 0.0)  # same stamp again: keep the state, report it
            step = valid & (dt > 0.0) & ~restart

        if restart.any():
            self._x[restart] = x[restart]
            self._dx[restart] = 0.0
            self._t[restart] = stamp
        if step.any():
            d = dt[step][:, None]
            x_prev = self._x[step]
            dx = (x[step] - x_prev) / d
            dx_hat = self._dx[step] + smoothing_factor(s.d_cutoff, d) * (dx - self._dx[step])
            speed = np.linalg.norm(dx_hat, axis=1, keepdims=True)
            alpha = smoothing_factor(s.min_cutoff + s.beta * speed, d)
            self._x[step] = x_prev + alpha * (x[step] - x_prev)
            self._dx[step] = dx_hat
            self._t[step] = stamp
        out = x
        smoothed = restart | step | duplicate
        out[smoothed] = self._x[smoothed]
        return out


class OneEuroFilterBank:
    """One :class:`OneEuroFilter` per track id, created on first use and dropped with the track."""

    def __init__(self, settings: OneEuroSettings | None = None) -> None:
        self.settings = settings or OneEuroSettings()
        self._filters: dict[Hashable, OneEuroFilter] = {}

    def __call__(
        self,
        track_id: Hashable,
        stamp: float,
        values: np.ndarray,
        confidence: np.ndarray | None = None,
    ) -> np.ndarray:
        f = self._filters.get(track_id)
        if f is None:
            f = self._filters[track_id] = OneEuroFilter(self.settings)
        return f(stamp, values, confidence)

    def drop(self, track_id: Hashable) -> None:
        self._filters.pop(track_id, None)

    def retain(self, track_ids: Iterable[Hashable]) -> None:
        """Drop the filters of every track not in ``track_ids`` (the tracker's live tracks)."""
        keep = set(track_ids)
        for tid in [t for t in self._filters if t not in keep]:
            del self._filters[tid]

    def __len__(self) -> int:
        return len(self._filters)

    def __contains__(self, track_id: Hashable) -> bool:
        return track_id in self._filters
