"""Hand-built ONNX lifters whose answer is known, for the runtime's lifter tests.

Each takes features (B, T, 17, 3) and answers with a simple function of them, so a test knows
exactly which window slot the runtime read. Built with onnx.helper: no torch, no training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# onnx is optional on a robot (TensorRT tooling only): the tests built on these models skip
# without it.
onnx = pytest.importorskip("onnx")
TensorProto, helper = onnx.TensorProto, onnx.helper
numpy_helper = pytest.importorskip("onnx.numpy_helper")

JOINTS = 17


def offset_lifter(
    path: Path,
    frames: int,
    output_frame: int,
    *,
    seq2frame: bool = False,
    output_frames_meta: int | None = None,
    model: str = "toy_offset",
) -> Path:
    """Answers features + slot index: slot k of the window comes out as ``feats[:, k] + k``.

    seq2seq (default): the output holds all ``frames`` slots. ``seq2frame``: only slot
    ``output_frame`` (output (B, 1, 17, 3)), as HoT's node export. ``output_frames_meta``: the
    "output_frames" metadata to write (None: absent)."""
    slots = np.arange(frames, dtype=np.float32).reshape(1, frames, 1, 1)
    nodes = [helper.make_node("Add", ["keypoints", "slots"], ["shifted"])]
    inits = [numpy_helper.from_array(slots, "slots")]
    if seq2frame:
        keep = np.array([output_frame], dtype=np.int64)
        inits.append(numpy_helper.from_array(keep, "keep"))
        nodes.append(helper.make_node("Gather", ["shifted", "keep"], ["joints3d"], axis=1))
    else:
        nodes.append(helper.make_node("Identity", ["shifted"], ["joints3d"]))
    meta = {"model": model, "frames": str(frames), "output_frame": str(output_frame)}
    if output_frames_meta is not None:
        meta["output_frames"] = str(output_frames_meta)
    return _save(path, nodes, inits, frames, 1 if seq2frame else frames, meta)


def centre_echo_lifter(path: Path, frames: int) -> Path:
    """A centred seq2frame lifter that answers its centre slot's own features (B, 1, 17, 3):
    the pose it gives for a frame is that frame's normalised 2D and confidence, so a test sees
    which frame was at the centre of the window."""
    return echo_lifter(path, frames, frames // 2)


def echo_lifter(path: Path, frames: int, output_frame: int) -> Path:
    """A seq2frame lifter answering slot ``output_frame``'s own features (B, 1, 17, 3)."""
    keep = numpy_helper.from_array(np.array([output_frame], dtype=np.int64), "keep")
    nodes = [helper.make_node("Gather", ["keypoints", "keep"], ["joints3d"], axis=1)]
    meta = {
        "model": "toy_echo",
        "frames": str(frames),
        "output_frame": str(output_frame),
        "output_frames": "1",
    }
    return _save(path, nodes, [keep], frames, 1, meta)


def _save(path, nodes, inits, frames: int, out_frames: int, meta: dict[str, str]) -> Path:
    x = helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, ["batch", frames, JOINTS, 3])
    y = helper.make_tensor_value_info(
        "joints3d", TensorProto.FLOAT, ["batch", out_frames, JOINTS, 3]
    )
    graph = helper.make_graph(nodes, "toy_lifter", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def constant_pose_lifter(path: Path, frames: int, pose: np.ndarray) -> Path:
    """A causal seq2frame lifter (the node's HoT export shape) that answers ``pose`` (17, 3)
    metres, root-relative, for everyone: output (B, 1, 17, 3), "output_frames" 1."""
    last = numpy_helper.from_array(np.array([frames - 1], dtype=np.int64), "last")
    zero = numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "zero")
    const = numpy_helper.from_array(
        np.asarray(pose, np.float32).reshape(1, 1, JOINTS, 3), "pose"
    )
    nodes = [
        helper.make_node("Gather", ["keypoints", "last"], ["newest"], axis=1),
        helper.make_node("Mul", ["newest", "zero"], ["batch_of_zeros"]),
        helper.make_node("Add", ["batch_of_zeros", "pose"], ["joints3d"]),
    ]
    meta = {
        "model": "toy_constant_pose",
        "frames": str(frames),
        "output_frame": str(frames - 1),
        "output_frames": "1",
    }
    return _save(path, nodes, [last, zero, const], frames, 1, meta)
