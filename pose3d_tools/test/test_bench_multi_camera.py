"""The multi-camera benchmark's bookkeeping: ratios to the baseline per round, and memory."""

from __future__ import annotations

import os
import types

import pytest

from pose3d_tools.bench.multi_camera import _memory_kib, summarise


def _round(fps: float, p95: float, pss: float) -> dict:
    return {
        "fps": fps,
        "latency_p50_ms": p95 / 2,
        "latency_p95_ms": p95,
        "people_mean": 3.0,
        "rss_mib": pss * 1.2,
        "pss_mib": pss,
        "loadavg": 1.0,
    }


def test_ratios_are_taken_per_round_then_the_median():
    separate = types.SimpleNamespace(
        rounds=[_round(10, 100, 600), _round(5, 200, 600), _round(8, 100, 600)]
    )
    shared = types.SimpleNamespace(
        rounds=[_round(11, 90, 300), _round(6, 220, 330), _round(4, 100, 360)]
    )
    out = summarise({"separate": separate, "shared_w2": shared})
    ratios = out["shared_w2"]["vs_separate"]
    # per round: fps 1.1, 1.2, 0.5 -> median 1.1 (the median of the fps would give 6 / 8).
    assert ratios["fps"] == pytest.approx(1.1)
    assert ratios["latency_p95_ms"] == pytest.approx(1.0)  # 0.9, 1.1, 1.0
    assert ratios["pss_mib"] == pytest.approx(0.55)  # 0.5, 0.55, 0.6
    assert out["separate"]["fps"] == 8 and "vs_separate" not in out["separate"]


def test_memory_of_this_process():
    memory = _memory_kib(os.getpid())
    assert 0 < memory["pss"] <= memory["rss"]
