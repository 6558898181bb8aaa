"""A small TF buffer: rigid transforms between named frames over time, without ROS.

Robots without tf2_ros installed (these machines: it has no wheel) still need one lookup: where
the camera is relative to the floor. The buffer keeps what /tf and /tf_static carry, as tf2
does: one parent per child frame, static edges (valid at all times) and dynamic edges (a bounded,
time-sorted history each), and chains lookups through the tree via the frames' lowest common
ancestor. Between two samples of a dynamic edge the translation is interpolated linearly and the
rotation by slerp (scipy); outside an edge's samples a lookup fails with ExtrapolationError,
never silently with stale data.

Convention (tf2's): an edge parent <- child at time t is the transform that maps points given in
the child frame into the parent frame, p_parent = R p_child + t. `lookup(target, source, t)`
returns the transform that maps points in `source` into `target`. Times are seconds (float),
lengths metres.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation


class TransformError(LookupError):
    """A lookup that cannot be answered; the message says which frame and why."""


class UnknownFrameError(TransformError):
    """A frame that no transform has mentioned."""


class NotConnectedError(TransformError):
    """Both frames are known but belong to different trees."""


class ExtrapolationError(TransformError):
    """The requested time is outside the history of an edge on the path."""


@dataclass(frozen=True)
class Transform:
    """A rigid transform: p_out = rotation.apply(p_in) + translation (metres)."""

    rotation: Rotation
    translation: np.ndarray  # (3,) metres

    @staticmethod
    def identity() -> Transform:
        return Transform(Rotation.identity(), np.zeros(3))

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) rotation matrix."""
        return self.rotation.as_matrix()

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Points (..., 3) in the input frame -> (..., 3) in the output frame."""
        pts = np.asarray(points, dtype=np.float64)
        return self.rotation.apply(pts.reshape(-1, 3)).reshape(pts.shape) + self.translation

    def inverse(self) -> Transform:
        inv = self.rotation.inv()
        return Transform(inv, -inv.apply(self.translation))

    def __mul__(self, other: Transform) -> Transform:
        """(self * other).apply(p) == self.apply(other.apply(p))."""
        return Transform(
            self.rotation * other.rotation,
            self.rotation.apply(other.translation) + self.translation,
        )


@dataclass
class _Edge:
    """parent <- child: one static value or a time-sorted, bounded history."""

    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    quats: list[np.ndarray] = field(default_factory=list)  # (4,) x, y, z, w
    translations: list[np.ndarray] = field(default_factory=list)  # (3,)

    def insert(self, stamp: float, quat: np.ndarray, translation: np.ndarray) -> None:
        if self.static:
            self.stamps, self.quats, self.translations = [stamp], [quat], [translation]
            return
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:  # a re-send replaces the sample
            self.quats[i], self.translations[i] = quat, translation
            return
        self.stamps.insert(i, stamp)
        self.quats.insert(i, quat)
        self.translations.insert(i, translation)

    def prune(self, keep_s: float, max_samples: int) -> None:
        """Drop samples older than keep_s before the newest, and beyond max_samples."""
        if self.static or not self.stamps:
            return
        start = bisect.bisect_left(self.stamps, self.stamps[-1] - keep_s)
        start = max(start, len(self.stamps) - max_samples)
        if start > 0:
            del self.stamps[:start], self.quats[:start], self.translations[:start]

    def at(self, t: float, child: str) -> Transform:
        if self.static:
            return Transform(Rotation.from_quat(self.quats[0]), self.translations[0])
        first, last = self.stamps[0], self.stamps[-1]
        if not first <= t <= last:
            raise ExtrapolationError(
                f"no transform {self.parent} <- {child} at t={t:.3f} s: its data covers "
                f"[{first:.3f}, {last:.3f}] s ({'past' if t < first else 'future'} by "
                f"{(first - t) if t < first else (t - last):.3f} s)"
            )
        i = bisect.bisect_left(self.stamps, t)
        if self.stamps[i] == t:
            return Transform(Rotation.from_quat(self.quats[i]), self.translations[i])
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        a = (t - t0) / (t1 - t0)
        # slerp: r0 turned by the fraction a of the rotation from r0 to r1 (what scipy's Slerp
        # computes, without building a Slerp object per lookup)
        r0, r1 = Rotation.from_quat(self.quats[i - 1]), Rotation.from_quat(self.quats[i])
        rotation = r0 * Rotation.from_rotvec(a * (r0.inv() * r1).as_rotvec())
        translation = (1 - a) * self.translations[i - 1] + a * self.translations[i]
        return Transform(rotation, translation)


class TransformBuffer:
    """Static and dynamic transforms between frames, looked up through the frame tree.

    `cache_time_s` bounds how far back a dynamic edge's history reaches (from its newest
    sample) and `max_samples` how many samples it keeps, so memory never grows.
    """

    def __init__(self, cache_time_s: float = 10.0, max_samples: int = 1000) -> None:
        if cache_time_s <= 0 or max_samples < 1:
            raise ValueError("cache_time_s must be > 0 and max_samples >= 1")
        self.cache_time_s = float(cache_time_s)
        self.max_samples = int(max_samples)
        self._edges: dict[str, _Edge] = {}  # child -> edge to its parent

    def set_transform(
        self,
        parent: str,
        child: str,
        stamp: float,
        quaternion_xyzw: np.ndarray,
        translation: np.ndarray,
        static: bool = False,
    ) -> None:
        """Record parent <- child at `stamp` (s): points in `child` map into `parent`.

        A child re-parented replaces its old edge (as tf2 does). Raises ValueError on an empty
        or self-referencing frame id, a non-finite value or a zero quaternion.
        """
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            raise ValueError(f"invalid transform {parent!r} <- {child!r}")
        q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(4)
        t = np.asarray(translation, dtype=np.float64).reshape(3)
        norm = float(np.linalg.norm(q))
        if (
            not (np.isfinite(q).all() and np.isfinite(t).all() and np.isfinite(stamp))
            or norm < 1e-9
        ):
            raise ValueError(
                f"invalid transform {parent} <- {child}: non-finite or zero quaternion"
            )
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent or edge.static != static:
            edge = self._edges[child] = _Edge(parent, static)
        edge.insert(float(stamp), q / norm, t)
        edge.prune(self.cache_time_s, self.max_samples)

    def frames(self) -> set[str]:
        return set(self._edges) | {e.parent for e in self._edges.values()}

    def _ancestors(self, frame: str) -> list[str]:
        """frame, its parent, ... up to its tree's root (a cycle stops the walk)."""
        chain = [frame]
        while chain[-1] in self._edges:
            parent = self._edges[chain[-1]].parent
            if parent in chain:
                raise TransformError(f"the frames form a loop through {parent!r}")
            chain.append(parent)
        return chain

    def _path(self, target: str, source: str) -> tuple[list[str], list[str]]:
        """Children whose edges lead from source up to the common ancestor, and from target."""
        known = self.frames()
        for frame in (target, source):
            if frame not in known:
                raise UnknownFrameError(
                    f"frame {frame!r} does not exist (known: {', '.join(sorted(known)) or 'none'})"
                )
        up_source, up_target = self._ancestors(source), self._ancestors(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise NotConnectedError(
                f"{target!r} and {source!r} are not connected (their roots are "
                f"{up_target[-1]!r} and {up_source[-1]!r})"
            )
        return up_source[: up_source.index(common)], up_target[: up_target.index(common)]

    def latest_common_time(self, target: str, source: str) -> float | None:
        """The newest time at which every dynamic edge between the frames has data (None: all
        static)."""
        from_source, from_target = self._path(target, source)
        newest = [
            self._edges[c].stamps[-1]
            for c in from_source + from_target
            if not self._edges[c].static
        ]
        return min(newest) if newest else None

    def lookup(self, target: str, source: str, stamp: float | None = None) -> Transform:
        """The transform mapping points in `source` into `target` at `stamp` (s); None: the
        latest time all edges on the path have data (tf2's time 0)."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return Transform.identity()
        from_source, from_target = self._path(target, source)
        t = self.latest_common_time(target, source) if stamp is None else float(stamp)
        t = 0.0 if t is None else t
        common_from_source = self._chain(from_source, t)  # source -> ... -> common
        common_from_target = self._chain(from_target, t)
        if common_from_target is None:  # target is the common ancestor
            return common_from_source
        if common_from_source is None:
            return common_from_target.inverse()
        return common_from_target.inverse() * common_from_source

    def _chain(self, children: list[str], t: float) -> Transform | None:
        """The edges of `children` (bottom up) composed at time t; None for no edge."""
        result = None
        for child in children:
            edge = self._edges[child].at(t, child)
            result = edge if result is None else edge * result
        return result
