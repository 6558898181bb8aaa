"""ONNX Runtime backend: the default on any CPU, and on NVIDIA GPUs through its TensorRT/CUDA
execution providers when an onnxruntime-gpu build is installed.

    backend = OnnxRuntimeBackend("out/htnet_small.onnx", threads=2)
    backend = OnnxRuntimeBackend(path, settings=OnnxRuntimeSettings(graph_optimization="extended"))

Providers are tried in the order TensorRT EP -> CUDA EP -> CPU (only those this build offers).
On a GPU provider, ``run`` uses IO binding (inputs copied once to the device, outputs bound on the
device and copied back after the run) so ONNX Runtime does not stage through extra host copies;
on the CPU it is a plain ``session.run``.

The optimised-model cache (``optimized_model_dir``) stores the graph after ONNX Runtime's
optimisations, keyed by the model's sha256, the onnxruntime version and the optimisation level,
and loads it with optimisations off next time (faster start on a Jetson). It is used on CPU/CUDA
providers only; with the TensorRT EP the EP's own engine cache (``trt_cache_dir``) is used.
"""

from __future__ import annotations

import hashlib
import logging
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
from pose3d_ros.core.checksums import sha256_file
from pose3d_ros.core.parameters import setting

log = logging.getLogger(__name__)

# Preferred order; only the ones this onnxruntime build offers are used.
PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


@dataclass
class OnnxRuntimeSettings:
    """Session options of the ONNX Runtime backend."""

    threads: int = setting(
        0,
        "intra-op threads (0: ONNX Runtime's default, one per core)",
        range=(0, 256),
        read_only=True,
    )
    spin: bool = setting(
        False,
        "let idle intra-op threads busy-wait for work (faster only on an otherwise idle CPU; "
        "on a robot sharing its cores, spinning threads starve the other stages: measured "
        "3.4x slower end to end on 2 shared cores)",
        read_only=True,
    )
    graph_optimization: str = setting(
        "all", "graph optimisation level", choices=GRAPH_OPTIMIZATION_LEVELS, read_only=True
    )
    providers: str = setting(
        "auto",
        "comma-separated execution providers, or 'auto' (TensorRT EP, CUDA EP, CPU: "
        "those this onnxruntime build offers)",
        read_only=True,
    )
    optimized_model_dir: str = setting(
        "",
        "directory caching the optimised graph (empty: no cache; CPU/CUDA providers only)",
        read_only=True,
    )
    io_binding: bool = setting(
        True, "use IO binding on GPU providers (ignored on the CPU)", read_only=True
    )
    trt_fp16: bool = setting(True, "TensorRT EP: allow FP16 kernels", read_only=True)
    trt_cache_dir: str = setting(
        "",
        "TensorRT EP: engine/timing cache directory (empty: no cache; rebuilt every start)",
        read_only=True,
    )
    device_id: int = setting(
        0, "GPU index for the CUDA/TensorRT providers", range=(0, 64), read_only=True
    )


_LEVEL_NAMES = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def choose_providers(available: list[str], requested: str | list[str] | None) -> list[str]:
    """Providers to use, best first; raises BackendError for a requested one that is missing."""
    if requested is None or requested == "auto" or requested == "":
        chosen = [p for p in PROVIDER_PREFERENCE if p in available]
        return chosen or list(available)
    wanted = (
        [p.strip() for p in requested.split(",")] if isinstance(requested, str) else list(requested)
    )
    missing = [p for p in wanted if p not in available]
    if missing:
        raise BackendError(
            f"this onnxruntime build lacks provider(s) {missing}; available: "
            f"{available} (GPU providers need the onnxruntime-gpu build)"
        )
    return wanted


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    concurrent_runs = True  # InferenceSession.run is thread-safe

    def __init__(
        self,
        model_path: str | Path,
        *,
        settings: OnnxRuntimeSettings | None = None,
        threads: int | None = None,
        providers: str | list[str] | None = None,
        optimized_model_dir: str | Path | None = None,
        **options: Any,
    ) -> None:
        if isinstance(providers, list | tuple):
            providers = ",".join(providers)
        self.settings = s = settings_from_options(
            OnnxRuntimeSettings,
            settings,
            threads=threads,
            providers=providers,
            optimized_model_dir=optimized_model_dir,
            **options,
        )
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"model file {path} does not exist")
        self.path = path
        available = ort.get_available_providers()
        chosen = choose_providers(available, s.providers)
        provider_args = []
        for p in chosen:
            if p == "TensorrtExecutionProvider":
                opts: dict[str, Any] = {"device_id": s.device_id, "trt_fp16_enable": s.trt_fp16}
                if s.trt_cache_dir:
                    Path(s.trt_cache_dir).mkdir(parents=True, exist_ok=True)
                    opts.update(
                        trt_engine_cache_enable=True,
                        trt_engine_cache_path=s.trt_cache_dir,
                        trt_timing_cache_enable=True,
                    )
                provider_args.append((p, opts))
            elif p == "CUDAExecutionProvider":
                provider_args.append((p, {"device_id": s.device_id}))
            else:
                provider_args.append(p)

        options_ = ort.SessionOptions()
        # Fatal only: every failure is raised as BackendError with ORT's message, and the node
        # logs each kind once; ORT's own line per failed run would repeat it on every frame.
        options_.log_severity_level = 4
        options_.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _LEVEL_NAMES[s.graph_optimization]
        )
        if s.threads > 0:
            options_.intra_op_num_threads = s.threads
            options_.inter_op_num_threads = 1
        options_.add_session_config_entry("session.intra_op.allow_spinning", "1" if s.spin else "0")
        load_path = path
        self.cache_note = ""
        if s.optimized_model_dir and "TensorrtExecutionProvider" not in chosen:
            load_path = self._optimised_cache(
                path, Path(s.optimized_model_dir), options_, ort, chosen
            )
        try:
            self._session = ort.InferenceSession(str(load_path), options_, providers=provider_args)
        except Exception as e:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime cannot load {path}: {e}") from e
        self.providers = self._session.get_providers()
        self._inputs = [_spec(i) for i in self._session.get_inputs()]
        self._outputs = [_spec(o) for o in self._session.get_outputs()]
        self._metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self._output_names = [o.name for o in self._outputs]
        self._on_gpu = self.providers[0] in GPU_PROVIDERS
        self._use_binding = s.io_binding and self._on_gpu
        self._ort = ort
        self.last_timing = Timing()

    def _optimised_cache(self, path: Path, cache_dir: Path, options_, ort, chosen) -> Path:
        """Load a cached optimised graph, or arrange for this session to write one."""
        key = hashlib.sha256(
            f"{sha256_file(path)}|{ort.__version__}|{self.settings.graph_optimization}|"
            f"{','.join(chosen)}".encode()
        ).hexdigest()[:16]
        cached = cache_dir / f"{path.stem}.{key}.ort.onnx"
        if cached.is_file() and cached.stat().st_size > 0:
            options_.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            self.cache_note = f"optimised graph from {cached}"
            return cached
        cache_dir.mkdir(parents=True, exist_ok=True)
        options_.optimized_model_filepath = str(cached)
        self.cache_note = f"optimised graph written to {cached}"
        return path

    def _check_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = {i.name for i in self._inputs}
        if set(feeds) != names:
            raise BackendError(f"{self.path}: expected inputs {sorted(names)}, got {sorted(feeds)}")
        out = {}
        for spec in self._inputs:
            arr = np.asarray(feeds[spec.name])
            if arr.dtype != spec.dtype:
                arr = arr.astype(spec.dtype)
            out[spec.name] = np.ascontiguousarray(arr)
        return out

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = self._check_feeds(feeds)
        start = time.perf_counter()
        try:
            if self._use_binding:
                results = self._run_bound(feeds)
            else:
                results = self._session.run(self._output_names, feeds)
        except Exception as e:
            shapes = {k: tuple(v.shape) for k, v in feeds.items()}
            raise BackendError(
                f"onnxruntime failed on {self.path} with inputs {shapes}: {e}"
            ) from e
        self.last_timing = Timing(total_ms=(time.perf_counter() - start) * 1e3)
        return dict(zip(self._output_names, results, strict=True))

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        binding = self._session.io_binding()
        device = "cuda"
        for name, arr in feeds.items():
            value = self._ort.OrtValue.ortvalue_from_numpy(arr, device, self.settings.device_id)
            binding.bind_ortvalue_input(name, value)
        for name in self._output_names:
            binding.bind_output(name, device, self.settings.device_id)
        self._session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def describe(self) -> str:
        extra = ", io-binding" if self._use_binding else ""
        return f"onnxruntime {self._ort.__version__} ({', '.join(self.providers)}{extra})"


def _spec(node) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))
