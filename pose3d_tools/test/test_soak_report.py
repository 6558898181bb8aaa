"""The soak report's computations on known answers (fast; no ROS graph)."""

from __future__ import annotations

import pytest

from pose3d_tools.soak import report as rep


def test_rss_growth_from_minute_2():
    # 0-120 s: start-up (grows 100 -> 200, ignored); from 120 s: 200 MiB rising to 210 MiB.
    samples = [(t, 100 + t / 120 * 100) for t in range(0, 120, 5)]
    samples += [(t, 200.0) for t in range(120, 140, 5)]
    samples += [(t, 205.0) for t in range(140, 560, 5)]
    samples += [(t, 210.0) for t in range(560, 605, 5)]
    assert rep.rss_baseline_s(600) == 120
    assert rep.rss_growth_pct(samples, 120) == pytest.approx(5.0)


def test_rss_growth_short_run_and_missing():
    assert rep.rss_baseline_s(100) == 50
    assert rep.rss_growth_pct([(t, 1.0) for t in range(0, 40, 5)], 50) is None  # exited early
    assert rep.rss_growth_pct([(t, 1.0) for t in range(0, 60, 5)], 50) is None  # too short


def test_latency_per_minute_percentiles():
    # minute 0: 1..100 ms; minute 1: nothing; minute 2: 500 ms constant.
    samples = [(i * 0.5, float(i + 1)) for i in range(100)]
    samples += [(130.0 + i, 500.0) for i in range(10)]
    rows = rep.latency_by_minute(samples)
    assert [r["minute"] for r in rows] == [0, 1, 2]
    assert rows[0] == {"minute": 0, "n": 100, "p50": 50.5, "p95": 95.0, "p99": 99.0}
    assert rows[1] == {"minute": 1, "n": 0, "p50": None, "p95": None, "p99": None}
    assert rows[2]["p95"] == 500.0 and rows[2]["n"] == 10
    assert rep.latency_by_minute([]) == []


def test_drop_counting_across_a_restart():
    # Node counters (cumulative per process), killed after 100 frames in, restarted from 0.
    series = [
        {"frames_in": "50", "frames_processed": "10", "frames_dropped": "40"},
        {
            "frames_in": "100",
            "frames_processed": "20",
            "frames_dropped": "79",
            "frames_failed": "1",
        },
        {"frames_in": "30", "frames_processed": "6", "frames_dropped": "24"},  # restarted
        {"frames_in": "60", "frames_processed": "12", "frames_dropped": "48"},
    ]
    counts = rep.frame_counts(170, series)
    assert counts["frames_in"] == 160
    assert counts["frames_processed"] == 32
    assert counts["frames_dropped"] == 127
    assert counts["frames_failed"] == 1
    assert counts["frames_skipped"] == 0
    assert counts["lost_in_transport"] == 10


def test_reliability_doc_from_a_small_synthetic_report(tmp_path):
    from pose3d_tools.soak import reliability_doc

    minute = {"minute": 0, "n": 30, "p50": 80.0, "p95": 150.0, "p99": 200.0}
    report = {
        "cameras": 1,
        "rate_hz": 30.0,
        "duration_s": 300.0,
        "mode": "test",
        "crashes": [],
        "rss_growth_pct": 1.25,
        "rss_baseline_s": 120.0,
        "goals": {"no_crash": True, "rss_growth_le_5_pct": True},
        "latency_p95_flat_per_camera": {"cam0": True},
        "per_camera": {
            "cam0": {
                "source": "synthetic",
                "frames_published": 9000,
                "frames_in": 8990,
                "frames_processed": 900,
                "frames_dropped": 8090,
                "frames_failed": 1,
                "frames_skipped": 0,
                "latency_ms_per_minute": [minute, {**minute, "minute": 1, "p95": 160.0}],
            }
        },
        "faults": [
            {"kind": "camera_stops_10s", "recovered": True, "detail": "a | b", "t_s": 45.0},
            {"kind": "clock_jumps_backwards", "recovered": None, "detail": "no jump", "t_s": 0},
        ],
    }
    path = tmp_path / "report.json"
    path.write_text(__import__("json").dumps(report))
    out = tmp_path / "reliability.md"
    assert reliability_doc.main(["--report", str(path), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| Memory (RSS of every process) | from 120 s to the end | yes" in text
    assert "largest growth 1.25 %" in text
    assert "dropped 8090" in text and "150, 160" in text
    assert "| Fault: camera_stops_10s | at 45 s | yes (recovered) | a / b |" in text
    assert "| Fault: clock_jumps_backwards | at 0 s | not run (recovered) | no jump |" in text


def test_cpu_per_minute():
    samples = {
        "pose3d_0": [{"t_s": 5, "cpu_pct": 50.0}, {"t_s": 10, "cpu_pct": 70.0}],
        "pose3d_1": [{"t_s": 5, "cpu_pct": 30.0}, {"t_s": 10, "cpu_pct": 30.0}],
        "video_source_0": [{"t_s": 65, "cpu_pct": 20.0}, {"t_s": 70, "cpu_pct": None}],
    }
    assert rep.cpu_per_minute(samples) == [
        {"minute": 0, "pose3d": 90.0},
        {"minute": 1, "video": 20.0},
    ]
