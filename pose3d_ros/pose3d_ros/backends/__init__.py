"""Inference backends behind one interface (see base.py).

    backend = load_backend("pose3d_ros/lifters/htnet_small.onnx", "auto")  # logs pick + why
    out = backend.run({"keypoints": x})                                     # {"joints3d": ...}
    chosen, reason = select_backend("auto", "pose3d_ros/lifters/htnet_small.onnx")

``auto``: TensorRT when everything it needs is present (an NVIDIA GPU, the tensorrt module,
cuda-python, and onnx to build from ONNX: tensorrt/probe.py), else ONNX Runtime with its best
provider (TensorRT EP > CUDA EP > CPU), the reason naming what is missing. If the TensorRT
backend then fails to load (e.g. the engine build fails), ``auto`` falls back to ONNX Runtime
too, with the failure in the log and ``backend.selection_reason``. A ``.engine``/``.plan`` file
always runs with TensorRT. Asking for ``tensorrt`` where it cannot run raises a one-line
BackendError naming what is missing and how to install it. The runtime never runs PyTorch:
checkpoints (``.pt``) are the tools' business (``pose3d_tools.torch_backend``).

Options are the fields of the backends' settings dataclasses (OnnxRuntimeSettings,
TensorRTSettings) or ``settings=<instance>``. Options of the backend that was not chosen are
ignored (so one config carries both); an option no backend knows is an error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pose3d_ros.backends.base import Backend, BackendError, TensorSpec, Timing
from pose3d_ros.backends.fault_injection import maybe_inject
from pose3d_ros.backends.tensorrt import probe
from pose3d_ros.backends.tensorrt.probe import Probe

BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt")
CHECKPOINT_SUFFIXES = (".pt", ".pth")

log = logging.getLogger(__name__)


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


@dataclass
class Probes:
    """What the machine offers; tests inject fakes. Each probe is cheap (no CUDA init)."""

    gpu: Probe = probe.gpu_present
    tensorrt: Probe = probe.tensorrt_status
    cuda_python: Probe = probe.cuda_python_status
    onnx: Probe = probe.onnx_status
    ort_providers: Callable[[], list[str]] = _ort_providers

    def tensorrt_readiness(self, needs_onnx: bool) -> probe.TensorRTReadiness:
        return probe.check_tensorrt(
            needs_onnx, gpu=self.gpu, tensorrt=self.tensorrt, cuda_python=self.cuda_python,
            onnx=self.onnx,
        )


def _best_provider(providers: list[str]) -> str:
    from pose3d_ros.backends.onnxruntime_backend import PROVIDER_PREFERENCE

    for p in PROVIDER_PREFERENCE:
        if p in providers:
            return p
    return providers[0]


def _is_engine(model_path: str | Path | None) -> bool:
    return model_path is not None and Path(model_path).suffix.lower() in probe.ENGINE_SUFFIXES


def _onnxruntime_reason(not_trt: str, providers: list[str], model_path) -> str:
    if not providers:
        raise BackendError(
            f"no backend can run {model_path}: TensorRT not usable ({not_trt}) "
            "and onnxruntime is not installed (pip install onnxruntime)"
        )
    return (
        f"TensorRT not usable ({not_trt}); onnxruntime with "
        f"{_best_provider(providers)} (available: {', '.join(providers)})"
    )


def select_backend(
    kind: str = "auto", model_path: str | Path | None = None, probes: Probes | None = None
) -> tuple[str, str]:
    """(backend name, human-readable reason); BackendError when the request cannot be met.

    TensorRT is chosen only when everything it needs is there (probe.check_tensorrt: GPU,
    tensorrt, cuda-python, and onnx for an ONNX model); ``auto`` otherwise falls back to ONNX
    Runtime and the reason names each missing piece."""
    probes = probes or Probes()
    if kind not in BACKEND_CHOICES:
        raise BackendError(f"unknown backend {kind!r}; one of {', '.join(BACKEND_CHOICES)}")
    suffix = Path(model_path).suffix.lower() if model_path is not None else ""
    if suffix in CHECKPOINT_SUFFIXES:
        raise BackendError(
            f"{model_path} is a PyTorch checkpoint: the runtime runs ONNX models only; export it "
            "with `pose3d-tools export --checkpoint <file.pt> --output <file.onnx>`"
        )
    engine = _is_engine(model_path)

    if kind == "tensorrt" or (kind == "auto" and engine):
        ready = probes.tensorrt_readiness(needs_onnx=not engine)
        if not ready.ok:
            raise ready.error()
        how = "requested" if kind == "tensorrt" else f"{suffix} engine file"
        return "tensorrt", f"{how}; {'; '.join(ready.found)}"

    providers = probes.ort_providers()
    if kind == "onnxruntime":
        if engine:
            raise BackendError(f"{model_path} is a TensorRT engine: only backend tensorrt runs it")
        if not providers:
            raise BackendError(
                "backend 'onnxruntime' cannot run here: onnxruntime is not installed "
                "(pip install onnxruntime)"
            )
        return "onnxruntime", f"requested; best provider {_best_provider(providers)}"

    # auto, ONNX model
    ready = probes.tensorrt_readiness(needs_onnx=True)
    if ready.ok:
        return "tensorrt", "; ".join(ready.found)
    return "onnxruntime", _onnxruntime_reason("; ".join(ready.missing), providers, model_path)


def _settings_class(name: str) -> type:
    if name == "onnxruntime":
        from pose3d_ros.backends.onnxruntime_backend import OnnxRuntimeSettings

        return OnnxRuntimeSettings
    from pose3d_ros.backends.tensorrt.backend import TensorRTSettings

    return TensorRTSettings


def _option_names(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(_settings_class(name))} | {"settings"}


def _filter_options(chosen: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options backend ``chosen`` takes: one config carries every backend's options (the
    node passes ONNX Runtime threads and TensorRT engine settings to every model), so another
    backend's options are dropped; a name no backend knows is an error (a typo)."""
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
        from pose3d_ros.backends.tensorrt.backend import TensorRTBackend

        return TensorRTBackend(model_path, **options)
    raise BackendError(f"unknown backend {name!r}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, BackendError) else f"{type(error).__name__}: {text}"


def load_backend(
    model_path: str | Path, kind: str = "auto", *, probes: Probes | None = None, **options: Any
) -> Backend:
    """Load a model with the requested backend (``auto``: see select_backend), logging the pick.

    Under ``auto``, a TensorRT backend that fails to load an ONNX model (engine build or
    deserialisation failing, CUDA errors, ...) falls back to ONNX Runtime; the failure is
    logged as a warning and kept in ``backend.selection_reason``. An explicit ``tensorrt``
    raises BackendError instead."""
    probes = probes or Probes()
    chosen, reason = select_backend(kind, model_path, probes)
    log.info("backend %s for %s: %s", chosen, model_path, reason)
    try:
        backend = create_backend(chosen, model_path, **_filter_options(chosen, options))
    except Exception as e:
        if chosen != "tensorrt":
            raise
        if kind != "auto" or _is_engine(model_path):
            if isinstance(e, BackendError):
                raise
            raise BackendError(f"backend 'tensorrt' failed on {model_path}: {_one_line(e)}") from e
        failure = f"the TensorRT backend failed to load it ({_one_line(e)})"
        reason = _onnxruntime_reason(failure, probes.ort_providers(), model_path)
        log.warning("backend onnxruntime for %s: %s", model_path, reason)
        backend = create_backend(
            "onnxruntime", model_path, **_filter_options("onnxruntime", options)
        )
    backend.selection_reason = reason
    return maybe_inject(backend, model_path)  # unchanged unless POSE3D_TEST_FAULT_INJECTION


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
