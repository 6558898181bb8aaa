"""The BlazePose person detector (MediaPipe ``pose_detection.tflite``, Apache-2.0) in numpy.

The build (pose3d_tools.model_build) converts the network only; everything MediaPipe does
around it is here, written from MediaPipe's documented graph options (pose_detection_cpu):
a centred letterbox to 224x224 in [-1, 1], 2254 SSD anchors (5 layers, strides 8/16/32/32/32,
fixed anchor size), sigmoid scores (logits clipped to +-100), box + 4 keypoint decoding,
*weighted* NMS and letterbox removal. What a caller uses is the alignment ROI built from two
keypoints (mid-hip, and the full-body scale/rotation point): a rotated square around the whole
person, upright in the crop whatever the posture (lying, sitting on the floor, upside down).

The decoded "box" is a face-sized square, not a person box; it is only used for the NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.backends import Backend, BackendError, load_backend

INPUT_SIZE = 224
NUM_ANCHORS = 2254
NUM_KEYPOINTS = 4
STRIDES = (8, 16, 32, 32, 32)
MIN_SCALE, MAX_SCALE = 0.1484375, 0.75  # anchor scales; unused with fixed-size anchors
SCORE_CLIP = 100.0
ROI_SCALE = 1.25  # MediaPipe's RectTransformation on the alignment rect


def ssd_anchors(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """Anchor centres (N, 2) as normalised (x, y), MediaPipe's SsdAnchorsCalculator order.

    Consecutive layers with the same stride share one feature map; each layer contributes two
    anchors per cell (aspect ratio 1 and the interpolated scale), so a cell of the stride-32 map
    holds 6. With ``fixed_anchor_size`` every anchor is 1x1, so only the centres matter.
    """
    out = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        per_cell = 2 * same
        side = math.ceil(input_size / stride)
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        centres = np.stack([(xs + 0.5) / side, (ys + 0.5) / side], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(out).astype(np.float32)


def letterbox(image_bgr: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Centred, aspect-preserving resize onto a black ``size`` square.

    Returns the network input (1, 3, size, size) RGB in [-1, 1] and the padding
    (left, top, right, bottom) as fractions of ``size``.
    """
    h, w = image_bgr.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    left, top = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[top : top + nh, left : left + nw] = cv2.resize(
        image_bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    blob = canvas[:, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0
    pad = np.array([left, top, size - nw - left, size - nh - top], np.float64) / size
    return np.ascontiguousarray(blob.transpose(2, 0, 1))[None], pad


def decode(raw: np.ndarray, anchors: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Raw regressors (N, 12) -> (N, 12) normalised: box (x_min, y_min, x_max, y_max) then four
    keypoints (x, y), in letterboxed-input coordinates (0..1)."""
    raw = np.asarray(raw, np.float64) / size
    ax, ay = anchors[:, 0:1].astype(np.float64), anchors[:, 1:2].astype(np.float64)
    cx, cy = raw[:, 0:1] + ax, raw[:, 1:2] + ay
    half_w, half_h = raw[:, 2:3] / 2, raw[:, 3:4] / 2
    kp = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + np.stack([ax, ay], -1)
    box = np.concatenate([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    return np.concatenate([box, kp.reshape(-1, 2 * NUM_KEYPOINTS)], axis=1)


def scores_from_logits(logits: np.ndarray) -> np.ndarray:
    """Sigmoid of the logits clipped to +-100 (MediaPipe's score_clipping_thresh)."""
    x = np.clip(np.asarray(logits, np.float64).reshape(-1), -SCORE_CLIP, SCORE_CLIP)
    return 1.0 / (1.0 + np.exp(-x))


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    area = np.prod(np.clip(box[2:] - box[:2], 0.0, None))
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None), axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    detections: np.ndarray, scores: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED suppression: the best remaining detection absorbs every detection
    overlapping it by more than ``iou`` (box IoU); the merged box and keypoints are the
    score-weighted mean of the group, the score the best one's. Returns (M, 12), (M,)."""
    order = np.argsort(-scores, kind="stable")
    out, out_scores = [], []
    while order.size:
        best = order[0]
        overlap = _iou_one(detections[best, :4], detections[order, :4])
        group = order[overlap > iou]
        group = group if group.size else order[:1]
        w = scores[group][:, None]
        out.append((detections[group] * w).sum(0) / w.sum())
        out_scores.append(scores[best])
        order = order[overlap <= iou]
        order = order[order != best]
    if not out:
        return np.zeros((0, detections.shape[1])), np.zeros((0,))
    return np.stack(out), np.asarray(out_scores)


def unletterbox(detections: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Letterboxed-input coordinates (0..1) -> original-image coordinates (0..1), every x/y."""
    left, top, right, bottom = pad
    out = detections.copy()
    out[:, 0::2] = (out[:, 0::2] - left) / (1.0 - left - right)
    out[:, 1::2] = (out[:, 1::2] - top) / (1.0 - top - bottom)
    return out


@dataclass(frozen=True)
class RotatedRoi:
    """A square region around one person in image pixels: centre (x, y), side, and rotation
    (radians, counter-clockwise positive in the image as MediaPipe defines it: the angle that
    turns the person upright in the crop; 0 = already upright)."""

    cx: float
    cy: float
    side: float
    rotation: float
    score: float = 1.0
    source: str = ""


def normalize_radians(angle: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def alignment_roi(
    keypoints_px: np.ndarray, score: float = 1.0, scale: float = ROI_SCALE
) -> RotatedRoi:
    """MediaPipe's alignment rect from keypoint 0 (mid-hip, the centre) and keypoint 1 (the
    full-body scale/rotation point), pixels: side = 2 |kp1 - kp0| x ``scale``, rotation = 90 deg
    - atan2(-(y1 - y0), x1 - x0) so that kp0 -> kp1 points up in the crop."""
    (x0, y0), (x1, y1) = keypoints_px[0], keypoints_px[1]
    side = 2.0 * math.hypot(x1 - x0, y1 - y0) * scale
    rotation = normalize_radians(math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0))
    return RotatedRoi(float(x0), float(y0), float(side), float(rotation), float(score), "blazepose")


@dataclass(frozen=True)
class PoseDetection:
    """One detected person: score, face box (x_min, y_min, x_max, y_max) and the four
    keypoints (4, 2), image pixels, and the alignment ROI."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray
    roi: RotatedRoi


def postprocess(
    raw: np.ndarray,
    logits: np.ndarray,
    pad: np.ndarray,
    image_size: tuple[int, int],
    anchors: np.ndarray,
    score_threshold: float = 0.5,
    nms_iou: float = 0.3,
) -> list[PoseDetection]:
    """Network outputs of one image ((2254, 12), (2254,)) -> detections, best first.
    ``image_size`` is (width, height) of the original image."""
    scores = scores_from_logits(logits)
    keep = np.flatnonzero(scores >= score_threshold)
    if keep.size == 0:
        return []
    det = decode(raw.reshape(-1, 12)[keep], anchors[keep])
    det, det_scores = weighted_nms(det, scores[keep], nms_iou)
    det = unletterbox(det, pad)
    w, h = image_size
    det[:, 0::2] *= w
    det[:, 1::2] *= h
    out = []
    for d, s in zip(det, det_scores, strict=True):
        kp = d[4:].reshape(NUM_KEYPOINTS, 2)
        out.append(PoseDetection(float(s), d[:4].copy(), kp.copy(), alignment_roi(kp, float(s))))
    return out


class PoseDetector:
    """``detect(image_bgr) -> list[PoseDetection]`` with the built ``pose_detector`` model."""

    def __init__(
        self, backend: Backend, score_threshold: float = 0.5, nms_iou: float = 0.3
    ) -> None:
        self.backend = backend
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        names = {t.name for t in backend.outputs}
        if not {"regressors", "logits"} <= names or backend.inputs[0].name != "image":
            raise BackendError(
                f"{backend.describe()} is not the model store's pose_detector "
                f"(outputs {sorted(names)}); rebuild it with `pose3d-tools models build`"
            )
        self.anchors = ssd_anchors()

    def run_raw(self, blobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network on (B, 3, 224, 224) inputs -> regressors (B, 2254, 12), logits (B, 2254)."""
        out = self.backend.run({"image": np.ascontiguousarray(blobs, np.float32)})
        return out["regressors"], out["logits"].reshape(len(blobs), -1)

    def detect(self, image_bgr: np.ndarray, tile: int = 0) -> list[PoseDetection]:
        """Detections on the whole frame, plus (``tile`` > 0) on square tiles of ``tile`` px at
        half-tile stride covering the frame, all in one batch: the detector is tuned for one
        large person, so small people score higher in a tile. Tile detections are in image
        pixels; the same person seen by several tiles comes back several times (see
        ``fusion.dedupe_rois``)."""
        h, w = image_bgr.shape[:2]
        origins = [(0, 0, w, h)]
        if tile > 0 and max(w, h) > tile:
            origins += [(x, y, min(tile, w), min(tile, h)) for x, y in tile_origins(w, h, tile)]
        blobs, pads = zip(
            *(letterbox(image_bgr[y : y + th, x : x + tw]) for x, y, tw, th in origins),
            strict=True,
        )
        raw, logits = self.run_raw(np.concatenate(blobs))
        out = []
        for (x, y, tw, th), pad, r, lg in zip(origins, pads, raw, logits, strict=True):
            for d in postprocess(
                r, lg, pad, (tw, th), self.anchors, self.score_threshold, self.nms_iou
            ):
                shift = np.array([x, y], np.float64)
                roi = alignment_roi(d.keypoints + shift, d.score)
                out.append(PoseDetection(d.score, d.box + np.tile(shift, 2),
                                         d.keypoints + shift, roi))
        return out


def tile_origins(width: int, height: int, tile: int) -> list[tuple[int, int]]:
    """Top-left corners of ``tile``-px squares at half-tile stride covering a frame (the last row
    and column flush with the far edges)."""

    def starts(size: int) -> list[int]:
        if size <= tile:
            return [0]
        out = list(range(0, size - tile + 1, tile // 2))
        if out[-1] + tile < size:
            out.append(size - tile)
        return out

    return [(x, y) for y in starts(height) for x in starts(width)]


def load_pose_detector(
    score_threshold: float = 0.5,
    nms_iou: float = 0.3,
    *,
    model_dir: str | Path | None = None,
    kind: str = "onnxruntime",
    threads: int = 0,
) -> PoseDetector:
    """A detector on the model store's ONNX file (verified against the manifest first)."""
    from pose3d_ros import assets

    path = assets.model_path("pose_detector", model_dir)
    return PoseDetector(load_backend(path, kind, threads=threads), score_threshold, nms_iou)
