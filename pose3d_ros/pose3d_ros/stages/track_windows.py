"""Per-track windows of 2D keypoints on a regular time grid, for a temporal lifter.

Why a grid: a temporal lifter was trained on evenly spaced frames, so feeding it whatever frames
happened to arrive (a dropped frame, a 15 Hz camera, a stalled driver) silently changes the
speed of every motion it sees. Here each track's buffer is a ring of ``frames`` *slots* spaced
``frame_period_s`` apart that ends at the track's newest frame:

* a new frame about one period after the newest slot is appended;
* a frame arriving n >= 2 periods later (dropped frames) first fills n - 1 slots by linear
  interpolation between the two real frames, as long as the gap is at most ``max_gap_s``;
* a frame arriving less than half a period after the newest slot (a camera faster than the
  grid, or a repeated stamp) replaces the newest slot: the window always ends at the newest data;
* slot times stay on the grid started by the track's first frame, so slots are ``frame_period_s``
  apart on average whatever the camera rate (a 29.97 Hz camera on a 1/30 s grid gets one
  interpolated slot every ~1000 frames, a 60 Hz camera fills each slot with the newer of two
  frames); a slot's data is at most half a period off its grid time;
* a gap longer than ``max_gap_s``, or a stamp going backwards (a looped bag), restarts the
  track's window: motion across such a gap is unknown and must not be invented;
* the start of a track is padded by repeating its first slot, so a fresh track and a single
  still image give a full window (a static pose) from the first frame.

Missing joints are NaN with confidence 0 (as the lifter input expects); an interpolated slot of
a joint that is missing at either end is missing too. Memory is bounded: at most ``frames``
slots per track, and tracks are removed with :meth:`TrackWindows.drop` /
:meth:`TrackWindows.retain` when the tracker ends them.

Causal and centred windows: :meth:`TrackWindows.request` asks for the window of a track's
newest frame. With ``lookahead = 0`` (a causal lifter) it is the window ending at that frame,
there at once. With ``lookahead = L`` (a centred lifter, T = 2L + 1, for recorded video) it is
the window from L slots before the frame to L slots after it: it is copied out of the ring as
soon as the L-th slot after the frame is appended (so T slots per track still suffice, however
many slots one push adds). A window whose run ends first (the track ends, its window restarts
after a gap, or the caller stops waiting at the end of the input: :meth:`PendingWindow.result`)
is padded by repeating the last slot the run had, as the start of a run is padded with its
first slot.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from pose3d_ros.core.parameters import setting

_FALLBACK_PERIOD_S = 1.0 / 30.0
_PERIOD_HISTORY = 31  # distinct frame stamps kept to infer the frame period


@dataclass(frozen=True)
class TrackWindowsSettings:
    """Temporal buffering of 2D keypoints per track."""

    frame_period_s: float = setting(
        1.0 / 30.0,
        "Spacing of the window's slots: a frame period the temporal lifter knows "
        "(the shipped lifters were trained on 50 and 25 Hz motion); "
        "0 infers it from the median interval between recent frame stamps.",
        range=(0.0, 1.0),
        unit="s",
    )
    max_gap_s: float = setting(
        0.15,
        "Longest gap between two frames of a track that is bridged by interpolation; a longer "
        "gap restarts the track's window.",
        range=(0.0, 60.0),
        unit="s",
    )


class PushEvent(Enum):
    """What :meth:`TrackWindows.push` did with a frame (for logs, statistics and tests)."""

    STARTED = "started"  # first frame of a track's window
    APPENDED = "appended"  # one period after the previous slot
    INTERPOLATED = "interpolated"  # appended after filling dropped slots
    REPLACED = "replaced"  # less than half a period after the previous slot
    RESET_GAP = "reset_gap"  # gap longer than max_gap_s: window restarted
    RESET_BACKWARDS = "reset_backwards"  # stamp older than the previous frame: window restarted


class PendingWindow:
    """The window of one frame of a track: slots ``before`` slots before the frame's slot to
    ``after`` slots after it, filled in once the ring has them (module docstring)."""

    __slots__ = ("_conf", "_kp", "_ring", "slot")

    def __init__(self, ring: _Ring, slot: int) -> None:
        self._ring: _Ring | None = ring
        self.slot = slot  # the frame's slot, counted from the start of the ring's run
        self._kp: np.ndarray | None = None
        self._conf: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        """True once the window holds every slot it will ever get."""
        return self._kp is not None

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (T, J, 2) and confidence (T, J), oldest first. Not ready yet: the slots
        there are now, the end padded with the newest (the caller stops waiting)."""
        if self._ring is not None:
            self._ring.capture(self)
        assert self._kp is not None and self._conf is not None
        return self._kp, self._conf

    def _fill(self, kp: np.ndarray, conf: np.ndarray) -> None:
        self._kp, self._conf, self._ring = kp, conf, None


class _Ring:
    """Fixed-size ring of slots for one track, and the windows waiting for its next slots."""

    __slots__ = (
        "after", "conf", "count", "head", "kp", "last_stamp", "pending", "slot_stamp", "total"
    )

    def __init__(self, frames: int, joints: int, after: int = 0) -> None:
        self.kp = np.full((frames, joints, 2), np.nan)
        self.conf = np.zeros((frames, joints))
        self.head = -1  # index of the newest slot
        self.count = 0
        self.total = 0  # slots appended since the run (window) started
        self.after = after  # slots a requested window extends past its frame
        self.pending: deque[PendingWindow] = deque()  # oldest slot first
        self.last_stamp = math.nan  # stamp of the newest real frame
        self.slot_stamp = math.nan  # time the newest slot stands for

    def clear(self) -> None:
        """End the run: waiting windows get what they have, padded."""
        self.release()
        self.head, self.count, self.total = -1, 0, 0

    def release(self) -> None:
        while self.pending:
            self.capture(self.pending[0])

    def append(self, kp: np.ndarray, conf: np.ndarray) -> None:
        frames = self.kp.shape[0]
        self.head = (self.head + 1) % frames
        self.kp[self.head] = kp
        self.conf[self.head] = conf
        self.count = min(self.count + 1, frames)
        self.total += 1
        # A window complete with this slot is copied now, before later slots overwrite its start.
        while self.pending and self.pending[0].slot + self.after <= self.total - 1:
            self.capture(self.pending[0])

    def request(self) -> PendingWindow:
        """The window of the newest slot (ready at once when ``after`` is 0)."""
        window = PendingWindow(self, self.total - 1)
        self.pending.append(window)
        if self.after == 0:
            self.capture(window)
        return window

    def capture(self, window: PendingWindow) -> None:
        """Copy ``window``'s slots out, padding slots outside the run with its first / last."""
        frames = self.kp.shape[0]
        newest = self.total - 1
        wanted = window.slot - (frames - 1 - self.after) + np.arange(frames)
        have = np.clip(wanted, newest - self.count + 1, newest)
        idx = (self.head - (newest - have)) % frames
        window._fill(self.kp[idx], self.conf[idx])
        self.pending.remove(window)

    def ordered(self) -> np.ndarray:
        """Slot indices of the full window, oldest first, padded with the oldest slot."""
        frames = self.kp.shape[0]
        start = self.head - self.count + 1
        idx = (start + np.arange(self.count)) % frames
        return np.concatenate([np.full(frames - self.count, idx[0]), idx])


class TrackWindows:
    """Fixed-length, evenly spaced 2D keypoint windows, one per track id."""

    def __init__(
        self,
        frames: int,
        settings: TrackWindowsSettings | None = None,
        joints: int = 17,
        lookahead: int = 0,
    ) -> None:
        """``lookahead``: slots a requested window extends past its frame (0: causal windows;
        a centred lifter's latency (T - 1) / 2)."""
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if not 0 <= lookahead < frames:
            raise ValueError(f"lookahead must be in [0, {frames - 1}], got {lookahead}")
        self.frames = int(frames)
        self.joints = int(joints)
        self.lookahead = int(lookahead)
        self.settings = settings or TrackWindowsSettings()
        self._rings: dict[Hashable, _Ring] = {}
        self._stamps: deque[float] = deque(maxlen=_PERIOD_HISTORY)

    # ------------------------------------------------------------------ frame period

    @property
    def frame_period_s(self) -> float:
        """The slot spacing in use (the setting, or the inferred median frame interval)."""
        if self.settings.frame_period_s > 0.0:
            return self.settings.frame_period_s
        if len(self._stamps) < 2:
            return _FALLBACK_PERIOD_S
        diffs = np.diff(np.asarray(self._stamps))
        diffs = diffs[diffs > 0]
        return float(np.median(diffs)) if diffs.size else _FALLBACK_PERIOD_S

    def _note_stamp(self, stamp: float) -> None:
        # All tracks share the camera: the frame rate is a property of the stream, not a track.
        if not self._stamps or stamp > self._stamps[-1]:
            self._stamps.append(stamp)
        elif stamp < self._stamps[-1]:
            self._stamps.clear()
            self._stamps.append(stamp)

    # ------------------------------------------------------------------ updates

    def push(
        self,
        track_id: Hashable,
        stamp: float,
        keypoints_norm: np.ndarray,
        confidence: np.ndarray,
    ) -> PushEvent:
        """Add one frame of a track: keypoints (J, 2) normalised image coordinates, conf (J,)."""
        kp = np.array(keypoints_norm, dtype=np.float64).reshape(self.joints, 2)
        conf = np.array(confidence, dtype=np.float64).reshape(self.joints)
        missing = ~(np.isfinite(kp).all(axis=1) & np.isfinite(conf) & (conf > 0.0))
        kp[missing] = np.nan
        conf[missing] = 0.0
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        if self.settings.frame_period_s <= 0.0:
            self._note_stamp(stamp)

        ring = self._rings.get(track_id)
        if ring is None:
            ring = self._rings[track_id] = _Ring(self.frames, self.joints, self.lookahead)
        if ring.count == 0:
            event = PushEvent.STARTED
        elif stamp < ring.last_stamp:
            event = PushEvent.RESET_BACKWARDS
        elif stamp - ring.last_stamp > self.settings.max_gap_s:
            event = PushEvent.RESET_GAP
        else:
            event = self._advance(ring, stamp, kp, conf)
            ring.last_stamp = stamp
            return event
        ring.clear()
        ring.append(kp, conf)
        ring.last_stamp = ring.slot_stamp = stamp
        return event

    def _advance(self, ring: _Ring, stamp: float, kp: np.ndarray, conf: np.ndarray) -> PushEvent:
        period = self.frame_period_s
        steps = math.floor((stamp - ring.slot_stamp) / period + 0.5)
        if steps <= 0:
            ring.kp[ring.head] = kp
            ring.conf[ring.head] = conf
            return PushEvent.REPLACED
        event = PushEvent.APPENDED
        if steps > 1:
            event = PushEvent.INTERPOLATED
            # The newest slot always holds the newest real frame (taken at ring.last_stamp).
            prev_kp, prev_conf = ring.kp[ring.head].copy(), ring.conf[ring.head].copy()
            both = (prev_conf > 0.0) & (conf > 0.0)
            span = max(stamp - ring.last_stamp, 1e-12)
            # At most `frames` slots can ever be seen: older filled slots would be overwritten.
            for k in range(max(1, steps - self.frames), steps):
                a = min(max((ring.slot_stamp + k * period - ring.last_stamp) / span, 0.0), 1.0)
                ring.append(
                    np.where(both[:, None], (1.0 - a) * prev_kp + a * kp, np.nan),
                    np.where(both, (1.0 - a) * prev_conf + a * conf, 0.0),
                )
        ring.append(kp, conf)
        # Slots stay on the grid (never re-anchored at the frame's stamp), so their spacing is
        # the frame period on average whatever the camera rate; a slot's data is at most half
        # a period off its grid time.
        ring.slot_stamp += steps * period
        return event

    # ------------------------------------------------------------------ queries

    def window(self, track_id: Hashable) -> tuple[np.ndarray, np.ndarray]:
        """The track's window: keypoints (T, J, 2) and confidence (T, J), newest last (copies)."""
        ring = self._rings.get(track_id)
        if ring is None or ring.count == 0:
            raise KeyError(f"no frames for track {track_id!r}")
        idx = ring.ordered()
        return ring.kp[idx], ring.conf[idx]

    def request(self, track_id: Hashable) -> PendingWindow:
        """The window of the track's newest frame (push it first): causal, ready at once; with
        ``lookahead`` L, centred, ready once L more slots are appended or the run ends."""
        ring = self._rings.get(track_id)
        if ring is None or ring.count == 0:
            raise KeyError(f"no frames for track {track_id!r}")
        return ring.request()

    @property
    def waiting(self) -> int:
        """Requested windows not ready yet, over all tracks (bounded by the caller's delay)."""
        return sum(len(r.pending) for r in self._rings.values())

    def filled(self, track_id: Hashable) -> int:
        """Number of slots holding data (real or interpolated) rather than start padding."""
        ring = self._rings.get(track_id)
        return 0 if ring is None else ring.count

    def drop(self, track_id: Hashable) -> None:
        """Forget a track; its waiting windows end with the slots they have."""
        ring = self._rings.pop(track_id, None)
        if ring is not None:
            ring.release()

    def retain(self, track_ids: Iterable[Hashable]) -> None:
        """Drop the windows of every track not in ``track_ids`` (the tracker's live tracks)."""
        keep = set(track_ids)
        for tid in [t for t in self._rings if t not in keep]:
            self.drop(tid)

    def clear(self) -> None:
        for ring in self._rings.values():
            ring.release()
        self._rings.clear()
        self._stamps.clear()

    @property
    def track_ids(self) -> list[Hashable]:
        return list(self._rings)

    def __contains__(self, track_id: Hashable) -> bool:
        return track_id in self._rings

    def __len__(self) -> int:
        return len(self._rings)
