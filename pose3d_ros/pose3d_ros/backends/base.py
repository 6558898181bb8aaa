"""One interface for running an exported model, whatever executes it (ONNX Runtime, TensorRT,
PyTorch). The pipeline only ever sees this interface, so the backend is a configuration choice.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.core.parameters import SettingError, build_settings


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
    selection_reason: str = ""  # set by load_backend: why this backend was picked
    # run() may be called from several threads at once (ONNX Runtime sessions); False: callers
    # sharing the model serialise (backends/batching.py does).
    concurrent_runs: bool = False
    # Filled by each backend when it loads a model.
    _inputs: list[TensorSpec]
    _outputs: list[TensorSpec]
    _metadata: dict[str, str] = {}  # noqa: RUF012 - replaced, never mutated

    @property
    def inputs(self) -> list[TensorSpec]:
        return self._inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self._outputs

    @property
    def metadata(self) -> dict[str, str]:
        """Model metadata (ONNX metadata_props), e.g. the lifter's config."""
        return dict(self._metadata)

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    last_timing: Timing = Timing()

    def describe(self) -> str:
        return f"{self.name}"

    def example_feeds(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Zero inputs of the right shapes and types, dynamic axes set to ``batch``."""
        return {
            s.name: np.zeros(
                [d if isinstance(d, int) and d > 0 else batch for d in s.shape], dtype=s.dtype
            )
            for s in self.inputs
        }

    def warmup(self, runs: int = 3, batch: int = 1) -> float:
        """Run ``runs`` times on zero inputs (lazy allocations, kernel selection, clocks up);
        returns the wall time in ms."""
        import time

        feeds = self.example_feeds(batch)
        start = time.perf_counter()
        for _ in range(runs):
            self.run(feeds)
        return (time.perf_counter() - start) * 1e3


def settings_from_options(cls: type, settings: Any = None, **options: Any):
    """A settings dataclass from an instance and/or keyword overrides, validated."""
    values: dict[str, Any] = {}
    if settings is not None:
        if not isinstance(settings, cls):
            raise BackendError(f"settings must be {cls.__name__}, not {type(settings).__name__}")
        values = {f.name: getattr(settings, f.name) for f in fields(cls)}
    for k, v in options.items():
        if v is None:
            continue
        values[k] = str(v) if isinstance(v, Path) else v
    try:
        return build_settings(cls, values)
    except SettingError as e:
        raise BackendError(str(e)) from e
