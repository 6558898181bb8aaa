"""TensorRT backend (tensorrt Python API, TensorRT 8.5 .. 10.x: JetPack 5/6, x86 wheels).

    backend = TensorRTBackend("out/htnet_small.onnx", precision="fp16", max_batch=8)
    out = backend.run({"keypoints": x})                  # host numpy in, host numpy out

From an ONNX file: the engine is taken from the engine cache when its sidecar matches
(sha256 of the ONNX + TensorRT version + GPU name/SM count + compute capability + precision +
optimisation profile [+ calibration data]); otherwise it is built (FP32/FP16/INT8 with an
entropy calibrator fed from a .npy/.npz of real inputs), cached and loaded. A stale or corrupt
cached engine (key mismatch, bytes not matching the sidecar, deserialisation failure) is rebuilt,
never used. From a prebuilt ``.engine``/``.plan`` file: it is used only if its sidecar says it was
built for this TensorRT version and GPU; otherwise loading fails and says what differs.

Device buffers come from cuda-python (``cuda.bindings.runtime`` / ``cuda.cudart``) or, when that
is missing, from torch CUDA tensors. Buffers are allocated once for ``max_batch`` at load time;
larger batches are run in chunks. Inference uses the name-based API (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) that TensorRT 8.5+ and 10.x share.

Nothing here imports tensorrt, CUDA or torch at module import time.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
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
from pose3d_ros.backends.engine_cache import (
    EngineKey,
    cache_paths,
    check_engine,
    default_cache_dir,
    device_mismatch,
    obtain_engine,
    read_sidecar,
)
from pose3d_ros.core.checksums import sha256_file
from pose3d_ros.core.parameters import setting

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")

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


# -------------------------------------------------------------------------------------------
# probes (cheap, no CUDA/TensorRT import): used by select_backend and tests inject their own
# -------------------------------------------------------------------------------------------
def gpu_present(device_files: tuple[str, ...] = GPU_DEVICE_FILES) -> tuple[bool, str]:
    """(True, evidence) when an NVIDIA GPU device node exists, else (False, why not)."""
    for f in device_files:
        if os.path.exists(f):
            return True, f"NVIDIA GPU device {f} present"
    return False, NO_GPU_HINT


def tensorrt_status() -> tuple[bool, str]:
    """(True, version) when the tensorrt module can be found, else (False, why not).

    Uses the import machinery's finder only (importing tensorrt takes about a second)."""
    try:
        spec = importlib.util.find_spec("tensorrt")
    except (ImportError, ValueError) as e:
        return False, f"`import tensorrt` fails: {e}; {NO_TENSORRT_HINT}"
    if spec is None:
        return False, f"no module named 'tensorrt'; {NO_TENSORRT_HINT}"
    try:
        from importlib.metadata import version

        return True, f"tensorrt {version('tensorrt')}"
    except Exception:  # JetPack's apt package has no dist-info
        return True, f"tensorrt at {spec.origin}"


def import_tensorrt():
    """The tensorrt module, or BackendError with the install hint."""
    try:
        import tensorrt as trt
    except Exception as e:  # ImportError, or OSError when libnvinfer/libcudart cannot load
        raise BackendError(
            f"backend 'tensorrt' cannot import the tensorrt module ({e}); {NO_TENSORRT_HINT}"
        ) from e
    major = int(trt.__version__.split(".")[0])
    minor = int(trt.__version__.split(".")[1])
    if (major, minor) < (8, 5):
        raise BackendError(
            f"tensorrt {trt.__version__} is too old: 8.5 or newer is needed (JetPack 5.1+ / 6.x)"
        )
    return trt


# -------------------------------------------------------------------------------------------
# CUDA memory: cuda-python, else torch
# -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: str
    sm_count: int
    memory_mb: int

    @property
    def key_name(self) -> str:
        """GPU name as used in the engine key: Orin Nano and AGX Orin both call themselves
        'Orin' (compute capability 8.7) but differ in SMs, so the SM count is part of it."""
        return f"{self.name} ({self.sm_count} SMs)"


class CudaPython:
    """Device memory and a stream through cuda-python's runtime bindings."""

    api = "cuda-python"

    def __init__(self, device: int = 0) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # older cuda-python; ImportError propagates when absent
        self.rt = cudart
        self.device = device
        count = self._check(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if device >= count:
            raise BackendError(f"CUDA device {device} requested, {count} present")
        self._check(cudart.cudaSetDevice(device), "cudaSetDevice")
        self.stream = self._check(cudart.cudaStreamCreate(), "cudaStreamCreate")

    def _check(self, result, what: str):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != int(self.rt.cudaError_t.cudaSuccess):
            _, msg = self.rt.cudaGetErrorString(err)
            raise BackendError(
                f"CUDA {what} failed: {msg.decode() if isinstance(msg, bytes) else msg}"
            )
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    def info(self) -> GpuInfo:
        p = self._check(self.rt.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        name = p.name.decode(errors="replace") if isinstance(p.name, bytes) else str(p.name)
        return GpuInfo(
            self.device,
            name.strip("\x00").strip(),
            f"{p.major}.{p.minor}",
            int(p.multiProcessorCount),
            int(p.totalGlobalMem) >> 20,
        )

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self.rt.cudaFree(ptr)

    def htod(self, ptr: int, host: np.ndarray) -> None:
        self._check(
            self.rt.cudaMemcpyAsync(
                ptr,
                host.ctypes.data,
                host.nbytes,
                self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                self.stream,
            ),
            "cudaMemcpyAsync H2D",
        )

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        self._check(
            self.rt.cudaMemcpyAsync(
                host.ctypes.data,
                ptr,
                host.nbytes,
                self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                self.stream,
            ),
            "cudaMemcpyAsync D2H",
        )

    def sync(self) -> None:
        self._check(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def close(self) -> None:
        self.rt.cudaStreamDestroy(self.stream)


class TorchCuda:
    """The same, through torch CUDA tensors (when cuda-python is not installed)."""

    api = "torch-cuda"

    def __init__(self, device: int = 0) -> None:
        import torch

        if not torch.cuda.is_available():
            raise BackendError(
                f"torch {torch.__version__} sees no CUDA device (CPU-only build or no GPU)"
            )
        self.torch = torch
        self.device = device
        self.dev = torch.device("cuda", device)
        self.stream = torch.cuda.Stream(device=self.dev)
        self._buffers: dict[int, Any] = {}

    def info(self) -> GpuInfo:
        p = self.torch.cuda.get_device_properties(self.device)
        return GpuInfo(
            self.device,
            p.name,
            f"{p.major}.{p.minor}",
            int(p.multi_processor_count),
            int(p.total_memory) >> 20,
        )

    def malloc(self, nbytes: int) -> int:
        t = self.torch.empty(max(int(nbytes), 1), dtype=self.torch.uint8, device=self.dev)
        self._buffers[t.data_ptr()] = t
        return t.data_ptr()

    def free(self, ptr: int) -> None:
        self._buffers.pop(ptr, None)

    def htod(self, ptr: int, host: np.ndarray) -> None:
        src = self.torch.from_numpy(host.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(self.stream):
            self._buffers[ptr][: host.nbytes].copy_(src)

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        dst = self.torch.from_numpy(host.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(self.stream):
            dst.copy_(self._buffers[ptr][: host.nbytes])

    def sync(self) -> None:
        self.stream.synchronize()

    @property
    def stream_handle(self) -> int:
        return int(self.stream.cuda_stream)

    def close(self) -> None:
        self._buffers.clear()


def cuda_runtime(device: int = 0):
    """cuda-python if installed, else torch CUDA; BackendError naming both when neither works."""
    try:
        return CudaPython(device)
    except ImportError as e:
        first = f"cuda-python is not installed ({e})"
    except BackendError as e:
        first = f"cuda-python: {e}"
    try:
        return TorchCuda(device)
    except ImportError as e:
        second = f"torch is not installed ({e})"
    except BackendError as e:
        second = str(e)
    raise BackendError(
        f"backend 'tensorrt' needs CUDA device buffers: {first}; {second}. "
        "Install cuda-python matching the CUDA of your JetPack/driver "
        "(e.g. `pip install 'cuda-python==12.*'`)"
    )


# -------------------------------------------------------------------------------------------
# settings, profiles, calibration data
# -------------------------------------------------------------------------------------------
@dataclass
class TensorRTSettings:
    """Engine build and run options of the TensorRT backend."""

    precision: str = setting(
        "fp16",
        "engine precision (int8 needs calibration_file)",
        choices=("fp32", "fp16", "int8"),
        read_only=True,
    )
    max_batch: int = setting(
        8,
        "largest batch (people per call) of the optimisation profile",
        range=(1, 1024),
        read_only=True,
    )
    opt_batch: int = setting(
        0,
        "batch TensorRT tunes kernels for (0: half of max_batch)",
        range=(0, 1024),
        read_only=True,
    )
    workspace_mb: int = setting(
        1024, "builder workspace limit", range=(16, 1 << 20), unit="MiB", read_only=True
    )
    builder_optimization_level: int = setting(
        -1,
        "builder optimisation level 0..5 (-1: TensorRT's default, 3)",
        range=(-1, 5),
        read_only=True,
    )
    engine_cache_dir: str = setting(
        "",
        "engine cache directory (empty: $POSE3D_ENGINE_CACHE or ~/.cache/pose3d_ros/engines)",
        read_only=True,
    )
    calibration_file: str = setting(
        "",
        "int8: .npy (single input) or .npz (one array per input name) of real inputs",
        read_only=True,
    )
    calibration_batch: int = setting(
        16, "int8: batch size of the calibrator", range=(1, 1024), read_only=True
    )
    warmup_runs: int = setting(
        10, "inference runs on zeros after loading", range=(0, 10000), read_only=True
    )
    device: int = setting(0, "CUDA device index", range=(0, 64), read_only=True)
    rebuild: bool = setting(
        False, "rebuild the engine even if a valid cached one exists", read_only=True
    )
    allow_build: bool = setting(
        True,
        "build a missing/stale engine at load time (false: fail; build it beforehand with "
        "`pose3d engine build`)",
        read_only=True,
    )


def resolved_opt_batch(s: TensorRTSettings) -> int:
    opt = s.opt_batch or math.ceil(s.max_batch / 2)
    return max(1, min(opt, s.max_batch))


def onnx_interface(onnx_path: Path) -> tuple[list[tuple[str, list, int]], dict[str, str]]:
    """Graph inputs as (name, dims with None/str for dynamic, onnx elem type) and metadata."""
    try:
        import onnx
    except ImportError as e:
        raise BackendError(
            f"building a TensorRT engine from ONNX needs the onnx package ({e}): pip install onnx"
        ) from e
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:
        raise BackendError(f"{onnx_path} is not a readable ONNX model: {e}") from e
    inits = {i.name for i in model.graph.initializer}
    inputs = []
    for v in model.graph.input:
        if v.name in inits:
            continue
        dims: list[int | str | None] = []
        for d in v.type.tensor_type.shape.dim:
            dims.append(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None))
        inputs.append((v.name, dims, v.type.tensor_type.elem_type))
    return inputs, {p.key: p.value for p in model.metadata_props}


def batch_profile(
    inputs: list[tuple[str, list, int]], max_batch: int, opt_batch: int
) -> dict[str, tuple[tuple[int, ...], ...]]:
    """(min, opt, max) shapes with a dynamic axis 0 of 1..max_batch; other dims must be static."""
    profile = {}
    for name, dims, _ in inputs:
        if not dims:
            raise BackendError(f"input {name!r} has no static rank")
        rest = dims[1:]
        bad = [i + 1 for i, d in enumerate(rest) if not (isinstance(d, int) and d > 0)]
        if bad:
            raise BackendError(
                f"input {name!r} has dynamic axes {bad} besides the batch axis: "
                "TensorRT's profile here covers the batch only; export with fixed "
                "sizes (see backends.onnx_checks)"
            )
        b0 = dims[0]
        if isinstance(b0, int) and b0 > 0:  # static batch: the profile is that batch
            shape = (b0, *rest)
            profile[name] = (shape, shape, shape)
        else:
            profile[name] = ((1, *rest), (opt_batch, *rest), (max_batch, *rest))
    return profile


def load_calibration_data(path: str | os.PathLike, input_names: list[str]) -> dict[str, np.ndarray]:
    """.npy for a single-input model, .npz with one array per input name; float32, C order."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"calibration file {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:
        raise BackendError(f"cannot read calibration file {path}: {e}") from e
    if isinstance(loaded, np.ndarray):
        if len(input_names) != 1:
            raise BackendError(
                f"{path} is one array but the model has inputs {input_names}: "
                "use an .npz with one array per input"
            )
        data = {input_names[0]: loaded}
    else:
        with loaded:
            missing = [n for n in input_names if n not in loaded.files]
            if missing:
                raise BackendError(f"calibration file {path} lacks input(s) {missing}")
            data = {n: loaded[n] for n in input_names}
    counts = {len(a) for a in data.values()}
    if len(counts) != 1 or 0 in counts:
        raise BackendError(f"calibration arrays in {path} must be non-empty with equal lengths")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in data.items()}


def make_entropy_calibrator(
    trt, cuda, data: dict[str, np.ndarray], batch_size: int, cache_path: Path | None
):
    """An IInt8EntropyCalibrator2 feeding ``data`` in batches of ``batch_size`` (tail dropped)."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.count = len(next(iter(data.values())))
            self.batch = min(batch_size, self.count)
            self.index = 0
            self.ptrs = {n: cuda.malloc(self.batch * a[0].nbytes) for n, a in data.items()}

        def get_batch_size(self) -> int:
            return self.batch

        def get_batch(self, names, *args):
            if self.index + self.batch > self.count:
                return None
            out = []
            for n in names:
                chunk = np.ascontiguousarray(data[n][self.index : self.index + self.batch])
                cuda.htod(self.ptrs[n], chunk)
                out.append(int(self.ptrs[n]))
            cuda.sync()
            self.index += self.batch
            return out

        def read_calibration_cache(self):
            if cache_path is not None and cache_path.is_file():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache) -> None:
            if cache_path is not None:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_bytes(bytes(cache))

        def free(self) -> None:
            for p in self.ptrs.values():
                cuda.free(p)
            self.ptrs = {}

    return EntropyCalibrator()


# -------------------------------------------------------------------------------------------
# build
# -------------------------------------------------------------------------------------------
def build_serialized_engine(
    trt,
    onnx_path: Path,
    settings: TensorRTSettings,
    profile: dict[str, tuple[tuple[int, ...], ...]],
    *,
    cuda=None,
    calibration: dict[str, np.ndarray] | None = None,
    calibration_cache: Path | None = None,
    trt_logger=None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialised engine (FP32/FP16/INT8, one profile)."""
    logger = trt_logger or trt.Logger(trt.Logger.WARNING)
    major = int(trt.__version__.split(".")[0])
    if major >= 11 and settings.precision != "fp32":
        raise BackendError(
            f"TensorRT {trt.__version__} removed the FP16/INT8 builder flags and calibrators "
            "(strongly typed networks only): use TensorRT 8.6/10.x (JetPack 6 ships 8.6 or 10.3) "
            "for --fp16/--int8, or precision fp32 with an ONNX already converted to FP16/Q-DQ"
        )
    builder = trt.Builder(logger)
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer precisions in inspector
    if settings.builder_optimization_level >= 0 and hasattr(config, "builder_optimization_level"):
        config.builder_optimization_level = settings.builder_optimization_level
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name not in profile:
            raise BackendError(f"network input {tensor.name!r} missing from the profile")
        opt_profile.set_shape(tensor.name, *profile[tensor.name])
    config.add_optimization_profile(opt_profile)

    if settings.precision in ("fp16", "int8"):
        if not getattr(builder, "platform_has_fast_fp16", True):
            log.warning("this GPU has no fast FP16: the engine may be slower than FP32")
        config.set_flag(trt.BuilderFlag.FP16)  # int8: FP16 for layers without INT8 kernels
    calibrator = None
    if settings.precision == "int8":
        if calibration is None:
            raise BackendError("precision int8 needs calibration data (calibration_file / --calib)")
        if not getattr(builder, "platform_has_fast_int8", True):
            log.warning("this GPU has no fast INT8")
        cal_batch = min(settings.calibration_batch, len(next(iter(calibration.values()))))
        cal_profile = builder.create_optimization_profile()
        for name, (_, _, mx) in profile.items():
            shape = (cal_batch, *mx[1:])
            cal_profile.set_shape(name, shape, shape, shape)
            got = (
                next(iter(calibration.values())).shape[1:]
                if len(calibration) == 1
                else (calibration[name].shape[1:])
            )
            if tuple(got) != tuple(mx[1:]):
                raise BackendError(
                    f"calibration data for {name!r} has per-sample shape "
                    f"{tuple(got)}, the model wants {tuple(mx[1:])}"
                )
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = make_entropy_calibrator(trt, cuda, calibration, cal_batch, calibration_cache)
        config.int8_calibrator = calibrator  # implicit quantisation (deprecated in TRT 10.1+,
        config.set_calibration_profile(cal_profile)  # still supported through 10.x)
    start = time.perf_counter()
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if serialized is None:
        raise BackendError(
            f"TensorRT {trt.__version__} failed to build an engine from "
            f"{onnx_path} (see the TensorRT log above)"
        )
    log.info(
        "built %s engine from %s in %.1f s",
        settings.precision,
        onnx_path.name,
        time.perf_counter() - start,
    )
    return bytes(serialized)


# -------------------------------------------------------------------------------------------
# engine inspector: layer/precision summary
# -------------------------------------------------------------------------------------------
_PRECISION_PATTERNS = (
    ("int8", re.compile(r"\bint8\b", re.I)),
    ("fp16", re.compile(r"\b(fp16|half)\b", re.I)),
    ("fp32", re.compile(r"\b(fp32|float)\b", re.I)),
    ("int32", re.compile(r"\bint32\b", re.I)),
    ("int64", re.compile(r"\bint64\b", re.I)),
    ("bool", re.compile(r"\bbool\b", re.I)),
)


def _precision_of(fmt: str) -> str:
    for name, pattern in _PRECISION_PATTERNS:
        if pattern.search(fmt or ""):
            return name
    return "?"


def parse_layer_information(info_json: str) -> list[dict[str, str]]:
    """Engine inspector JSON -> [{name, type, precision}] (precision of each layer's output)."""
    data = json.loads(info_json)
    layers = []
    for layer in data.get("Layers", []):
        if isinstance(layer, str):  # ProfilingVerbosity below DETAILED: names only
            layers.append({"name": layer, "type": "?", "precision": "?"})
            continue
        outputs = layer.get("Outputs") or []
        fmt = outputs[0].get("Format/Datatype", "") if outputs else ""
        layers.append(
            {
                "name": str(layer.get("Name", "?")),
                "type": str(layer.get("LayerType", "?")),
                "precision": _precision_of(fmt),
            }
        )
    return layers


def format_layer_summary(layers: list[dict[str, str]], max_rows: int = 60) -> str:
    counts: dict[str, int] = {}
    for layer in layers:
        counts[layer["precision"]] = counts.get(layer["precision"], 0) + 1
    lines = [f"{len(layers)} layers: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))]
    width = max((len(x["type"]) for x in layers[:max_rows]), default=4)
    for layer in layers[:max_rows]:
        lines.append(f"  {layer['precision']:>5}  {layer['type']:<{width}}  {layer['name']}")
    if len(layers) > max_rows:
        lines.append(f"  ... {len(layers) - max_rows} more")
    return "\n".join(lines)


def engine_layers(trt, engine) -> list[dict[str, str]]:
    inspector = engine.create_engine_inspector()
    return parse_layer_information(
        inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    )


# -------------------------------------------------------------------------------------------
# the backend
# -------------------------------------------------------------------------------------------
def check_runnable(
    gpu: Callable[[], tuple[bool, str]] = gpu_present,
    tensorrt: Callable[[], tuple[bool, str]] = tensorrt_status,
) -> None:
    """BackendError naming everything missing for the TensorRT backend (GPU, module)."""
    missing = []
    ok, why = gpu()
    if not ok:
        missing.append(why)
    ok, why = tensorrt()
    if not ok:
        missing.append(why)
    if missing:
        raise BackendError("backend 'tensorrt' cannot run here: " + "; ".join(missing))


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self, model_path: str | Path, *, settings: TensorRTSettings | None = None, **options: Any
    ) -> None:
        self.settings = s = settings_from_options(TensorRTSettings, settings, **options)
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"model file {path} does not exist")
        self.path = path
        check_runnable()
        trt = import_tensorrt()
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._cuda = cuda_runtime(s.device)
        self.gpu = self._cuda.info()
        self._runtime = trt.Runtime(self._logger)
        if path.suffix in ENGINE_SUFFIXES:
            self._engine, side = self._load_prebuilt(path)
            self.engine_path, self.engine_status = path, f"prebuilt engine {path}"
        else:
            result = self._obtain_from_onnx(path)
            self._engine, side = result.engine, result.sidecar
            self.engine_path = result.path
            self.engine_status = ("built" if result.built else "cached") + f": {result.reason}"
        log.info("tensorrt engine %s (%s)", self.engine_path, self.engine_status)
        self._metadata = dict(side.get("metadata") or {})
        self.precision = str((side.get("key") or {}).get("precision", s.precision))
        self._setup_io()
        self.last_timing = Timing()
        self.warmup_ms = 0.0
        if s.warmup_runs:
            self.warmup_ms = self.warmup(s.warmup_runs, batch=self._opt_batch)

    # -- engine ------------------------------------------------------------------------------
    def _deserialize(self, data: bytes):
        return self._runtime.deserialize_cuda_engine(data)

    def _device_key_parts(self) -> dict[str, str]:
        return {
            "trt_version": self._trt.__version__,
            "gpu_name": self.gpu.key_name,
            "compute_capability": self.gpu.compute_capability,
        }

    def _load_prebuilt(self, path: Path):
        decision = check_engine(path, None)
        if not decision.usable:
            raise BackendError(
                f"refusing to use engine {path}: {decision.reason}. Rebuild it "
                "with `pose3d engine build` or pass the ONNX model instead"
            )
        stored = EngineKey.from_dict(decision.sidecar["key"])
        problems = device_mismatch(stored, **self._device_key_parts())
        if problems:
            raise BackendError(
                f"engine {path} cannot run here: {'; '.join(problems)}. Rebuild "
                "it on this device with `pose3d engine build` (or pass the ONNX)"
            )
        try:
            engine = self._deserialize(path.read_bytes())
        except Exception as e:
            engine, problems = None, [str(e)]
        if engine is None:
            raise BackendError(
                f"TensorRT {self._trt.__version__} cannot deserialise {path} "
                f"{problems or ''}: rebuild it with `pose3d engine build`"
            )
        return engine, decision.sidecar

    def _obtain_from_onnx(self, onnx_path: Path):
        s = self.settings
        inputs, metadata = onnx_interface(onnx_path)
        profile = batch_profile(inputs, s.max_batch, resolved_opt_batch(s))
        calib_sha = ""
        calibration = None
        if s.precision == "int8":
            if not s.calibration_file:
                raise BackendError(
                    "precision int8 needs calibration_file (.npy of real inputs; "
                    "`pose3d engine calib` writes one)"
                )
            calib_sha = sha256_file(s.calibration_file)
        key = EngineKey.create(
            onnx_path,
            precision=s.precision,
            profile=profile,
            calibration_sha256=calib_sha,
            builder={
                "workspace_mb": s.workspace_mb,
                "optimization_level": s.builder_optimization_level,
            },
            **self._device_key_parts(),
        )
        cache_dir = Path(s.engine_cache_dir) if s.engine_cache_dir else default_cache_dir()
        engine_path, _ = cache_paths(cache_dir, onnx_path, key)

        def build() -> bytes:
            nonlocal calibration
            if s.precision == "int8" and calibration is None:
                calibration = load_calibration_data(s.calibration_file, [n for n, _, _ in inputs])
            return build_serialized_engine(
                self._trt,
                onnx_path,
                s,
                profile,
                cuda=self._cuda,
                calibration=calibration,
                calibration_cache=engine_path.with_suffix(".calib"),
                trt_logger=self._logger,
            )

        try:
            return obtain_engine(
                engine_path,
                key,
                build=build,
                deserialize=self._deserialize,
                metadata=metadata,
                force=s.rebuild,
                allow_build=s.allow_build,
                logger=log,
            )
        except (FileNotFoundError, RuntimeError) as e:
            if isinstance(e, BackendError):
                raise
            raise BackendError(str(e)) from e

    # -- IO ----------------------------------------------------------------------------------
    def _setup_io(self) -> None:
        trt, engine = self._trt, self._engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendError(
                f"cannot create an execution context for {self.engine_path} (out of GPU memory?)"
            )
        self._inputs, self._outputs = [], []
        self._dtypes: dict[str, np.dtype] = {}
        self._ptrs: dict[str, int] = {}
        self._max_batch = None
        self._opt_batch = 1
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for n in input_names:
            _, opt, mx = (tuple(d) for d in engine.get_tensor_profile_shape(n, 0))
            self._max_batch = mx[0] if self._max_batch is None else min(self._max_batch, mx[0])
            self._opt_batch = opt[0]
            self._context.set_input_shape(n, mx)
        for n in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(n)))
            self._dtypes[n] = dtype
            spec_shape = tuple("batch" if d < 0 else int(d) for d in engine.get_tensor_shape(n))
            spec = TensorSpec(n, spec_shape, dtype)
            (self._inputs if n in input_names else self._outputs).append(spec)
            max_shape = tuple(self._context.get_tensor_shape(n))
            self._ptrs[n] = self._cuda.malloc(int(np.prod(max_shape)) * dtype.itemsize)
            self._context.set_tensor_address(n, self._ptrs[n])
        self._max_batch = self._max_batch or 1

    @property
    def max_batch(self) -> int:
        return int(self._max_batch)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = {s.name for s in self._inputs}
        if set(feeds) != names:
            raise BackendError(f"{self.path}: expected inputs {sorted(names)}, got {sorted(feeds)}")
        arrays = {n: np.ascontiguousarray(feeds[n], dtype=self._dtypes[n]) for n in names}
        batches = {a.shape[0] for a in arrays.values()}
        if len(batches) != 1:
            raise BackendError(f"inputs have different batch sizes {sorted(batches)}")
        batch = batches.pop()
        start = time.perf_counter()
        if batch <= self._max_batch:
            out = self._run_chunk(arrays)
        else:  # more people than the profile: run in chunks of max_batch
            parts = [
                self._run_chunk({n: a[i : i + self._max_batch] for n, a in arrays.items()})
                for i in range(0, batch, self._max_batch)
            ]
            out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        self.last_timing = Timing(total_ms=(time.perf_counter() - start) * 1e3)
        return out

    def _run_chunk(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ctx, cuda = self._context, self._cuda
        for n, a in arrays.items():
            if not ctx.set_input_shape(n, a.shape):
                raise BackendError(
                    f"input {n!r} shape {a.shape} is outside the engine's profile "
                    f"(batch 1..{self._max_batch}, spec {self._spec(n).shape})"
                )
            cuda.htod(self._ptrs[n], a)
        outs = {
            s.name: np.empty(tuple(ctx.get_tensor_shape(s.name)), dtype=s.dtype)
            for s in self._outputs
        }
        if not ctx.execute_async_v3(cuda.stream_handle):
            raise BackendError(f"TensorRT execution failed on {self.engine_path}")
        for n, host in outs.items():
            cuda.dtoh(host, self._ptrs[n])
        cuda.sync()
        return outs

    def _spec(self, name: str) -> TensorSpec:
        return next(s for s in self._inputs + self._outputs if s.name == name)

    def layers(self) -> list[dict[str, str]]:
        return engine_layers(self._trt, self._engine)

    def describe(self) -> str:
        return (
            f"tensorrt {self._trt.__version__} ({self.gpu.name}, sm {self.gpu.compute_capability}"
            f", {self.precision}, batch 1..{self._max_batch}, {self._cuda.api})"
        )

    def close(self) -> None:
        for p in getattr(self, "_ptrs", {}).values():
            self._cuda.free(p)
        self._ptrs = {}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def read_engine_metadata(engine_path: str | os.PathLike) -> dict[str, Any]:
    """Sidecar of a cached/prebuilt engine (key, hashes, model metadata), without TensorRT."""
    try:
        return read_sidecar(engine_path)
    except (OSError, ValueError) as e:
        raise BackendError(str(e)) from e
