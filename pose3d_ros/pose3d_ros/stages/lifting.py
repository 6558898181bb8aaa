"""Windows of 2D keypoints -> root-relative 3D joints, through an exported lifter.

The lifter was exported with its configuration in the ONNX metadata (window length, which
frame of the window the runtime reads), so any backend can run it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose3d_ros.backends import Backend, BackendError
from pose3d_ros.core.parameters import setting
from pose3d_ros.stages.lifter_input import LifterInputInfo, lifter_features


@dataclass(frozen=True)
class LifterSettings:
    model: str = setting(
        "htnet_small",
        "2D-to-3D lifter: a shipped one (htnet_small: single frame, fastest; temporal_htnet_t9: "
        "9-frame causal window, most accurate with real 2D noise and 5x smoother, about 3 ms "
        "more per person on a CPU; nanohtnet_t27_causal: superseded) or a path to an .onnx",
        read_only=True,
    )
    min_confidence: float = setting(
        0.3, "2D joints below this confidence are given to the lifter as missing", range=(0.0, 1.0)
    )


@dataclass(frozen=True)
class LiftResult:
    joints: np.ndarray  # (B, 17, 3) metres, root-relative, camera orientation
    info: LifterInputInfo  # per person, for the output frame


class Lifter:
    """Runs a lifter on a batch of people at once (one inference per frame)."""

    def __init__(self, backend: Backend, settings: LifterSettings) -> None:
        meta = backend.metadata
        try:
            self.frames = int(meta["frames"])
            self.output_frame = int(meta.get("output_frame", self.frames - 1))
        except (KeyError, ValueError) as e:
            raise BackendError(
                f"{backend.describe()}: the lifter has no valid 'frames' metadata ({e}); "
                "export it with `pose3d export`"
            ) from e
        self.name = meta.get("model", "lifter")
        self.causal = self.output_frame == self.frames - 1
        self.backend = backend
        self.settings = settings
        self._input = backend.inputs[0].name
        self._output = backend.outputs[0].name

    @property
    def latency_frames(self) -> int:
        """How many frames after the one it describes a result comes out (0 = causal)."""
        return self.frames - 1 - self.output_frame

    def lift(self, keypoints_norm: np.ndarray, confidence: np.ndarray) -> LiftResult:
        """keypoints (B, T, 17, 2) undistorted normalised coordinates, confidence (B, T, 17)."""
        b, t = keypoints_norm.shape[:2]
        if t != self.frames:
            raise ValueError(f"lifter {self.name} takes {self.frames}-frame windows, got {t}")
        feats, info = lifter_features(
            keypoints_norm, confidence, min_confidence=self.settings.min_confidence
        )
        if b == 0:
            empty = np.zeros((0, 17, 3))
            return LiftResult(empty, _frame(info, self.output_frame))
        out = self.backend.run({self._input: np.ascontiguousarray(feats, dtype=np.float32)})
        joints = np.asarray(out[self._output], dtype=np.float64)[:, self.output_frame]
        return LiftResult(joints, _frame(info, self.output_frame))


def _frame(info: LifterInputInfo, index: int) -> LifterInputInfo:
    return LifterInputInfo(
        root_2d=info.root_2d[:, index], scale=info.scale[:, index], valid=info.valid[:, index]
    )
