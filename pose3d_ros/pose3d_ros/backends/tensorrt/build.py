"""Building a TensorRT engine from ONNX: the optimisation profile, INT8 calibration data and
calibrator, the builder itself, and the engine inspector's per-layer precision summary.

    profile = batch_profile(read_interface(onnx).inputs, max_batch=8, opt_batch=4)
    plan = build_serialized_engine(trt, onnx, settings, profile, cuda=cuda)   # bytes

Only ``build_serialized_engine`` and the calibrator need the tensorrt module (passed in as
``trt``); the profile, calibration-file and layer-summary helpers are plain Python.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pose3d_ros.backends.base import BackendError
from pose3d_ros.backends.onnx_checks import GraphInput
from pose3d_ros.backends.tensorrt.cache import Profile

if TYPE_CHECKING:
    from pose3d_ros.backends.tensorrt.backend import TensorRTSettings

log = logging.getLogger(__name__)


# -- optimisation profile ----------------------------------------------------------------------
def resolved_opt_batch(max_batch: int, opt_batch: int) -> int:
    """The batch TensorRT tunes kernels for: ``opt_batch``, or half of ``max_batch`` when 0."""
    opt = opt_batch or math.ceil(max_batch / 2)
    return max(1, min(opt, max_batch))


def batch_profile(inputs: list[GraphInput], max_batch: int, opt_batch: int) -> Profile:
    """{input: (min, opt, max) shapes}: a dynamic axis 0 of 1..max_batch (a static batch stays
    as it is); every other axis must be static."""
    profile = {}
    for inp in inputs:
        name, dims = inp.name, inp.dims
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


# -- INT8 calibration ---------------------------------------------------------------------
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


# -- build ----------------------------------------------------------------------------------
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


# -- engine inspector: layer/precision summary -----------------------------------------------
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
