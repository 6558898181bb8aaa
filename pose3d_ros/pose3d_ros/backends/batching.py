"""Cross-camera batching: concurrent ``run`` calls on one model become one inference.

    shared = BatchingBackend(load_backend(path), window_ms=2.0, max_batch=32, callers=2)
    # camera threads call shared.run(...) as they would the model itself

When several pipelines (one per camera, each on its own thread) share a model, their calls that
arrive within ``window_ms`` of the first waiting one are concatenated along the batch axis
(``onnx_checks.BATCH_AXIS``), run once and split back to their callers. The first caller of a
group waits at most ``window_ms`` for others, and not at all once every one of the ``callers``
sharing threads is either waiting or inside an inference of this model, or ``max_batch`` rows
are collected, so a single camera never waits.
Inference runs outside the lock (ONNX Runtime releases the GIL), so another group can collect
while one runs; a model whose backend cannot run concurrently (``Backend.concurrent_runs``
False: the TensorRT backend's one execution context and device buffers) runs one inference at a
time.

A model is merged only when every input and output has a dynamic batch axis and fixed other
axes; otherwise (the SSDLite detector: fixed batch of 1) calls go straight through. A call whose
feeds do not match the model (names, rank, fixed axes) or that is empty also runs alone, so its
error reaches only its caller; if a merged run fails, each request of the group is rerun alone
so only the bad one sees the failure.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from pose3d_ros.backends.base import Backend, Timing
from pose3d_ros.backends.onnx_checks import BATCH_AXIS


@dataclass
class _Request:
    feeds: dict[str, np.ndarray]
    rows: int
    deadline: float  # time.monotonic() after which the group it leads stops waiting
    done: bool = False
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


@dataclass
class BatchingStats:
    """What happened to the calls (bounded counters, for tests and the benchmark)."""

    requests: int = 0  # run() calls
    inferences: int = 0  # calls of the wrapped model (merged runs + runs alone)
    merged_requests: int = 0  # requests served by an inference shared with another request
    largest_group: int = 0
    group_sizes: dict[int, int] = field(default_factory=dict)  # requests per merged run -> count


class BatchingBackend(Backend):
    """Wraps a loaded model so concurrent callers share inferences (see the module docstring)."""

    def __init__(
        self, inner: Backend, window_ms: float = 2.0, max_batch: int = 32, callers: int = 1
    ) -> None:
        if window_ms < 0 or max_batch < 1 or callers < 1:
            raise ValueError("window_ms >= 0, max_batch >= 1 and callers >= 1 are required")
        self.inner = inner
        self.name = inner.name
        self.selection_reason = inner.selection_reason
        self._inputs = inner.inputs
        self._outputs = inner.outputs
        self._metadata = inner.metadata
        self.window_s = window_ms / 1e3
        self.max_batch = max_batch
        self.callers = callers
        self.stats = BatchingStats()
        self.mergeable = _mergeable(inner)
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._busy = 0  # callers inside an inference now: they cannot join a group soon
        self._serial = None if inner.concurrent_runs else threading.Lock()
        self.last_timing = Timing()

    def describe(self) -> str:
        how = (
            f"cross-camera batching {self.window_s * 1e3:g} ms, <= {self.max_batch} rows"
            if self.mergeable
            else "shared, not batchable"
        )
        return f"{self.inner.describe()} [{how}]"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._cond:
            self.stats.requests += 1
        request = self._request(feeds) if self.mergeable else None
        if request is None:
            with self._cond:
                self._busy += 1
            try:
                return self._run_alone(feeds)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
        group = self._join(request)
        if group is not None:
            self._run_group(group)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    # ------------------------------------------------------------------ internals

    def _run_alone(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._cond:
            self.stats.inferences += 1
        return self._inner_run(feeds)

    def _inner_run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._serial is None:
            out = self.inner.run(feeds)
        else:
            with self._serial:
                out = self.inner.run(feeds)
        self.last_timing = self.inner.last_timing
        return out

    def _request(self, feeds: dict[str, np.ndarray]) -> _Request | None:
        """A mergeable request, or None when the call must run alone (it does not match the
        model's interface, or has no rows)."""
        if not isinstance(feeds, dict) or set(feeds) != {s.name for s in self._inputs}:
            return None
        arrays: dict[str, np.ndarray] = {}
        rows = None
        for spec in self._inputs:
            arr = np.asarray(feeds[spec.name])
            if arr.ndim != len(spec.shape) or arr.dtype.kind not in "biuf":
                return None
            fixed = [d for i, d in enumerate(spec.shape) if i != BATCH_AXIS]
            if list(np.delete(arr.shape, BATCH_AXIS)) != fixed:
                return None
            if rows is None:
                rows = arr.shape[BATCH_AXIS]
            if arr.shape[BATCH_AXIS] != rows:
                return None
            arrays[spec.name] = arr.astype(spec.dtype, copy=False)
        if not rows or rows > self.max_batch:
            return None
        return _Request(arrays, rows, time.monotonic() + self.window_s)

    def _join(self, request: _Request) -> list[_Request] | None:
        """Wait until this request has been served by another caller's group (None), or until
        it leads a group that is ready to run (the group, taken off the queue)."""
        with self._cond:
            self._pending.append(request)
            self._cond.notify_all()
            while not request.done:
                if self._pending and self._pending[0] is request:
                    rows = sum(r.rows for r in self._pending)
                    left = request.deadline - time.monotonic()
                    everyone = len(self._pending) + self._busy >= self.callers
                    if rows >= self.max_batch or everyone or left <= 0:
                        return self._take()
                    self._cond.wait(left)
                else:
                    # Bounded: the head runs within its window; wake to re-check who is head.
                    self._cond.wait(self.window_s + 0.05)
            return None

    def _take(self) -> list[_Request]:
        """The head requests (FIFO) up to max_batch rows; the next head leads what is left."""
        group, rows = [], 0
        while self._pending and rows + self._pending[0].rows <= self.max_batch:
            rows += self._pending[0].rows
            group.append(self._pending.pop(0))
        self._busy += len(group)
        self._cond.notify_all()  # a new head, if any, starts its own group
        return group

    def _run_group(self, group: list[_Request]) -> None:
        try:
            if len(group) == 1:
                self._serve_alone(group[0])
            else:
                self._serve_merged(group)
        finally:
            with self._cond:
                for r in group:
                    r.done = True
                self._busy -= len(group)
                self._cond.notify_all()

    def _serve_alone(self, request: _Request) -> None:
        try:
            request.result = self._run_alone(request.feeds)
        except Exception as e:  # handed to its caller
            request.error = e

    def _serve_merged(self, group: list[_Request]) -> None:
        merged = {
            name: np.concatenate([r.feeds[name] for r in group], axis=BATCH_AXIS)
            for name in group[0].feeds
        }
        total = sum(r.rows for r in group)
        try:
            with self._cond:
                self.stats.inferences += 1
            out = self._inner_run(merged)
            if any(np.shape(v)[BATCH_AXIS] != total for v in out.values()):
                raise ValueError("an output's batch axis does not match the merged inputs")
        except Exception:  # rerun one by one: only the request that fails gets the error
            for r in group:
                self._serve_alone(r)
            return
        with self._cond:
            self.stats.merged_requests += len(group)
            self.stats.largest_group = max(self.stats.largest_group, len(group))
            self.stats.group_sizes[len(group)] = self.stats.group_sizes.get(len(group), 0) + 1
        start = 0
        for r in group:
            stop = start + r.rows
            r.result = {
                k: np.take(v, np.arange(start, stop), axis=BATCH_AXIS) for k, v in out.items()
            }
            start = stop


def _mergeable(backend: Backend) -> bool:
    """Every input and output has a dynamic batch axis and fixed other axes."""
    for spec in [*backend.inputs, *backend.outputs]:
        if len(spec.shape) <= BATCH_AXIS:
            return False
        for i, d in enumerate(spec.shape):
            dynamic = not isinstance(d, int) or d <= 0
            if dynamic != (i == BATCH_AXIS):
                return False
    return True
