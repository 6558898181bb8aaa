"""One interface for running an exported model, whatever executes it (ONNX Runtime, TensorRT,
PyTorch). The pipeline only ever sees this interface, so the backend is a configuration choice.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


class BackendError(RuntimeError):
    """A model cannot be loaded or run by the requested backend; the message says why."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str | None, ...]  # str/None for dynamic axes (e.g. "batch")
    dtype: np.dtype


@dataclass
class Timing:
    """Wall time of the last run, split where the backend can tell."""

    total_ms: float = 0.0
    detail_ms: dict[str, float] = field(default_factory=dict)


class Backend(abc.ABC):
    """A loaded model. `run` takes and returns host numpy arrays keyed by tensor name."""

    name: str = "abstract"

    @property
    @abc.abstractmethod
    def inputs(self) -> list[TensorSpec]: ...

    @property
    @abc.abstractmethod
    def outputs(self) -> list[TensorSpec]: ...

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @property
    def metadata(self) -> dict[str, str]:
        """Model metadata (ONNX metadata_props), e.g. the lifter's config."""
        return {}

    last_timing: Timing = Timing()

    def describe(self) -> str:
        return f"{self.name}"
