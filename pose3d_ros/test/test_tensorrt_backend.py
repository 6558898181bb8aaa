"""The TensorRT backend where no GPU exists: probes, cuda-python memory (with a fake runtime),
profiles, calibration data, layer summaries, and the engine key shared by the node and
`pose3d engine build`. Failures must say what is missing.

The real build/run path needs a Jetson or an x86 GPU (see docs/jetson.md). The tensorrt wheel
is not installed here (it pulls multi-GB CUDA libraries), so the test importing it skips.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import pose3d_ros.backends.tensorrt.backend as trt_backend_module
from pose3d_ros.backends import BackendError, Probes, load_backend
from pose3d_ros.backends.engine_commands import add_engine_parser, build_settings_from_args
from pose3d_ros.backends.onnx_checks import GraphInput
from pose3d_ros.backends.tensorrt import probe
from pose3d_ros.backends.tensorrt.backend import (
    TensorRTBackend,
    TensorRTSettings,
    plan_engine,
    tensorrt_settings,
)
from pose3d_ros.backends.tensorrt.build import (
    batch_profile,
    format_layer_summary,
    load_calibration_data,
    parse_layer_information,
    resolved_opt_batch,
)
from pose3d_ros.backends.tensorrt.cache import DeviceKey
from pose3d_ros.backends.tensorrt.memory import CudaRuntime

LIFTERS = Path(__file__).resolve().parents[1] / "lifters"
HTNET = LIFTERS / "htnet_small.onnx"
NANO = LIFTERS / "nanohtnet_t27_causal.onnx"
ORIN = DeviceKey("10.3.0", "Orin (8 SMs)", "8.7")  # what a Jetson Orin NX would report
NO_GPU_HERE = not probe.gpu_present()[0]


# -- probes ----------------------------------------------------------------------------------------
def test_tensorrt_module_import_or_skip():
    if importlib.util.find_spec("tensorrt") is None:
        reason = (
            "tensorrt is not installed here: the wheel depends on multi-GB CUDA libraries "
            "(tensorrt-cu12-libs) and no GPU exists to run it; "
            f"probe says: {probe.tensorrt_status()[1]}"
        )
        print(reason, file=sys.stderr)
        pytest.skip(reason)
    try:
        trt = probe.import_tensorrt()
    except BackendError as e:  # the import itself failing is what users would hit: say so
        pytest.fail(f"tensorrt is installed but does not import: {e}")
    assert trt.__version__


def test_gpu_probe_reports_missing_device_files(tmp_path):
    ok, why = probe.gpu_present((str(tmp_path / "nvidia0"),))
    assert not ok and "no NVIDIA GPU" in why
    (tmp_path / "nvidia0").write_text("")
    ok, why = probe.gpu_present((str(tmp_path / "nvidia0"),))
    assert ok and "nvidia0" in why


def test_module_probes_agree_with_the_import_system(monkeypatch):
    """The probes answer from the import finder: a module it cannot find is reported missing
    with its install command; one it finds is reported present."""
    assert probe.onnx_status()[0] is True  # onnx is a runtime dependency, installed here
    monkeypatch.setattr(probe, "_find", lambda module: None)
    for status, fix in (
        (probe.onnx_status, "pip install onnx"),
        (probe.cuda_python_status, "pip install 'cuda-python"),
        (probe.tensorrt_status, "python3-libnvinfer"),
    ):
        ok, why = status()
        assert not ok and fix in why
    monkeypatch.setattr(probe, "_find", lambda module: f"/site-packages/{module}/__init__.py")
    assert probe.cuda_python_status()[0] and probe.tensorrt_status()[0]


def test_check_tensorrt_names_everything_missing_in_one_line():
    ready = probe.check_tensorrt(
        needs_onnx=True,
        gpu=lambda: (False, "no NVIDIA GPU (test)"),
        tensorrt=lambda: (True, "tensorrt 10.3.0"),
        cuda_python=lambda: (False, "no cuda-python (test)"),
        onnx=lambda: (False, "no onnx (test)"),
    )
    assert not ready.ok and ready.found == ["tensorrt 10.3.0"]
    msg = str(ready.error())
    assert msg == (
        "backend 'tensorrt' cannot run here: no NVIDIA GPU (test); no cuda-python (test); "
        "no onnx (test)"
    )
    engine_only = probe.check_tensorrt(
        needs_onnx=False,
        gpu=lambda: (True, "gpu"),
        tensorrt=lambda: (True, "trt"),
        cuda_python=lambda: (True, "cuda"),
        onnx=lambda: (False, "no onnx (test)"),
    )
    assert engine_only.ok  # a prebuilt engine needs no onnx


@pytest.mark.skipif(not NO_GPU_HERE, reason="an NVIDIA GPU is present: this checks the no-GPU path")
def test_tensorrt_backend_without_gpu_fails_fast_and_clearly():
    with pytest.raises(BackendError) as err:
        TensorRTBackend(HTNET)
    msg = str(err.value)
    assert msg.startswith("backend 'tensorrt' cannot run here") and "\n" not in msg
    assert probe.NO_GPU_HINT in msg
    if importlib.util.find_spec("tensorrt") is None:
        assert "python3-libnvinfer" in msg
    with pytest.raises(BackendError, match="cannot run here"):
        load_backend(HTNET, "tensorrt")


def test_tensorrt_backend_missing_model_names_path(tmp_path):
    with pytest.raises(BackendError, match=str(tmp_path / "nope.onnx")):
        TensorRTBackend(tmp_path / "nope.onnx")


# -- CUDA memory through cuda-python only -------------------------------------------------------
@pytest.mark.skipif(probe.cuda_python_status()[0], reason="cuda-python is installed here")
def test_cuda_memory_without_cuda_python_says_what_to_install():
    with pytest.raises(BackendError) as err:
        CudaRuntime(0)
    msg = str(err.value)
    assert "cuda-python" in msg and "pip install 'cuda-python" in msg
    assert "torch" not in msg  # no torch fallback any more


class FakeCudart:
    """cuda-python's calling convention: every call returns (error, *values)."""

    class cudaError_t:  # noqa: N801 - cuda-python's names
        cudaSuccess = 0  # noqa: N815
        cudaErrorMemoryAllocation = 2  # noqa: N815

    def __init__(self, devices: int = 1, free_bytes: int = 1 << 20) -> None:
        self.devices, self.free_bytes, self.current = devices, free_bytes, None

    def cudaGetDeviceCount(self):  # noqa: N802
        return (0, self.devices)

    def cudaSetDevice(self, device):  # noqa: N802
        self.current = device
        return (0,)

    def cudaStreamCreate(self):  # noqa: N802
        return (0, 1234)

    def cudaMalloc(self, nbytes):  # noqa: N802
        if nbytes > self.free_bytes:
            return (self.cudaError_t.cudaErrorMemoryAllocation, 0)
        return (0, 0xDEAD0000)

    def cudaGetErrorString(self, err):  # noqa: N802
        return (0, b"out of memory" if err == 2 else b"unknown error")


def test_cuda_runtime_checks_every_call():
    fake = FakeCudart(devices=1, free_bytes=1 << 20)
    cuda = CudaRuntime(0, cudart=fake)
    assert fake.current == 0 and cuda.stream_handle == 1234
    assert cuda.malloc(1024) == 0xDEAD0000
    with pytest.raises(BackendError, match="CUDA cudaMalloc failed: out of memory"):
        cuda.malloc(1 << 30)
    with pytest.raises(BackendError, match="CUDA device 1 requested, 1 present"):
        CudaRuntime(1, cudart=FakeCudart(devices=1))


# -- profiles, calibration data, layer summaries ------------------------------------------------
def test_batch_profile_and_opt_batch():
    inputs = [GraphInput("keypoints", ["batch", 27, 17, 3], 1)]
    prof = batch_profile(inputs, max_batch=8, opt_batch=resolved_opt_batch(8, 0))
    assert prof == {"keypoints": ((1, 27, 17, 3), (4, 27, 17, 3), (8, 27, 17, 3))}
    assert resolved_opt_batch(5, 0) == 3 and resolved_opt_batch(4, 9) == 4
    static = batch_profile([GraphInput("image", [1, 300, 300, 3], 1)], max_batch=8, opt_batch=4)
    assert static == {"image": ((1, 300, 300, 3),) * 3}  # a fixed batch stays fixed
    with pytest.raises(BackendError, match="dynamic axes"):
        batch_profile([GraphInput("keypoints", ["batch", "t", 17, 3], 1)], 8, 4)


def test_layer_summary_from_engine_inspector_json():
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


def test_calibration_data_files(tmp_path):
    x = np.arange(10 * 9 * 17 * 3, dtype=np.float64).reshape(10, 9, 17, 3)
    np.save(tmp_path / "c.npy", x)
    loaded = load_calibration_data(tmp_path / "c.npy", ["keypoints"])["keypoints"]
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, x.astype(np.float32))
    with pytest.raises(BackendError, match="one array but the model has inputs"):
        load_calibration_data(tmp_path / "c.npy", ["a", "b"])
    np.savez(tmp_path / "c.npz", other=x)
    with pytest.raises(BackendError, match="lacks input"):
        load_calibration_data(tmp_path / "c.npz", ["keypoints"])
    with pytest.raises(BackendError, match="does not exist"):
        load_calibration_data(tmp_path / "none.npy", ["keypoints"])


# -- one engine key for the node and `pose3d engine build` --------------------------------------
def _cli_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pose3d")
    add_engine_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["engine", "build", *argv])


class RecordingTensorRT:
    """Stands in for TensorRTBackend: keeps the settings the node path hands it."""

    seen: list[tuple[Path, TensorRTSettings]] = []  # noqa: RUF012 - reset per test

    def __init__(self, model_path, *, settings=None, **options) -> None:
        self.seen.append((Path(model_path), tensorrt_settings(settings, **options)))
        raise BackendError("recorded (fake)")


def _node_settings(monkeypatch, tensorrt: dict) -> dict[str, TensorRTSettings]:
    """{model file name: TensorRT settings} as the pipeline passes them to load_backend."""
    from pose3d_ros import pipeline as pipeline_module
    from pose3d_ros.assets import find_model_dir
    from pose3d_ros.core.parameters import build_settings

    everything = Probes(
        gpu=lambda: (True, "gpu"),
        tensorrt=lambda: (True, "tensorrt"),
        cuda_python=lambda: (True, "cuda-python"),
        onnx=lambda: (True, "onnx"),
    )
    RecordingTensorRT.seen = []
    monkeypatch.setattr(trt_backend_module, "TensorRTBackend", RecordingTensorRT)
    monkeypatch.setattr(
        pipeline_module, "load_backend", functools.partial(load_backend, probes=everything)
    )
    values = {"model_dir": str(find_model_dir()), "threads": 1}
    values.update({f"tensorrt.{k}": v for k, v in tensorrt.items()})
    pipeline_module.PosePipeline(build_settings(pipeline_module.PipelineSettings, values))
    return {path.name: s for path, s in RecordingTensorRT.seen}


def test_node_and_cli_compute_the_same_engine_key(monkeypatch, tmp_path):
    engines = str(tmp_path / "engines")
    calib = tmp_path / "calib.npy"
    np.save(calib, np.zeros((16, 1, 17, 3), np.float32))

    # fp16, defaults apart from batch/workspace/folder: `pose3d engine build` vs the node
    cli = build_settings_from_args(
        _cli_args(["--onnx", str(HTNET), "--fp16", "--max-batch", "4", "--workspace-mb", "512",
                   "--engine-dir", engines])
    )
    node = _node_settings(
        monkeypatch, {"precision": "fp16", "max_batch": 4, "workspace_mb": 512,
                      "engine_dir": engines}
    )["htnet_small.onnx"]
    a, b = plan_engine(HTNET, cli, ORIN), plan_engine(HTNET, node, ORIN)
    assert a.key == b.key and a.path == b.path
    assert a.path.parent == tmp_path / "engines" and a.path.name.startswith("htnet_small.fp16.b4.")

    # int8 with the same calibration file
    cli8 = build_settings_from_args(
        _cli_args(["--onnx", str(HTNET), "--int8", "--calib", str(calib), "--max-batch", "4",
                   "--engine-dir", engines])
    )
    node8 = _node_settings(
        monkeypatch, {"precision": "int8", "calibration_file": str(calib), "max_batch": 4,
                      "engine_dir": engines}
    )
    assert plan_engine(HTNET, cli8, ORIN).key == plan_engine(HTNET, node8["htnet_small.onnx"],
                                                             ORIN).key
    assert plan_engine(HTNET, cli8, ORIN).key.calibration_sha256  # the data is in the key

    # the keys are not trivially equal: a different batch or GPU gives another engine
    other = build_settings_from_args(
        _cli_args(["--onnx", str(HTNET), "--fp16", "--max-batch", "8", "--workspace-mb", "512",
                   "--engine-dir", engines])
    )
    assert plan_engine(HTNET, other, ORIN).key != a.key
    agx = DeviceKey("10.3.0", "Orin (16 SMs)", "8.7")
    assert plan_engine(HTNET, cli, agx).key != a.key and plan_engine(HTNET, cli, agx).path != a.path


def test_plan_engine_without_onnx_or_calibration_says_why(tmp_path, monkeypatch):
    with pytest.raises(BackendError, match="needs calibration_file"):
        plan_engine(HTNET, tensorrt_settings(precision="int8"), ORIN)
    with pytest.raises(BackendError, match="does not exist"):
        plan_engine(HTNET, tensorrt_settings(precision="int8", calibration_file="no.npy"), ORIN)
    with pytest.raises(BackendError, match="--int8 needs --calib"):
        build_settings_from_args(_cli_args(["--onnx", str(HTNET), "--int8"]))
    monkeypatch.setitem(sys.modules, "onnx", None)  # as on a robot without the onnx package
    with pytest.raises(BackendError, match="pip install onnx"):
        plan_engine(NANO, tensorrt_settings(), ORIN)


def test_engine_build_cli_fails_in_one_line_without_tensorrt(tmp_path, capsys):
    if probe.check_tensorrt(needs_onnx=True).ok:
        pytest.skip("TensorRT can run here: the build would run")
    args = _cli_args(["--onnx", str(HTNET), "--fp16", "--engine-dir", str(tmp_path)])
    assert args.func(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: backend 'tensorrt' cannot run here") and "\n" not in err


def test_latency_percentiles_of_engine_build():
    """`pose3d engine build` reports percentiles of its timed runs; on 1..100 ms the linear
    interpolation percentile of p is 1 + 99 p / 100."""
    from pose3d_ros.backends.engine_commands import _percentiles

    stats = _percentiles([float(v) for v in range(100, 0, -1)])  # order must not matter
    assert stats["p50_ms"] == pytest.approx(50.5)
    assert stats["p95_ms"] == pytest.approx(95.05)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert (stats["mean_ms"], stats["min_ms"]) == (pytest.approx(50.5), 1.0)
