"""Person proposals from two detectors merged into one list of rotated ROIs, one per person.

The BlazePose detector (stages/pose_detection.py) finds people in any posture -- lying, sitting
on the floor, bent over -- and gives a rotated whole-body ROI, but it keys on the face and is
tuned for large people; the SSDLite pedestrian detector (stages/detection.py) gives upright
boxes for small and back-view people. A box and a BlazePose ROI are the same person when each
contains the other's centre (the ROI's centre is the mid-hip point; a box's centre is near the
hips of a standing person) and their sizes agree within ``size_ratio``; the BlazePose ROI is
kept (it is rotated as the landmark model was trained), with the higher of the two scores.
ROIs are rows ``(cx, cy, side, angle)`` as in stages/crops.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose3d_ros.core.parameters import setting
from pose3d_ros.stages.crops import roi_corners, rois_from_boxes
from pose3d_ros.stages.pose_detection import ROI_SCALE

DETECTOR_CHOICES = ("both", "blazepose", "ssdlite")


@dataclass(frozen=True)
class ProposalSettings:
    detectors: str = setting(
        "both",
        "Person detectors run on detection frames: both (BlazePose detector for any posture + "
        "SSDLite pedestrian boxes, merged without duplicates), blazepose or ssdlite only",
        choices=DETECTOR_CHOICES,
    )
    blazepose_score_threshold: float = setting(
        0.5, "minimum BlazePose detector score (sigmoid) of a person", range=(0.0, 1.0)
    )
    blazepose_nms_iou: float = setting(
        0.3,
        "BlazePose detections overlapping by more than this IoU are merged (weighted NMS)",
        range=(0.0, 1.0),
    )
    tile_px: int = setting(
        0,
        "also run the BlazePose detector on square tiles of this size at half-tile stride, in "
        "the same batch, for people small in the frame (0 = whole frame only; 384 on 768x576 "
        "= 6 extra inferences per detection frame)",
        range=(0, 4096),
        unit="px",
    )
    size_ratio: float = setting(
        2.0,
        "a pedestrian box and a BlazePose ROI whose person sizes differ by more than this "
        "factor are different people",
        range=(1.0, 100.0),
    )


def _inside_rotated_square(points: np.ndarray, rois: np.ndarray) -> np.ndarray:
    """(P, R) bool: point p lies in rotated square r."""
    d = points[:, None, :] - rois[None, :, :2]
    cos, sin = np.cos(rois[:, 3]), np.sin(rois[:, 3])
    u = d[..., 0] * cos + d[..., 1] * sin  # into the square's own axes
    v = -d[..., 0] * sin + d[..., 1] * cos
    half = rois[None, :, 2] / 2
    return (np.abs(u) <= half) & (np.abs(v) <= half)


def dedupe_rois(rois: np.ndarray, scores: np.ndarray, size_ratio: float = 2.0) -> np.ndarray:
    """Indices of ROIs to keep, best first: a ROI whose centre (mid-hip) lies in a better ROI's
    square, and the better one's centre in its square, at a similar size, is the same person
    seen again (e.g. by an overlapping tile)."""
    rois = np.asarray(rois, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    inside = _inside_rotated_square(rois[:, :2], rois)  # (i, j): centre i in square j
    ratio = rois[:, 2][:, None] / np.maximum(rois[:, 2][None, :], 1e-6)
    same = inside & inside.T & (ratio <= size_ratio) & (ratio >= 1.0 / size_ratio)
    keep: list[int] = []
    for i in order:
        if not any(same[i, k] for k in keep):
            keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def same_person(
    boxes: np.ndarray, pose_rois: np.ndarray, size_ratio: float = 2.0
) -> np.ndarray:
    """(B, R) bool: pedestrian box b and BlazePose ROI r show the same person (see module doc)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    pose_rois = np.asarray(pose_rois, np.float64).reshape(-1, 4)
    if not len(boxes) or not len(pose_rois):
        return np.zeros((len(boxes), len(pose_rois)), bool)
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    box_in_roi = _inside_rotated_square(centres, pose_rois)
    hip = pose_rois[:, :2]
    hip_in_box = (
        (hip[None, :, 0] >= boxes[:, None, 0])
        & (hip[None, :, 0] <= boxes[:, None, 2])
        & (hip[None, :, 1] >= boxes[:, None, 1])
        & (hip[None, :, 1] <= boxes[:, None, 3])
    )
    box_size = (boxes[:, 2:] - boxes[:, :2]).max(1)  # the person's longer extent
    roi_size = pose_rois[:, 2] / ROI_SCALE  # ~ the person's extent (2x hip->scale point)
    ratio = np.maximum(box_size[:, None], 1e-6) / np.maximum(roi_size[None, :], 1e-6)
    similar = (ratio <= size_ratio) & (ratio >= 1.0 / size_ratio)
    return box_in_roi & hip_in_box & similar


def fuse(
    pose_rois: np.ndarray,
    pose_scores: np.ndarray,
    boxes: np.ndarray,
    box_scores: np.ndarray,
    crop_scale: float,
    max_people: int,
    size_ratio: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ROI per person, best first, at most ``max_people``.

    Returns ROIs (N, 4), scores (N,) and the source of each (N,) (0 = BlazePose detector,
    1 = pedestrian box). Each pedestrian box matching a BlazePose ROI (the best-scoring one it
    matches) is dropped and lends its score if higher; the others become upright ROIs of
    ``crop_scale`` x their longer side.
    """
    pose_rois = np.asarray(pose_rois, np.float64).reshape(-1, 4)
    pose_scores = np.asarray(pose_scores, np.float64).reshape(-1).copy()
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    box_scores = np.asarray(box_scores, np.float64).reshape(-1)
    match = same_person(boxes, pose_rois, size_ratio)
    extra = []
    for b in range(len(boxes)):
        hits = np.flatnonzero(match[b])
        if hits.size:
            best = hits[np.argmax(pose_scores[hits])]
            pose_scores[best] = max(pose_scores[best], box_scores[b])
        else:
            extra.append(b)
    box_rois = rois_from_boxes(boxes[extra], crop_scale)
    rois = np.concatenate([pose_rois, box_rois])
    scores = np.concatenate([pose_scores, box_scores[extra]])
    source = np.concatenate([np.zeros(len(pose_rois), int), np.ones(len(extra), int)])
    order = np.argsort(-scores, kind="stable")[:max_people]
    return rois[order], scores[order], source[order]


def roi_extent_boxes(rois: np.ndarray) -> np.ndarray:
    """(N, 4) axis-aligned boxes around each ROI's square shrunk to the person (÷ ROI_SCALE):
    a stand-in person box where keypoints are missing."""
    rois = np.asarray(rois, np.float64).reshape(-1, 4).copy()
    rois[:, 2] /= ROI_SCALE
    c = roi_corners(rois)
    return np.concatenate([c.min(1), c.max(1)], 1)
