"""Axis-aligned person boxes (x_min, y_min, x_max, y_max, pixels): overlap and suppression,
shared by the detector, the tracker, the 2D stage and the pipeline."""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (M, 4) and b (N, 4) -> (M, N); 0 for empty boxes."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best first, at most ``limit``."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        order = rest[box_iou(boxes[i : i + 1], boxes[rest])[0] <= iou]
    return np.asarray(keep, dtype=np.int64)


def keypoint_boxes(points: np.ndarray, confidence: np.ndarray, min_joints: int) -> np.ndarray:
    """Tight boxes (N, 4) around each person's seen keypoints (confidence > 0), pixels.

    ``points`` (N, J, 2), ``confidence`` (N, J). A row is NaN where fewer than ``min_joints``
    joints are seen (too few to say where the person is); callers pad or fall back.
    """
    points = np.asarray(points, dtype=np.float64)
    seen = np.asarray(confidence) > 0
    boxes = np.full((len(points), 4), np.nan)
    enough = seen.sum(1) >= max(min_joints, 1)
    if not enough.any():
        return boxes
    x = np.where(seen, points[..., 0], np.nan)[enough]
    y = np.where(seen, points[..., 1], np.nan)[enough]
    lo = np.stack([np.nanmin(x, 1), np.nanmin(y, 1)], 1)
    hi = np.stack([np.nanmax(x, 1), np.nanmax(y, 1)], 1)
    boxes[enough] = np.concatenate([lo, hi], 1)
    return boxes
