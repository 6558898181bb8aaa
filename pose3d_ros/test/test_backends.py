"""Backends without torch: selection with injected probes (incl. the auto fallback), ONNX Runtime
on the shipped lifters, broken model files, the ONNX TensorRT checks, the pipeline's backend
settings, and that the runtime path never imports torch."""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pose3d_ros.backends.tensorrt.backend as trt_backend_module
from pose3d_ros.backends import BackendError, Probes, load_backend, select_backend
from pose3d_ros.backends.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeSettings
from pose3d_ros.backends.tensorrt import probe
from pose3d_ros.backends.tensorrt.backend import TensorRTSettings, tensorrt_settings

LIFTERS = Path(__file__).resolve().parents[1] / "lifters"
HTNET = LIFTERS / "htnet_small.onnx"  # single frame: (batch, 1, 17, 3)
NANO = LIFTERS / "nanohtnet_t27_causal.onnx"  # causal window: (batch, 27, 17, 3)


def probes(
    gpu=False, trt=False, cuda=True, onnx=True, providers=("CPUExecutionProvider",)
) -> Probes:
    """Fake machine: each probe answers as told, with a recognisable message."""
    return Probes(
        gpu=lambda: (gpu, "GPU /dev/nvidia0 present" if gpu else "no NVIDIA GPU (fake)"),
        tensorrt=lambda: (trt, "tensorrt 10.3.0" if trt else "no module named 'tensorrt' (fake)"),
        cuda_python=lambda: (
            cuda,
            "cuda-python 12.6.0" if cuda else "no cuda-python (fake); pip install cuda-python",
        ),
        onnx=lambda: (onnx, "onnx 1.17.0" if onnx else "no onnx (fake); pip install onnx"),
        ort_providers=lambda: list(providers),
    )


ALL_PRESENT = dict(gpu=True, trt=True, cuda=True, onnx=True)


def lifter_inputs(frames: int, batch: int, seed: int = 0) -> np.ndarray:
    """Lifter features shaped like the runtime's: pelvis-relative 2D at unit RMS scale, the
    pelvis slot holding the root ray, confidence in the last channel."""
    rng = np.random.default_rng(seed)
    xy = rng.normal(0.0, 1.0, (batch, frames, 17, 2))
    xy[:, :, 0] = rng.normal(0.0, 0.2, (batch, frames, 2))
    conf = rng.uniform(0.3, 1.0, (batch, frames, 17, 1))
    return np.concatenate([xy, conf], -1).astype(np.float32)


# -- selection -----------------------------------------------------------------------------------
def test_auto_with_everything_picks_tensorrt_and_lists_it():
    chosen, reason = select_backend("auto", "m.onnx", probes(**ALL_PRESENT))
    assert chosen == "tensorrt"
    for part in ("/dev/nvidia0", "tensorrt 10.3.0", "cuda-python 12.6.0", "onnx 1.17.0"):
        assert part in reason


def test_auto_without_gpu_picks_onnxruntime_and_says_why():
    chosen, reason = select_backend("auto", "m.onnx", probes(gpu=False, trt=True))
    assert chosen == "onnxruntime"
    assert "no NVIDIA GPU (fake)" in reason and "CPUExecutionProvider" in reason


@pytest.mark.parametrize(
    "missing,expected",
    [
        ("trt", "no module named 'tensorrt' (fake)"),
        ("cuda", "no cuda-python (fake); pip install cuda-python"),
        ("onnx", "no onnx (fake); pip install onnx"),
    ],
)
def test_auto_falls_back_when_one_requirement_is_missing(missing, expected):
    present = {**ALL_PRESENT, missing: False}
    chosen, reason = select_backend(
        "auto",
        "m.onnx",
        probes(**present, providers=("CPUExecutionProvider", "CUDAExecutionProvider")),
    )
    assert chosen == "onnxruntime"
    assert expected in reason and "with CUDAExecutionProvider" in reason
    with pytest.raises(BackendError) as err:  # explicit tensorrt: one line, what + how
        select_backend("tensorrt", "m.onnx", probes(**present))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_explicit_tensorrt_names_every_missing_piece():
    with pytest.raises(BackendError) as err:
        load_backend("m.onnx", "tensorrt", probes=probes(gpu=False, trt=False, cuda=False))
    msg = str(err.value)
    assert msg.startswith("backend 'tensorrt' cannot run here")
    for m in ("no NVIDIA GPU", "no module named 'tensorrt'", "pip install cuda-python"):
        assert m in msg
    assert "onnx" not in msg.replace("onnxruntime", "")  # onnx was present: not blamed


def test_prebuilt_engine_needs_no_onnx_but_everything_else():
    assert select_backend("auto", "x.engine", probes(**{**ALL_PRESENT, "onnx": False}))[0] == (
        "tensorrt"
    )
    with pytest.raises(BackendError, match="cuda-python"):
        select_backend("auto", "x.plan", probes(**{**ALL_PRESENT, "cuda": False}))
    with pytest.raises(BackendError, match="only backend tensorrt"):
        select_backend("onnxruntime", "x.engine", probes())


def test_checkpoints_and_unknown_backends_are_refused():
    with pytest.raises(BackendError, match=r"PyTorch checkpoint.*pose3d-tools export"):
        select_backend("auto", "x.pt", probes())
    with pytest.raises(BackendError, match="unknown backend 'torch'"):
        select_backend("torch", "x.pt", probes())
    with pytest.raises(BackendError, match="unknown backend"):
        select_backend("openvino", "m.onnx", probes())
    with pytest.raises(BackendError, match="onnxruntime is not installed"):
        select_backend("auto", "m.onnx", probes(providers=()))


# -- auto fallback when the TensorRT backend fails to load -------------------------------------
class FailingTensorRT:
    """Stands in for TensorRTBackend: records the settings it got, then fails like a build."""

    error: Exception = BackendError("TensorRT 10.3.0 failed to build an engine from m.onnx")
    seen: list[tuple[Path, TensorRTSettings]] = []  # noqa: RUF012 - reset by the fixture

    def __init__(self, model_path, *, settings=None, **options) -> None:
        self.seen.append((Path(model_path), tensorrt_settings(settings, **options)))
        raise self.error


@pytest.fixture
def failing_tensorrt(monkeypatch):
    FailingTensorRT.seen = []
    monkeypatch.setattr(trt_backend_module, "TensorRTBackend", FailingTensorRT)
    return FailingTensorRT


@pytest.mark.parametrize(
    "error",
    [BackendError("engine build failed (fake)"), RuntimeError("CUDA error 700 (fake)")],
    ids=["backend-error", "runtime-error"],
)
def test_auto_falls_back_to_onnxruntime_when_tensorrt_fails_to_load(
    failing_tensorrt, monkeypatch, caplog, error
):
    monkeypatch.setattr(failing_tensorrt, "error", error)
    with caplog.at_level(logging.WARNING, logger="pose3d_ros.backends"):
        backend = load_backend(HTNET, "auto", probes=probes(**ALL_PRESENT), threads=1)
    assert len(failing_tensorrt.seen) == 1  # TensorRT was really tried first
    assert backend.name == "onnxruntime"
    assert str(error) in backend.selection_reason
    assert "TensorRT backend failed" in backend.selection_reason
    assert str(error) in caplog.text
    y = backend.run({"keypoints": lifter_inputs(1, 2)})["joints3d"]
    assert y.shape == (2, 1, 17, 3) and np.isfinite(y).all()


def test_explicit_tensorrt_failure_is_raised_in_one_line(failing_tensorrt, monkeypatch):
    monkeypatch.setattr(failing_tensorrt, "error", RuntimeError("CUDA error 700\n(fake)"))
    with pytest.raises(BackendError) as err:
        load_backend(HTNET, "tensorrt", probes=probes(**ALL_PRESENT))
    assert "RuntimeError: CUDA error 700 (fake)" in str(err.value)
    assert "\n" not in str(err.value)


# -- the pipeline's TensorRT settings reach the backend ----------------------------------------
def test_pipeline_tensorrt_settings_reach_every_backend(failing_tensorrt, monkeypatch, tmp_path):
    from pose3d_ros import pipeline as pipeline_module
    from pose3d_ros.assets import find_model_dir
    from pose3d_ros.core.parameters import build_settings

    calib = tmp_path / "calib.npy"
    np.save(calib, lifter_inputs(1, 4))
    settings = build_settings(
        pipeline_module.PipelineSettings,
        {
            "backend": "auto",
            "threads": 1,
            "model_dir": str(find_model_dir()),
            "tensorrt.precision": "int8",
            "tensorrt.max_batch": 4,
            "tensorrt.workspace_mb": 512,
            "tensorrt.engine_dir": str(tmp_path / "engines"),
            "tensorrt.allow_build": False,
            "tensorrt.calibration_file": str(calib),
        },
    )
    monkeypatch.setattr(
        pipeline_module,
        "load_backend",
        functools.partial(load_backend, probes=probes(**ALL_PRESENT)),
    )
    pipe = pipeline_module.PosePipeline(settings)

    seen = {path.name: s for path, s in failing_tensorrt.seen}
    image_models = (
        "ssdlite_mobilenet_v2_person.onnx",
        "blazepose_pose_detector.onnx",
        "blazepose_landmark_full.onnx",
    )
    # + the joint refiner (pipeline.refinement.enabled is on by default)
    assert sorted(seen) == sorted([*image_models, "htnet_small.onnx", "joint_refinement.onnx"])
    for name, s in seen.items():
        assert (s.max_batch, s.workspace_mb, s.allow_build) == (4, 512, False), name
        assert s.engine_dir == str(tmp_path / "engines"), name
    assert (seen["htnet_small.onnx"].precision, seen["htnet_small.onnx"].calibration_file) == (
        "int8",
        str(calib),
    )
    for image_model in image_models:
        assert (seen[image_model].precision, seen[image_model].calibration_file) == ("fp16", "")
    # every model fell back to ONNX Runtime, which took the threads setting and ran
    assert "failed to build" in pipe._lifter_backend.selection_reason
    assert pipe._lifter_backend.settings.threads == 1


# -- ONNX Runtime on the shipped lifters ---------------------------------------------------------
def test_onnxruntime_specs_metadata_and_dynamic_batch(caplog):
    with caplog.at_level(logging.INFO, logger="pose3d_ros.backends"):
        backend = load_backend(NANO, "auto", threads=1, probes=probes())
    assert "backend onnxruntime" in caplog.text and "no NVIDIA GPU (fake)" in caplog.text
    assert backend.name == "onnxruntime" and "no NVIDIA GPU" in backend.selection_reason
    [inp], [out] = backend.inputs, backend.outputs
    assert (inp.name, inp.shape[1:], inp.dtype) == ("keypoints", (27, 17, 3), np.float32)
    assert isinstance(inp.shape[0], str) and out.name == "joints3d"
    meta = backend.metadata
    assert meta["model"] == "nanohtnet" and meta["frames"] == "27"
    assert "CPUExecutionProvider" in backend.describe()
    x = lifter_inputs(27, 5)
    batched = backend.run({"keypoints": x})["joints3d"]
    assert batched.shape == (5, 27, 17, 3) and batched.dtype == np.float32
    assert np.isfinite(batched).all()
    # the dynamic batch axis is independent rows: one call for five == five calls for one
    singles = [backend.run({"keypoints": x[i : i + 1]})["joints3d"] for i in range(5)]
    singles = np.concatenate(singles)
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    assert not np.allclose(batched[0], batched[1])  # the inputs differ, so must the outputs
    with pytest.raises(BackendError, match="expected inputs"):
        backend.run({"x": x})


def test_onnxruntime_settings_and_optimised_model_cache(tmp_path):
    x = lifter_inputs(1, 3)
    plain = OnnxRuntimeBackend(HTNET, threads=1).run({"keypoints": x})["joints3d"]
    s = OnnxRuntimeSettings(
        threads=1, graph_optimization="extended", optimized_model_dir=str(tmp_path / "ortcache")
    )
    first = OnnxRuntimeBackend(HTNET, settings=s)
    assert "written" in first.cache_note
    assert len(list((tmp_path / "ortcache").glob("htnet_small.*.ort.onnx"))) == 1
    second = OnnxRuntimeBackend(HTNET, settings=s)
    assert "from" in second.cache_note
    assert second.metadata["model"] == "htnet"
    np.testing.assert_allclose(second.run({"keypoints": x})["joints3d"], plain, atol=1e-5)
    with pytest.raises(BackendError, match="graph_optimization"):
        OnnxRuntimeBackend(HTNET, graph_optimization="max")
    with pytest.raises(BackendError, match="lacks provider"):
        OnnxRuntimeBackend(HTNET, providers=["CUDAExecutionProvider"])
    with pytest.raises(BackendError, match="unknown setting"):
        OnnxRuntimeBackend(HTNET, thread=2)


@pytest.mark.parametrize("kind", ["auto", "onnxruntime"])
def test_other_backends_options_are_ignored_but_typos_are_not(kind):
    b = load_backend(HTNET, kind, probes=probes(), threads=1, precision="int8", max_batch=4)
    assert b.name == "onnxruntime" and b.settings.threads == 1
    with pytest.raises(BackendError, match="unknown backend option"):
        load_backend(HTNET, kind, probes=probes(), max_batchh=4)


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_broken_onnx_file_raises_with_path(tmp_path, damage):
    path = tmp_path / "broken.onnx"
    if damage == "truncated":
        path.write_bytes(HTNET.read_bytes()[: HTNET.stat().st_size // 3])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage, not a model\xff" * 50)
    with pytest.raises(BackendError) as err:
        load_backend(path, "onnxruntime")
    assert str(path) in str(err.value)


# -- ONNX checks for TensorRT ----------------------------------------------------------------------
def _graph(path: Path, op: str, domain: str = "", dims=("batch", 9, 17, 3)) -> Path:
    onnx = pytest.importorskip("onnx", reason="onnx (TensorRT pre-flight only) is not installed")
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, list(dims))
    out = helper.make_tensor_value_info("joints3d", TensorProto.FLOAT, list(dims))
    node = helper.make_node(op, ["keypoints"], ["joints3d"], domain=domain)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], "g", [inp], [out]), opset_imports=opsets)
    model.metadata_props.add(key="model", value=f"one {op}")
    onnx.save(model, str(path))
    return path


def test_onnx_checks(tmp_path):
    from pose3d_ros.backends.onnx_checks import check_tensorrt_compatibility

    for lifter in (HTNET, NANO):
        assert check_tensorrt_compatibility(lifter) == []
    assert check_tensorrt_compatibility(_graph(tmp_path / "ok.onnx", "Relu")) == []
    dyn = check_tensorrt_compatibility(
        _graph(tmp_path / "dyn.onnx", "Relu", dims=("batch", "frames", 17, 3))
    )
    assert len(dyn) == 2 and all("axis 1 is dynamic" in p for p in dyn)  # input and output
    custom = check_tensorrt_compatibility(_graph(tmp_path / "c.onnx", "Dct", domain="my.ops"))
    assert any("my.ops::Dct" in p for p in custom)
    nonzero = check_tensorrt_compatibility(_graph(tmp_path / "nz.onnx", "NonZero"))
    assert any("NonZero" in p for p in nonzero)
    with pytest.raises(FileNotFoundError):
        check_tensorrt_compatibility(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match=r"junk\.onnx"):
        check_tensorrt_compatibility(tmp_path / "junk.onnx")


def test_read_interface_is_the_one_onnx_reader(tmp_path):
    from pose3d_ros.backends.onnx_checks import read_interface, read_metadata

    graph = _graph(tmp_path / "g.onnx", "Relu", dims=("batch", 9, 17, 3))
    interface = read_interface(graph)
    assert [(i.name, i.dims) for i in interface.inputs] == [("keypoints", ["batch", 9, 17, 3])]
    assert interface.metadata == read_metadata(graph) == {"model": "one Relu"}
    nano = read_interface(NANO)
    assert nano.inputs[0].dims[1:] == [27, 17, 3] and nano.metadata["frames"] == "27"


# -- the robot never imports torch -----------------------------------------------------------------
def test_runtime_path_never_imports_torch():
    """Loading and running an ONNX model, and every TensorRT module (incl. the CUDA memory one
    failing for lack of cuda-python), must not pull torch in (a Jetson has none)."""
    code = f"""
import sys
from pose3d_ros.backends import load_backend
import pose3d_ros.backends.engine_commands
import pose3d_ros.backends.tensorrt.backend
import pose3d_ros.backends.tensorrt.build
import pose3d_ros.backends.tensorrt.cache
import pose3d_ros.backends.tensorrt.memory as memory
import pose3d_ros.backends.tensorrt.probe
b = load_backend({str(HTNET)!r}, "auto", threads=1)
b.run(b.example_feeds(2))
try:
    memory.CudaRuntime(0)
except Exception as e:
    print(type(e).__name__, e)
assert "torch" not in sys.modules, "torch was imported"
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    if probe.cuda_python_status()[0] is False:  # here: the memory module's error names the fix
        assert "BackendError" in done.stdout and "pip install 'cuda-python" in done.stdout
