"""Rotated ROIs: crops at any angle map landmarks back exactly, a tilted person comes out upright,
and far-from-upright crops are retried upright (the higher presence wins)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pose3d_ros.backends.base import TensorSpec
from pose3d_ros.stages import pose_detection as pd
from pose3d_ros.stages.crops import (
    camera_to_crop_axes,
    crop_to_camera_axes,
    far_from_upright,
    roi_bounding_boxes,
    roi_transforms,
    rois_from_alignment_points,
    rois_from_boxes,
)
from pose3d_ros.stages.keypoints2d import (
    NUM_LANDMARKS,
    KeypointEstimator,
    KeypointSettings,
    crop_transforms,
    landmarks_to_image,
)

SIZE = 256


def _blob_image(points: np.ndarray, shape=(480, 640), sigma=3.0) -> np.ndarray:
    """Gaussian blobs sampled at pixel centres around each (x, y); channel k holds blob k."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    img = np.zeros((*shape, 3), np.uint8)
    for k, (x, y) in enumerate(points):
        g = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))
        img[..., k] = np.round(255 * g).astype(np.uint8)
    return img


def _centroids_in_crop(crop: np.ndarray) -> np.ndarray:
    """Per channel, the intensity centroid in the model's convention (from the crop's corner)."""
    ys, xs = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
    out = []
    for k in range(crop.shape[2]):
        w = crop[..., k].astype(np.float64)
        out.append([(w * xs).sum() / w.sum() + 0.5, (w * ys).sum() / w.sum() + 0.5])
    return np.array(out)


HIP = np.array([320.0, 240.0])


def _person(angle: float, length: float = 60.0) -> np.ndarray:
    """Hip, head (along the person's 'up' (sin a, -cos a)) and a hand to the person's right."""
    up = np.array([math.sin(angle), -math.cos(angle)])
    right = np.array([math.cos(angle), math.sin(angle)])
    return np.stack([HIP, HIP + length * up, HIP + 0.5 * length * right])


@pytest.mark.parametrize("deg", [0, 90, 180, 270, 17, -123, 201.5])
def test_rotated_crop_round_trip_and_upright_person(deg):
    a = math.radians(deg)
    pts = _person(a)
    img = _blob_image(pts)
    roi = rois_from_alignment_points(pts[:1], pts[1:2], scale=1.25)
    assert abs(pd.normalize_radians(roi[0, 3] - a)) < 1e-9
    assert roi[0, 2] == pytest.approx(2 * 60 * 1.25)
    M = roi_transforms(roi, SIZE)
    crop = cv2.warpAffine(img, M[0], (SIZE, SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    found = _centroids_in_crop(crop)
    back = landmarks_to_image(M, found[None])[0]
    assert np.abs(back - pts).max() < 0.05, np.abs(back - pts).max()
    hip, head, hand = found
    assert head[1] < hip[1] - 50 and abs(head[0] - hip[0]) < 0.1  # upright in the crop
    assert hand[0] > hip[0] + 25 and abs(hand[1] - hip[1]) < 0.1


def test_alignment_points_give_the_detector_roi():
    kp = np.array([[210.0, 300.0], [260.0, 180.0]])
    roi = pd.alignment_roi(kp)
    got = rois_from_alignment_points(kp[:1], kp[1:])[0]
    assert np.allclose(got, [roi.cx, roi.cy, roi.side, roi.rotation])


def test_box_rois_reproduce_the_box_crops():
    boxes = np.array([[10.0, 20.0, 110.0, 220.0], [300.0, 50.0, 340.0, 90.0]])
    angles = np.array([0.3, -2.0])
    rois = rois_from_boxes(boxes, 1.25, angles)
    assert np.allclose(rois[0], [60, 120, 250, 0.3])
    assert np.allclose(roi_transforms(rois, SIZE), crop_transforms(boxes, angles, 1.25, SIZE))


def test_bounding_boxes_of_rotated_squares():
    rois = np.array([[100.0, 100.0, 20.0, 0.0], [100.0, 100.0, 20.0, math.pi / 4]])
    b = roi_bounding_boxes(rois)
    assert np.allclose(b[0], [90, 90, 110, 110])
    h = 10 * math.sqrt(2)
    assert np.allclose(b[1], [100 - h, 100 - h, 100 + h, 100 + h])
    far = far_from_upright(np.array([[0, 0, 1, 0.1], [0, 0, 1, 3.0], [0, 0, 1, -2.5]]), 2.0)
    assert far.tolist() == [False, True, True]


class _UprightLovingBackend:
    """Stands in for BlazePose: presence = how much brighter the crop's top half is than its
    bottom half (a head-up person), landmark 0 at the crop's intensity centroid."""

    def __init__(self) -> None:
        self.inputs = [TensorSpec("image", ("batch", SIZE, SIZE, 3), np.dtype(np.float32))]
        self.outputs = [
            TensorSpec("landmarks", ("batch", NUM_LANDMARKS * 5), np.dtype(np.float32)),
            TensorSpec("presence", ("batch", 1), np.dtype(np.float32)),
        ]
        self.batches: list[int] = []

    def describe(self) -> str:
        return "upright-loving"

    def run(self, feeds):
        x = feeds["image"][..., 0].astype(np.float64)
        self.batches.append(len(x))
        top, bottom = x[:, : SIZE // 2].sum((1, 2)), x[:, SIZE // 2 :].sum((1, 2))
        presence = np.clip(0.5 + (top - bottom) / (2 * (top + bottom) + 1e-9), 0, 1)
        ys, xs = np.mgrid[0:SIZE, 0:SIZE]
        lm = np.zeros((len(x), NUM_LANDMARKS, 5), np.float32)
        lm[..., 0] = ((x * xs).sum((1, 2)) / x.sum((1, 2)) + 0.5)[:, None]
        lm[..., 1] = ((x * ys).sum((1, 2)) / x.sum((1, 2)) + 0.5)[:, None]
        lm[..., 3] = 10.0
        return {"landmarks": lm.reshape(len(x), -1), "presence": presence[:, None]}


def test_far_from_upright_rois_are_retried_upright_in_the_same_batch():
    img = np.zeros((240, 320, 3), np.uint8)
    img[40:100, 60:100] = 255  # something bright above each ROI centre
    img[40:100, 220:260] = 255
    backend = _UprightLovingBackend()
    est = KeypointEstimator(backend, KeypointSettings(upright_retry_deg=100.0))
    rois = np.array([[80.0, 120.0, 200.0, math.pi], [240.0, 120.0, 200.0, 0.2]])
    kp = est.estimate_rois(img, rois)
    assert backend.batches == [3]  # two ROIs + one upright retry, one call
    assert kp.presence[0] > 0.9 and kp.presence[1] > 0.9  # the upside-down ROI lost
    assert np.allclose(kp.crops[0], roi_transforms(rois[:1] * [1, 1, 1, 0], SIZE)[0], atol=1e-4)
    assert abs(kp.points[0, 0, 1] - 69.5) < 2  # the bright block's centre, in the image
    never = KeypointEstimator(_UprightLovingBackend(), KeypointSettings(upright_retry_deg=180.0))
    assert never.estimate_rois(img, rois).presence[0] < 0.2


def test_crop_axes_follow_the_crop_pixel_directions():
    for angle in (0.0, 0.3, np.pi / 2, -2.0):
        m = roi_transforms(np.array([[100.0, 80.0, 64.0, angle]]), 64)[0]
        crop_x_in_image = m[:, 0] / np.linalg.norm(m[:, 0])  # image direction of crop +x
        crop_y_in_image = m[:, 1] / np.linalg.norm(m[:, 1])
        for axis, want in ((crop_x_in_image, [1, 0]), (crop_y_in_image, [0, 1])):
            v = np.array([axis[0], axis[1], 0.7])  # a camera-frame vector along that direction
            got = camera_to_crop_axes(v, angle)
            np.testing.assert_allclose(got, [want[0], want[1], 0.7], atol=1e-12)


def test_crop_axes_round_trip():
    p = np.random.default_rng(0).normal(size=(5, 17, 3))
    np.testing.assert_allclose(crop_to_camera_axes(camera_to_crop_axes(p, 1.1), 1.1), p,
                               atol=1e-12)
