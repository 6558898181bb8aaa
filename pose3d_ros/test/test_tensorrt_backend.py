"""The TensorRT backend where it cannot run: the failure must say what is missing.

No GPU exists on the machines this suite runs on; the real build/run path is exercised on a
Jetson or an x86 GPU (see docs/jetson.md). The tensorrt wheel is not installed here (it pulls
multi-GB CUDA libraries), so the test that imports it skips with the reason.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from pose3d_ros.backends import BackendError, load_backend
from pose3d_ros.backends.tensorrt_backend import (
    NO_GPU_HINT,
    TensorRTBackend,
    check_runnable,
    cuda_runtime,
    gpu_present,
    tensorrt_status,
)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from pose3d_tools.export import export_onnx
    from pose3d_tools.models.registry import build_lifter

    path = tmp_path_factory.mktemp("trt") / "tiny.onnx"
    return export_onnx(
        build_lifter("htnet", {"embed_dim": 24, "depth": 1, "mlp_hidden": 32, "gcn_hidden": 16}),
        path,
    )


def test_tensorrt_module_import_or_skip():
    if importlib.util.find_spec("tensorrt") is None:
        reason = (
            "tensorrt is not installed here: the wheel depends on multi-GB CUDA libraries "
            "(tensorrt-cu12-libs) and no GPU exists to run it; "
            f"probe says: {tensorrt_status()[1]}"
        )
        print(reason, file=sys.stderr)
        pytest.skip(reason)
    try:
        import tensorrt as trt
    except Exception as e:  # the import itself failing is what users would hit: say so
        pytest.fail(f"tensorrt is installed but does not import: {e}")
    assert trt.__version__


def test_gpu_probe_reports_missing_device_files(tmp_path):
    ok, why = gpu_present((str(tmp_path / "nvidia0"),))
    assert not ok and "no NVIDIA GPU" in why
    (tmp_path / "nvidia0").write_text("")
    ok, why = gpu_present((str(tmp_path / "nvidia0"),))
    assert ok and "nvidia0" in why


def test_check_runnable_names_everything_missing():
    with pytest.raises(BackendError) as err:
        check_runnable(
            gpu=lambda: (False, "no NVIDIA GPU (test)"),
            tensorrt=lambda: (False, "no module named 'tensorrt' (test)"),
        )
    assert "no NVIDIA GPU (test)" in str(err.value)
    assert "no module named 'tensorrt' (test)" in str(err.value)
    check_runnable(gpu=lambda: (True, "gpu"), tensorrt=lambda: (True, "tensorrt 10.3"))


@pytest.mark.skipif(
    gpu_present()[0], reason="an NVIDIA GPU is present: this checks the no-GPU path"
)
def test_tensorrt_backend_without_gpu_fails_fast_and_clearly(onnx_model):
    with pytest.raises(BackendError) as err:
        TensorRTBackend(onnx_model)
    msg = str(err.value)
    assert "backend 'tensorrt' cannot run here" in msg
    assert NO_GPU_HINT in msg
    if importlib.util.find_spec("tensorrt") is None:
        assert "tensorrt" in msg and "python3-libnvinfer" in msg
    with pytest.raises(BackendError, match="cannot run here"):
        load_backend(onnx_model, "tensorrt")


def test_tensorrt_backend_missing_model_names_path(tmp_path):
    with pytest.raises(BackendError, match=str(tmp_path / "nope.onnx")):
        TensorRTBackend(tmp_path / "nope.onnx")


@pytest.mark.skipif(gpu_present()[0], reason="an NVIDIA GPU is present")
def test_cuda_runtime_without_cuda_says_what_to_install():
    with pytest.raises(BackendError) as err:
        cuda_runtime(0)
    msg = str(err.value)
    assert "cuda-python" in msg and "device buffers" in msg
