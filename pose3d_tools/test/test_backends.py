"""Backends on the CPU: selection (with injected probes), ONNX Runtime vs PyTorch on real-ish
inputs, broken model files, ONNX TensorRT checks, INT8 calibration data and the CLI tools."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from pose3d_ros.backends import BackendError, Probes, load_backend, select_backend
from pose3d_ros.backends.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeSettings
from pose3d_tools import CHECKPOINT_DIR

SHIPPED = sorted(CHECKPOINT_DIR.glob("*.pt"))
TINY = {
    "htnet": {"embed_dim": 24, "depth": 1, "mlp_hidden": 32, "gcn_hidden": 16},
    "nanohtnet": {"frames": 9, "embed_dim": 24, "depth": 1, "mlp_hidden": 32, "gcn_hidden": 16},
}


def probes(gpu=False, trt=False, providers=("CPUExecutionProvider",)) -> Probes:
    return Probes(
        gpu=lambda: (gpu, "GPU /dev/nvidia0 present" if gpu else "no NVIDIA GPU (fake)"),
        tensorrt=lambda: (trt, "tensorrt 10.3.0" if trt else "no module named 'tensorrt'"),
        ort_providers=lambda: list(providers),
    )


# -- selection -----------------------------------------------------------------------------------
def test_auto_with_gpu_and_tensorrt_picks_tensorrt():
    chosen, reason = select_backend("auto", "m.onnx", probes(gpu=True, trt=True))
    assert chosen == "tensorrt"
    assert "/dev/nvidia0" in reason and "tensorrt 10.3.0" in reason


def test_auto_without_gpu_picks_onnxruntime_and_says_why():
    chosen, reason = select_backend("auto", "m.onnx", probes(gpu=False, trt=True))
    assert chosen == "onnxruntime"
    assert "no NVIDIA GPU (fake)" in reason and "CPUExecutionProvider" in reason


def test_auto_with_gpu_but_no_tensorrt_uses_best_ort_provider():
    chosen, reason = select_backend(
        "auto",
        "m.onnx",
        probes(gpu=True, trt=False, providers=("CPUExecutionProvider", "CUDAExecutionProvider")),
    )
    assert chosen == "onnxruntime"
    assert "no module named 'tensorrt'" in reason and "with CUDAExecutionProvider" in reason


@pytest.mark.parametrize(
    "gpu,trt,missing",
    [
        (False, False, ["no NVIDIA GPU", "no module named 'tensorrt'"]),
        (False, True, ["no NVIDIA GPU"]),
        (True, False, ["no module named 'tensorrt'"]),
    ],
)
def test_explicit_tensorrt_fails_naming_what_is_missing(gpu, trt, missing):
    with pytest.raises(BackendError) as err:
        select_backend("tensorrt", "m.onnx", probes(gpu=gpu, trt=trt))
    for m in missing:
        assert m in str(err.value)
    with pytest.raises(BackendError, match="cannot run here"):
        load_backend("m.onnx", "tensorrt", probes=probes(gpu=gpu, trt=trt))


def test_file_type_decides_for_checkpoints_and_engines():
    with pytest.raises(BackendError, match=r"PyTorch checkpoint.*pose3d-tools export"):
        select_backend("auto", "x.pt", probes())
    assert select_backend("auto", "x.engine", probes(gpu=True, trt=True))[0] == "tensorrt"
    with pytest.raises(BackendError, match="no NVIDIA GPU"):
        select_backend("auto", "x.plan", probes())
    with pytest.raises(BackendError, match="unknown backend 'torch'"):
        select_backend("torch", "x.pt", probes())


def test_unknown_backend_and_no_onnxruntime():
    with pytest.raises(BackendError, match="unknown backend"):
        select_backend("openvino", "m.onnx", probes())
    with pytest.raises(BackendError, match="onnxruntime is not installed"):
        select_backend("auto", "m.onnx", probes(providers=()))


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


def test_onnxruntime_specs_metadata_and_dynamic_batch(tiny_models, caplog):
    _, onnx = tiny_models["nanohtnet"]
    with caplog.at_level(logging.INFO, logger="pose3d_ros.backends"):
        backend = load_backend(onnx, "auto", threads=1, probes=probes())
    assert "backend onnxruntime" in caplog.text and "no NVIDIA GPU (fake)" in caplog.text
    assert backend.name == "onnxruntime" and backend.selection_reason
    [inp], [out] = backend.inputs, backend.outputs
    assert (inp.name, inp.shape[1:], inp.dtype) == ("keypoints", (9, 17, 3), np.float32)
    assert inp.shape[0] == "batch" and out.name == "joints3d"
    meta = backend.metadata
    assert meta["model"] == "nanohtnet" and meta["frames"] == "9"
    assert json.loads(meta["config"])["frames"] == 9
    assert "CPUExecutionProvider" in backend.describe()
    for b in (1, 5):
        y = backend.run({"keypoints": real_inputs(9, b)})["joints3d"]
        assert y.shape == (b, 9, 17, 3) and y.dtype == np.float32 and np.isfinite(y).all()
    assert backend.last_timing.total_ms > 0
    with pytest.raises(BackendError, match="expected inputs"):
        backend.run({"x": np.zeros((1, 9, 17, 3), np.float32)})


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
    assert torch_b.metadata["model"] == ort_b.metadata["model"]


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


def test_onnxruntime_settings_and_optimised_model_cache(tiny_models, tmp_path):
    _, onnx = tiny_models["htnet"]
    x = real_inputs(1, 3)
    plain = OnnxRuntimeBackend(onnx, threads=1).run({"keypoints": x})["joints3d"]
    s = OnnxRuntimeSettings(
        threads=1, graph_optimization="extended", optimized_model_dir=str(tmp_path / "ortcache")
    )
    first = OnnxRuntimeBackend(onnx, settings=s)
    assert "written" in first.cache_note
    cached = list((tmp_path / "ortcache").glob("htnet.*.ort.onnx"))
    assert len(cached) == 1
    second = OnnxRuntimeBackend(onnx, settings=s)
    assert "from" in second.cache_note
    assert second.metadata["model"] == "htnet"
    np.testing.assert_allclose(second.run({"keypoints": x})["joints3d"], plain, atol=1e-5)
    with pytest.raises(BackendError, match="graph_optimization"):
        OnnxRuntimeBackend(onnx, graph_optimization="max")
    with pytest.raises(BackendError, match="lacks provider"):
        OnnxRuntimeBackend(onnx, providers=["CUDAExecutionProvider"])
    with pytest.raises(BackendError, match="unknown setting"):
        OnnxRuntimeBackend(onnx, thread=2)


def test_auto_ignores_other_backends_options_but_not_typos(tiny_models):
    _, onnx = tiny_models["htnet"]
    b = load_backend(onnx, "auto", probes=probes(), threads=1, precision="fp16", max_batch=4)
    assert b.name == "onnxruntime"
    with pytest.raises(BackendError, match="unknown backend option"):
        load_backend(onnx, "auto", probes=probes(), max_batchh=4)


@pytest.mark.parametrize("kind,suffix", [("onnxruntime", ".onnx"), ("torch", ".pt")])
@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_broken_model_file_raises_with_path(tiny_models, tmp_path, kind, suffix, damage):
    ckpt, onnx = tiny_models["htnet"]
    src = onnx if suffix == ".onnx" else ckpt
    path = tmp_path / f"broken{suffix}"
    if damage == "truncated":
        path.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage, not a model\xff" * 50)
    with pytest.raises(BackendError) as err:
        load_any(path, kind)
    assert str(path) in str(err.value)


# -- ONNX checks for TensorRT ----------------------------------------------------------------------
def _graph(path: Path, op: str, domain: str = "", dims=("batch", 9, 17, 3)) -> Path:
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, list(dims))
    out = helper.make_tensor_value_info("joints3d", TensorProto.FLOAT, list(dims))
    node = helper.make_node(op, ["keypoints"], ["joints3d"], domain=domain)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], "g", [inp], [out]), opset_imports=opsets)
    onnx.save(model, str(path))
    return path


def test_onnx_checks(tiny_models, tmp_path):
    from pose3d_ros.backends.onnx_checks import check_tensorrt_compatibility

    for _, onnx in tiny_models.values():
        assert check_tensorrt_compatibility(onnx) == []
    assert check_tensorrt_compatibility(_graph(tmp_path / "ok.onnx", "Relu")) == []
    dyn = check_tensorrt_compatibility(
        _graph(tmp_path / "dyn.onnx", "Relu", dims=("batch", "frames", 17, 3))
    )
    assert len(dyn) == 2 and all("axis 1 is dynamic" in p for p in dyn)  # input and output
    custom = check_tensorrt_compatibility(_graph(tmp_path / "c.onnx", "Dct", domain="my.ops"))
    assert any("my.ops::Dct" in p for p in custom)
    assert any(
        "NonZero" in p
        for p in check_tensorrt_compatibility(_graph(tmp_path / "nz.onnx", "NonZero"))
    )
    with pytest.raises(FileNotFoundError):
        check_tensorrt_compatibility(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match=r"junk\.onnx"):
        check_tensorrt_compatibility(tmp_path / "junk.onnx")


def test_tensorrt_profile_and_layer_summary_without_tensorrt(tmp_path):
    from pose3d_ros.backends.tensorrt_backend import (
        batch_profile,
        format_layer_summary,
        load_calibration_data,
        parse_layer_information,
    )

    prof = batch_profile([("keypoints", ["batch", 27, 17, 3], 1)], max_batch=8, opt_batch=4)
    assert prof == {"keypoints": ((1, 27, 17, 3), (4, 27, 17, 3), (8, 27, 17, 3))}
    with pytest.raises(BackendError, match="dynamic axes"):
        batch_profile([("keypoints", ["batch", "t", 17, 3], 1)], 8, 4)
    info = json.dumps(
        {
            "Layers": [
                {
                    "Name": "gemm_1",
                    "LayerType": "CaskGemm",
                    "Outputs": [{"Name": "a", "Format/Datatype": "Row major linear FP16 format"}],
                },
                {
                    "Name": "norm",
                    "LayerType": "Myelin",
                    "Outputs": [{"Name": "b", "Format/Datatype": "Row major linear FP32"}],
                },
                {
                    "Name": "q",
                    "LayerType": "Scale",
                    "Outputs": [{"Name": "c", "Format/Datatype": "Channel major INT8 format"}],
                },
            ],
            "Bindings": ["keypoints", "joints3d"],
        }
    )
    layers = parse_layer_information(info)
    assert [x["precision"] for x in layers] == ["fp16", "fp32", "int8"]
    assert format_layer_summary(layers).startswith("3 layers: fp16 1, fp32 1, int8 1")
    assert parse_layer_information(json.dumps({"Layers": ["a", "b"]}))[0]["precision"] == "?"
    x = np.zeros((10, 9, 17, 3), np.float32)
    np.save(tmp_path / "c.npy", x)
    assert load_calibration_data(tmp_path / "c.npy", ["keypoints"])["keypoints"].shape == x.shape
    np.savez(tmp_path / "c.npz", other=x)
    with pytest.raises(BackendError, match="lacks input"):
        load_calibration_data(tmp_path / "c.npz", ["keypoints"])


# -- INT8 calibration data ---------------------------------------------------------------------
def _fake_h36m():
    """Two training subjects of synthetic but skeleton-shaped poses and two cameras."""
    from pose3d_tools.data.cameras import Camera

    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.3, (17, 3)) + np.array([0, 0, 1.0])
    poses = {
        s: {
            f"Walk {i}": (base + 0.02 * rng.standard_normal((60, 17, 3))).astype(np.float32)
            for i in range(2)
        }
        for s in ("S1", "S5")
    }
    cams = []
    for s in ("S1", "S5"):
        R = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # camera looking along world +y
        cams.append(
            Camera(
                R=R,
                T=np.array([0.0, -5.0, 1.0]),
                f=np.array([1145.0, 1144.0]),
                c=np.array([512.0, 515.0]),
                k=np.zeros(3),
                p=np.zeros(2),
                w=np.asarray(1000.0),
                h=np.asarray(1002.0),
                name=f"{s}_54138969",
            )
        )
    return poses, cams


def test_calibration_windows_shape_dtype_determinism():
    from pose3d_tools.calibration import calibration_windows

    poses, cams = _fake_h36m()
    a = calibration_windows(poses, cams, frames=9, count=40, seed=3)
    b = calibration_windows(poses, cams, frames=9, count=40, seed=3)
    c = calibration_windows(poses, cams, frames=9, count=40, seed=4)
    assert a.shape == (40, 9, 17, 3) and a.dtype == np.float32 and a.flags.c_contiguous
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert ((a[..., 2] >= 0) & (a[..., 2] <= 1)).all()  # confidences


def test_calibration_refuses_test_subjects():
    from pose3d_tools.calibration import calibration_windows, h36m_calibration_set

    poses, cams = _fake_h36m()
    with pytest.raises(ValueError, match="S9"):
        calibration_windows({**poses, "S9": poses["S1"]}, cams, frames=1, count=4)
    cams[0].name = "S11_54138969"
    with pytest.raises(ValueError, match="S11"):
        calibration_windows(poses, cams, frames=1, count=4)
    with pytest.raises(ValueError, match="S9"):
        h36m_calibration_set(1, 4, subjects=("S1", "S9"))


def test_calibration_from_real_h36m_and_file(tmp_path):
    from pose3d_tools.calibration import h36m_calibration_set, write_calibration_file
    from pose3d_tools.data.h36m import resolve_data_file

    try:
        resolve_data_file()
    except FileNotFoundError as e:
        pytest.skip(f"Human3.6M data not available: {e}")
    x = h36m_calibration_set(frames=1, count=64, seed=0, subjects=("S1",))
    assert x.shape == (64, 1, 17, 3) and x.dtype == np.float32
    assert 0.05 < np.abs(x[..., :2]).mean() < 5  # normalised features, not metres or pixels
    path = write_calibration_file(tmp_path / "calib.npy", x, {"seed": 0})
    np.testing.assert_array_equal(np.load(path), x)
    assert json.loads(path.with_suffix(".json").read_text())["shape"] == [64, 1, 17, 3]


# -- CLI tools -----------------------------------------------------------------------------------
def _cli(argv):
    from pose3d_ros.backends.engine_commands import add_engine_parser
    from pose3d_tools.bench.backends import add_bench_parser

    parser = argparse.ArgumentParser(prog="pose3d")
    sub = parser.add_subparsers(dest="command", required=True)
    add_engine_parser(sub)
    add_bench_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_engine_check_and_build_here(tiny_models, tmp_path, capsys):
    from pose3d_ros.backends.tensorrt_backend import gpu_present

    _, onnx = tiny_models["htnet"]
    assert _cli(["engine", "check", "--onnx", str(onnx)]) == 0
    assert "no known TensorRT problem" in capsys.readouterr().out
    if gpu_present()[0]:
        pytest.skip("a GPU is present: the build would run")
    assert (
        _cli(
            [
                "engine",
                "build",
                "--onnx",
                str(onnx),
                "--fp16",
                "--max-batch",
                "4",
                "--cache-dir",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "backend 'tensorrt' cannot run here" in capsys.readouterr().err


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
    for r in report["results"]:
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
        if r["backend"] == "onnxruntime":
            assert r["max_abs_diff_vs_torch"] < 1e-4
    from pose3d_ros.backends.tensorrt_backend import gpu_present

    if not gpu_present()[0]:
        assert [s["backend"] for s in report["skipped"]] == ["tensorrt"]


def test_runtime_path_never_imports_torch(tiny_models):
    """Loading and running an ONNX model through `auto` must not pull torch in (Jetson)."""
    import subprocess
    import sys

    _, onnx = tiny_models["htnet"]
    code = (
        "import sys, numpy as np\n"
        "from pose3d_ros.backends import load_backend\n"
        "import pose3d_ros.backends.tensorrt_backend\n"
        f"b = load_backend({str(onnx)!r}, 'onnxruntime', threads=1)\n"
        "b.run(b.example_feeds(2))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
