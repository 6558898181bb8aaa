"""backends/fault_injection.py: off unless the environment variable names a model; then exactly
the chosen call raises."""

from __future__ import annotations

import numpy as np
import pytest

from pose3d_ros.backends.base import Backend, TensorSpec
from pose3d_ros.backends.fault_injection import (
    ENV_VAR,
    FaultInjectingBackend,
    InjectedFaultError,
    maybe_inject,
    parse_spec,
)


class _Echo(Backend):
    name = "echo"

    def __init__(self) -> None:
        self._inputs = [TensorSpec("x", (1,), np.float32)]
        self._outputs = [TensorSpec("y", (1,), np.float32)]

    def run(self, feeds):
        return {"y": feeds["x"]}


def test_off_unless_the_variable_names_the_model(monkeypatch):
    backend = _Echo()
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert maybe_inject(backend, "/m/htnet_small.onnx") is backend
    monkeypatch.setenv(ENV_VAR, "keypoints:2")
    assert maybe_inject(backend, "/m/htnet_small.onnx") is backend


def test_exactly_the_chosen_call_raises(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "htnet:2")
    wrapped = maybe_inject(_Echo(), "/m/htnet_small.onnx")
    assert isinstance(wrapped, FaultInjectingBackend)
    x = {"x": np.ones(1, np.float32)}
    assert wrapped.run(x)["y"][0] == 1.0
    with pytest.raises(InjectedFaultError, match="call 2"):
        wrapped.run(x)
    for _ in range(5):
        assert wrapped.run(x)["y"][0] == 1.0
    assert wrapped.inputs[0].name == "x" and wrapped.name == "echo"


@pytest.mark.parametrize("text", ["htnet", "htnet:0", ":3", "htnet:x"])
def test_malformed_spec(text):
    with pytest.raises(ValueError, match=ENV_VAR):
        parse_spec(text)
