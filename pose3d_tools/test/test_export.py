"""ONNX export: PyTorch vs ONNX Runtime parity, dynamic batch, metadata, TensorRT op check.

Models under test = random-init default configs (MODEL_CASES) + every shipped checkpoint in
pose3d_tools/checkpoints/*.pt (format: {"name", "config", "state_dict"}, see
models.registry.lifter_from_checkpoint). Add a case by appending to MODEL_CASES or dropping a .pt.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pose3d_ros.backends.onnx_checks import check_tensorrt_ops, read_metadata
from pose3d_tools.export import INPUT_NAME, OUTPUT_NAME, example_input, export_onnx
from pose3d_tools.flops import seq2frame
from pose3d_tools.models import build_lifter, lifter_from_checkpoint

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

torch.set_num_threads(1)

from pose3d_tools import CHECKPOINT_DIR, REPO_ROOT  # noqa: E402

LIFTER_DIR = REPO_ROOT / "pose3d_ros" / "lifters"  # the shipped exports the robot runs
# (registry name, config) random init
MODEL_CASES = [("htnet", None), ("nanohtnet", None), ("temporal_htnet", None)]
CASES = [pytest.param(("random", name, cfg), id=f"{name}-random") for name, cfg in MODEL_CASES]
CASES += [
    pytest.param(("checkpoint", str(p), None), id=p.stem)
    for p in sorted(CHECKPOINT_DIR.glob("*.pt"))
]
TOLERANCE = 1e-4


def _load(case):
    kind, what, cfg = case
    if kind == "checkpoint":
        return lifter_from_checkpoint(what)
    torch.manual_seed(0)
    return build_lifter(what, cfg).eval()


@pytest.fixture(scope="module", params=CASES)
def exported(request, tmp_path_factory):
    """A fresh export for random models; for a checkpoint, its committed ONNX export in
    pose3d_ros/lifters/ (the file robots run), so a stale export fails here."""
    model = _load(request.param)
    kind, what, _ = request.param
    if kind == "checkpoint":
        return model, LIFTER_DIR / f"{Path(what).stem}.onnx"
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / f"{model.name}.onnx")
    return model, path


@pytest.mark.parametrize("checkpoint", sorted(CHECKPOINT_DIR.glob("*.pt")), ids=lambda p: p.stem)
def test_every_checkpoint_ships_its_onnx_export(checkpoint):
    onnx_path = LIFTER_DIR / f"{checkpoint.stem}.onnx"
    assert onnx_path.is_file(), (
        f"export it: pose3d-tools export --checkpoint {checkpoint} --output {onnx_path}"
    )
    assert read_metadata(onnx_path).get("checkpoint") == checkpoint.name


def _session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 5])
def test_onnxruntime_matches_pytorch(exported, batch):
    model, path = exported
    frames = model.config.frames
    x = example_input(frames, batch=batch, seed=batch)
    x[0, :, 16] = 0.0  # one missing joint
    out_frames = int(read_metadata(path).get("output_frames", frames))  # 1: seq2frame (HoT)
    with torch.no_grad(), seq2frame(model, out_frames == 1):
        ref = model(x).numpy()
    out = _session(path).run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    assert out.shape == (batch, out_frames, 17, 3)
    assert np.abs(out - ref).max() <= TOLERANCE
    assert np.all(out[..., 0, :] == 0.0)


def test_dynamic_batch_and_names(exported):
    model, path = exported
    sess = _session(path)
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    assert isinstance(inp.shape[0], str) and isinstance(out.shape[0], str)  # symbolic batch
    out_frames = int(read_metadata(path).get("output_frames", model.config.frames))
    assert inp.shape[1:] == [model.config.frames, 17, 3]
    assert out.shape[1:] == [out_frames, 17, 3]


def test_metadata(exported):
    model, path = exported
    meta = read_metadata(path)
    assert meta["model"] == model.name
    assert meta["joint_set"] == "h36m17"
    assert int(meta["frames"]) == model.config.frames
    config = json.loads(meta["config"])
    assert build_lifter(meta["model"], config).config == model.config
    assert "keypoints" in meta["input_description"]
    assert int(meta["output_frame"]) in (0, model.config.frames - 1, model.config.frames // 2)


def test_tensorrt_ops_clean(exported):
    _, path = exported
    assert check_tensorrt_ops(path) == []


def test_no_fft_in_graph(exported):
    _, path = exported
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert not ops & {"DFT", "STFT"}
    assert "MatMul" in ops


def _handmade_model(tmp_path, nodes, opset_imports, name):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "handmade",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    proto = helper.make_model(graph, opset_imports=opset_imports)
    path = tmp_path / name
    onnx.save(proto, str(path))
    return path


def test_check_tensorrt_ops_flags_dft_and_custom(tmp_path):
    from onnx import helper

    dft = _handmade_model(
        tmp_path,
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("DFT", ["r"], ["y"], onesided=0)],
        [helper.make_opsetid("", 17)],
        "dft.onnx",
    )
    assert check_tensorrt_ops(dft) == ["DFT"]
    custom = _handmade_model(
        tmp_path,
        [helper.make_node("FancyOp", ["x"], ["y"], domain="com.example")],
        [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
        "custom.onnx",
    )
    assert check_tensorrt_ops(custom) == ["com.example::FancyOp"]


def test_export_rejects_wrong_window(tmp_path):
    with pytest.raises(ValueError):
        export_onnx(build_lifter("nanohtnet"), tmp_path / "bad.onnx", frames=30)
