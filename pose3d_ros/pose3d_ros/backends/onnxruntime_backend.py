"""ONNX Runtime backend: the default on any CPU, and on NVIDIA GPUs through its TensorRT/CUDA
execution providers when the onnxruntime-gpu build is installed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pose3d_ros.backends.base import Backend, BackendError, TensorSpec, Timing

# Preferred order; only the ones this onnxruntime build offers are used.
PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)

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


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int = 0,
        providers: list[str] | None = None,
        optimized_model_dir: str | Path | None = None,
    ) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"model file {path} does not exist")
        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in PROVIDER_PREFERENCE if p in available]
        else:
            missing = [p for p in providers if p not in available]
            if missing:
                raise BackendError(
                    f"onnxruntime {ort.__version__} lacks provider(s) {missing}; "
                    f"available: {available}"
                )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if optimized_model_dir is not None:
            out = Path(optimized_model_dir)
            out.mkdir(parents=True, exist_ok=True)
            options.optimized_model_filepath = str(out / f"{path.stem}.ort-optimized.onnx")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime cannot load {path}: {e}") from e
        self.path = path
        self.providers = self._session.get_providers()
        self._inputs = [_spec(i) for i in self._session.get_inputs()]
        self._outputs = [_spec(o) for o in self._session.get_outputs()]
        self._output_names = [o.name for o in self._outputs]
        self.last_timing = Timing()

    @property
    def inputs(self) -> list[TensorSpec]:
        return self._inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self._outputs

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        results = self._session.run(self._output_names, feeds)
        self.last_timing = Timing(total_ms=(time.perf_counter() - start) * 1e3)
        return dict(zip(self._output_names, results, strict=True))

    def describe(self) -> str:
        return f"onnxruntime ({', '.join(self.providers)})"


def _spec(node) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))
