"""Cross-camera batching (backends/batching.py) and shared per-camera pipelines (camera_set.py):
merged results equal unbatched ones, concurrent callers really share inferences, a bad caller
does not poison the others, one caller never waits for a window, groups stay bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pose3d_ros.backends import BackendError, load_backend
from pose3d_ros.backends.base import Backend, TensorSpec
from pose3d_ros.backends.batching import BatchingBackend
from pose3d_ros.camera_set import ID_BLOCK, parse_namespaces, shared_pipelines
from pose3d_ros.core.parameters import SettingError
from pose3d_ros.pipeline import PipelineSettings

HTNET = Path(__file__).resolve().parents[1] / "lifters" / "htnet_small.onnx"
HANG_GUARD_S = 30.0  # a thread still running after this is deadlocked (not a speed limit)


class Doubler(Backend):
    """y = 2 x per row; refuses rows holding NaN and inputs of the wrong width; records the
    batch size of every call."""

    name = "fake"

    def __init__(self, batch: int | str = "batch") -> None:
        self._inputs = [TensorSpec("x", (batch, 3), np.dtype(np.float32))]
        self._outputs = [TensorSpec("y", (batch, 3), np.dtype(np.float32))]
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def run(self, feeds):
        x = np.asarray(feeds["x"], np.float32)
        with self._lock:
            self.batches.append(len(x))
        if x.ndim != 2 or x.shape[1] != 3:
            raise BackendError(f"fake: expected (N, 3), got {x.shape}")
        if np.isnan(x).any():
            raise BackendError("fake: NaN input")
        return {"y": 2.0 * x}


def call_concurrently(backend: Backend, feeds: list[dict]) -> list:
    """Each feed from its own thread, all released at once; result or exception per feed."""
    out: list = [None] * len(feeds)
    start = threading.Barrier(len(feeds))

    def worker(i: int) -> None:
        start.wait()
        try:
            out[i] = backend.run(feeds[i])
        except Exception as e:
            out[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_GUARD_S)
        assert not t.is_alive(), "a caller never returned"
    return out


def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)


def test_concurrent_callers_share_one_inference_and_get_their_own_rows():
    inner = Doubler()
    # A long window: the group runs only once all 4 callers have joined.
    shared = BatchingBackend(inner, window_ms=10_000, max_batch=64, callers=4)
    xs = [rows(n, seed) for seed, n in enumerate((1, 3, 2, 5))]
    results = call_concurrently(shared, [{"x": x} for x in xs])
    assert inner.batches == [11]  # one inference for 1 + 3 + 2 + 5 rows
    for x, r in zip(xs, results, strict=True):
        np.testing.assert_array_equal(r["y"], 2.0 * x)
    assert shared.stats.requests == 4 and shared.stats.inferences == 1
    assert shared.stats.merged_requests == 4 and shared.stats.largest_group == 4


def test_merged_lifter_results_equal_unbatched_runs():
    inner = load_backend(HTNET, "onnxruntime")
    rng = np.random.default_rng(3)
    feeds = []
    for n in (2, 1, 4):
        x = rng.normal(0.0, 1.0, (n, 1, 17, 3)).astype(np.float32)
        x[..., 2] = rng.uniform(0.3, 1.0, (n, 1, 17))
        feeds.append({inner.inputs[0].name: x})
    alone = [inner.run(f) for f in feeds]
    shared = BatchingBackend(inner, window_ms=10_000, max_batch=64, callers=3)
    merged = call_concurrently(shared, feeds)
    assert shared.stats.inferences == 1
    for a, m in zip(alone, merged, strict=True):
        for name in a:
            assert m[name].shape == a[name].shape
            np.testing.assert_allclose(m[name], a[name], rtol=1e-5, atol=1e-6)


def test_one_caller_does_not_wait_for_the_window():
    inner = Doubler()
    # A 60 s window: only the "every caller has joined" rule can release it in time.
    shared = BatchingBackend(inner, window_ms=60_000, callers=1)
    (result,) = call_concurrently(shared, [{"x": rows(2, 0)}])
    np.testing.assert_array_equal(result["y"], 2.0 * rows(2, 0))


def test_a_missing_caller_costs_at_most_the_window():
    inner = Doubler()
    shared = BatchingBackend(inner, window_ms=20, callers=3)  # 3 expected, 1 comes
    (result,) = call_concurrently(shared, [{"x": rows(1, 0)}])
    np.testing.assert_array_equal(result["y"], 2.0 * rows(1, 0))
    assert inner.batches == [1]


def test_a_bad_shape_fails_only_its_caller():
    inner = Doubler()
    shared = BatchingBackend(inner, window_ms=300, callers=3)
    good = [rows(2, 1), rows(1, 2)]
    results = call_concurrently(shared, [{"x": good[0]}, {"x": rows(4, 9)[:, :2]}, {"x": good[1]}])
    assert isinstance(results[1], BackendError) and "expected (N, 3)" in str(results[1])
    np.testing.assert_array_equal(results[0]["y"], 2.0 * good[0])
    np.testing.assert_array_equal(results[2]["y"], 2.0 * good[1])
    assert 3 in inner.batches  # the two good ones still ran as one (2 + 1 rows)


def test_a_failing_merged_run_is_retried_per_caller():
    inner = Doubler()
    shared = BatchingBackend(inner, window_ms=10_000, callers=3)
    poisoned = rows(2, 5)
    poisoned[1, 0] = np.nan
    good = [rows(1, 6), rows(3, 7)]
    results = call_concurrently(shared, [{"x": good[0]}, {"x": poisoned}, {"x": good[1]}])
    assert isinstance(results[1], BackendError) and "NaN" in str(results[1])
    np.testing.assert_array_equal(results[0]["y"], 2.0 * good[0])
    np.testing.assert_array_equal(results[2]["y"], 2.0 * good[1])
    assert sorted(inner.batches) == [1, 2, 3, 6]  # the merged try, then each alone


def test_groups_never_exceed_max_batch():
    inner = Doubler()
    # 2 + 2 rows fill a group; the third caller leads the next one (its window bounds the wait
    # when the first group has already finished).
    shared = BatchingBackend(inner, window_ms=300, max_batch=4, callers=3)
    xs = [rows(2, s) for s in range(3)]
    results = call_concurrently(shared, [{"x": x} for x in xs])
    assert max(inner.batches) <= 4 and sum(inner.batches) == 6
    for x, r in zip(xs, results, strict=True):
        np.testing.assert_array_equal(r["y"], 2.0 * x)


def test_a_fixed_batch_model_is_shared_without_merging():
    inner = Doubler(batch=1)
    shared = BatchingBackend(inner, window_ms=10_000, callers=2)
    assert not shared.mergeable
    xs = [rows(1, 0), rows(1, 1)]
    results = call_concurrently(shared, [{"x": x} for x in xs])
    assert inner.batches == [1, 1]
    for x, r in zip(xs, results, strict=True):
        np.testing.assert_array_equal(r["y"], 2.0 * x)


class Overlaps(Doubler):
    """A backend that must not run twice at once (as the TensorRT one); records if it did."""

    concurrent_runs = False

    def __init__(self, batch: int | str = "batch") -> None:
        super().__init__(batch)
        self.inside = 0
        self.overlapped = False

    def run(self, feeds):
        with self._lock:
            self.inside += 1
            self.overlapped |= self.inside > 1
        try:
            time.sleep(0.02)  # long enough for the other threads to try
            return super().run(feeds)
        finally:
            with self._lock:
                self.inside -= 1


@pytest.mark.parametrize("batch", ["batch", 1])
def test_a_backend_without_concurrent_runs_is_never_entered_twice(batch):
    inner = Overlaps(batch)
    shared = BatchingBackend(inner, window_ms=0, callers=4)
    xs = [rows(1, s) for s in range(4)]
    results = call_concurrently(shared, [{"x": x} for x in xs])
    assert not inner.overlapped
    for x, r in zip(xs, results, strict=True):
        np.testing.assert_array_equal(r["y"], 2.0 * x)
    # The same backend called directly from 4 threads does overlap: the check can fail.
    call_concurrently(inner, [{"x": x} for x in xs])
    assert inner.overlapped


def test_namespaces_parameter():
    assert parse_namespaces(" /front, rear/cam ,") == ["/front", "rear/cam"]
    assert parse_namespaces("") == []
    with pytest.raises(SettingError, match="not a ROS namespace"):
        parse_namespaces("/front,/9bad")
    with pytest.raises(SettingError, match="twice"):
        parse_namespaces("/a,/b,/a")


def test_shared_pipelines_share_models_and_keep_ids_apart(model_dir, footage):
    import cv2

    from pose3d_ros.core.camera import CameraModel

    settings = PipelineSettings(model_dir=str(model_dir), backend="onnxruntime")
    pipelines = shared_pipelines(settings, cameras=2, window_ms=5.0)
    a, b = pipelines
    assert a.models is b.models and a.models.keypoints.inner is b.models.keypoints.inner
    image = cv2.resize(cv2.imread(str(footage / "messi5.jpg")), (640, 480))
    camera = CameraModel.from_fov(640, 480, 60.0)
    ids = [set(), set()]

    def run(k: int) -> None:
        for i in range(4):
            poses = pipelines[k].process(image, camera, i / 30.0).poses
            ids[k].update(p.track_id for p in poses)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    assert ids[0] and ids[1], "the player is found by both cameras"
    assert all(1 <= i < ID_BLOCK for i in ids[0])
    assert all(ID_BLOCK < i < 2 * ID_BLOCK for i in ids[1])
