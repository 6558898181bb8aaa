"""The PyTorch reference backend: PyTorch vs ONNX Runtime on real-ish inputs, broken checkpoints,
the exporter's output passing the TensorRT checks, and `pose3d-tools bench` (torch vs ORT).
Backend selection, ONNX Runtime on the shipped lifters and the TensorRT helpers are tested
without torch in pose3d_ros/test/test_backends.py and test_tensorrt_backend.py.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from pose3d_ros.backends import BackendError, load_backend
from pose3d_ros.backends.onnx_checks import check_tensorrt_compatibility
from pose3d_tools import CHECKPOINT_DIR

SHIPPED = sorted(CHECKPOINT_DIR.glob("*.pt"))
TINY = {
    "htnet": {"embed_dim": 24, "depth": 1, "mlp_hidden": 32, "gcn_hidden": 16},
    "nanohtnet": {"frames": 9, "embed_dim": 24, "depth": 1, "mlp_hidden": 32, "gcn_hidden": 16},
}


# -- models --------------------------------------------------------------------------------------
def load_any(path, kind: str, **options):
    """The runtime's backends, or the tools' PyTorch reference backend for checkpoints."""
    if kind == "torch":
        from pose3d_tools.torch_backend import TorchBackend

        return TorchBackend(path, **options)
    return load_backend(path, kind, **options)

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """{name: (checkpoint .pt, exported .onnx)} for a tiny HTNet and NanoHTNet."""
    import torch

    from pose3d_tools.export import export_onnx
    from pose3d_tools.models.registry import build_lifter, config_to_dict

    out = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    models = {}
    for name, cfg in TINY.items():
        model = build_lifter(name, cfg).eval()
        ckpt = out / f"{name}.pt"
        torch.save(
            {
                "name": name,
                "config": config_to_dict(model.config),
                "state_dict": model.state_dict(),
            },
            ckpt,
        )
        models[name] = (ckpt, export_onnx(model, out / f"{name}.onnx"))
    return models


def real_inputs(frames: int, count: int) -> np.ndarray:
    """Human3.6M training windows through the training view synthesis, else synthetic."""
    try:
        from pose3d_tools.calibration import h36m_calibration_set

        return h36m_calibration_set(frames, count, seed=7, subjects=("S1",))
    except FileNotFoundError:
        from pose3d_tools.export import example_input

        return example_input(frames, batch=count, seed=7).numpy()


@pytest.mark.parametrize("name", sorted(TINY))
def test_torch_and_onnxruntime_agree(tiny_models, name):
    ckpt, onnx = tiny_models[name]
    ort_b = load_backend(onnx, "onnxruntime", threads=1)
    torch_b = load_any(ckpt, "torch", threads=1)
    assert torch_b.name == "torch"
    assert [s.shape[1:] for s in torch_b.inputs] == [s.shape[1:] for s in ort_b.inputs]
    frames = ort_b.inputs[0].shape[1]
    x = real_inputs(frames, 6)
    a = ort_b.run({"keypoints": x})["joints3d"]
    b = torch_b.run({"keypoints": x})["joints3d"]
    assert np.abs(a - b).max() < 1e-4
    assert not np.allclose(a[0], a[1])  # different inputs, different outputs: not a constant
    assert torch_b.metadata["model"] == ort_b.metadata["model"]
    assert check_tensorrt_compatibility(onnx) == []  # the exporter's output suits TensorRT


@pytest.mark.parametrize("ckpt", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_checkpoints_torch_equals_onnxruntime(ckpt, tmp_path):
    from pose3d_tools.export import export_onnx
    from pose3d_tools.models.registry import lifter_from_checkpoint

    onnx = ckpt.with_suffix(".onnx")
    if not onnx.is_file():
        onnx = export_onnx(lifter_from_checkpoint(ckpt), tmp_path / f"{ckpt.stem}.onnx")
    ort_b, torch_b = load_backend(onnx, "onnxruntime", threads=1), load_any(ckpt, "torch")
    x = real_inputs(ort_b.inputs[0].shape[1], 8)
    diff = np.abs(
        ort_b.run({"keypoints": x})["joints3d"] - torch_b.run({"keypoints": x})["joints3d"]
    )
    assert diff.max() < 1e-4


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_broken_checkpoint_raises_with_path(tiny_models, tmp_path, damage):
    src, _ = tiny_models["htnet"]
    path = tmp_path / "broken.pt"
    if damage == "truncated":
        path.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage, not a model\xff" * 50)
    with pytest.raises(BackendError) as err:
        load_any(path, "torch")
    assert str(path) in str(err.value)


# -- CLI tools -----------------------------------------------------------------------------------
def _cli(argv):
    from pose3d_tools.bench.backends import add_bench_parser

    parser = argparse.ArgumentParser(prog="pose3d-tools")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_bench_writes_percentiles(tiny_models, tmp_path):
    ckpt, _ = tiny_models["htnet"]
    out = tmp_path / "bench" / "backends.json"
    assert (
        _cli(
            [
                "bench",
                "--checkpoint",
                str(ckpt),
                "--batch",
                "1",
                "2",
                "--runs",
                "5",
                "--warmup",
                "1",
                "--threads",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    rows = {(r["backend"], r["batch"]) for r in report["results"]}
    assert rows == {("torch", 1), ("torch", 2), ("onnxruntime", 1), ("onnxruntime", 2)}
    for r in report["results"]:  # times are measured, not asserted: only that they are there
        assert {"p50_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms"} <= set(r)
        if r["backend"] == "onnxruntime":
            assert r["max_abs_diff_vs_torch"] < 1e-4
    from pose3d_ros.backends import Probes

    if not Probes().tensorrt_readiness(needs_onnx=True).ok:
        assert [s["backend"] for s in report["skipped"]] == ["tensorrt"]


