"""Multi-person tracking with stable ids: birth, coasting through short occlusions, death.

Why: every later stage is per person over time (One-Euro state, the lifter's temporal window,
the published ``body_<id>`` frames), so an id switch corrupts all of them at once, and users of
peer packages complain most about ids that change when someone is briefly hidden or walks past
another person (complaint 7). The tracker is deliberately simple and predictable:

* similarity of a track and a detection = weighted mean of the box IoU (against the track's box
  *predicted* with a constant-velocity alpha-beta filter, so a walking person stays matched,
  and one ambiguous frame where two people overlap cannot flip their velocities) and an OKS-like
  keypoint similarity (keypoints shifted with the predicted box; the falloff scales with the
  box size, so near and far people are judged alike; missing joints are ignored);
* one optimal assignment (``scipy.optimize.linear_sum_assignment``) per frame; pairs below
  ``min_similarity`` are not matched;
* a new track is TENTATIVE until matched in ``confirm_frames`` consecutive frames (a single
  false detection never becomes a person); an unmatched tentative track is deleted;
* an unmatched CONFIRMED track COASTS on its predicted box and keeps its id for
  ``grace_period_s`` seconds, and is deleted after that; absence must be observed: after a
  stretch with no frames at all (a stalled camera) a track is still matched;
* ids come from a counter that is never reset (not even by :meth:`Tracker.reset`), so an id is
  never given to two people in one run.

What this tracker cannot do is recognise a person it has lost (hidden for longer than the grace
period, or back too far from the predicted box): that needs the metric root and appearance,
known only after placement, and is done by stages/reattach.py, which may ask
:meth:`Tracker.drop` to end a coasting track whose person came back on a new one.

Time going backwards (a looped bag, a restarted driver) cannot be predicted across: the tracker
then drops every track, keeps counting ids, processes the frame as a fresh start and reports it
with ``TrackUpdate.reset_reason`` (log it as a warning). It does not raise, because a robot
should keep tracking after such a jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose3d_ros.core.boxes import box_iou
from pose3d_ros.core.parameters import group, setting
from pose3d_ros.core.poses import TrackState
from pose3d_ros.stages.reattach import ReattachSettings

_NO_MATCH = 1e6  # cost of a forbidden pair (finite: linear_sum_assignment rejects inf rows)


@dataclass(frozen=True)
class TrackerSettings:
    """Association of detections to person tracks."""

    iou_weight: float = setting(
        0.5, "Weight of the box IoU (with the predicted box) in the similarity.", range=(0.0, 1.0)
    )
    keypoint_weight: float = setting(
        0.5, "Weight of the OKS-like keypoint similarity in the similarity.", range=(0.0, 1.0)
    )
    keypoint_falloff: float = setting(
        0.1,
        "Keypoint distance, as a fraction of the box size sqrt(w*h), at which a joint's "
        "similarity has dropped to exp(-1/2) (the OKS kappa, one value for all joints).",
        range=(0.001, 10.0),
    )
    min_keypoint_confidence: float = setting(
        0.1, "Joints with lower confidence are ignored by the keypoint similarity.", range=(0, 1)
    )
    min_similarity: float = setting(
        0.2, "A detection and a track with lower similarity are never matched.", range=(0, 1)
    )
    confirm_frames: int = setting(
        3, "Consecutive matched frames before a new track is confirmed.", range=(1, 1000)
    )
    grace_period_s: float = setting(
        1.0,
        "How long an unmatched confirmed track coasts and keeps its id before it is deleted.",
        range=(0.0, 3600.0),
        unit="s",
    )
    box_gain: float = setting(
        0.7,
        "Alpha of the alpha-beta (constant-velocity) box filter: share of the prediction error "
        "taken into the box state (1 = the box is the last detection).",
        range=(0.01, 1.0),
    )
    velocity_gain: float = setting(
        0.1,
        "Beta of the alpha-beta box filter: share of the prediction error per frame period "
        "taken into the velocity (small = steady velocity that a swapped detection cannot "
        "ruin).",
        range=(0.0, 2.0),
    )
    max_tracks: int = setting(
        32, "Most tracks kept at once; extra detections are left untracked.", range=(1, 10000)
    )
    # Used by the pipeline's re-attachment stage (stages/reattach.py), not by Tracker: both
    # decide ids, so their settings sit together under `tracker.`.
    reattach: ReattachSettings = group(ReattachSettings)


@dataclass
class TrackAssignment:
    """One track's outcome for one frame.

    ``det_index`` is the detection's row in the ``update`` input, or None for a coasting track.
    ``box`` is the detection's box, or the predicted box of a coasting track (pixels,
    x_min, y_min, x_max, y_max); ``keypoints``/``confidence`` are the last observed ones (shifted
    with the predicted motion while coasting): the crop for the next frame's 2D stage.
    ``age`` counts frames since the track's birth (this one included); ``time_since_update`` is
    seconds since it was last matched.
    """

    track_id: int
    det_index: int | None
    state: TrackState
    age: int
    hits: int
    time_since_update: float
    box: np.ndarray
    keypoints: np.ndarray
    confidence: np.ndarray
    velocity: np.ndarray  # (4,) box velocity, pixels/s of (cx, cy, w, h)


class TrackUpdate(list[TrackAssignment]):
    """The assignments of one frame (a list), plus why the tracker reset, if it did."""

    reset_reason: str = ""


@dataclass
class _Track:
    track_id: int
    state: TrackState
    cxcywh: np.ndarray  # (4,) filtered box at last_seen
    velocity: np.ndarray  # (4,) per second
    keypoints: np.ndarray  # (J, 2) at last_seen, NaN where missing
    confidence: np.ndarray  # (J,)
    last_seen: float
    hits: int = 1
    age: int = 1
    streak: int = 1  # consecutive matched frames

    def predicted(self, stamp: float) -> np.ndarray:
        box = self.cxcywh + self.velocity * (stamp - self.last_seen)
        box[2:] = np.maximum(box[2:], 1e-3 * np.maximum(self.cxcywh[2:], 1.0))
        return box

    def predicted_keypoints(self, stamp: float) -> np.ndarray:
        """The last observed keypoints moved with the box velocity (constant velocity)."""
        return self.keypoints + self.velocity[:2] * (stamp - self.last_seen)


def _to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    wh = boxes[..., 2:] - boxes[..., :2]
    return np.concatenate([boxes[..., :2] + 0.5 * wh, wh], axis=-1)


def _to_xyxy(cxcywh: np.ndarray) -> np.ndarray:
    half = 0.5 * cxcywh[..., 2:]
    return np.concatenate([cxcywh[..., :2] - half, cxcywh[..., :2] + half], axis=-1)


def keypoint_similarity(
    kp_a: np.ndarray,
    valid_a: np.ndarray,
    kp_b: np.ndarray,
    valid_b: np.ndarray,
    scale_b: np.ndarray,
    falloff: float,
) -> tuple[np.ndarray, np.ndarray]:
    """OKS-like similarity of keypoint sets a (M, J, 2) and b (N, J, 2) -> (M, N), and which
    pairs share at least one valid joint (M, N). The falloff distance is ``falloff * scale_b``."""
    both = valid_a[:, None, :] & valid_b[None, :, :]  # (M, N, J)
    d2 = np.square(kp_a[:, None] - kp_b[None, :]).sum(-1)
    sigma2 = np.square(falloff * scale_b)[None, :, None]
    sim = np.where(both, np.exp(-0.5 * np.where(both, d2, 0.0) / sigma2), 0.0)
    n = both.sum(-1)
    return sim.sum(-1) / np.maximum(n, 1), n > 0


class Tracker:
    """Gives each detected person a stable id across frames (see the module docstring)."""

    def __init__(self, settings: TrackerSettings | None = None, first_id: int = 1) -> None:
        """``first_id``: the first id given out (several trackers of one node count in
        disjoint ranges)."""
        self.settings = settings or TrackerSettings()
        if self.settings.iou_weight + self.settings.keypoint_weight <= 0:
            raise ValueError("iou_weight and keypoint_weight cannot both be 0")
        self._tracks: list[_Track] = []
        self._next_id = first_id
        self._last_stamp = -math.inf

    def reset(self) -> None:
        """Drop every track. Ids keep counting up, so no id is reused after a reset."""
        self._tracks.clear()
        self._last_stamp = -math.inf

    def drop(self, track_ids: list[int]) -> None:
        """Forget these tracks now (their person was re-attached to another track, see
        stages/reattach.py). Their ids are not reused."""
        gone = set(track_ids)
        self._tracks = [t for t in self._tracks if t.track_id not in gone]

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    @property
    def track_ids(self) -> list[int]:
        """Ids of the live tracks (tentative, confirmed and coasting)."""
        return [t.track_id for t in self._tracks]

    def predicted_boxes(self, stamp: float) -> dict[int, np.ndarray]:
        """Each live track's box predicted at ``stamp`` (x_min, y_min, x_max, y_max), e.g. to
        crop the 2D stage without running the detector on this frame."""
        return {t.track_id: _to_xyxy(t.predicted(stamp)) for t in self._tracks}

    # ------------------------------------------------------------------ update

    def update(
        self,
        stamp: float,
        boxes: np.ndarray,
        keypoints: np.ndarray,
        confidence: np.ndarray,
    ) -> TrackUpdate:
        """Associate one frame's detections with the tracks.

        ``boxes`` (N, 4) pixels x_min, y_min, x_max, y_max; ``keypoints`` (N, J, 2) pixels;
        ``confidence`` (N, J). Returns one assignment per tracked detection (in detection order)
        followed by one per coasting track. Detections with a non-finite box, and detections
        beyond ``max_tracks``, get no track and are not listed.
        """
        s = self.settings
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = boxes.shape[0]
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if n == 0:
            keypoints = keypoints.reshape(0, keypoints.shape[-2] if keypoints.ndim >= 2 else 0, 2)
        joints = keypoints.shape[1]
        keypoints = keypoints.reshape(n, joints, 2)
        confidence = np.asarray(confidence, dtype=np.float64).reshape(n, joints)

        result = TrackUpdate()
        if stamp < self._last_stamp:
            result.reset_reason = (
                f"time went backwards by {self._last_stamp - stamp:.3f} s: all tracks dropped"
            )
            self.reset()
        self._last_stamp = stamp

        # Coasting tracks whose grace period is over are forgotten before matching (they must not
        # be revived). A track that was matched in the previous frame is not: if no frame came
        # for a while (a stalled camera), nobody was seen to be absent.
        self._tracks = [
            t
            for t in self._tracks
            if t.state != TrackState.COASTING or stamp - t.last_seen <= s.grace_period_s
        ]

        det_ok = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0])
        det_ok &= boxes[:, 3] > boxes[:, 1]
        with np.errstate(invalid="ignore"):
            kp_valid = np.isfinite(keypoints).all(-1) & (confidence >= s.min_keypoint_confidence)
        det_boxes_c = _to_cxcywh(boxes)

        matches = self._match(stamp, boxes, det_boxes_c, keypoints, kp_valid, det_ok)

        assigned: dict[int, _Track] = {}
        for ti, di in matches:
            track = self._tracks[ti]
            dt = stamp - track.last_seen
            z = det_boxes_c[di]
            if dt <= 0:
                track.cxcywh = z.copy()
            elif track.hits == 1:  # second sighting: the first velocity measurement
                track.velocity = (z - track.cxcywh) / dt
                track.cxcywh = z.copy()
            else:  # alpha-beta filter on (cx, cy, w, h)
                pred = track.predicted(stamp)
                residual = z - pred
                track.cxcywh = pred + s.box_gain * residual
                track.velocity = track.velocity + s.velocity_gain * residual / dt
            track.keypoints = np.where(kp_valid[di][:, None], keypoints[di], np.nan)
            track.confidence = np.where(kp_valid[di], confidence[di], 0.0)
            track.last_seen = stamp
            track.hits += 1
            track.streak += 1
            track.age += 1
            if track.state == TrackState.TENTATIVE:
                if track.streak >= s.confirm_frames:
                    track.state = TrackState.CONFIRMED
            else:
                track.state = TrackState.CONFIRMED
            assigned[di] = track

        matched_tracks = {id(t) for t in assigned.values()}
        survivors = []
        for track in self._tracks:
            if id(track) in matched_tracks:
                survivors.append(track)
            elif track.state == TrackState.TENTATIVE:  # tentative + unmatched = false alarm
                continue
            elif stamp - track.last_seen <= s.grace_period_s:
                track.state = TrackState.COASTING
                track.streak = 0
                track.age += 1
                survivors.append(track)
        self._tracks = survivors

        # Births, most confident detections first, evicting the stalest coasting tracks if full.
        new = [d for d in range(n) if det_ok[d] and d not in assigned]
        mean_conf = np.where(kp_valid, confidence, 0.0).mean(-1) if joints else np.zeros(n)
        new.sort(key=lambda d: -mean_conf[d])
        for d in new:
            if len(self._tracks) >= s.max_tracks and not self._evict_coasting():
                break
            track = _Track(
                track_id=self._next_id,
                state=TrackState.CONFIRMED if s.confirm_frames <= 1 else TrackState.TENTATIVE,
                cxcywh=det_boxes_c[d].copy(),
                velocity=np.zeros(4),
                keypoints=np.where(kp_valid[d][:, None], keypoints[d], np.nan),
                confidence=np.where(kp_valid[d], confidence[d], 0.0),
                last_seen=stamp,
            )
            self._next_id += 1
            self._tracks.append(track)
            assigned[d] = track

        for d in sorted(assigned):
            result.append(self._assignment(assigned[d], d, stamp, boxes[d]))
        for track in self._tracks:
            if track.state == TrackState.COASTING:
                result.append(self._assignment(track, None, stamp, None))
        return result

    def _match(
        self,
        stamp: float,
        boxes: np.ndarray,
        det_boxes_c: np.ndarray,
        keypoints: np.ndarray,
        kp_valid: np.ndarray,
        det_ok: np.ndarray,
    ) -> list[tuple[int, int]]:
        s = self.settings
        if not self._tracks or not det_ok.any():
            return []
        pred = np.stack([t.predicted(stamp) for t in self._tracks])  # (M, 4) cxcywh
        trk_kp = np.stack([t.predicted_keypoints(stamp) for t in self._tracks])
        trk_valid = np.stack([t.confidence > 0 for t in self._tracks]) & np.isfinite(trk_kp).all(-1)
        iou = box_iou(_to_xyxy(pred), np.where(det_ok[:, None], boxes, 0.0))
        scale = np.sqrt(np.prod(np.clip(det_boxes_c[:, 2:], 1e-6, None), axis=-1))
        oks, has_kp = keypoint_similarity(
            trk_kp, trk_valid, keypoints, kp_valid, scale, s.keypoint_falloff
        )
        w_kp = np.where(has_kp, s.keypoint_weight, 0.0)
        w_sum = s.iou_weight + w_kp
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(w_sum > 0, (s.iou_weight * iou + w_kp * oks) / w_sum, 0.0)
        allowed = (sim >= s.min_similarity) & (sim > 0.0) & det_ok[None, :]
        cost = np.where(allowed, 1.0 - sim, _NO_MATCH)
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if allowed[r, c]]

    def _evict_coasting(self) -> bool:
        coasting = [t for t in self._tracks if t.state == TrackState.COASTING]
        if not coasting:
            return False
        stalest = min(coasting, key=lambda t: t.last_seen)
        self._tracks.remove(stalest)
        return True

    @staticmethod
    def _assignment(
        track: _Track, det_index: int | None, stamp: float, box: np.ndarray | None
    ) -> TrackAssignment:
        if box is None:
            box = _to_xyxy(track.predicted(stamp))
            keypoints = track.predicted_keypoints(stamp)
        else:
            box = box.copy()
            keypoints = track.keypoints.copy()
        return TrackAssignment(
            track_id=track.track_id,
            det_index=det_index,
            state=track.state,
            age=track.age,
            hits=track.hits,
            time_since_update=stamp - track.last_seen,
            box=box,
            keypoints=keypoints,
            confidence=track.confidence.copy(),
            velocity=track.velocity.copy(),
        )
