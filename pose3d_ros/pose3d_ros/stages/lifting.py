"""Windows of 2D keypoints -> root-relative 3D joints, through an exported lifter.

The lifter was exported with its configuration in the ONNX metadata, so any backend can run it
without torch:

* ``frames``: the window length T (slots of a track's 2D, oldest first);
* ``output_frame``: which slot of the window the pose the runtime reads describes: T - 1 for a
  causal lifter (the newest frame: no latency), T // 2 for a centred one (it needs (T - 1) / 2
  frames after the one it describes, so only `pose3d run` on recorded video can use it);
* ``output_frames``: how many frames the output tensor holds: T for a seq2seq export (one pose
  per slot; the runtime reads slot ``output_frame``), 1 for a seq2frame export (the pose of
  ``output_frame`` only, e.g. HoT's pruned graph). Absent means T (the first shipped lifters).
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
        "more per person on a CPU; nanohtnet_t27_causal: superseded; hot_mixste_t27_causal: "
        "MixSTE video transformer with HoT token pruning, 27-frame causal window, half the "
        "FLOPs of mixste_t27_causal (the same transformer without HoT, kept as its "
        "reference); all these "
        "have a latency of 0 frames; hot_mixste_t27_centred: the same, 27-frame centred window, "
        "latency 13 frames, `pose3d run` only) or a path to an .onnx. The node takes causal "
        "lifters only (latency 0); a centred lifter (latency (T-1)/2 frames) is for `pose3d "
        "run` on recorded video",
        read_only=True,
    )
    min_confidence: float = setting(
        0.3, "2D joints below this confidence are given to the lifter as missing", range=(0.0, 1.0)
    )


@dataclass(frozen=True)
class LiftResult:
    joints: np.ndarray  # (B, 17, 3) metres, root-relative, camera orientation
    info: LifterInputInfo  # per person, for the output frame


@dataclass(frozen=True)
class LifterLayout:
    """What a lifter's metadata says about its window and output (module docstring)."""

    frames: int  # window length T
    output_frame: int  # slot of the window the read pose describes, 0 <= output_frame < T
    output_frames: int  # frames in the output tensor: T (seq2seq) or 1 (seq2frame)

    @property
    def output_index(self) -> int:
        """Index of the read pose along the output tensor's frame axis."""
        return 0 if self.output_frames == 1 else self.output_frame

    @property
    def latency_frames(self) -> int:
        """Frames after the described one the window needs (0 = causal)."""
        return self.frames - 1 - self.output_frame


def lifter_layout(meta: dict[str, str], output_shape: tuple = ()) -> LifterLayout:
    """Read and check the window metadata; ``output_shape`` (B, frames, 17, 3) as the model
    declares it (a non-integer frame axis is not checked). Raises ValueError naming the
    inconsistency."""
    if "frames" not in meta:
        raise ValueError("no 'frames' metadata")
    try:
        frames = int(meta["frames"])
        output_frame = int(meta.get("output_frame", frames - 1))
        output_frames = int(meta.get("output_frames", frames))
    except ValueError as e:
        raise ValueError(f"window metadata is not an integer ({e})") from e
    if frames < 1:
        raise ValueError(f"'frames' is {frames}, must be >= 1")
    if not 0 <= output_frame < frames:
        raise ValueError(f"'output_frame' {output_frame} is outside the {frames}-frame window")
    if output_frames not in (1, frames):
        raise ValueError(
            f"'output_frames' is {output_frames}: must be 1 (seq2frame) or 'frames' = {frames} "
            "(seq2seq)"
        )
    declared = output_shape[1] if len(output_shape) > 1 else None
    if isinstance(declared, int) and declared > 0 and declared != output_frames:
        raise ValueError(
            f"the output tensor has {declared} frames but the metadata says "
            f"'output_frames' = {output_frames}"
            + ("" if "output_frames" in meta else " (absent: the window length)")
        )
    return LifterLayout(frames, output_frame, output_frames)


class Lifter:
    """Runs a lifter on a batch of people at once (one inference per frame)."""

    def __init__(self, backend: Backend, settings: LifterSettings) -> None:
        meta = backend.metadata
        try:
            self.layout = lifter_layout(meta, tuple(backend.outputs[0].shape))
        except ValueError as e:
            raise BackendError(
                f"{backend.describe()}: the lifter's window metadata is not valid: {e}; "
                "export it with `pose3d-tools export`"
            ) from e
        self.frames = self.layout.frames
        self.output_frame = self.layout.output_frame
        self.name = meta.get("model", "lifter")
        self.causal = self.layout.latency_frames == 0
        self.backend = backend
        self.settings = settings
        self._input = backend.inputs[0].name
        self._output = backend.outputs[0].name

    @property
    def latency_frames(self) -> int:
        """How many frames after the one it describes a result comes out (0 = causal)."""
        return self.layout.latency_frames

    def lift(self, keypoints_norm: np.ndarray, confidence: np.ndarray) -> LiftResult:
        """keypoints (B, T, 17, 2) undistorted normalised coordinates, confidence (B, T, 17);
        the result describes window slot ``output_frame``."""
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
        poses = np.asarray(out[self._output], dtype=np.float64)
        if poses.ndim != 4 or poses.shape[1] != self.layout.output_frames:
            raise ValueError(
                f"lifter {self.name} returned shape {poses.shape}, expected (B, "
                f"{self.layout.output_frames}, 17, 3) ('output_frames' metadata)"
            )
        joints = poses[:, self.layout.output_index]
        return LiftResult(joints, _frame(info, self.output_frame))


def _frame(info: LifterInputInfo, index: int) -> LifterInputInfo:
    return LifterInputInfo(
        root_2d=info.root_2d[:, index], scale=info.scale[:, index], valid=info.valid[:, index]
    )
