"""Will TensorRT build this ONNX model? Checks that need only the ``onnx`` package.

    problems = check_tensorrt_compatibility("out/htnet_small.onnx")   # [] = no known problem

The op allow-list (and DFT/STFT/custom-domain detection) is :func:`check_tensorrt_ops` here (one
list for the whole project, needing only ``onnx``, so it runs on a Jetson without torch); also
the checks on the graph's interface:
symbolic (dynamic) dimensions other than the batch axis, which the engine's optimisation profile
cannot cover (it has a dynamic batch only), tensor types TensorRT does not run (float64,
strings, complex), and models whose weights live in external files that are missing.
The TensorRT ONNX parser stays the final authority: this is the fast, GPU-free pre-flight.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BATCH_AXIS = 0

# onnx.TensorProto data types TensorRT cannot take as network inputs/outputs.
_UNSUPPORTED_IO_TYPES = {
    11: "double",  # DOUBLE
    8: "string",  # STRING
    14: "complex64",
    15: "complex128",
    5: "int16",  # INT16
    12: "uint32",
    13: "uint64",
}


# Conservative allow-list: ONNX ops (default domain) that TensorRT 8.6+ parses and runs in
# FP32/FP16 without plugins. Anything else is reported by check_tensorrt_ops.
TENSORRT_SAFE_OPS = frozenset({
    "Abs", "Add", "ArgMax", "ArgMin", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip",
    "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Div", "Dropout",
    "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "Greater", "HardSigmoid", "HardSwish", "Identity",
    "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Less", "Log", "LogSoftmax",
    "MatMul", "Max", "MaxPool", "Mean", "Min", "Mul", "Neg", "Not", "Pad", "Pow", "PRelu",
    "Reciprocal", "ReduceL2", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "Relu", "Reshape", "Selu", "Shape", "Sigmoid", "Sign", "Sin", "Slice", "Softmax", "Softplus",
    "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "Tile", "Transpose", "Unsqueeze", "Where",
})
# Always rejected, even if someone widens the allow-list: FFT-style and data-dependent ops.
TENSORRT_REJECTED_OPS = frozenset({"DFT", "STFT", "NonZero", "Loop", "Scan", "SequenceConstruct"})


@dataclass(frozen=True)
class GraphInput:
    """One graph input: dims are ints, or str/None for symbolic/unknown axes."""

    name: str
    dims: list[int | str | None]
    elem_type: int  # onnx.TensorProto data type


@dataclass(frozen=True)
class OnnxInterface:
    """What a runtime needs to know of a model without running it (the one ONNX reader)."""

    inputs: list[GraphInput]
    metadata: dict[str, str]  # metadata_props, e.g. the lifter's config


def read_interface(path: str | Path) -> OnnxInterface:
    """Graph inputs (initialisers listed as inputs skipped) and metadata_props of a model.

    Raises ImportError when onnx is missing, FileNotFoundError/ValueError for a bad file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} does not exist")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise ValueError(f"{path} is not a readable ONNX model: {e}") from e
    initialisers = {i.name for i in proto.graph.initializer}
    inputs = [
        GraphInput(v.name, _dims(v), v.type.tensor_type.elem_type)
        for v in proto.graph.input
        if v.name not in initialisers
    ]
    return OnnxInterface(inputs, {p.key: p.value for p in proto.metadata_props})


def read_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an exported model as a dict (plain onnx, no torch needed)."""
    return read_interface(path).metadata


def _iter_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.HasField("g"):
                yield from _iter_nodes(attr.g)
            for sub in attr.graphs:
                yield from _iter_nodes(sub)


def check_tensorrt_ops(onnx_path: str | Path) -> list[str]:
    """Op types in the model outside the conservative TensorRT allow-list (sorted, unique).

    Custom-domain ops are reported as ``domain::OpType``; DFT/STFT and data-dependent control
    flow are always reported. An empty list means every node is a plain, TensorRT-parsable op.
    """
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    bad: set[str] = set()
    for node in _iter_nodes(proto.graph):
        domain = node.domain or ""
        if domain not in ("", "ai.onnx"):
            bad.add(f"{domain}::{node.op_type}")
        elif node.op_type in TENSORRT_REJECTED_OPS or node.op_type not in TENSORRT_SAFE_OPS:
            bad.add(node.op_type)
    return sorted(bad)


def _op_problems(onnx_path: str | os.PathLike) -> list[str]:
    return [f"op {op} is not on the TensorRT allow-list" for op in check_tensorrt_ops(onnx_path)]


def _dims(value_info) -> list[int | str | None]:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    out: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def interface_problems(model) -> list[str]:
    """Dynamic non-batch dims, unknown ranks and unsupported dtypes of graph inputs/outputs."""
    problems = []
    initialisers = {i.name for i in model.graph.initializer}
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for v in values:
            if v.name in initialisers:  # old exporters list weights as inputs
                continue
            elem = v.type.tensor_type.elem_type
            if elem in _UNSUPPORTED_IO_TYPES:
                problems.append(
                    f"{kind} {v.name!r} is {_UNSUPPORTED_IO_TYPES[elem]}, "
                    "which TensorRT cannot bind"
                )
            if not v.type.tensor_type.HasField("shape"):
                problems.append(f"{kind} {v.name!r} has no static rank")
                continue
            dims = _dims(v)
            if not dims:
                continue
            for axis, d in enumerate(dims):
                if isinstance(d, int) and d > 0:
                    continue
                if axis == BATCH_AXIS:
                    continue  # covered by the optimisation profile (1..max_batch)
                problems.append(
                    f"{kind} {v.name!r} axis {axis} is dynamic ({d!r}); TensorRT needs it static "
                    "(only the batch axis 0 is in the optimisation profile): export with a fixed "
                    "size"
                )
    return problems


def external_data_problems(model, onnx_path: Path) -> list[str]:
    problems = []
    for init in model.graph.initializer:
        if init.data_location == 1:  # EXTERNAL
            loc = {e.key: e.value for e in init.external_data}.get("location", "")
            if loc and not (onnx_path.parent / loc).is_file():
                problems.append(f"initialiser {init.name!r} refers to missing external data {loc}")
    return problems


def check_tensorrt_compatibility(onnx_path: str | os.PathLike) -> list[str]:
    """Problems TensorRT would have with the model (empty list: none known).

    Raises FileNotFoundError/ValueError when the file is missing or not an ONNX model.
    """
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise ValueError(f"{path} is not a readable ONNX model: {e}") from e
    if not model.graph.node:
        raise ValueError(f"{path} is not a readable ONNX model: empty graph")
    return _op_problems(path) + interface_problems(model) + external_data_problems(model, path)
