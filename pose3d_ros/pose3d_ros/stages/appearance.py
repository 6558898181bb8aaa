"""Torso colour histograms: what a person looks like, to recognise them after an occlusion.

Why: boxes and keypoints say where someone is, not who. When a person is hidden for longer
than the tracker can predict, or reappears where the prediction did not expect them, the colour
of their clothes is what tells them apart from a neighbour (stages/reattach.py). The torso (the
quadrilateral shoulders -> hips, shrunk towards its centre so that background and arms at its
edges stay out) is used because it is the largest patch of one garment, seen from the front and
the back, and rarely hidden by the person's own limbs.

A histogram is over HSV (OpenCV ranges: H 0..180, S and V 0..256) with coarse bins so that a
few pixels of shading do not move mass between bins, normalised to sum 1. Two histograms are
compared with the Bhattacharyya distance sqrt(1 - sum(sqrt(p * q))): 0 for identical colour
distributions, 1 for disjoint ones (the same value as ``cv2.compareHist`` with
``HISTCMP_BHATTACHARYYA`` on normalised histograms).
"""

from __future__ import annotations

import cv2
import numpy as np

# Human3.6M-17 joints of the torso corners, in polygon order.
_TORSO = (11, 14, 1, 4)  # l_shoulder, r_shoulder, r_hip, l_hip
HSV_BINS = (8, 4, 4)  # hue, saturation, value
HIST_SIZE = int(np.prod(HSV_BINS))
_RANGES = [0, 180, 0, 256, 0, 256]


def torso_histograms(
    image: np.ndarray,
    keypoints: np.ndarray,
    confidence: np.ndarray,
    shrink: float = 0.8,
    min_pixels: int = 40,
) -> np.ndarray:
    """HSV histograms (N, HIST_SIZE) of each person's torso, rows summing to 1.

    ``image`` HxWx3 BGR uint8; ``keypoints`` (N, 17, 2) Human3.6M-17 pixels; ``confidence``
    (N, 17). ``shrink`` scales the torso quadrilateral about its centre. A row is NaN when a
    torso corner is missing or fewer than ``min_pixels`` torso pixels lie in the image.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 17, 2)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1, 17)
    out = np.full((len(keypoints), HIST_SIZE), np.nan, np.float32)
    height, width = image.shape[:2]
    for i, (kp, conf) in enumerate(zip(keypoints, confidence, strict=True)):
        corners = kp[list(_TORSO)]
        if not (np.isfinite(corners).all() and (conf[list(_TORSO)] > 0).all()):
            continue
        centre = corners.mean(axis=0)
        quad = centre + shrink * (corners - centre)
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round(quad - [x0, y0]).astype(np.int32), 255)
        if int(np.count_nonzero(mask)) < min_pixels:
            continue
        hsv = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], mask, list(HSV_BINS), _RANGES).ravel()
        out[i] = hist / max(float(hist.sum()), 1.0)
    return out


def bhattacharyya(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya distances (M, N) between normalised histograms a (M, B) and b (N, B);
    NaN where either row is NaN."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, HIST_SIZE)
    b = np.asarray(b, dtype=np.float64).reshape(-1, HIST_SIZE)
    coefficient = np.sqrt(np.clip(a, 0, None)) @ np.sqrt(np.clip(b, 0, None)).T
    return np.sqrt(np.clip(1.0 - coefficient, 0.0, 1.0))
