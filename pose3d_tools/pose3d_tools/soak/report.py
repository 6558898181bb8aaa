"""The soak report's computations: RSS growth, per-minute latency percentiles, frame counts.

Pure functions on plain samples (tested with known answers in test_soak_report.py), and the plot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

RSS_BASELINE_S = 120.0  # RSS growth is measured from minute 2 (start-up and warm-up excluded)
RSS_WINDOW_S = 15.0  # median over this window at the baseline and at the end (sampling noise)


def rss_baseline_s(duration_s: float) -> float:
    """Where RSS growth starts: minute 2, or half the run when the run is shorter than 4 min."""
    return RSS_BASELINE_S if duration_s >= 2 * RSS_BASELINE_S else duration_s / 2


def rss_growth_pct(samples: Sequence[tuple[float, float]], baseline_s: float) -> float | None:
    """RSS growth (%) of one process from `baseline_s` to its last sample.

    `samples`: (seconds since the soak started, RSS in bytes). The median RSS of the first
    RSS_WINDOW_S seconds from the baseline against the median of the last RSS_WINDOW_S seconds;
    None when the process has no sample at or after the baseline (started late, or exited).
    """
    t = np.array([s[0] for s in samples], dtype=float)
    rss = np.array([s[1] for s in samples], dtype=float)
    after = t >= baseline_s
    if not after.any():
        return None
    t0 = t[after][0]
    start = np.median(rss[after & (t <= t0 + RSS_WINDOW_S)])
    end = np.median(rss[t >= t[-1] - RSS_WINDOW_S])
    if t[-1] - t0 < 2 * RSS_WINDOW_S or start <= 0:
        return None
    return float((end - start) / start * 100.0)


def latency_by_minute(
    samples: Iterable[tuple[float, float]], percentiles: Sequence[int] = (50, 95, 99)
) -> list[dict]:
    """(seconds since start, latency ms) -> one row per minute with n and p50/p95/p99 (ms, 1
    decimal); minutes without samples are listed with n = 0."""
    arr = np.array(list(samples), dtype=float).reshape(-1, 2)
    if not arr.size:
        return []
    minutes = (arr[:, 0] // 60).astype(int)
    rows = []
    for m in range(int(minutes.max()) + 1):
        lat = arr[minutes == m, 1]
        row: dict = {"minute": m, "n": int(lat.size)}
        for p in percentiles:
            row[f"p{p}"] = round(float(np.percentile(lat, p)), 1) if lat.size else None
        rows.append(row)
    return rows


class CounterTotal:
    """A monotonic total over a counter that restarts at 0 when its process restarts
    (e.g. /diagnostics frames_in of a node killed and started again)."""

    def __init__(self) -> None:
        self._done = 0  # the totals of finished process instances
        self._last = 0

    def update(self, value: int) -> None:
        if value < self._last:  # a new process instance counts from 0 again
            self._done += self._last
        self._last = value

    @property
    def total(self) -> int:
        return self._done + self._last


def frame_counts(published: int, diag_series: Sequence[dict[str, int]]) -> dict[str, int]:
    """Per camera: frames published by the source, and the node's in/processed/dropped/failed/
    skipped summed over its process instances; `lost_in_transport` = published - in."""
    keys = ("frames_in", "frames_processed", "frames_dropped", "frames_failed", "frames_skipped")
    totals = {k: CounterTotal() for k in keys}
    for values in diag_series:
        for k in keys:
            if k in values:
                totals[k].update(int(values[k]))
    out = {"frames_published": int(published), **{k: totals[k].total for k in keys}}
    out["lost_in_transport"] = max(0, out["frames_published"] - out["frames_in"])
    return out


def cpu_per_minute(samples: dict[str, list[dict]]) -> list[dict]:
    """Per minute: the mean CPU (% of one core) each kind of process got, summed over the
    processes of that kind (pose3d, video, ...): a fall with an unchanged workload means other
    work on the machine took the cores."""
    sums: dict[int, dict[str, float]] = {}
    times: dict[int, set[float]] = {}
    for name, rows in samples.items():
        kind = name.split("_")[0]
        for r in rows:
            if r.get("cpu_pct") is None:
                continue
            m = int(r["t_s"] // 60)
            sums.setdefault(m, {}).setdefault(kind, 0.0)
            sums[m][kind] += r["cpu_pct"]
            times.setdefault(m, set()).add(r["t_s"])
    return [
        {"minute": m, **{k: round(v / len(times[m]), 1) for k, v in sorted(sums[m].items())}}
        for m in sorted(sums)
    ]


def plot(report: dict, series: dict, path: Path) -> None:
    """Latency (every message, per camera) and RSS (every process) over time, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for cam, samples in series["latency"].items():
        if samples:
            t, lat = np.array(samples, dtype=float).T
            ax1.plot(t, lat, ".", ms=2, alpha=0.5, label=cam)
    for fault in report["faults"]:
        if fault.get("t_s") is not None:
            ax1.axvline(fault["t_s"], color="grey", lw=0.8, ls="--")
            ax1.text(
                fault["t_s"], ax1.get_ylim()[1], fault["kind"], rotation=90, va="top", fontsize=7
            )
    ax1.set_ylabel("latency (ms)")
    ax1.set_yscale("log")
    ax1.legend(loc="upper right", fontsize=8)
    ax1.set_title(
        f"soak: {report['cameras']} cameras at {report['rate_hz']:g} Hz, "
        f"{report['duration_s']:.0f} s"
    )
    for name, samples in series["rss"].items():
        if samples:
            t, rss = np.array(samples, dtype=float).T
            ax2.plot(t, rss / 2**20, label=name)
    ax2.set_ylabel("RSS (MiB)")
    ax2.set_xlabel("time since start (s)")
    ax2.legend(loc="upper left", fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
