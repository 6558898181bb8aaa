"""Several cameras: N separate pipelines (= N nodes) vs one process sharing models (= one node).

    .venv/bin/python -m pose3d_tools.bench.multi_camera [--cameras 2,4] [--windows 2,20]

N camera streams of the same footage (vtest.avi, 640x480; stream k starts 60 k frames later, so
the streams show different moments of the crowd) are processed, every stream as fast as it can
(frames back to back, stamps 1/10 s apart as in the clip), in three ways:

* ``separate`` (the baseline): N processes, each with its own PosePipeline and its own models —
  what N pose3d_node processes (multi_camera.launch.py) do;
* ``shared_w<W>``: one process, one thread per stream, N pipelines over one set of models
  wrapped in the cross-camera BatchingBackend with a W ms window (camera_set.shared_pipelines)
  — pose3d_node with ``cameras.namespaces`` and ``cameras.batch_window_ms`` W;
* ``shared_unbatched``: the same without the batching wrapper (the models are shared, every call
  runs on its own), to tell what sharing and what batching do.

Every configuration's workers stay loaded; after a warm-up, rounds visit the configurations in
turn (order alternating), every stream of a configuration starting together. Per round:
aggregate frames/s (all streams' frames / wall time from the common start to the last frame),
per-stream latency = wall time of PosePipeline.process per frame (p50/p95 over streams and
frames) and memory of the worker processes after the round: resident set (RSS, summed over
processes: shared libraries counted once per process) and proportional set (PSS, shared pages
split between processes: what the processes really occupy together). The ratios to
``separate`` are taken per round and their median reported; the machine's load average is
recorded per round. Then, per batchable model, one inference of N rows against N concurrent
one-row inferences and N in a row (``model_level``: what merging can save at best). Writes
out/bench/multi_camera.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pose3d_tools import REPO_ROOT as ROOT
from pose3d_tools.bench.machine import machine_facts

FRAME_PERIOD_S = 0.1  # vtest.avi is 10 frames/s
STREAM_OFFSET = 60  # frames between the streams' starts in the clip
FIRST_FRAME = 100


def _memory_kib(pid: int) -> dict[str, int]:
    """Rss and Pss of a process in KiB (Linux /proc/<pid>/smaps_rollup)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            out[key.lower()] = int(rest.split()[0])
    return out


def _worker(conn, mode: str, streams: list[int], cameras: int, args: dict, start) -> None:
    """One process: builds the pipelines of its streams, then runs rounds on command."""
    from pose3d_ros.camera_set import shared_pipelines
    from pose3d_ros.core.camera import CameraModel
    from pose3d_ros.pipeline import PipelineModels, PipelineSettings, PosePipeline
    from pose3d_tools.bench.pipeline import HEIGHT, WIDTH, vtest_frames

    settings = replace(PipelineSettings(), model_dir=args["model_dir"], backend="onnxruntime")
    if mode == "separate":
        pipelines = [PosePipeline(settings) for _ in streams]
    elif mode.startswith("shared_w"):
        window_ms = float(mode.removeprefix("shared_w"))
        pipelines = shared_pipelines(settings, cameras, window_ms, args["max_batch"])
    else:
        models = PipelineModels.load(settings)
        pipelines = [PosePipeline(settings, models) for _ in streams]
    need = args["warmup"] + args["rounds"] * args["frames"]
    frames = {k: vtest_frames(FIRST_FRAME + STREAM_OFFSET * k, need) for k in streams}
    camera = CameraModel.from_fov(WIDTH, HEIGHT, 60.0)
    position = dict.fromkeys(streams, 0)

    def run_stream(i: int, k: int, count: int, out: dict) -> None:
        times, people = [], []
        for _ in range(count):
            n = position[k]
            t0 = time.perf_counter()
            result = pipelines[i].process(frames[k][n % need], camera, n * FRAME_PERIOD_S)
            times.append((time.perf_counter() - t0) * 1e3)
            people.append(sum(1 for p in result.poses if p.observed.any()))
            position[k] = n + 1
        out[k] = {"latency_ms": times, "people": people, "end": time.monotonic()}

    def run_all(count: int, synchronised: bool) -> dict:
        out: dict = {}
        threads = [
            threading.Thread(target=run_stream, args=(i, k, count, out))
            for i, k in enumerate(streams)
        ]
        if synchronised:
            start.wait()  # every process of the configuration starts together
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"began": began, "streams": out}

    run_all(args["warmup"], synchronised=False)
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "stop":
            return
        result = run_all(args["frames"], synchronised=True)
        result["memory_kib"] = _memory_kib(os.getpid())
        if mode.startswith("shared_w"):
            result["batching"] = {
                name: vars(getattr(pipelines[0].models, name).stats).copy()
                for name in ("detector", "pose_detector", "keypoints", "lifter")
            }
        conn.send(result)


class Configuration:
    """The worker processes of one (mode, cameras) pair, loaded once."""

    def __init__(self, ctx, mode: str, cameras: int, args: dict) -> None:
        self.mode, self.cameras = mode, cameras
        groups = [[k] for k in range(cameras)] if mode == "separate" else [list(range(cameras))]
        self.start = ctx.Barrier(len(groups))
        self.conns, self.procs = [], []
        for streams in groups:
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker, args=(child, mode, streams, cameras, args, self.start)
            )
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        for c in self.conns:
            if c.recv() != "ready":
                raise SystemExit(f"{mode} x{cameras}: a worker failed to start")
        self.rounds: list[dict] = []

    def run_round(self) -> dict:
        for c in self.conns:
            c.send("run")
        results = [c.recv() for c in self.conns]
        streams = {k: v for r in results for k, v in r["streams"].items()}
        began = min(r["began"] for r in results)
        end = max(s["end"] for s in streams.values())
        frames = sum(len(s["latency_ms"]) for s in streams.values())
        latency = np.concatenate([s["latency_ms"] for s in streams.values()])
        row = {
            "fps": frames / (end - began),
            "latency_p50_ms": float(np.percentile(latency, 50)),
            "latency_p95_ms": float(np.percentile(latency, 95)),
            "people_mean": float(np.mean([p for s in streams.values() for p in s["people"]])),
            "rss_mib": sum(r["memory_kib"]["rss"] for r in results) / 1024,
            "pss_mib": sum(r["memory_kib"]["pss"] for r in results) / 1024,
            "loadavg": os.getloadavg()[0],
        }
        if "batching" in results[0]:
            row["batching"] = results[0]["batching"]
        self.rounds.append(row)
        return row

    def stop(self) -> None:
        for c in self.conns:
            c.send("stop")
        for p in self.procs:
            p.join(30)


def _median(rows: list[dict], key: str) -> float:
    return round(float(np.median([r[key] for r in rows])), 3)


def model_level(cameras: list[int], model_dir: str, repeats: int = 20) -> dict:
    """Per batchable model: one inference of N rows vs N concurrent one-row inferences vs N in a
    row (median ms over ``repeats``, interleaved): what merging N cameras' calls can save."""
    from pose3d_ros.pipeline import PipelineModels, PipelineSettings

    settings = replace(PipelineSettings(), model_dir=model_dir, backend="onnxruntime")
    models = PipelineModels.load(settings)
    out: dict = {}
    for name in ("pose_detector", "keypoints", "lifter"):
        backend = getattr(models, name)
        for n in cameras:
            one, merged = backend.example_feeds(1), backend.example_feeds(n)

            def concurrent(one=one, n=n, backend=backend) -> None:
                threads = [threading.Thread(target=backend.run, args=(one,)) for _ in range(n)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

            ways = {
                "merged": lambda b=backend, f=merged: b.run(f),
                "concurrent": concurrent,
                "in_a_row": lambda b=backend, f=one, n=n: [b.run(f) for _ in range(n)],
            }
            for way in ways.values():
                way()  # warm-up
            times: dict[str, list[float]] = {k: [] for k in ways}
            for _ in range(repeats):
                for k, way in ways.items():
                    t0 = time.perf_counter()
                    way()
                    times[k].append((time.perf_counter() - t0) * 1e3)
            med = {k: float(np.median(v)) for k, v in times.items()}
            out[f"{name}_x{n}"] = {
                **{f"{k}_ms": round(v, 2) for k, v in med.items()},
                "merged_vs_concurrent": round(med["merged"] / med["concurrent"], 3),
            }
    return out


def summarise(configs: dict[str, Configuration]) -> dict:
    """Medians per mode and per-round ratios to ``separate`` (median)."""
    base = configs["separate"].rounds
    out: dict = {}
    keys = ("fps", "latency_p50_ms", "latency_p95_ms", "people_mean", "rss_mib", "pss_mib")
    for mode, config in configs.items():
        rows = config.rounds
        entry = {k: _median(rows, k) for k in keys}
        entry["per_round"] = [{k: round(r[k], 2) for k in (*keys, "loadavg")} for r in rows]
        if mode != "separate":
            entry["vs_separate"] = {
                k: round(
                    float(np.median([r[k] / b[k] for r, b in zip(rows, base, strict=True)])), 3
                )
                for k in ("fps", "latency_p50_ms", "latency_p95_ms", "rss_mib", "pss_mib")
            }
        if "batching" in rows[-1]:
            entry["batching_after_all_rounds"] = rows[-1]["batching"]
        out[mode] = entry
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cameras", default="2,4", help="comma-separated stream counts")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--frames", type=int, default=15, help="frames per stream per round")
    ap.add_argument("--warmup", type=int, default=5, help="warm-up frames per stream")
    ap.add_argument("--windows", default="2,20", help="batching windows (ms) to measure")
    ap.add_argument("--max-batch", type=int, default=32, help="rows per merged inference")
    ap.add_argument("--quick", action="store_true", help="1 round of 6 frames, 2 warm-up")
    ap.add_argument("--model-dir", default="", help="built models (default: data/models)")
    ap.add_argument("--out", default=str(ROOT / "out" / "bench" / "multi_camera.json"))
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.frames, args.warmup = 1, 6, 2
    worker_args = {
        "model_dir": args.model_dir,
        "max_batch": args.max_batch,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "frames": args.frames,
    }
    ctx = mp.get_context("spawn")  # no ONNX Runtime state forked into the workers
    started, load_start = time.time(), os.getloadavg()
    results: dict = {}
    modes = [
        "separate",
        *(f"shared_w{float(w):g}" for w in args.windows.split(",")),
        "shared_unbatched",
    ]
    for cameras in [int(c) for c in args.cameras.split(",")]:
        print(f"\n[{cameras} cameras] loading {', '.join(modes)} ...", flush=True)
        configs = {m: Configuration(ctx, m, cameras, worker_args) for m in modes}
        try:
            for k in range(args.rounds):
                order = modes if k % 2 == 0 else modes[::-1]
                for mode in order:
                    row = configs[mode].run_round()
                    print(
                        f"  round {k + 1} {mode:<17} {row['fps']:5.1f} frames/s  p50 "
                        f"{row['latency_p50_ms']:6.1f} ms  p95 {row['latency_p95_ms']:6.1f} ms  "
                        f"PSS {row['pss_mib']:6.0f} MiB  load {row['loadavg']:.2f}",
                        flush=True,
                    )
        finally:
            for c in configs.values():
                c.stop()
        results[str(cameras)] = summarise(configs)
    camera_counts = [int(c) for c in args.cameras.split(",")]
    print("\nmodel level: merged vs concurrent vs in a row ...", flush=True)
    models = model_level(camera_counts, args.model_dir)
    for key, row in models.items():
        print(
            f"  {key:<17} merged {row['merged_ms']:6.1f} ms  concurrent "
            f"{row['concurrent_ms']:6.1f} ms  in a row {row['in_a_row_ms']:6.1f} ms"
        )

    report = {
        "what": "N camera streams of vtest.avi: separate pipelines+models per stream (N "
        "processes = N nodes) vs one process sharing models (with/without cross-camera "
        "batching); ratios are shared / separate, per round, median",
        "machine": machine_facts(load_start, started),
        "settings": {
            **vars(args),
            "pipeline": "shipped defaults, backend onnxruntime, threads 0 (ONNX Runtime's own)",
            "streams": f"vtest.avi 768x576 -> 640x480, stream k from frame "
            f"{FIRST_FRAME} + {STREAM_OFFSET} k, stamps {FRAME_PERIOD_S} s apart, "
            "processed back to back",
            "camera": "ideal pinhole, 60 deg horizontal FOV",
        },
        "results": results,
        "model_level": models,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for cameras, modes in results.items():
        for mode, entry in modes.items():
            ratio = entry.get("vs_separate", {})
            print(
                f"{cameras} cameras {mode:<17} {entry['fps']:5.1f} frames/s  p50 "
                f"{entry['latency_p50_ms']:6.1f}  p95 {entry['latency_p95_ms']:6.1f} ms  "
                f"PSS {entry['pss_mib']:6.0f} MiB"
                + (
                    f"  vs separate: fps x{ratio['fps']:.2f}, p95 x{ratio['latency_p95_ms']:.2f}"
                    f", PSS x{ratio['pss_mib']:.2f}"
                    if ratio
                    else ""
                )
            )
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
