"""Can TensorRT run here? Cheap checks (file existence and import finders: no CUDA init, no
``import tensorrt``), so ``auto`` can decide in milliseconds and say exactly what is missing.

    ready = check_tensorrt(needs_onnx=True)
    ready.ok, ready.found, ready.missing   # False, [...], ["no module named 'tensorrt'; ..."]

What the TensorRT backend needs: an NVIDIA GPU visible to the process, the ``tensorrt`` Python
module, cuda-python (device buffers and a stream; the runtime never uses torch for them) and,
to build an engine from an ONNX file, the ``onnx`` package (it reads the graph's inputs for
the optimisation profile). Each missing item comes with how to install it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from pose3d_ros.backends.base import BackendError

# Files that are serialised TensorRT engines (run by TensorRT only, never by ONNX Runtime).
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
Probe = Callable[[], tuple[bool, str]]  # () -> (usable, evidence or why not + how to fix)

# Evidence that an NVIDIA GPU is usable from this process (desktop driver or Jetson iGPU).
GPU_DEVICE_FILES = (
    "/dev/nvidia0",  # desktop/server driver
    "/dev/nvidiactl",
    "/dev/nvhost-ctrl-gpu",  # Jetson (nvgpu, JetPack 5/6)
    "/dev/nvgpu/igpu0/ctrl",  # Jetson (JetPack 6)
    "/proc/driver/nvidia/version",
)
NO_GPU_HINT = (
    "no NVIDIA GPU is visible to this process (none of "
    + ", ".join(GPU_DEVICE_FILES)
    + " exists; in a container run it with --runtime nvidia or --gpus all)"
)
NO_TENSORRT_HINT = (
    "on a Jetson the TensorRT Python module comes with JetPack (`sudo apt install "
    "python3-libnvinfer`; a venv needs --system-site-packages); on x86 `pip install tensorrt`"
)
NO_CUDA_PYTHON_HINT = (
    "install cuda-python matching the CUDA of your JetPack/driver "
    "(e.g. `pip install 'cuda-python==12.6.*'` on JetPack 6.1/6.2)"
)
NO_ONNX_HINT = "building an engine from ONNX needs it: `pip install onnx`"
# Where cuda-python keeps its runtime bindings (>= 12.6, older); finding these imports only the
# ``cuda`` namespace package, never the CUDA libraries.
CUDA_RUNTIME_MODULES = ("cuda.bindings", "cuda.cudart")


def _find(module: str) -> str | None:
    """Origin of ``module`` if the import system can find it (imports parent packages only)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # parent package missing or broken
        return None
    return None if spec is None else str(spec.origin or module)


def _dist_version(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return ""


def gpu_present(device_files: tuple[str, ...] = GPU_DEVICE_FILES) -> tuple[bool, str]:
    """(True, evidence) when an NVIDIA GPU device node exists, else (False, why not)."""
    for f in device_files:
        if os.path.exists(f):
            return True, f"NVIDIA GPU device {f} present"
    return False, NO_GPU_HINT


def tensorrt_status() -> tuple[bool, str]:
    """(True, version) when the tensorrt module can be found, else (False, why + install).

    Uses the import machinery's finder only (importing tensorrt takes about a second)."""
    origin = _find("tensorrt")
    if origin is None:
        return False, f"no module named 'tensorrt'; {NO_TENSORRT_HINT}"
    version = _dist_version("tensorrt")  # JetPack's apt package has no dist-info
    return True, f"tensorrt {version}" if version else f"tensorrt at {origin}"


def cuda_python_status() -> tuple[bool, str]:
    """(True, version) when cuda-python's runtime bindings can be found, else (False, why)."""
    for module in CUDA_RUNTIME_MODULES:
        if _find(module) is not None:
            version = _dist_version("cuda-python", "cuda-bindings")
            return True, f"cuda-python {version}" if version else f"cuda-python ({module})"
    return False, f"no module named 'cuda.bindings' (cuda-python); {NO_CUDA_PYTHON_HINT}"


def onnx_status() -> tuple[bool, str]:
    """(True, version) when the onnx package can be found, else (False, why + install)."""
    if _find("onnx") is None:
        return False, f"no module named 'onnx'; {NO_ONNX_HINT}"
    return True, f"onnx {_dist_version('onnx') or '(version unknown)'}"


@dataclass(frozen=True)
class TensorRTReadiness:
    """Outcome of :func:`check_tensorrt`: what was found and what is missing (with fixes)."""

    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def error(self) -> BackendError:
        """The one-line error explicit ``backend: tensorrt`` raises when something is missing."""
        return BackendError("backend 'tensorrt' cannot run here: " + "; ".join(self.missing))


def check_tensorrt(
    needs_onnx: bool,
    *,
    gpu: Probe = gpu_present,
    tensorrt: Probe = tensorrt_status,
    cuda_python: Probe = cuda_python_status,
    onnx: Probe = onnx_status,
) -> TensorRTReadiness:
    """Everything the TensorRT backend needs; ``needs_onnx`` when the model is an ONNX file
    (a prebuilt ``.engine`` needs no onnx). Every probe runs, so all gaps are named at once."""
    probes = [gpu, tensorrt, cuda_python] + ([onnx] if needs_onnx else [])
    found, missing = [], []
    for probe in probes:
        ok, why = probe()
        (found if ok else missing).append(why)
    return TensorRTReadiness(found, missing)


def import_tensorrt():
    """The tensorrt module (8.5 or newer), or BackendError with the install hint."""
    try:
        import tensorrt as trt
    except Exception as e:  # ImportError, or OSError when libnvinfer/libcudart cannot load
        raise BackendError(
            f"backend 'tensorrt' cannot import the tensorrt module ({e}); {NO_TENSORRT_HINT}"
        ) from e
    major, minor = (int(x) for x in trt.__version__.split(".")[:2])
    if (major, minor) < (8, 5):
        raise BackendError(
            f"tensorrt {trt.__version__} is too old: 8.5 or newer is needed (JetPack 5.1+ / 6.x)"
        )
    return trt
