"""Detector fusion: BlazePose ROIs and pedestrian boxes of the same person give one ROI; other
people keep theirs; the cap and the order follow the scores."""

from __future__ import annotations

import math

import numpy as np

from pose3d_ros.stages.fusion import dedupe_rois, fuse, roi_extent_boxes, same_person
from pose3d_ros.stages.pose_detection import tile_origins


def _standing(x: float, height: float = 200.0, top: float = 50.0):
    """A standing person: pedestrian box and the BlazePose ROI the detector would give."""
    box = np.array([x - height / 4, top, x + height / 4, top + height])
    hip = np.array([x, top + 0.55 * height])
    roi = np.array([hip[0], hip[1], 1.25 * height * 1.05, 0.0])
    return box, roi


def test_overlapping_detections_of_one_person_give_one_roi():
    box, roi = _standing(200.0)
    rois, scores, source = fuse(roi[None], [0.7], box[None], [0.9], 1.25, 10)
    assert len(rois) == 1 and source.tolist() == [0]
    assert np.allclose(rois[0], roi)  # the rotated BlazePose ROI is kept
    assert scores[0] == 0.9  # with the better score


def test_people_side_by_side_stay_apart():
    box_a, roi_a = _standing(150.0)
    box_b, _ = _standing(330.0)
    rois, scores, source = fuse(
        roi_a[None], [0.8], np.stack([box_a, box_b]), [0.6, 0.95], 1.25, 10
    )
    assert len(rois) == 2
    assert source.tolist() == [1, 0] and np.allclose(scores, [0.95, 0.8])
    assert np.allclose(rois[0], [330.0, 150.0, 1.25 * 200.0, 0.0])  # box -> upright ROI


def test_a_lying_person_matches_the_box_around_them():
    box = np.array([100.0, 300.0, 320.0, 370.0])  # wide and low
    roi = np.array([200.0, 335.0, 1.25 * 220.0, math.pi / 2])
    assert same_person(box[None], roi[None]).tolist() == [[True]]
    rois, _, _ = fuse(roi[None], [0.9], box[None], [0.5], 1.25, 10)
    assert len(rois) == 1 and rois[0, 3] == math.pi / 2


def test_a_child_in_front_of_an_adult_is_another_person():
    box_small = np.array([180.0, 200.0, 220.0, 260.0])  # 60 px tall, centred on the adult's hip
    _, roi = _standing(200.0)  # a 200 px adult
    assert not same_person(box_small[None], roi[None], size_ratio=2.0).any()


def test_cap_and_empty_inputs():
    boxes = np.stack([_standing(x)[0] for x in (100.0, 300.0, 500.0)])
    rois, scores, _ = fuse(np.zeros((0, 4)), [], boxes, [0.5, 0.9, 0.7], 1.25, 2)
    assert np.allclose(scores, [0.9, 0.7]) and len(rois) == 2
    rois, scores, source = fuse(np.zeros((0, 4)), [], np.zeros((0, 4)), [], 1.25, 5)
    assert rois.shape == (0, 4) and scores.shape == (0,) and source.shape == (0,)


def test_roi_extent_box_is_the_person_not_the_margin():
    b = roi_extent_boxes(np.array([[100.0, 100.0, 125.0, 0.0]]))
    assert np.allclose(b, [[50, 50, 150, 150]])


def test_the_same_person_from_overlapping_tiles_is_kept_once():
    rois = np.array(
        [
            [200.0, 150.0, 250.0, 0.0],  # a person seen by the whole frame
            [204.0, 147.0, 240.0, 0.05],  # the same person from a tile, a lower score
            [420.0, 150.0, 250.0, 0.0],  # a neighbour
            [202.0, 150.0, 60.0, 0.0],  # a small person in front of the first (size differs)
        ]
    )
    keep = dedupe_rois(rois, np.array([0.9, 0.8, 0.7, 0.6]))
    assert keep.tolist() == [0, 2, 3]


def test_tiles_cover_the_frame_at_half_tile_stride():
    origins = tile_origins(768, 576, 384)
    assert origins == [(0, 0), (192, 0), (384, 0), (0, 192), (192, 192), (384, 192)]
    assert tile_origins(700, 300, 384) == [(0, 0), (192, 0), (316, 0)]
    assert tile_origins(300, 200, 384) == [(0, 0)]
