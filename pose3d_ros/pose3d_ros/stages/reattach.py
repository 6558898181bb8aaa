"""Re-attachment: a person who comes back after an occlusion gets their old id, not a new one.

Why: the 2D tracker (stages/tracking.py) keeps an id only while its pixel-box prediction still
overlaps the person, and forgets it after ``grace_period_s``. A walker hidden behind a
neighbour for a second, or re-detected a little off the predicted box, is born again as a new
track; in a crowd that is most of the id churn. This stage runs after metric placement, where
two things the 2D tracker cannot use are known:

* the root in metres in the camera frame, with its covariance, and the root velocity: where
  the lost person should be now (constant velocity, speed capped, uncertainty growing with the
  time hidden and with depth, because monocular depth is the least certain axis). The velocity
  is the least-squares slope of the last ``_HISTORY`` roots (about a second), not the
  frame-to-frame difference: a metre of depth jitter between two frames 0.1 s apart would be a
  10 m/s velocity;
* a torso colour histogram (stages/appearance.py): who it is.

A track the tracker has just started (while still tentative) is compared with the people lost
within ``max_gap_s`` (coasting, or deleted by the tracker). It takes a lost person's id only
when **both** agree: the Mahalanobis distance of its root from the lost person's predicted root
is within ``gate_sigma`` and the Bhattacharyya distance of the torso histograms is within
``max_appearance_distance``; among several candidates one optimal assignment decides. The
lost person's coasting track (if any) is then handed back to the tracker to drop, so one
person never has two tracks. Ids stay unique: a published id is either a tracker id used for
the first time or the id of a lost person, held by one track at a time.

Memory is bounded: at most ``max_people`` remembered people, each one root, covariance,
velocity, histogram and ``_HISTORY`` recent roots, forgotten ``max_gap_s`` after they were
last seen.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose3d_ros.core.parameters import setting
from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.stages.appearance import bhattacharyya

_NO_MATCH = 1e6
_HISTORY = 10  # recent roots kept per person for the velocity
_MIN_SPAN_S = 0.3  # shortest stretch of roots a velocity is computed from


@dataclass(frozen=True)
class ReattachSettings:
    """Giving a returning person their old id (metric root + torso colour)."""

    enabled: bool = setting(
        True, "Give a new track the id of a recently lost person when position and colour agree."
    )
    max_gap_s: float = setting(
        4.0,
        "How long after a person was last seen their id can still be given back.",
        range=(0.0, 60.0),
        unit="s",
    )
    max_people: int = setting(
        64, "Most lost people remembered at once (the oldest are forgotten).", range=(1, 10000)
    )
    gate_sigma: float = setting(
        3.0,
        "Largest Mahalanobis distance of a new track's root from a lost person's predicted root.",
        range=(0.1, 100.0),
    )
    max_appearance_distance: float = setting(
        0.45,
        "Largest Bhattacharyya distance between torso colour histograms (0 same, 1 disjoint).",
        range=(0.0, 1.0),
    )
    position_std_m: float = setting(
        0.3,
        "Root position noise always assumed, on top of the placement covariance.",
        range=(0.0, 10.0),
        unit="m",
    )
    depth_std_fraction: float = setting(
        0.15,
        "Extra root noise along the viewing ray, as a fraction of the depth (monocular depth "
        "varies with the lifted pose's size).",
        range=(0.0, 1.0),
    )
    motion_std_mps: float = setting(
        0.5,
        "Unpredicted motion of a hidden person (turning, stopping), per second hidden.",
        range=(0.0, 10.0),
        unit="m/s",
    )
    max_speed_mps: float = setting(
        2.5,
        "Root speeds above this are capped when predicting a hidden person.",
        range=(0.0, 20.0),
        unit="m/s",
    )
    appearance_rate: float = setting(
        0.2,
        "Weight of a new torso histogram in a person's running appearance (1 = last one only).",
        range=(0.01, 1.0),
    )
    max_overlap: float = setting(
        0.3,
        "A torso seen while this fraction of the person's box is covered by another person's "
        "box is not learned (it may show the other person).",
        range=(0.0, 1.0),
    )


@dataclass
class _Person:
    """What is remembered of one published id (camera frame, metres, seconds)."""

    holder: int | None  # tracker id currently carrying this id, None once the tracker dropped it
    confirmed: bool
    stamp: float = -math.inf  # last observed
    root: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    covariance: np.ndarray = field(default_factory=lambda: np.full((3, 3), np.nan))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    recent: deque = field(default_factory=lambda: deque(maxlen=_HISTORY))  # (stamp, root)
    histogram: np.ndarray | None = None


@dataclass
class ReattachResult:
    """``poses`` with published ids; ``dropped``: tracker ids to drop (their person came back
    on another track); ``attached``: (tracker id, published id) pairs decided in this frame."""

    poses: list[PersonPose]
    dropped: list[int]
    attached: list[tuple[int, int]]


class Reattacher:
    """Maps tracker ids to published ids, re-using a lost person's id (module docstring)."""

    def __init__(self, settings: ReattachSettings | None = None) -> None:
        self.settings = settings or ReattachSettings()
        self._published: dict[int, int] = {}  # tracker id -> published id
        self._settled: set[int] = set()  # tracker ids whose published id is final
        self._attached: set[int] = set()  # tracker ids given a lost person's id
        self._people: dict[int, _Person] = {}  # published id -> memory

    def reset(self) -> None:
        """Forget everyone (time went backwards): no id is given back after a reset."""
        self._published.clear()
        self._settled.clear()
        self._attached.clear()
        self._people.clear()

    @property
    def remembered(self) -> int:
        """People in memory (live and lost)."""
        return len(self._people)

    def update(
        self,
        stamp: float,
        poses: list[PersonPose],
        histograms: dict[int, np.ndarray],
        live: list[int],
    ) -> ReattachResult:
        """One frame: ``poses`` carry tracker ids; ``histograms`` maps a tracker id to its torso
        histogram this frame (stages/appearance.py); ``live`` = the tracker's track ids after
        this frame's update."""
        s = self.settings
        observed = [p for p in poses if p.state != TrackState.COASTING]
        candidates = [
            p
            for p in observed
            if s.enabled and p.track_id not in self._settled and p.track_id not in self._attached
        ]
        dropped: list[int] = []
        attached: list[tuple[int, int]] = []
        if candidates:
            attached = self._attach(stamp, candidates, histograms, {p.track_id for p in observed})
            for tid, pid in attached:
                old = self._people[pid].holder
                if old is not None and old != tid:
                    dropped.append(old)
                    self._published.pop(old, None)
                    self._settled.discard(old)
                    self._attached.discard(old)
                own = self._people.get(tid)  # the new track's own provisional id
                if tid != pid and own is not None and not own.confirmed:
                    del self._people[tid]
                self._published[tid] = pid
                self._attached.add(tid)
                self._people[pid].holder = tid

        covered = _covered_fraction([p.bbox for p in observed])
        for k, p in enumerate(observed):
            pid = self._published.setdefault(p.track_id, p.track_id)
            person = self._people.setdefault(pid, _Person(holder=p.track_id, confirmed=False))
            person.holder = p.track_id
            if p.state == TrackState.CONFIRMED:
                person.confirmed = True
                self._settled.add(p.track_id)
            elif not s.enabled:
                self._settled.add(p.track_id)
            self._learn(person, stamp, p, histograms.get(p.track_id), covered[k])

        out = []
        for p in poses:
            if p.track_id in dropped:
                continue
            pid = self._published.get(p.track_id, p.track_id)
            out.append(p if pid == p.track_id else dataclasses.replace(p, track_id=pid))
        self._forget(stamp, set(live) - set(dropped))
        return ReattachResult(out, dropped, attached)

    # ------------------------------------------------------------------ helpers

    def _attach(
        self,
        stamp: float,
        candidates: list[PersonPose],
        histograms: dict[int, np.ndarray],
        observed_ids: set[int],
    ) -> list[tuple[int, int]]:
        """Optimal assignment of new tracks to lost people where root and colour both agree."""
        s = self.settings
        seen_now = {self._published[t] for t in observed_ids if t in self._published}
        lost = [
            (pid, m)
            for pid, m in self._people.items()
            if m.confirmed
            and pid not in seen_now
            and m.histogram is not None
            and 0.0 < stamp - m.stamp <= s.max_gap_s
            and np.isfinite(m.root).all()
        ]
        if not lost:
            return []
        cost = np.full((len(candidates), len(lost)), _NO_MATCH)
        for i, p in enumerate(candidates):
            hist = histograms.get(p.track_id)
            if hist is None or not np.isfinite(hist).all() or not np.isfinite(p.root).all():
                continue
            colour = bhattacharyya(hist, np.stack([m.histogram for _, m in lost]))[0]
            for j, (_, m) in enumerate(lost):
                d = self._mahalanobis(stamp, m, p)
                if d <= s.gate_sigma and colour[j] <= s.max_appearance_distance:
                    cost[i, j] = (d / s.gate_sigma) ** 2 + (
                        colour[j] / max(s.max_appearance_distance, 1e-6)
                    ) ** 2
        rows, cols = linear_sum_assignment(cost)
        return [
            (candidates[r].track_id, lost[c][0])
            for r, c in zip(rows, cols, strict=True)
            if cost[r, c] < _NO_MATCH
        ]

    def _mahalanobis(self, stamp: float, lost: _Person, pose: PersonPose) -> float:
        """Distance of ``pose``'s root from where ``lost`` should be now, in standard deviations
        of the combined uncertainty (both placements, depth, unpredicted motion)."""
        s = self.settings
        dt = stamp - lost.stamp
        velocity = lost.velocity
        speed = float(np.linalg.norm(velocity))
        if speed > s.max_speed_mps:
            velocity = velocity * (s.max_speed_mps / speed)
        predicted = lost.root + velocity * dt
        cov = (s.position_std_m**2 + (s.motion_std_mps * dt) ** 2) * np.eye(3)
        for c in (lost.covariance, pose.root_covariance):
            if np.isfinite(c).all():
                cov = cov + c
        for r in (predicted, pose.root):
            depth = float(np.linalg.norm(r))
            if depth > 0:
                ray = r / depth
                cov = cov + (s.depth_std_fraction * depth) ** 2 * np.outer(ray, ray)
        diff = pose.root - predicted
        try:
            return float(math.sqrt(max(diff @ np.linalg.solve(cov, diff), 0.0)))
        except np.linalg.LinAlgError:
            return math.inf

    def _learn(
        self,
        person: _Person,
        stamp: float,
        pose: PersonPose,
        histogram: np.ndarray | None,
        covered: float,
    ) -> None:
        """Remember where and how a person was last seen."""
        if np.isfinite(pose.root).all():
            person.root = pose.root.copy()
            person.covariance = pose.root_covariance.copy()
            person.stamp = stamp
            person.recent.append((stamp, person.root))
            person.velocity = _slope(person.recent)
        if histogram is None or not np.isfinite(histogram).all():
            return
        if covered > self.settings.max_overlap and person.histogram is not None:
            return
        if person.histogram is None:
            person.histogram = np.asarray(histogram, dtype=np.float64).copy()
        else:
            rate = self.settings.appearance_rate
            person.histogram = (1 - rate) * person.histogram + rate * histogram

    def _forget(self, stamp: float, live: set[int]) -> None:
        """Release ids of tracks the tracker dropped; forget people lost too long or too many."""
        for tid in [t for t in self._published if t not in live]:
            pid = self._published.pop(tid)
            self._settled.discard(tid)
            self._attached.discard(tid)
            if pid in self._people and self._people[pid].holder == tid:
                self._people[pid].holder = None
        for pid, m in list(self._people.items()):
            gone = m.holder is None and (
                not m.confirmed or stamp - m.stamp > self.settings.max_gap_s
            )
            if gone:
                del self._people[pid]
        lost = sorted((m.stamp, pid) for pid, m in self._people.items() if m.holder is None)
        for _, pid in lost[: max(0, len(lost) - self.settings.max_people)]:
            del self._people[pid]


def _slope(recent: deque) -> np.ndarray:
    """Least-squares velocity (m/s) of (stamp, root) pairs; zero over less than _MIN_SPAN_S."""
    t = np.array([r[0] for r in recent])
    if len(t) < 3 or t[-1] - t[0] < _MIN_SPAN_S:
        return np.zeros(3)
    x = np.stack([r[1] for r in recent])
    tc = t - t.mean()
    return (tc[:, None] * (x - x.mean(0))).sum(0) / float(np.square(tc).sum())


def _covered_fraction(boxes: list[np.ndarray]) -> np.ndarray:
    """For each box (x_min, y_min, x_max, y_max), the largest fraction of its area inside
    another box of the list."""
    if len(boxes) < 2:
        return np.zeros(len(boxes))
    b = np.stack(boxes)
    x0 = np.maximum(b[:, None, 0], b[None, :, 0])
    y0 = np.maximum(b[:, None, 1], b[None, :, 1])
    x1 = np.minimum(b[:, None, 2], b[None, :, 2])
    y1 = np.minimum(b[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9, None)
    frac = np.nan_to_num(inter / area[:, None])
    np.fill_diagonal(frac, 0.0)
    return frac.max(axis=1)
