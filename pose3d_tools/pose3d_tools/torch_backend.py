"""PyTorch backend: a lifter checkpoint run directly, for development and as the accuracy
reference of the exported models. The only backend that imports torch.

    backend = TorchBackend("pose3d_ros/checkpoints/htnet_small.pt")
    out = backend.run({"keypoints": x})["joints3d"]        # (B, T, 17, 3) like the ONNX model

Checkpoint format: ``{"name", "config", "state_dict", ...}``, rebuilt with
``pose3d_tools.models.registry.lifter_from_checkpoint``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.backends.base import (
    Backend,
    BackendError,
    TensorSpec,
    Timing,
    settings_from_options,
)
from pose3d_ros.core.parameters import setting

INPUT_NAME = "keypoints"
OUTPUT_NAME = "joints3d"


@dataclass
class TorchSettings:
    device: str = setting("cpu", "torch device ('cpu', 'cuda', 'cuda:0')", read_only=True)
    threads: int = setting(
        0, "torch intra-op threads (0: leave torch's setting)", range=(0, 256), read_only=True
    )


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self, model_path: str | Path, *, settings: TorchSettings | None = None, **options: Any
    ) -> None:
        self.settings = s = settings_from_options(TorchSettings, settings, **options)
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"checkpoint {path} does not exist")
        try:  # the registry imports torch
            from pose3d_tools.models.registry import lifter_from_checkpoint, load_checkpoint
        except ImportError as e:
            raise BackendError(
                f"the torch backend needs PyTorch, which is not installed: {e}"
            ) from e
        try:
            ckpt = load_checkpoint(path)
        except Exception as e:  # truncated zip, pickle errors, not a torch file
            raise BackendError(f"cannot read checkpoint {path}: {e}") from e
        if not isinstance(ckpt, dict):
            raise BackendError(
                f"checkpoint {path} is a {type(ckpt).__name__}, not a dict with "
                "'name', 'config' and 'state_dict'"
            )
        try:
            model = lifter_from_checkpoint(ckpt)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise BackendError(f"cannot build the lifter of checkpoint {path}: {e}") from e
        self._init(model, path, s, extra={"checkpoint": str(path)})

    @classmethod
    def from_module(
        cls, model, *, settings: TorchSettings | None = None, **options: Any
    ) -> TorchBackend:
        """Wrap an in-memory lifter (tests, notebooks)."""
        self = cls.__new__(cls)
        s = settings_from_options(TorchSettings, settings, **options)
        self._init(model, Path("<module>"), s, extra={})
        return self

    def _init(self, model, path: Path, s: TorchSettings, extra: dict[str, str]) -> None:
        import torch

        if s.threads > 0:
            torch.set_num_threads(s.threads)
        try:
            self._device = torch.device(s.device)
            model = model.to(self._device).eval()
        except (RuntimeError, AssertionError) as e:  # e.g. CUDA not compiled in / no GPU
            raise BackendError(f"torch cannot use device {s.device!r}: {e}") from e
        self._torch = torch
        self.model = model
        self.path = path
        config = getattr(model, "config", None)
        frames = int(getattr(config, "frames", 1) or 1)
        joints = int(getattr(config, "num_joints", 17))
        channels = int(getattr(config, "in_channels", 3))
        # HoT runs as the node runs its ONNX export: seq2frame, only the published frame.
        if hasattr(model, "seq2frame"):
            model.seq2frame = True
        out_frames = 1 if hasattr(model, "seq2frame") else frames
        self._inputs = [
            TensorSpec(INPUT_NAME, ("batch", frames, joints, channels), np.dtype(np.float32))
        ]
        self._outputs = [
            TensorSpec(OUTPUT_NAME, ("batch", out_frames, joints, 3), np.dtype(np.float32))
        ]
        cfg_dict: dict[str, Any] = {}
        if config is not None:
            from pose3d_tools.models.registry import config_to_dict

            cfg_dict = config_to_dict(config)
        name = getattr(model, "name", None)
        self._metadata = {
            "model": name if isinstance(name, str) else type(model).__name__.lower(),
            "config": json.dumps(cfg_dict, sort_keys=True),
            "frames": str(frames),
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "output_frame": str(getattr(model, "output_index", frames - 1)),
            "output_frames": str(out_frames),
            **extra,
        }
        self.last_timing = Timing()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(feeds) != {INPUT_NAME}:
            raise BackendError(f"{self.path}: expected input {INPUT_NAME!r}, got {sorted(feeds)}")
        x = np.ascontiguousarray(feeds[INPUT_NAME], dtype=np.float32)
        want = self._inputs[0].shape[1:]
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise BackendError(
                f"{self.path}: input {INPUT_NAME!r} must be (B, {', '.join(map(str, want))}),"
                f" got {x.shape}"
            )
        torch = self._torch
        start = time.perf_counter()
        with torch.inference_mode():
            y = self.model(torch.from_numpy(x).to(self._device))
            out = y.float().cpu().numpy()
        self.last_timing = Timing(total_ms=(time.perf_counter() - start) * 1e3)
        return {OUTPUT_NAME: out}

    def describe(self) -> str:
        return f"torch {self._torch.__version__} ({self._device}, {self._metadata['model']})"
