"""Inference backends behind one interface (see base.py).

    backend = load_backend("out/htnet_small.onnx", "auto")   # logs what it picked and why
    out = backend.run({"keypoints": x})                       # {"joints3d": ...}
    chosen, reason = select_backend("auto", "out/htnet_small.onnx")

``auto``: TensorRT when an NVIDIA GPU and the tensorrt module are present, else ONNX Runtime
with its best provider (TensorRT EP > CUDA EP > CPU). A ``.engine``/``.plan`` file always runs
with TensorRT. Asking for ``tensorrt`` where it cannot run raises BackendError naming what is
missing. The runtime never runs PyTorch: checkpoints (``.pt``) are the tools' business
(``pose3d_tools.torch_backend``); export them to ONNX for a robot.

Options are the fields of the chosen backend's settings dataclass (OnnxRuntimeSettings,
TensorRTSettings) or ``settings=<instance>``. With ``auto``, options that belong
to a backend that was not chosen are ignored (so one config can carry both); an option no
backend knows is an error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pose3d_ros.backends.base import Backend, BackendError, TensorSpec, Timing

BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt")
CHECKPOINT_SUFFIXES = (".pt", ".pth")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")

log = logging.getLogger(__name__)


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def _gpu_present() -> tuple[bool, str]:
    from pose3d_ros.backends.tensorrt_backend import gpu_present

    return gpu_present()


def _tensorrt_status() -> tuple[bool, str]:
    from pose3d_ros.backends.tensorrt_backend import tensorrt_status

    return tensorrt_status()


@dataclass
class Probes:
    """What the machine offers; tests inject fakes. Each probe is cheap (no CUDA init)."""

    gpu: Callable[[], tuple[bool, str]] = _gpu_present
    tensorrt: Callable[[], tuple[bool, str]] = _tensorrt_status
    ort_providers: Callable[[], list[str]] = _ort_providers


def _best_provider(providers: list[str]) -> str:
    from pose3d_ros.backends.onnxruntime_backend import PROVIDER_PREFERENCE

    for p in PROVIDER_PREFERENCE:
        if p in providers:
            return p
    return providers[0]


def select_backend(
    kind: str = "auto", model_path: str | Path | None = None, probes: Probes | None = None
) -> tuple[str, str]:
    """(backend name, human-readable reason); BackendError when the request cannot be met."""
    probes = probes or Probes()
    if kind not in BACKEND_CHOICES:
        raise BackendError(f"unknown backend {kind!r}; one of {', '.join(BACKEND_CHOICES)}")
    suffix = Path(model_path).suffix.lower() if model_path is not None else ""

    if suffix in CHECKPOINT_SUFFIXES:
        raise BackendError(
            f"{model_path} is a PyTorch checkpoint: the runtime runs ONNX models only; export it "
            "with `pose3d-tools export --checkpoint <file.pt> --output <file.onnx>`"
        )

    if kind == "tensorrt" or (kind == "auto" and suffix in ENGINE_SUFFIXES):
        gpu_ok, gpu_why = probes.gpu()
        trt_ok, trt_why = probes.tensorrt()
        missing = [w for ok, w in ((gpu_ok, gpu_why), (trt_ok, trt_why)) if not ok]
        if missing:
            raise BackendError("backend 'tensorrt' cannot run here: " + "; ".join(missing))
        how = "requested" if kind == "tensorrt" else f"{suffix} engine file"
        return "tensorrt", f"{how}; {gpu_why}; {trt_why}"

    providers = probes.ort_providers()
    if kind == "onnxruntime":
        if not providers:
            raise BackendError(
                "backend 'onnxruntime' cannot run here: onnxruntime is not installed"
            )
        return "onnxruntime", f"requested; best provider {_best_provider(providers)}"

    # auto, ONNX model
    gpu_ok, gpu_why = probes.gpu()
    if gpu_ok:
        trt_ok, trt_why = probes.tensorrt()
        if trt_ok:
            return "tensorrt", f"{gpu_why} and {trt_why}"
        not_trt = f"{gpu_why} but {trt_why}"
    else:
        not_trt = gpu_why
    if not providers:
        raise BackendError(
            f"no backend can run {model_path}: TensorRT not usable ({not_trt}) "
            "and onnxruntime is not installed"
        )
    return "onnxruntime", (
        f"TensorRT not usable ({not_trt}); onnxruntime with "
        f"{_best_provider(providers)} (available: {', '.join(providers)})"
    )


def _settings_class(name: str) -> type:
    if name == "onnxruntime":
        from pose3d_ros.backends.onnxruntime_backend import OnnxRuntimeSettings

        return OnnxRuntimeSettings
    from pose3d_ros.backends.tensorrt_backend import TensorRTSettings

    return TensorRTSettings


def _option_names(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(_settings_class(name))} | {"settings"}


def _filter_options(chosen: str, kind: str, options: dict[str, Any]) -> dict[str, Any]:
    if kind != "auto":
        return options  # the backend rejects what it does not know
    own = _option_names(chosen)
    known = set().union(*(_option_names(n) for n in BACKEND_CHOICES[1:]))
    unknown = sorted(set(options) - known)
    if unknown:
        raise BackendError(f"unknown backend option(s) {unknown}; known: {sorted(known)}")
    settings = options.get("settings")
    if settings is not None and not isinstance(settings, _settings_class(chosen)):
        options = {k: v for k, v in options.items() if k != "settings"}
    dropped = sorted(set(options) - own)
    if dropped:
        log.debug("backend %s ignores options %s", chosen, dropped)
    return {k: v for k, v in options.items() if k in own}


def create_backend(name: str, model_path: str | Path, **options: Any) -> Backend:
    """Instantiate backend ``name`` (no selection logic)."""
    if name == "onnxruntime":
        from pose3d_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_path, **options)
    if name == "tensorrt":
        from pose3d_ros.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model_path, **options)
    raise BackendError(f"unknown backend {name!r}")


def load_backend(
    model_path: str | Path, kind: str = "auto", *, probes: Probes | None = None, **options: Any
) -> Backend:
    """Load a model with the requested backend (``auto``: see select_backend), logging the pick."""
    chosen, reason = select_backend(kind, model_path, probes)
    log.info("backend %s for %s: %s", chosen, model_path, reason)
    backend = create_backend(chosen, model_path, **_filter_options(chosen, kind, options))
    backend.selection_reason = reason
    return backend


__all__ = [
    "BACKEND_CHOICES",
    "Backend",
    "BackendError",
    "Probes",
    "TensorSpec",
    "Timing",
    "create_backend",
    "load_backend",
    "select_backend",
]
