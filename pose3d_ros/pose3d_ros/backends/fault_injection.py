"""Fault injection for reliability tests: make one model raise on one chosen call.

Enabled ONLY by the environment variable ``POSE3D_TEST_FAULT_INJECTION`` (for testing; never set
it on a robot), read when a model is loaded: ``<name part>:<call>[,<name part>:<call>...]``, e.g.
``htnet:100`` makes the 100th ``run`` of the model whose file name contains ``htnet`` raise
``InjectedFaultError``; every other call passes through untouched. Unset (the normal case) the
loaded backend is returned as it is, so no production code path can trigger it by accident.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from pose3d_ros.backends.base import Backend

ENV_VAR = "POSE3D_TEST_FAULT_INJECTION"
log = logging.getLogger(__name__)


class InjectedFaultError(RuntimeError):
    """The fault a FaultInjectingBackend raises on its chosen call."""


def parse_spec(text: str) -> dict[str, int]:
    """``"htnet:100,detector:5"`` -> {name part: 1-based call index}; ValueError if malformed."""
    out: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, call = item.rpartition(":")
        if not sep or not name or not call.isdigit() or int(call) < 1:
            raise ValueError(f"{ENV_VAR}: expected <name part>:<call >= 1>, got {item!r}")
        out[name] = int(call)
    return out


class FaultInjectingBackend(Backend):
    """Wraps a backend; its `fail_at`-th run (1-based) raises InjectedFaultError, once."""

    def __init__(self, inner: Backend, fail_at: int, label: str) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.label = label
        self.calls = 0
        self._lock = threading.Lock()
        self.name = inner.name
        self.selection_reason = inner.selection_reason
        self.concurrent_runs = inner.concurrent_runs
        self._inputs, self._outputs = inner.inputs, inner.outputs
        self._metadata = inner.metadata

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            self.calls += 1
            fail = self.calls == self.fail_at
        if fail:
            raise InjectedFaultError(
                f"injected fault in {self.label} (call {self.fail_at}, {ENV_VAR})"
            )
        out = self.inner.run(feeds)
        self.last_timing = self.inner.last_timing
        return out

    def describe(self) -> str:
        return self.inner.describe()


def maybe_inject(backend: Backend, model_path: str | Path) -> Backend:
    """The backend itself unless ENV_VAR names this model, else it wrapped (logged as a warning)."""
    text = os.environ.get(ENV_VAR, "")
    if not text:
        return backend
    stem = Path(model_path).name
    for part, call in parse_spec(text).items():
        if part in stem:
            log.warning("%s: %s raises on its call %d (testing only)", ENV_VAR, stem, call)
            return FaultInjectingBackend(backend, call, stem)
    return backend
