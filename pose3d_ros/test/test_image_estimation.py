"""The end-to-end image model's runtime (stages/image_estimation.py) against the E2E contract,
with hand-built ONNX models run by the real ONNX Runtime backend (test/e2e_models.py).

Known answers: what pixel of a synthetic image each crop pixel must show (from the contract's
words -- ROI centre at the crop's middle, crop x along (cos a, sin a), y along (-sin a, cos a),
side / S image pixels per crop pixel -- not from roi_transforms), the exact normalised values
of its colours, a fixed crop-axes pose turned back into camera axes by hand, and a pose whose
projection is the 2D keypoints placed where it was put.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from e2e_models import constant_pose_model
from known_poses import SKELETON_H36M17

from pose3d_ros.backends import Backend, BackendError, load_backend
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.stages.crops import crop_to_camera_axes
from pose3d_ros.stages.image_estimation import E2EEstimator, E2ESettings, crop_angles
from pose3d_ros.stages.placement import PlacementSettings, place_person

SIZE = 32  # the test models' crop side (the metadata says so; the shipped default is 128)
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
BACKGROUND_BGR = (40, 90, 160)
SQUARE_BGR = (255, 0, 0)  # pure blue


def normalised(bgr) -> np.ndarray:
    """The contract's model input for one BGR colour: RGB, (v / 255 - mean) / std."""
    return (np.array(bgr[::-1], float) / 255.0 - MEAN) / STD


class Recording(Backend):
    """A real backend that keeps a copy of every feed (what the model was given)."""

    name = "recording"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self._inputs, self._outputs, self._metadata = inner.inputs, inner.outputs, inner.metadata
        self.feeds: list[np.ndarray] = []

    def run(self, feeds):
        self.feeds.append(feeds["image"].copy())
        return self.inner.run(feeds)


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    return constant_pose_model(tmp_path_factory.mktemp("e2e") / "constant.onnx", SKELETON_H36M17)


def estimator(path, **settings) -> tuple[E2EEstimator, Recording]:
    backend = Recording(load_backend(path, "onnxruntime"))
    return E2EEstimator(backend, E2ESettings(**settings)), backend


def person_in_box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """17 joints (pixels) whose box is exactly (x0, y0)-(x1, y1)."""
    rng = np.random.default_rng(7)
    pts = np.column_stack([rng.uniform(x0, x1, 17), rng.uniform(y0, y1, 17)])
    pts[0], pts[1] = (x0, y0), (x1, y1)
    return pts


# -- 1. the crop ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "angle", "square_centre"),
    [
        ((110, 60, 190, 160), 0.0, (150, 110)),  # upright, square on the ROI centre
        ((110, 60, 190, 160), 0.0, (150, 80)),  # above the centre
        ((110, 60, 190, 160), math.pi / 2, (190, 110)),  # lying, head right: square at the head
        ((110, 60, 190, 160), -0.6, (135, 95)),
        ((-30, 20, 50, 120), 0.0, (30, 70)),  # at the left border: part of the crop off the image
    ],
)
def test_the_crop_shows_the_image_where_the_contract_says(
    constant_model, box, angle, square_centre
):
    image = np.empty((240, 320, 3), np.uint8)
    image[:] = BACKGROUND_BGR
    sx, sy = square_centre
    image[sy - 20 : sy + 21, sx - 20 : sx + 21] = SQUARE_BGR  # pixels sx-20 .. sx+20
    est, rec = estimator(constant_model)
    points = person_in_box(*box)
    out = est.estimate(image, points[None], np.ones((1, 17)), np.array([angle]))
    assert out.valid.tolist() == [True], out.skipped
    (fed,) = rec.feeds
    assert fed.shape == (1, 3, SIZE, SIZE) and fed.dtype == np.float32

    # The ROI by the contract's words: centre of the box, side 1.4 x its longer side.
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = 1.4 * max(box[2] - box[0], box[3] - box[1])
    np.testing.assert_allclose(out.rois[0], [cx, cy, side, angle], atol=1e-9)
    k = side / SIZE  # image pixels per crop pixel
    u, v = np.meshgrid(np.arange(SIZE) - (SIZE - 1) / 2, np.arange(SIZE) - (SIZE - 1) / 2)
    c, s = math.cos(angle), math.sin(angle)
    x = cx + k * (u * c - v * s)  # the image point each crop pixel samples
    y = cy + k * (u * s + v * c)
    # Bilinear sampling mixes the 2 x 2 pixels around a point: a crop pixel is pure when all
    # four share a colour. Mixed pixels (near an edge) are not checked.
    h, w = image.shape[:2]
    off = (x > w - 0.5 + 1) | (x < -1.5) | (y > h - 0.5 + 1) | (y < -1.5)
    inside = (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1)
    dist = np.maximum(abs(x - sx), abs(y - sy))
    square = inside & (dist <= 19.5)
    background = inside & (dist >= 21.5)
    expected = {
        "square": (square, normalised(SQUARE_BGR)),
        "background": (background, normalised(BACKGROUND_BGR)),
        "off the image (0)": (off, normalised((0, 0, 0))),
    }
    for what, (mask, value) in expected.items():
        if what.startswith("off") and box[0] >= 0:
            assert not mask.any()
            continue
        assert mask.sum() >= 20, what  # each case has enough pixels of each kind to mean something
        got = fed[0].transpose(1, 2, 0)[mask]
        np.testing.assert_allclose(got, np.broadcast_to(value, got.shape), atol=1e-5, err_msg=what)


def test_crop_angles_of_the_2d_stage_crops():
    """crop_angles reads the angle back from crop -> image maps (2D stage's Keypoints2D.crops):
    crop x along (cos a, sin a), scaled by side / S."""
    angles = np.array([0.0, 0.4, math.pi / 2, -2.5])
    scale = 3.0
    maps = np.zeros((4, 2, 3))
    maps[:, 0, 0], maps[:, 1, 0] = scale * np.cos(angles), scale * np.sin(angles)
    maps[:, 0, 1], maps[:, 1, 1] = -scale * np.sin(angles), scale * np.cos(angles)
    np.testing.assert_allclose(crop_angles(maps), angles, atol=1e-12)


# -- 2. crop axes back to camera axes ------------------------------------------------------------


def test_a_fixed_crop_pose_comes_back_in_camera_axes(constant_model):
    """The model says SKELETON in crop axes for every crop; the result is that pose turned by
    each crop's angle: unchanged upright, (x, y) -> (-y, x) at +90 deg (crop x is image down,
    crop y is image left), (x, y) -> (-x, -y) upside down; z never changes."""
    est, rec = estimator(constant_model)
    angles = np.array([0.0, math.pi / 2, math.pi, -0.7])
    points = np.stack([person_in_box(100, 50, 180, 150)] * 4)
    out = est.estimate(np.zeros((240, 320, 3), np.uint8), points, np.ones((4, 17)), angles)
    assert out.valid.all() and len(rec.feeds) == 1  # one inference for everyone
    p = SKELETON_H36M17
    np.testing.assert_allclose(out.joints[0], p, atol=1e-6)
    x, y, z = p.T
    np.testing.assert_allclose(out.joints[1], np.column_stack([-y, x, z]), atol=1e-6)
    np.testing.assert_allclose(out.joints[2], np.column_stack([-x, -y, z]), atol=1e-6)
    np.testing.assert_allclose(out.joints[3], crop_to_camera_axes(p, -0.7), atol=1e-6)
    assert (out.joints[:, 0] == 0).all()  # pelvis exactly at the origin
    np.testing.assert_allclose(out.confidence, 0.9, atol=1e-6)


def test_a_batch_1_model_runs_once_per_person(tmp_path):
    model = constant_pose_model(tmp_path / "b1.onnx", SKELETON_H36M17, batch=1)
    est, rec = estimator(model)
    points = np.stack([person_in_box(100, 50, 180, 150), person_in_box(10, 20, 60, 90)])
    out = est.estimate(np.zeros((240, 320, 3), np.uint8), points, np.ones((2, 17)))
    assert out.valid.all() and [f.shape[0] for f in rec.feeds] == [1, 1]
    np.testing.assert_allclose(out.joints, np.stack([SKELETON_H36M17] * 2), atol=1e-6)


# -- 3. placement, as for the lifters ------------------------------------------------------------


def test_placement_puts_the_image_models_pose_where_its_projection_is(constant_model):
    """The 2D keypoints are the projection of SKELETON standing at t; the model returns
    SKELETON (root-relative, upright crop): the size-prior placement finds t."""
    camera = CameraModel.from_fov(640, 480, 60.0)
    t = np.array([0.3, 0.2, 4.0])
    pixels = camera.project(SKELETON_H36M17 + t)
    conf = np.ones((1, 17))
    est, _ = estimator(constant_model)
    out = est.estimate(np.zeros((480, 640, 3), np.uint8), pixels[None], conf, np.zeros(1))
    norm = camera.undistort_pixels(pixels[None])[0]
    placed = place_person(
        out.joints[0], norm, conf[0], (camera.fx, camera.fy), PlacementSettings(), None
    )
    assert placed.ok, placed.reason
    np.testing.assert_allclose(placed.root, t, atol=1e-6)


# -- 4. people the model cannot be run on ----------------------------------------------------------


def test_bad_people_are_skipped_with_a_reason_and_the_rest_still_run(constant_model):
    est, rec = estimator(constant_model)
    good = person_in_box(100, 50, 180, 150)
    nan = good.copy()
    nan[3] = np.nan
    spot = np.full((17, 2), 120.0)  # every joint on one pixel: a box of zero size
    off = person_in_box(2000, 2000, 2080, 2100)  # nowhere near the 320 x 240 image
    few = good.copy()
    points = np.stack([good, nan, spot, off, few, good])
    conf = np.ones((6, 17))
    conf[4, 5:] = 0.0  # five joints seen, min_joints 6
    out = est.estimate(np.zeros((240, 320, 3), np.uint8), points, conf)
    assert out.valid.tolist() == [True, False, False, False, False, True]
    kinds = {s.index: s.kind for s in out.skipped}
    assert kinds == {
        1: "non-finite 2D keypoints",
        2: "zero-size person box",
        3: "crop off the image",
        4: "too few joints for a crop",
    }
    assert rec.feeds[0].shape[0] == 2  # only the good people went through the model
    assert np.isnan(out.joints[~out.valid]).all() and (out.confidence[~out.valid] == 0).all()
    np.testing.assert_allclose(out.joints[[0, 5]], np.stack([SKELETON_H36M17] * 2), atol=1e-6)
    text = next(s for s in out.skipped if s.index == 3).text("track 7")
    assert text.startswith("e2e crop off the image: track 7 skipped (0.0 % inside")
    # Nobody left: no inference at all.
    out = est.estimate(np.zeros((240, 320, 3), np.uint8), np.stack([spot]), np.ones((1, 17)))
    assert not out.valid.any() and len(rec.feeds) == 1


def test_the_crop_box_holds_every_placed_joint_seen_or_not(constant_model):
    """The box is of all 17 joints the 2D stage placed, as the training renders' box is: an
    unseen joint (confidence 0, e.g. an occluded foot BlazePose still places) widens it, a joint
    without coordinates (NaN) does not; a person needs min_joints seen joints."""
    est, _ = estimator(constant_model)
    points = person_in_box(100, 50, 180, 150)
    points[15] = (200.0, 170.0)  # unseen, placed below and right of the seen ones
    points[16] = (np.nan, np.nan)  # unseen, not placed
    conf = np.ones(17)
    conf[15:] = 0.0
    out = est.estimate(np.zeros((240, 320, 3), np.uint8), points[None], conf[None])
    assert out.valid.all(), out.skipped
    np.testing.assert_allclose(out.rois[0], [150.0, 110.0, 1.4 * 120, 0.0])  # (100,50)-(200,170)
    conf[:12] = 0.0  # 3 seen: too few for min_joints 6
    out = est.estimate(np.zeros((240, 320, 3), np.uint8), points[None], conf[None])
    assert [s.kind for s in out.skipped] == ["too few joints for a crop"]


# -- 5. the metadata is the contract ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"kind": None}, "not an end-to-end image model (metadata kind None"),
        ({"kind": "lifter", "frames": "1"}, "a 2D->3D lifter goes in pipeline.lifter.model"),
        ({"joint_set": "coco17"}, "metadata joint_set is 'coco17', the runtime takes 'h36m17'"),
        ({"input_size": "large"}, "input_size / crop_scale missing or not a number"),
        ({"crop_scale": None}, "input_size / crop_scale missing or not a number"),
        ({"crop_scale": "7"}, "metadata crop_scale 7.0 is outside 1.0..3.0"),
        ({"input_size": "64"}, "metadata input_size 64 means (B, 3, 64, 64)"),
        ({"mean": "0.5,0.5,0.5"}, "metadata mean is '0.5,0.5,0.5', the contract's is 0.485"),
        ({"std": "0.229,0.224"}, "metadata std is '0.229,0.224', the contract's is 0.229"),
    ],
)
def test_a_model_off_the_contract_is_refused_in_one_line(tmp_path, metadata, words):
    model = constant_pose_model(tmp_path / "bad.onnx", SKELETON_H36M17, metadata=metadata)
    with pytest.raises(BackendError) as err:
        E2EEstimator(load_backend(model, "onnxruntime"))
    text = str(err.value)
    assert "\n" not in text and words in text, text
    assert "pose3d-tools export" in text or "pipeline.lifter.model" in text
