"""Top-down 2D keypoints: BlazePose GHUM landmark model (Apache-2.0, npm ``@mediapipe/pose``).

Each person comes as a rotated square ROI (``stages/crops.py``: from the BlazePose detector's
alignment points, from a person box -- ``crop_scale`` x its longer side, optionally rotated
upright from the hip->shoulder axis -- or from the previous frame's auxiliary landmarks, as
BlazePose tracks) and is warped to 256x256 with one ``cv2.warpAffine``. A ROI far from upright
(``upright_retry_deg``) is also cropped upright and the crop with the higher presence kept (a
person bent over gets an upside-down ROI from the detector); all crops go through the network
in ONE batched call (the model store gives the graph a dynamic batch axis). Landmarks come back
in crop pixels and are mapped to the image with each crop's affine transform.

Confidence of a joint = sigmoid(visibility logit) x person presence. A joint is *missing*
(confidence exactly 0, coordinates kept but meaningless) when that product is below
``joint_threshold``, when it falls outside the image (``drop_outside_image``), or when the whole
person's presence is below ``min_presence``. ``to_h36m17`` (and ``convert``) keep missing
joints missing.

Pixel convention: OpenCV's and ROS's (REP-104 / image_geometry), that of ``core/camera.py``: the
*centre* of the top-left pixel is (0, 0), so pixel (row i, column j) spans [j-0.5, j+0.5] x
[i-0.5, i+0.5] and the image spans [-0.5, w-0.5] x [-0.5, h-0.5]. Boxes, crop maps and the
returned keypoints are all in it, and ``cv2.warpAffine`` takes the crop maps as they are. The
one exception is the network's own output: BlazePose reports landmarks from the crop's top-left
*corner* (MediaPipe's normalised coordinates x crop size, a pixel centre at i + 0.5); ``decode``
converts them at that boundary. A constant half-pixel error here would otherwise shift every
ray, and so every metric placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.backends import Backend, BackendError, load_backend
from pose3d_ros.core.boxes import keypoint_boxes
from pose3d_ros.core.parameters import setting
from pose3d_ros.core.skeletons import BLAZEPOSE33, H36M17, mapping
from pose3d_ros.stages.crops import far_from_upright, roi_transforms, rois_from_boxes

NUM_LANDMARKS = 39  # 33 BlazePose joints + 6 auxiliary ROI points
# Where the network's landmark coordinates put the centre of the crop's top-left pixel: 0.5
# (they are measured from the crop's corner); subtracting it gives pixel-centre coordinates.
_MODEL_PIXEL_ORIGIN = 0.5
_L_SHOULDER, _R_SHOULDER = BLAZEPOSE33.index("l_shoulder"), BLAZEPOSE33.index("r_shoulder")
_L_HIP, _R_HIP = BLAZEPOSE33.index("l_hip"), BLAZEPOSE33.index("r_hip")


@dataclass(frozen=True)
class KeypointSettings:
    crop_scale: float = setting(
        1.25, "square crop side = this x the person box's longer side", range=(1.0, 3.0)
    )
    rotate: bool = setting(
        True,
        "rotate crops upright from the hip->shoulder axis when the angle is known (tracked crops)",
    )
    min_presence: float = setting(
        0.5, "person presence below which all of a person's joints are missing", range=(0.0, 1.0)
    )
    joint_threshold: float = setting(
        0.3,
        "joint confidence (sigmoid(visibility) x presence) below which the joint is missing",
        range=(0.0, 1.0),
    )
    drop_outside_image: bool = setting(True, "joints outside the image are missing")
    roi_min_joints: int = setting(
        6,
        "joints (confident) a person needs for its next crop to come from keypoints",
        range=(2, 33),
    )
    roi_padding: float = setting(
        0.1,
        "keypoint box padded by this fraction of its longer side per side (head top, hands)",
        range=(0.0, 1.0),
    )
    upright_retry_deg: float = setting(
        100.0,
        "a crop rotated by more than this from upright is also tried upright; the one with the "
        "higher presence is kept (180 = never)",
        range=(0.0, 180.0),
        unit="deg",
    )


@dataclass
class Keypoints2D:
    """2D keypoints of N people in full-image pixels."""

    points: np.ndarray  # (N, J, 2) float32 x, y
    confidence: np.ndarray  # (N, J) float32 in [0, 1]; 0 = missing
    presence: np.ndarray  # (N,) float32, the model's person-presence score
    joint_set: str = "blazepose33"
    world: np.ndarray | None = None  # (N, J, 3) metres, hip-centred (BlazePose world landmarks)
    crops: np.ndarray | None = None  # (N, 2, 3) affine crop pixels -> image pixels
    aux: np.ndarray | None = None  # (N, 6, 2) auxiliary ROI landmarks 33..38, image pixels

    def __len__(self) -> int:
        return len(self.points)

    @property
    def missing(self) -> np.ndarray:
        return self.confidence <= 0

    @classmethod
    def empty(cls, num_joints: int = 33, joint_set: str = "blazepose33") -> Keypoints2D:
        return cls(
            np.zeros((0, num_joints, 2), np.float32),
            np.zeros((0, num_joints), np.float32),
            np.zeros((0,), np.float32),
            joint_set,
            np.zeros((0, num_joints, 3), np.float32),
            np.zeros((0, 2, 3), np.float32),
            np.zeros((0, NUM_LANDMARKS - 33, 2), np.float32),
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


def crop_transforms(
    boxes: np.ndarray, angles: np.ndarray | None, crop_scale: float, size: int
) -> np.ndarray:
    """(N, 2, 3) affine maps from crop pixels to image pixels, both with pixel centres at
    integers (the module's convention), ready for ``cv2.warpAffine(..., WARP_INVERSE_MAP)``.

    The crop is a square of side ``crop_scale * max(w, h)`` centred on the box, rotated by
    ``angles`` (radians; the crop's "up" points along (sin a, -cos a) in the image). The
    crop's middle, (size - 1) / 2 in its pixel-centre coordinates, lands on the box centre.
    """
    return roi_transforms(rois_from_boxes(boxes, crop_scale, angles), size)


def landmarks_to_image(M: np.ndarray, landmarks_xy: np.ndarray) -> np.ndarray:
    """(N, K, 2) network landmarks (crop pixels from the crop's corner) -> image pixels (centres
    at integers): the one conversion between the model's convention and ours."""
    crop_px = np.asarray(landmarks_xy, dtype=np.float64) - _MODEL_PIXEL_ORIGIN
    return np.einsum("nij,nkj->nki", M[:, :, :2], crop_px) + M[:, None, :, 2]


def angles_from_keypoints(points: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(N,) crop angles (radians) that make the hip->shoulder axis point up; 0 if unknown.

    ``points`` (N, J, 2) in BlazePose-33 (J = 33) or Human3.6M-17 (J = 17).
    """
    points = np.asarray(points, dtype=np.float64)
    c = np.asarray(confidence)
    if points.shape[1] == BLAZEPOSE33.num_joints:
        idx = [_L_SHOULDER, _R_SHOULDER, _L_HIP, _R_HIP]
    elif points.shape[1] == H36M17.num_joints:
        idx = [H36M17.index(n) for n in ("l_shoulder", "r_shoulder", "l_hip", "r_hip")]
    else:
        raise ValueError(f"expected 33 or 17 joints, got points of shape {points.shape}")
    shoulders = 0.5 * (points[:, idx[0]] + points[:, idx[1]])
    hips = 0.5 * (points[:, idx[2]] + points[:, idx[3]])
    d = shoulders - hips
    known = (c[:, idx] > 0).all(1)
    known &= np.hypot(d[:, 0], d[:, 1]) > 1e-6
    return np.where(known, np.arctan2(d[:, 0], -d[:, 1]), 0.0)


def rois_from_keypoints(
    points: np.ndarray, confidence: np.ndarray, settings: KeypointSettings | None = None
) -> np.ndarray:
    """Person boxes (N, 4) for the next frame's crops from this frame's keypoints (any joint set).

    The box of the non-missing joints, padded by ``roi_padding`` x its longer side on each side
    (BlazePose's joints stop at the eyes/ears and wrists). Rows are NaN for people with fewer
    than ``roi_min_joints`` joints: re-detect those (``np.isfinite(boxes).all(1)``).
    """
    s = settings or KeypointSettings()
    boxes = keypoint_boxes(points, confidence, s.roi_min_joints)  # NaN rows stay NaN
    pad = s.roi_padding * (boxes[:, 2:] - boxes[:, :2]).max(1, keepdims=True)
    return np.concatenate([boxes[:, :2] - pad, boxes[:, 2:] + pad], 1)


class KeypointEstimator:
    """``estimate(image_bgr, boxes (N, 4)) -> Keypoints2D`` (BlazePose-33, full-image pixels)."""

    def __init__(self, backend: Backend, settings: KeypointSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or KeypointSettings()
        names = {t.name for t in backend.outputs}
        if not {"landmarks", "presence"} <= names or backend.inputs[0].name != "image":
            raise BackendError(
                f"{backend.describe()} is not a model store BlazePose model "
                f"(outputs {sorted(names)}); rebuild it with `pose3d models build`"
            )
        batch, h, _, _ = backend.inputs[0].shape
        self.size = int(h)
        self.batched = not isinstance(batch, int)  # a fixed batch of 1 falls back to a loop
        self._outputs = ["landmarks", "presence"] + (
            ["world_landmarks"] if "world_landmarks" in names else []
        )

    def rois_from_keypoints(self, points: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """:func:`rois_from_keypoints` with this estimator's settings."""
        return rois_from_keypoints(points, confidence, self.settings)

    def angles_from_keypoints(self, points: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """:func:`angles_from_keypoints` (zeros when ``rotate`` is off)."""
        if not self.settings.rotate:
            return np.zeros(len(points))
        return angles_from_keypoints(points, confidence)

    def crops(
        self, image_bgr: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The network input (N, S, S, 3) RGB float32 in [0, 1] and the crop->image maps."""
        s = self.settings
        rois = rois_from_boxes(boxes, s.crop_scale, angles if s.rotate else None)
        return self.crops_rois(image_bgr, rois)

    def crops_rois(self, image_bgr: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Crops (N, S, S, 3) RGB float32 in [0, 1] of rotated ROIs (N, 4) and their maps."""
        M = roi_transforms(rois, self.size)
        batch = np.empty((len(M), self.size, self.size, 3), np.uint8)
        for i, m in enumerate(M):
            cv2.warpAffine(
                image_bgr,
                m,
                (self.size, self.size),
                dst=batch[i],
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(0, 0, 0),
            )
        rgb = np.empty_like(batch)
        for i in range(len(batch)):
            cv2.cvtColor(batch[i], cv2.COLOR_BGR2RGB, dst=rgb[i])
        crops = np.empty(batch.shape, np.float32)
        np.multiply(rgb, np.float32(1.0 / 255.0), out=crops, dtype=np.float32)
        return crops, M

    def infer(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Raw network outputs for a batch of crops (one call, or a loop for a batch-1 model)."""
        if self.batched or len(crops) == 1:
            return self.backend.run({"image": crops})
        runs = [self.backend.run({"image": crops[i : i + 1]}) for i in range(len(crops))]
        return {k: np.concatenate([r[k] for r in runs]) for k in self._outputs}

    def estimate(
        self, image_bgr: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None
    ) -> Keypoints2D:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return Keypoints2D.empty()
        s = self.settings
        rois = rois_from_boxes(boxes, s.crop_scale, angles if s.rotate else None)
        return self.estimate_rois(image_bgr, rois)

    def estimate_rois(self, image_bgr: np.ndarray, rois: np.ndarray) -> Keypoints2D:
        """Keypoints of the people in rotated ROIs (N, 4) ``(cx, cy, side, angle)``, one batch.

        Rows whose angle is further than ``upright_retry_deg`` from upright are cropped a second
        time upright (same centre and side) in the same batch; per person the crop with the
        higher presence wins. With ``rotate`` off every crop is upright.
        """
        s = self.settings
        rois = np.array(rois, dtype=np.float64).reshape(-1, 4)
        if len(rois) == 0:
            return Keypoints2D.empty()
        if not s.rotate:
            rois[:, 3] = 0.0
        retry = np.flatnonzero(far_from_upright(rois, np.radians(s.upright_retry_deg)))
        upright = rois[retry].copy()
        upright[:, 3] = 0.0
        crops, M = self.crops_rois(image_bgr, np.concatenate([rois, upright]))
        out = self.infer(crops)
        n = len(rois)
        if len(retry):
            presence = np.asarray(out["presence"]).reshape(-1)
            better = presence[n:] > presence[retry]
            pick = np.arange(n)
            pick[retry[better]] = n + np.flatnonzero(better)
            out = {k: np.asarray(v)[pick] for k, v in out.items()}
            M = M[pick]
        return self.decode(out, M, image_bgr.shape[:2])

    def decode(
        self, out: dict[str, np.ndarray], M: np.ndarray, image_hw: tuple[int, int]
    ) -> Keypoints2D:
        """Network outputs + crop->image maps -> Keypoints2D (see the module doc)."""
        s = self.settings
        n = len(M)
        all_lm = out["landmarks"].reshape(n, NUM_LANDMARKS, 5)
        lm = all_lm[:, :33]
        presence = out["presence"].reshape(n).astype(np.float32)
        points = landmarks_to_image(M, lm[..., :2])
        aux = landmarks_to_image(M, all_lm[:, 33:, :2])
        conf = _sigmoid(lm[..., 3]) * presence[:, None]
        missing = conf < s.joint_threshold
        missing |= (presence < s.min_presence)[:, None]
        if s.drop_outside_image:
            h, w = image_hw
            x, y = points[..., 0], points[..., 1]
            missing |= (x < -0.5) | (y < -0.5) | (x > w - 0.5) | (y > h - 0.5)
        conf = np.where(missing, 0.0, conf)
        world = None
        if "world_landmarks" in out:
            world = out["world_landmarks"].reshape(n, NUM_LANDMARKS, 3)[:, :33].astype(np.float32)
        return Keypoints2D(
            points.astype(np.float32),
            conf.astype(np.float32),
            presence,
            "blazepose33",
            world,
            M.astype(np.float32),
            aux.astype(np.float32),
        )


def convert(keypoints: Keypoints2D, target: str = "h36m17") -> Keypoints2D:
    """The same people in another joint set (a joint made from a missing joint is missing)."""
    m = mapping(keypoints.joint_set, target)
    points, conf = m(keypoints.points, keypoints.confidence)
    world = None
    if keypoints.world is not None:
        world = m(keypoints.world)[0].astype(np.float32)
    return Keypoints2D(
        points.astype(np.float32),
        conf.astype(np.float32),
        keypoints.presence,
        target,
        world,
        keypoints.crops,
        keypoints.aux,
    )


def to_h36m17(keypoints: Keypoints2D) -> tuple[np.ndarray, np.ndarray]:
    """Human3.6M-17 ``points`` (N, 17, 2) and ``confidence`` (N, 17); 0 = missing.

    A joint synthesised from a missing joint (e.g. the pelvis from a missing hip) is missing.
    """
    h36 = convert(keypoints, "h36m17")
    return h36.points, h36.confidence


def load_keypoint_estimator(
    settings: KeypointSettings | None = None,
    *,
    model: str = "blazepose_full",
    model_dir: str | Path | None = None,
    kind: str = "onnxruntime",
    threads: int = 0,
) -> KeypointEstimator:
    """An estimator on a model store BlazePose file (``blazepose_{lite,full,heavy}``), verified
    against the manifest first."""
    from pose3d_ros import assets

    settings = settings or KeypointSettings()
    backend = load_backend(assets.model_path(model, model_dir), kind, threads=threads)
    return KeypointEstimator(backend, settings)
