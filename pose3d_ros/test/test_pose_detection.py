"""BlazePose person detector: anchors, decoding, weighted NMS, letterbox undo and the alignment ROI
against known answers taken once from the TFLite interpreter (provenance:
known_answers/make_pose_detector_answers.py), and the built ONNX model on the same images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose3d_ros.stages import pose_detection as pd

ANSWERS = json.loads(
    (Path(__file__).parent / "known_answers" / "pose_detector_answers.json").read_text()
)["cases"]


def _angle_diff(a: float, b: float) -> float:
    return abs(pd.normalize_radians(a - b))


def test_anchor_layout_follows_the_ssd_recipe():
    a = pd.ssd_anchors()
    assert a.shape == (2254, 2)
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[1], a[0])  # 2 per cell
    assert np.allclose(a[2], [1.5 / 28, 0.5 / 28])
    assert np.allclose(a[28 * 28 * 2], [0.5 / 14, 0.5 / 14])
    last = a[-6:]  # the stride-32 map: 3 layers x 2 anchors share a cell
    assert np.allclose(last, [6.5 / 7, 6.5 / 7])
    assert not np.allclose(a[-7], last[0])


def test_letterbox_centres_the_image_and_reports_the_padding():
    img = np.full((100, 200, 3), 255, np.uint8)
    blob, pad = pd.letterbox(img)
    assert blob.shape == (1, 3, 224, 224)
    assert np.allclose(pad, [0, 56 / 224, 0, 56 / 224])
    assert blob[0, :, 0, 0].max() == -1.0 and blob[0, :, 112, 112].min() == 1.0
    box = np.array([[0.0, 56 / 224, 1.0, 168 / 224] + [0.5, 0.5] * 4])
    assert np.allclose(pd.unletterbox(box, pad)[0, :4], [0, 0, 1, 1])


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_people():
    det = np.zeros((3, 12))
    det[0, :4] = [0, 0, 10, 10]
    det[1, :4] = [1, 1, 11, 11]
    det[2, :4] = [50, 50, 60, 60]
    det[:, 4:] = np.arange(3)[:, None]
    out, scores = pd.weighted_nms(det, np.array([0.9, 0.3, 0.8]), 0.3)
    assert len(out) == 2 and np.allclose(scores, [0.9, 0.8])
    assert np.allclose(out[0, :4], [0.25, 0.25, 10.25, 10.25])  # (0.9*0 + 0.3*1) / 1.2
    assert np.allclose(out[1], det[2])


@pytest.mark.parametrize("deg", [0, 30, 90, 180, -90, 135])
def test_alignment_roi_turns_the_hip_to_scale_point_axis_upright(deg):
    """kp1 straight above kp0 is rotation 0; the person turned by +deg (image clockwise) needs
    the crop turned back by the same angle."""
    t = math.radians(deg)
    kp = np.array([[100.0, 100.0], [100 + 40 * math.sin(t), 100 - 40 * math.cos(t)]])
    roi = pd.alignment_roi(kp)
    assert (roi.cx, roi.cy) == (100.0, 100.0)
    assert roi.side == pytest.approx(2 * 40 * 1.25)
    assert _angle_diff(roi.rotation, t) < 1e-9


@pytest.mark.parametrize("case", ANSWERS, ids=lambda c: f"{c['image']}-rot{90 * c['rot90']}")
def test_decoding_of_tflite_outputs_matches_the_known_answers(case):
    """The TFLite interpreter's raw outputs (every anchor scoring >= 0.5) through the runtime's
    vectorised post-processing == the reference loops' detections."""
    raw = np.zeros((pd.NUM_ANCHORS, 12))
    logits = np.full(pd.NUM_ANCHORS, -100.0)
    for a in case["anchors_scoring"]:
        raw[a["index"]] = a["raw"]
        logits[a["index"]] = a["logit"]
    got = pd.postprocess(raw, logits, np.array(case["pad"]), tuple(case["size"]), pd.ssd_anchors())
    assert len(got) == len(case["detections"]) >= 1
    for g, want in zip(got, case["detections"], strict=True):
        assert g.score == pytest.approx(want["score"], abs=1e-9)
        assert np.allclose(g.box, want["box"], atol=1e-6)
        assert np.allclose(g.keypoints, want["keypoints"], atol=1e-6)
        r = want["roi"]
        assert (g.roi.cx, g.roi.cy, g.roi.side) == pytest.approx((r["cx"], r["cy"], r["side"]))
        assert _angle_diff(g.roi.rotation, r["rotation"]) < 1e-9


@pytest.fixture(scope="module")
def detector(model_dir):
    from pose3d_ros.assets import verify_models

    try:
        verify_models(model_dir, ("pose_detector",))
    except Exception as e:
        pytest.fail(f"pose_detector not built ({e}): run `make setup`")
    return pd.load_pose_detector(model_dir=model_dir, threads=1)


@pytest.mark.parametrize("case", ANSWERS, ids=lambda c: f"{c['image']}-rot{90 * c['rot90']}")
def test_onnx_detector_on_real_images_matches_tflite(detector, footage, case):
    """The whole runtime path (letterbox, ONNX, decoding) on the real image == TFLite's answer:
    ROI centre and side within 0.02 px, rotation within 1e-4 rad."""
    img = np.ascontiguousarray(np.rot90(cv2.imread(str(footage / case["image"])), case["rot90"]))
    got = detector.detect(img)
    assert len(got) == len(case["detections"])
    for g, want in zip(got, case["detections"], strict=True):
        r = want["roi"]
        assert g.score == pytest.approx(want["score"], abs=1e-4)
        assert np.allclose((g.roi.cx, g.roi.cy, g.roi.side), (r["cx"], r["cy"], r["side"]),
                           atol=0.02)
        assert _angle_diff(g.roi.rotation, r["rotation"]) < 1e-4


def test_rotating_the_image_rotates_the_roi(detector, footage):
    """np.rot90 (90 deg counter-clockwise) turns the ROI rotation by -90 deg (within 10 deg:
    the network sees a different image) and keeps the person's size within 25 %."""
    img = cv2.imread(str(footage / "basketball1.png"))
    up = detector.detect(img)[0].roi
    for k in (1, 2, 3):
        roi = detector.detect(np.ascontiguousarray(np.rot90(img, k)))[0].roi
        assert math.degrees(_angle_diff(roi.rotation, up.rotation - k * math.pi / 2)) < 10
        assert roi.side == pytest.approx(up.side, rel=0.25)


def test_batch_axis_is_dynamic(detector, footage):
    a, _ = pd.letterbox(cv2.imread(str(footage / "messi5.jpg")))
    b, _ = pd.letterbox(cv2.imread(str(footage / "basketball1.png")))
    raw2, lg2 = detector.run_raw(np.concatenate([a, b]))
    raw1, lg1 = detector.run_raw(b)
    assert raw2.shape == (2, 2254, 12)
    assert np.abs(raw2[1] - raw1[0]).max() < 1e-3 and np.abs(lg2[1] - lg1[0]).max() < 1e-3


def test_tiled_detection_keeps_the_whole_frame_answer_and_maps_tiles_to_the_image(
    detector, footage
):
    """With tiles the whole-frame detection comes first, unchanged; every tile detection's face
    box lies in the image (tile offsets added; the hip of a person cut by a tile edge may be
    extrapolated beyond it)."""
    img = cv2.imread(str(footage / "basketball1.png"))  # 640x480: 6 tiles of 256 + the frame
    whole = detector.detect(img)
    tiled = detector.detect(img, tile=256)
    assert len(tiled) >= len(whole)
    assert np.allclose(tiled[0].keypoints, whole[0].keypoints, atol=1e-3)
    for d in tiled:
        centre = 0.5 * (d.box[:2] + d.box[2:])
        assert (0 <= centre[0] < 640) and (0 <= centre[1] < 480), d.box
