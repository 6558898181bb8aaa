"""TensorRT backend (tensorrt Python API, TensorRT 8.5 .. 10.x: JetPack 5/6, x86 wheels) and its
settings.

    backend = TensorRTBackend("htnet_small.onnx", precision="fp16", max_batch=8)
    out = backend.run({"keypoints": x})                  # host numpy in, host numpy out

From an ONNX file: :func:`plan_engine` computes the engine's cache key and file (the same
function for the node and ``pose3d engine build``, so an engine built by one is the one the
other loads); a cached engine whose sidecar matches is loaded, otherwise it is built
(FP32/FP16/INT8), cached and loaded (see cache.py). From a prebuilt ``.engine``/``.plan``: it is
used only if its sidecar says it was built for this TensorRT version and GPU.

Device buffers come from cuda-python (memory.py), allocated once for ``max_batch`` at load time;
larger batches run in chunks. Inference uses the name-based API (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) that TensorRT 8.5+ and 10.x share. Nothing here
imports tensorrt or CUDA at module import time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
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
from pose3d_ros.backends.onnx_checks import OnnxInterface, read_interface
from pose3d_ros.backends.tensorrt.build import (
    batch_profile,
    build_serialized_engine,
    engine_layers,
    load_calibration_data,
    resolved_opt_batch,
)
from pose3d_ros.backends.tensorrt.cache import (
    DeviceKey,
    EngineKey,
    EngineResult,
    Profile,
    cache_dir,
    cache_paths,
    check_engine,
    device_mismatch,
    obtain_engine,
    read_sidecar,
)
from pose3d_ros.backends.tensorrt.memory import CudaRuntime
from pose3d_ros.backends.tensorrt.probe import ENGINE_SUFFIXES, check_tensorrt, import_tensorrt
from pose3d_ros.core.checksums import sha256_file
from pose3d_ros.core.parameters import setting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorRTEngineSettings:
    """How engines are built and found: the node's ``pipeline.tensorrt.*`` parameters and
    ``pose3d engine build``'s flags. Every field that changes the engine is in its cache key."""

    precision: str = setting(
        "fp16",
        "TensorRT engine precision (int8 needs calibration_file; in the pose pipeline int8 "
        "applies to the lifter and the image models are built fp16)",
        choices=("fp32", "fp16", "int8"),
        read_only=True,
    )
    max_batch: int = setting(
        8,
        "Largest batch (people per inference) of the engine's optimisation profile; "
        "larger batches run in chunks",
        range=(1, 1024),
        read_only=True,
    )
    workspace_mb: int = setting(
        1024,
        "TensorRT builder workspace limit",
        range=(16, 1 << 20),
        unit="MiB",
        read_only=True,
    )
    engine_dir: str = setting(
        "",
        "Folder of built engines (empty: $POSE3D_ENGINE_DIR, else ~/.cache/pose3d_ros/engines)",
        read_only=True,
    )
    allow_build: bool = setting(
        True,
        "Build a missing or stale engine at start-up (minutes for the image models); false: "
        "fail instead (build beforehand with `pose3d engine build`)",
        read_only=True,
    )
    calibration_file: str = setting(
        "",
        "int8: .npy (one input) or .npz (one array per input name) of real inputs, made on a "
        "PC by `pose3d-tools calib`",
        read_only=True,
    )


@dataclass(frozen=True)
class TensorRTSettings(TensorRTEngineSettings):
    """All options of the TensorRT backend: the engine settings plus tuning and run options."""

    opt_batch: int = setting(
        0,
        "batch TensorRT tunes kernels for (0: half of max_batch)",
        range=(0, 1024),
        read_only=True,
    )
    builder_optimization_level: int = setting(
        -1,
        "builder optimisation level 0..5 (-1: TensorRT's default, 3)",
        range=(-1, 5),
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


def tensorrt_settings(settings: TensorRTSettings | None = None, **options: Any) -> TensorRTSettings:
    """Validated backend settings from an instance and/or keyword overrides (BackendError)."""
    if isinstance(settings, TensorRTEngineSettings) and not isinstance(settings, TensorRTSettings):
        settings = TensorRTSettings(**dataclasses.asdict(settings))
    return settings_from_options(TensorRTSettings, settings, **options)


@dataclass(frozen=True)
class EnginePlan:
    """Which engine an ONNX model needs here: its cache key, file and optimisation profile."""

    key: EngineKey
    path: Path
    profile: Profile
    interface: OnnxInterface


def plan_engine(
    onnx_path: str | os.PathLike, settings: TensorRTSettings, device: DeviceKey
) -> EnginePlan:
    """The engine key and cache file for ``onnx_path`` built with ``settings`` on ``device``.

    Needs onnx (to read the inputs) but no TensorRT or GPU: ``device`` says what the GPU is.
    """
    onnx_path = Path(onnx_path)
    s = settings
    try:
        interface = read_interface(onnx_path)
    except ImportError as e:
        raise BackendError(
            f"building a TensorRT engine from ONNX needs the onnx package ({e}): pip install onnx"
        ) from e
    except (FileNotFoundError, ValueError) as e:
        raise BackendError(str(e)) from e
    profile = batch_profile(
        interface.inputs, s.max_batch, resolved_opt_batch(s.max_batch, s.opt_batch)
    )
    calibration_sha256 = ""
    if s.precision == "int8":
        if not s.calibration_file:
            raise BackendError(
                "precision int8 needs calibration_file (.npy of real inputs; made on a PC by "
                "`pose3d-tools calib`)"
            )
        if not Path(s.calibration_file).is_file():
            raise BackendError(f"calibration file {s.calibration_file} does not exist")
        calibration_sha256 = sha256_file(s.calibration_file)
    key = EngineKey.create(
        onnx_path,
        **dataclasses.asdict(device),
        precision=s.precision,
        profile=profile,
        calibration_sha256=calibration_sha256,
        builder={
            "workspace_mb": s.workspace_mb,
            "optimization_level": s.builder_optimization_level,
        },
    )
    engine_path, _ = cache_paths(cache_dir(s.engine_dir), onnx_path, key)
    return EnginePlan(key, engine_path, profile, interface)


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self, model_path: str | Path, *, settings: TensorRTSettings | None = None, **options: Any
    ) -> None:
        self.settings = s = tensorrt_settings(settings, **options)
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"model file {path} does not exist")
        self.path = path
        prebuilt = path.suffix.lower() in ENGINE_SUFFIXES
        ready = check_tensorrt(needs_onnx=not prebuilt)
        if not ready.ok:
            raise ready.error()
        trt = import_tensorrt()
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._cuda = CudaRuntime(s.device)
        self.gpu = self._cuda.info()
        self.device_key = DeviceKey(trt.__version__, self.gpu.key_name, self.gpu.compute_capability)
        self._runtime = trt.Runtime(self._logger)
        if prebuilt:
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

    def _load_prebuilt(self, path: Path):
        decision = check_engine(path, None)
        if not decision.usable:
            raise BackendError(
                f"refusing to use engine {path}: {decision.reason}. Rebuild it "
                "with `pose3d engine build` or pass the ONNX model instead"
            )
        stored = EngineKey.from_dict(decision.sidecar["key"])
        problems = device_mismatch(stored, self.device_key)
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

    def _obtain_from_onnx(self, onnx_path: Path) -> EngineResult:
        s = self.settings
        plan = plan_engine(onnx_path, s, self.device_key)
        calibration = None

        def build() -> bytes:
            nonlocal calibration
            if s.precision == "int8" and calibration is None:
                names = [i.name for i in plan.interface.inputs]
                calibration = load_calibration_data(s.calibration_file, names)
            return build_serialized_engine(
                self._trt,
                onnx_path,
                s,
                plan.profile,
                cuda=self._cuda,
                calibration=calibration,
                calibration_cache=plan.path.with_suffix(".calib"),
                trt_logger=self._logger,
            )

        try:
            return obtain_engine(
                plan.path,
                plan.key,
                build=build,
                deserialize=self._deserialize,
                metadata=plan.interface.metadata,
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
        if getattr(self, "_cuda", None) is not None:
            self._cuda.close()
            self._cuda = None

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
