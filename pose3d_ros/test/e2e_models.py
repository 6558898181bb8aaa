"""Hand-built ONNX models that follow the E2E image model contract (stages/image_estimation.py)
with outputs known in advance, for the runtime's known-answer tests (no trained model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# onnx is optional on a robot (TensorRT tooling only): the tests built on these models skip
# without it.
onnx = pytest.importorskip("onnx")
TensorProto, helper = onnx.TensorProto, onnx.helper
numpy_helper = pytest.importorskip("onnx.numpy_helper")

CONTRACT_METADATA = {
    "kind": "e2e",
    "model": "e2e_constant_test",
    "joint_set": "h36m17",
    "input_size": "32",
    "crop_scale": "1.4",
    "mean": "0.485,0.456,0.406",
    "std": "0.229,0.224,0.225",
    "variant": "baseline",
}


def constant_pose_model(
    path: Path,
    joints: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    size: int = 32,
    batch: int | str = "batch",
    metadata: dict[str, str | None] | None = None,
) -> Path:
    """An ONNX model whose "joints" output is ``joints`` (17, 3) and "confidence" output is
    ``confidence`` (17,) (default 0.9) for every crop of the batch, whatever the image; its
    input is "image" (batch, 3, size, size). ``metadata`` overrides the contract's entries (None
    removes one)."""
    joints = np.asarray(joints, np.float32).reshape(1, 17, 3)
    conf = np.full((1, 17), 0.9, np.float32) if confidence is None else confidence
    conf = np.asarray(conf, np.float32).reshape(1, 17)
    consts = [
        numpy_helper.from_array(joints, "pose"),
        numpy_helper.from_array(conf, "conf"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape3"),
        numpy_helper.from_array(np.array([-1, 1], np.int64), "shape2"),
        numpy_helper.from_array(np.zeros((), np.float32), "zero"),
    ]
    nodes = [  # (B, 1, 1, 1) per-crop mean, times 0: the batch axis without a data dependence
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Reshape", ["nothing", "shape3"], ["nothing3"]),
        helper.make_node("Reshape", ["nothing", "shape2"], ["nothing2"]),
        helper.make_node("Add", ["nothing3", "pose"], ["joints"]),
        helper.make_node("Add", ["nothing2", "conf"], ["confidence"]),
    ]
    graph = helper.make_graph(
        nodes,
        "e2e_constant_pose",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, size, size])],
        [
            helper.make_tensor_value_info("joints", TensorProto.FLOAT, [batch, 17, 3]),
            helper.make_tensor_value_info("confidence", TensorProto.FLOAT, [batch, 17]),
        ],
        consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    props = {**CONTRACT_METADATA, "input_size": str(size), **(metadata or {})}
    helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
