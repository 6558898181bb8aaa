"""Tests for re-attachment (stages/reattach.py) and torso appearance (stages/appearance.py):
synthetic scenes with metric roots, a pinhole camera and painted clothes, run through the real
Tracker and Reattacher as the pipeline chains them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from known_poses import STANDING_2D

from pose3d_ros.core.parameters import build_settings
from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.stages.appearance import HIST_SIZE, HSV_BINS, bhattacharyya, torso_histograms
from pose3d_ros.stages.reattach import Reattacher, ReattachSettings
from pose3d_ros.stages.tracking import Tracker, TrackerSettings

RATE = 30.0
F, CX, CY = 500.0, 320.0, 240.0  # pinhole camera, pixels
HEIGHT_M = 1.7
# Standing Human3.6M-17 pose in metres, pelvis at the origin, x right / y down.
POSE_M = STANDING_2D * HEIGHT_M
RED, BLUE, GREEN = (30, 30, 200), (200, 60, 20), (40, 180, 40)  # BGR shirts


@dataclass
class Walker:
    """A person walking at constant velocity on the floor plane (camera frame, metres)."""

    start: tuple[float, float, float]  # pelvis at t = 0
    velocity: tuple[float, float, float]  # m/s
    shirt: tuple[int, int, int]  # BGR

    def root(self, t: float) -> np.ndarray:
        return np.array(self.start) + np.array(self.velocity) * t

    def keypoints(self, t: float) -> np.ndarray:
        r = self.root(t)
        return F * (r[:2] + POSE_M) / r[2] + [CX, CY]


def render(people: list[tuple[Walker, float]]) -> np.ndarray:
    """A grey image with each person's torso painted in their shirt, far people first."""
    image = np.full((480, 640, 3), 128, np.uint8)
    for walker, t in sorted(people, key=lambda p: -p[0].root(p[1])[2]):
        kp = walker.keypoints(t)
        torso = np.round(kp[[11, 14, 1, 4]]).astype(np.int32)
        lo, hi = kp.min(0).astype(int), kp.max(0).astype(int)
        cv2.rectangle(image, tuple(lo), tuple(hi), (90, 90, 90), -1)  # trousers, arms
        cv2.fillConvexPoly(image, torso, walker.shirt)
    return image


def run(
    scene: list[tuple[Walker, float, float]],
    frames: int,
    tracker_settings: TrackerSettings,
    reattach: bool = True,
) -> list[dict[int, int]]:
    """Chain Tracker and Reattacher over a scene like the pipeline does. ``scene`` holds
    (walker, hidden_from_s, hidden_until_s); returns per frame {walker index: published id}
    for the walkers seen in that frame, and checks ids are unique in every frame."""
    tracker = Tracker(tracker_settings)
    reattacher = Reattacher(build_settings(ReattachSettings, {"enabled": reattach}))
    out = []
    for k in range(frames):
        t = k / RATE
        visible = [i for i, (_, a, b) in enumerate(scene) if not a <= t < b]
        image = render([(scene[i][0], t) for i in visible])
        kps = np.array([scene[i][0].keypoints(t) for i in visible]).reshape(-1, 17, 2)
        conf = np.full(kps.shape[:2], 0.9)
        lo, hi = kps.min(1) - 5, kps.max(1) + 5
        boxes = np.concatenate([lo, hi], axis=1)
        update = tracker.update(t, boxes, kps, conf)
        hists = torso_histograms(image, kps, conf)
        poses, by_track = [], {}
        for a in update:
            if a.det_index is None:
                poses.append(_pose(a.track_id, a.state, np.full(3, np.nan), a.box, None))
                continue
            walker = scene[visible[a.det_index]][0]
            poses.append(_pose(a.track_id, a.state, walker.root(t), a.box, walker.velocity))
            by_track[a.track_id] = hists[a.det_index]
        result = reattacher.update(t, poses, by_track, tracker.track_ids)
        tracker.drop(result.dropped)
        ids = [p.track_id for p in result.poses]
        assert len(ids) == len(set(ids)), (k, ids)
        track_to_det = {a.track_id: a.det_index for a in update}
        published = {}
        for before, after in zip(
            [p for p in poses if p.track_id not in result.dropped], result.poses, strict=True
        ):
            det = track_to_det[before.track_id]
            if det is not None:
                published[visible[det]] = after.track_id
        out.append(published)
    return out


def _pose(track_id, state, root, box, velocity) -> PersonPose:
    return PersonPose(
        track_id=track_id,
        joint_set="h36m17",
        keypoints_2d=np.full((17, 2), np.nan),
        confidence=np.zeros(17),
        observed=np.zeros(17, bool) if velocity is None else np.ones(17, bool),
        joints_3d=np.full((17, 3), np.nan),
        root=root,
        root_covariance=0.02**2 * np.eye(3),
        root_velocity=np.zeros(3) if velocity is None else np.array(velocity),
        bbox=box,
        state=state,
    )


def confirmed_ids(frames: list[dict[int, int]], person: int) -> set[int]:
    """Ids a person was published under from their third frame on (tentative ids excluded)."""
    seen = [f[person] for f in frames if person in f]
    return set(seen[3:])


# A short grace period, so the 2D tracker alone loses the hidden person (what happens in crowds
# when the predicted box drifts away); re-attachment has to bring the id back.
SHORT_GRACE = build_settings(TrackerSettings, {"grace_period_s": 0.1})


def crossing() -> list[tuple[Walker, float, float]]:
    """Red walks right in front (5 m), blue walks left behind (6.5 m); they cross at about
    t = 1.5 s and blue, hidden behind red, is missed from 1.2 s to 2.0 s (24 frames), until
    its torso is clear of red's box again."""
    red = Walker((-1.8, 0.0, 5.0), (1.2, 0.0, 0.0), RED)
    blue = Walker((2.3, 0.0, 6.5), (-1.2, 0.0, 0.0), BLUE)
    return [(red, 99.0, 99.0), (blue, 1.2, 2.0)]


def test_two_people_crossing_keep_their_ids_while_one_is_missed() -> None:
    frames = run(crossing(), 90, SHORT_GRACE)
    red, blue = confirmed_ids(frames, 0), confirmed_ids(frames, 1)
    assert len(red) == 1 and len(blue) == 1, (red, blue)
    assert red != blue
    assert all(1 in f for f in frames[: int(1.2 * RATE)] + frames[int(2.0 * RATE) :])


def test_without_reattachment_the_missed_person_gets_a_new_id() -> None:
    """The scene above really defeats the 2D tracker, so the test above measures something."""
    frames = run(crossing(), 90, SHORT_GRACE, reattach=False)
    assert len(confirmed_ids(frames, 1)) == 2
    assert len(confirmed_ids(frames, 0)) == 1


@pytest.mark.parametrize(
    ("shirt", "same_id"), [(RED, True), (GREEN, False), (BLUE, False)], ids=["red", "green", "blue"]
)
def test_a_differently_dressed_person_where_someone_vanished_gets_a_new_id(shirt, same_id) -> None:
    """Red walks and vanishes at 1 s; at 1.5 s someone appears exactly where red would be. Only
    a red shirt makes it red."""
    red = Walker((-1.5, 0.0, 5.0), (1.0, 0.0, 0.0), RED)
    newcomer = Walker((-1.5, 0.0, 5.0), (1.0, 0.0, 0.0), shirt)
    frames = run([(red, 1.0, 99.0), (newcomer, 0.0, 1.5)], 75, SHORT_GRACE)
    (old,) = confirmed_ids(frames, 0)
    (new,) = confirmed_ids(frames, 1)
    assert (new == old) == same_id, (old, new)


def test_the_same_shirt_far_from_the_prediction_gets_a_new_id() -> None:
    """Position must agree too: red vanishes at x = -0.5 m walking right; a red shirt appears
    0.5 s later 3 m to the left, against the motion."""
    red = Walker((-1.5, 0.0, 5.0), (1.0, 0.0, 0.0), RED)
    other = Walker((-4.0, 0.0, 5.0), (0.0, 0.0, 0.0), RED)
    frames = run([(red, 1.0, 99.0), (other, 0.0, 1.5)], 75, SHORT_GRACE)
    assert confirmed_ids(frames, 0).isdisjoint(confirmed_ids(frames, 1))


def test_a_coasting_track_hands_over_its_id_and_ends() -> None:
    """With the default grace period the old track still coasts when the person comes back on
    a new track (born off the predicted box): the new track takes the id, the coasting one ends,
    and no frame shows the id twice (checked in run)."""
    red = Walker((-1.5, 0.0, 5.0), (1.0, 0.0, 0.0), RED)
    # Back after 0.4 s, 0.6 m (60 px) further than constant velocity predicts: no box overlap.
    back = Walker((-0.9, 0.0, 5.0), (1.0, 0.0, 0.0), RED)
    frames = run([(red, 0.6, 99.0), (back, 0.0, 1.0)], 60, TrackerSettings())
    assert confirmed_ids(frames, 0) == confirmed_ids(frames, 1)
    plain = run([(red, 0.6, 99.0), (back, 0.0, 1.0)], 60, TrackerSettings(), reattach=False)
    assert confirmed_ids(plain, 0) != confirmed_ids(plain, 1)


def test_lost_people_are_forgotten_after_max_gap_and_memory_is_bounded() -> None:
    settings = build_settings(ReattachSettings, {"max_gap_s": 1.0, "max_people": 3})
    reattacher = Reattacher(settings)
    hist = np.full(HIST_SIZE, 1.0 / HIST_SIZE)
    for k in range(6):  # six people seen once each at t = 0 (confirmed), then all gone
        pose = _pose(k + 1, TrackState.CONFIRMED, np.array([k, 0.0, 5.0]), np.zeros(4), (0, 0, 0))
        reattacher.update(0.0, [pose], {k + 1: hist}, [k + 1])
    reattacher.update(0.5, [], {}, [])
    assert reattacher.remembered == 3  # the bound
    reattacher.update(1.5, [], {}, [])
    assert reattacher.remembered == 0  # lost longer than max_gap_s
    late = _pose(7, TrackState.TENTATIVE, np.array([5.0, 0.0, 5.0]), np.zeros(4), (0, 0, 0))
    assert reattacher.update(1.6, [late], {7: hist}, [7]).poses[0].track_id == 7


# ---------------------------------------------------------------------------- appearance


def test_torso_histogram_of_one_colour_is_one_bin() -> None:
    walker = Walker((0.0, 0.0, 4.0), (0.0, 0.0, 0.0), RED)
    image = render([(walker, 0.0)])
    kp = walker.keypoints(0.0)[None]
    (hist,) = torso_histograms(image, kp, np.ones((1, 17)))
    h, s, v = (int(c) for c in cv2.cvtColor(np.uint8([[RED]]), cv2.COLOR_BGR2HSV)[0, 0])
    expected = (h * HSV_BINS[0] // 180, s * HSV_BINS[1] // 256, v * HSV_BINS[2] // 256)
    assert hist.sum() == pytest.approx(1.0)
    assert hist.reshape(HSV_BINS)[expected] == pytest.approx(1.0)  # shrunk torso: shirt only


def test_torso_histogram_is_nan_without_a_torso() -> None:
    walker = Walker((0.0, 0.0, 4.0), (0.0, 0.0, 0.0), RED)
    image = render([(walker, 0.0)])
    kp = np.stack([walker.keypoints(0.0)] * 3)
    conf = np.ones((3, 17))
    conf[1, 14] = 0.0  # right shoulder missing
    kp[2] += 2000.0  # outside the image
    hists = torso_histograms(image, kp, conf)
    assert np.isfinite(hists[0]).all()
    assert np.isnan(hists[1:]).all()


def test_bhattacharyya_matches_opencv() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((2, HIST_SIZE)).astype(np.float32)
    b = rng.random((3, HIST_SIZE)).astype(np.float32)
    a /= a.sum(1, keepdims=True)
    b /= b.sum(1, keepdims=True)
    ours = bhattacharyya(a, b)
    for i in range(2):
        for j in range(3):
            ref = cv2.compareHist(a[i], b[j], cv2.HISTCMP_BHATTACHARYYA)
            assert ours[i, j] == pytest.approx(ref, abs=1e-5)
    assert bhattacharyya(a[0], a[0])[0, 0] == pytest.approx(0.0, abs=1e-6)
    disjoint = np.zeros((2, HIST_SIZE))
    disjoint[0, 0] = disjoint[1, 1] = 1.0
    assert bhattacharyya(disjoint[0], disjoint[1])[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(("back_at_x", "same_id"), [(1.0, True), (-4.0, False)])
def test_depth_jitter_does_not_throw_the_prediction(back_at_x: float, same_id: bool) -> None:
    """A walker at 12 m, 1 m/s to the right, whose placed depth jumps +-0.8 m every frame (a
    frame-to-frame velocity of 16 m/s in depth), hidden 2 s from x = -1 m: back where walking
    predicts (x = 1 m) it is them; 5 m behind, against the motion, it is not."""
    reattacher = Reattacher()
    hist = np.full(HIST_SIZE, 1.0 / HIST_SIZE)
    for k in range(30):
        t = k / 10
        root = np.array([-4.0 + t, 0.0, 12.0 + 0.8 * (-1) ** k])
        pose = _pose(1, TrackState.CONFIRMED, root, np.zeros(4), (0, 0, 0))
        reattacher.update(t, [pose], {1: hist}, [1])
    back = _pose(2, TrackState.TENTATIVE, np.array([back_at_x, 0.0, 12.0]), np.zeros(4), (0, 0, 0))
    result = reattacher.update(4.9, [back], {2: hist}, [2])
    assert (result.poses[0].track_id == 1) == same_id
