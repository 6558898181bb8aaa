"""Top-down BlazePose keypoints (model store ONNX, ONNX Runtime) on real footage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose3d_ros.assets import AssetError, verify_models
from pose3d_ros.backends.base import TensorSpec
from pose3d_ros.core.skeletons import BLAZEPOSE33, H36M17
from pose3d_ros.stages.detection import load_person_detector
from pose3d_ros.stages.keypoints2d import (
    NUM_LANDMARKS,
    KeypointEstimator,
    Keypoints2D,
    KeypointSettings,
    angles_from_keypoints,
    convert,
    crop_transforms,
    load_keypoint_estimator,
    rois_from_keypoints,
    to_h36m17,
)


@pytest.fixture(scope="module")
def models():
    try:
        verify_models()
    except AssetError as e:
        pytest.fail(f"models not built: {e}")
    return load_person_detector(threads=2), load_keypoint_estimator(threads=2)


@pytest.fixture(scope="module")
def messi(models, footage):
    detector, estimator = models
    image = cv2.imread(str(footage / "messi5.jpg"))
    boxes, _ = detector.detect(image)
    return image, boxes[:1], estimator.estimate(image, boxes[:1])


def j(name: str) -> int:
    return BLAZEPOSE33.index(name)


def test_messi_keypoints_are_plausible(messi):
    _, boxes, kp = messi
    assert isinstance(kp, Keypoints2D) and kp.joint_set == "blazepose33"
    assert kp.points.shape == (1, 33, 2) and kp.confidence.shape == (1, 33)
    assert kp.presence.shape == (1,) and kp.presence[0] > 0.9
    p, c = kp.points[0], kp.confidence[0]
    assert (c > 0).sum() >= 30
    x0, y0, x1, y1 = boxes[0]
    margin = 0.1 * max(x1 - x0, y1 - y0)
    assert np.all((p[:, 0] > x0 - margin) & (p[:, 0] < x1 + margin))
    assert np.all((p[:, 1] > y0 - margin) & (p[:, 1] < y1 + margin))
    head_y = p[[j("nose"), j("l_eye"), j("r_eye")], 1].mean()
    hips_y = p[[j("l_hip"), j("r_hip")], 1].mean()
    ankles_y = p[[j("l_ankle"), j("r_ankle")], 1].mean()
    assert head_y < hips_y < ankles_y
    # He faces the camera: his left shoulder is on the image's right.
    assert p[j("l_shoulder"), 0] > p[j("r_shoulder"), 0]
    assert p[j("l_hip"), 0] > p[j("r_hip"), 0]
    # Right hand raised at the image's left (x~75, y~95), left foot at the right (x~445, y~275).
    assert np.hypot(*(p[j("r_wrist")] - (85, 100))) < 40
    assert np.hypot(*(p[j("l_ankle")] - (420, 265))) < 40
    assert kp.world is not None and kp.world.shape == (1, 33, 3)


def test_batched_equals_per_crop(models, footage):
    detector, estimator = models
    assert estimator.batched
    cap = cv2.VideoCapture(str(footage / "vtest.avi"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 120)
    _, image = cap.read()
    boxes, _ = detector.detect(image)
    boxes = boxes[:4]
    assert len(boxes) == 4
    crops, _ = estimator.crops(image, boxes)
    batched = estimator.infer(crops)
    for i in range(len(boxes)):
        single = estimator.backend.run({"image": crops[i : i + 1]})
        for name, value in single.items():
            assert np.abs(batched[name][i : i + 1] - value).max() <= 1e-4, name
    together = estimator.estimate(image, boxes)
    for i in range(len(boxes)):
        alone = estimator.estimate(image, boxes[i : i + 1])
        assert np.abs(together.points[i] - alone.points[0]).max() <= 1e-3
        assert np.abs(together.confidence[i] - alone.confidence[0]).max() <= 1e-4


def test_blank_crop_has_all_joints_missing(models, messi):
    _, estimator = models
    image, boxes, _ = messi
    blank = np.zeros_like(image)
    kp = estimator.estimate(blank, boxes)
    assert kp.presence[0] < estimator.settings.min_presence
    assert np.all(kp.confidence == 0) and kp.missing.all()
    # a blank region next to a real person, in one batch
    both = np.concatenate([image, blank], axis=1)
    off = boxes + np.array([image.shape[1], 0, image.shape[1], 0], np.float32)
    kp = estimator.estimate(both, np.concatenate([boxes, off]))
    assert (kp.confidence[0] > 0).sum() >= 30 and np.all(kp.confidence[1] == 0)


def test_no_boxes(models, messi):
    _, estimator = models
    kp = estimator.estimate(messi[0], np.zeros((0, 4)))
    assert len(kp) == 0 and kp.points.shape == (0, 33, 2)
    points, conf = to_h36m17(kp)
    assert points.shape == (0, 17, 2) and conf.shape == (0, 17)


def test_joint_threshold_marks_joints_missing(models, messi):
    _, estimator = models
    image, boxes, kp = messi
    strict = KeypointEstimator(estimator.backend, KeypointSettings(joint_threshold=0.95))
    kp2 = strict.estimate(image, boxes)
    assert (kp2.confidence == 0).sum() > (kp.confidence == 0).sum()
    assert np.all((kp2.confidence == 0) | (kp2.confidence >= 0.95))


def test_to_h36m17_keeps_missing_joints_missing(messi):
    _, _, kp = messi
    points, conf = to_h36m17(kp)
    assert points.shape == (1, 17, 2) and conf.shape == (1, 17)
    assert np.all(conf > 0)
    pelvis = H36M17.index("pelvis")
    assert np.allclose(points[0, pelvis], kp.points[0, [j("l_hip"), j("r_hip")]].mean(0))
    c = kp.confidence.copy()
    c[0, j("l_hip")] = 0.0  # pelvis, spine and l_hip are built from it
    c[0, j("r_wrist")] = 0.0
    _, conf = to_h36m17(Keypoints2D(kp.points, c, kp.presence))
    missing = {H36M17.joints[i] for i in np.flatnonzero(conf[0] == 0)}
    assert missing == {"pelvis", "spine", "l_hip", "r_wrist"}
    h36 = convert(kp, "h36m17")
    assert h36.joint_set == "h36m17" and h36.world.shape == (1, 17, 3)
    assert np.allclose(h36.points, points)


def test_crop_transform_round_trip_with_rotation():
    image = np.zeros((200, 300, 3), np.uint8)
    image[120:124, 200:204] = 255  # pixel centres 200..203 x 120..123: centred at (201.5, 121.5)
    settings = KeypointSettings(crop_scale=1.0)
    box = np.array([[150.0, 60.0, 250.0, 160.0]])
    for angle in (0.0, 0.6, -1.2):
        M = crop_transforms(box, np.array([angle]), settings.crop_scale, 256)
        crop = cv2.warpAffine(
            image, M[0], (256, 256), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        ys, xs = np.nonzero(crop[..., 0] > 100)
        q = np.array([xs.mean(), ys.mean()])  # centre of mass in crop pixel indices
        p = M[0, :, :2] @ q + M[0, :, 2]
        assert np.hypot(*(p - (201.5, 121.5))) < 0.5, angle
        # the crop's middle lands on the box centre
        middle = M[0, :, :2] @ [127.5, 127.5] + M[0, :, 2]
        np.testing.assert_allclose(middle, [200.0, 110.0], atol=1e-9)


class _BlobFindingBackend:
    """Stands in for BlazePose: puts every landmark on the intensity centroid of its crop,
    reported the way the real network reports landmarks (from the crop's top-left corner, so a
    pixel's centre is at index + 0.5)."""

    name = "blob-finder"

    def __init__(self, size: int = 256) -> None:
        self.inputs = [TensorSpec("image", ("batch", size, size, 3), np.dtype(np.float32))]
        self.outputs = [
            TensorSpec("landmarks", ("batch", NUM_LANDMARKS * 5), np.dtype(np.float32)),
            TensorSpec("presence", ("batch", 1), np.dtype(np.float32)),
        ]

    def describe(self) -> str:
        return self.name

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        crops = feeds["image"][..., 0].astype(np.float64)
        n, h, w = crops.shape
        ys, xs = np.mgrid[0:h, 0:w]
        mass = crops.sum(axis=(1, 2))
        cx = (crops * xs).sum(axis=(1, 2)) / mass + 0.5
        cy = (crops * ys).sum(axis=(1, 2)) / mass + 0.5
        lm = np.zeros((n, NUM_LANDMARKS, 5), np.float32)
        lm[..., 0], lm[..., 1] = cx[:, None], cy[:, None]
        lm[..., 3] = 10.0  # visibility logit: confident
        return {"landmarks": lm.reshape(n, -1), "presence": np.ones((n, 1), np.float32)}


def test_keypoints_are_in_pixel_centre_coordinates():
    # Known answer: a Gaussian blob whose samples are taken at pixel centres (the OpenCV / ROS
    # convention of core/camera.py) around the integer pixel (211, 137). A perfect landmark
    # model that reports where the blob is in its crop must give back (211, 137) exactly, not
    # (211.5, 137.5): a half-pixel error would shift every back-projected ray.
    true = np.array([211.0, 137.0])
    rows, cols = np.mgrid[0:240, 0:320]
    blob = np.exp(-((cols - true[0]) ** 2 + (rows - true[1]) ** 2) / (2 * 4.0**2))
    image = np.repeat(np.round(255 * blob).astype(np.uint8)[..., None], 3, axis=2)
    estimator = KeypointEstimator(_BlobFindingBackend(), KeypointSettings(crop_scale=1.0))
    boxes = np.array([[170.0, 95.0, 250.0, 175.0], [180.0, 100.0, 250.0, 170.0]])
    for angles in (None, np.array([0.4, -1.0])):
        kp = estimator.estimate(image, boxes, angles)
        assert (kp.confidence > 0).all()
        err = np.hypot(*(kp.points.reshape(-1, 2) - true).T)
        assert err.max() < 0.05, (angles, err.max())


def test_tracking_crops_from_keypoints(models, messi):
    _, estimator = models
    image, _, kp = messi
    rois = rois_from_keypoints(kp.points, kp.confidence)
    assert rois.shape == (1, 4) and np.isfinite(rois).all()
    angles = angles_from_keypoints(kp.points, kp.confidence)
    assert abs(angles[0]) < np.radians(45)  # leaning, not lying
    tracked = estimator.estimate(image, rois, angles)
    assert tracked.presence[0] > 0.9
    both = (tracked.confidence[0] > 0) & (kp.confidence[0] > 0)
    assert np.median(np.hypot(*(tracked.points[0] - kp.points[0])[both].T)) < 8.0
    # the same from Human3.6M-17 keypoints (what the tracker keeps), via the estimator's methods
    points, conf = to_h36m17(kp)
    rois17 = estimator.rois_from_keypoints(points, conf)
    assert np.isfinite(rois17).all()
    assert abs(estimator.angles_from_keypoints(points, conf)[0] - angles[0]) < np.radians(5)
    # too few joints: NaN box, to be re-detected
    none = np.zeros_like(kp.confidence)
    assert np.isnan(rois_from_keypoints(kp.points, none)).all()
    assert angles_from_keypoints(kp.points, none)[0] == 0.0
