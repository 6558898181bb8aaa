"""Tests for the demo/debug drawings: labels never cover each other, hidden people get no box."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.visualization import draw_poses_2d, place_labels


def _rects(corners, sizes):
    return [(x, y, w, h) for (x, y), (w, h) in zip(corners, sizes, strict=True)]


def _overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("spread", [0.0, 5.0, 30.0])
def test_labels_of_people_close_together_do_not_overlap(spread: float) -> None:
    """Six people whose boxes start within `spread` px of each other (a group, a crossing)."""
    rng = np.random.default_rng(int(spread))
    boxes = [
        np.array([300 + rng.uniform(0, spread), 200 + rng.uniform(0, spread), 340, 300])
        for _ in range(6)
    ]
    sizes = [(70, 16)] * 6
    rects = _rects(place_labels(boxes, sizes, (640, 480)), sizes)
    for a, b in itertools.combinations(rects, 2):
        assert not _overlaps(a, b), (a, b)
    for x, y, w, h in rects:
        assert 0 <= x and x + w <= 640 and 0 <= y and y + h <= 480


def test_a_label_goes_above_its_box_and_stays_in_the_image() -> None:
    sizes = [(60, 14), (60, 14)]
    corners = place_labels(
        [np.array([100, 200, 150, 300]), np.array([-20, 2, 40, 90])], sizes, (640, 480)
    )
    assert corners[0] == (100, 186)  # free spot: just above the box
    assert corners[1] == (0, 0)  # clamped into the image


def _person(state: TrackState, observed: bool) -> PersonPose:
    kp = np.tile([[160.0, 150.0]], (17, 1)) + np.linspace(0, 60, 17)[:, None] * [0.2, 1.0]
    return PersonPose(
        track_id=3,
        joint_set="h36m17",
        keypoints_2d=kp if observed else np.full((17, 2), np.nan),
        confidence=np.full(17, 0.9 if observed else 0.0),
        observed=np.full(17, observed),
        joints_3d=np.full((17, 3), np.nan),
        bbox=np.array([100.0, 100.0, 220.0, 260.0]),
        state=state,
    )


def test_a_coasting_person_is_not_drawn_as_an_empty_box() -> None:
    image = np.zeros((320, 320, 3), np.uint8)
    seen = draw_poses_2d(image, [_person(TrackState.CONFIRMED, True)])
    hidden = draw_poses_2d(image, [_person(TrackState.COASTING, False)])
    # The box's bottom edge and its left edge below the label area.
    edges = (slice(259, 261), slice(100, 221)), (slice(150, 260), slice(99, 101))
    assert any(seen[e].any() for e in edges)  # a seen person has a box
    assert not any(hidden[e].any() for e in edges)  # a hidden one has none...
    assert hidden.any()  # ...but still its (bracketed) id
