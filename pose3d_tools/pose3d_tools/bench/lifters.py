"""Benchmark the 2D -> 3D lifters: params, FLOPs, training-step time, inference latency in PyTorch
eager vs ONNX Runtime (same run, same inputs), for batch 1 and 8.

    PYTHONPATH=pose3d_ros .venv/bin/python benchmarks/lifters.py [--threads 1] [--runs 50]

Prints a table and writes out/bench/lifters.json. FLOPs come from
torch.utils.flop_counter.FlopCounterMode via :mod:`pose3d_tools.flops` (matmul-type ops only;
FLOPs = 2 x MACs). Timings on a shared machine are noisy: the load average at start and end is
recorded in the JSON.

The trained video transformers (MixSTE, HoT on MixSTE; ``CHECKPOINT_LIFTERS``) are benchmarked
from their checkpoints in pose3d_tools/checkpoints/ or out/experiments/ when present (skipped
with a message otherwise); HoT runs seq2frame in both PyTorch and ONNX Runtime (only the frame
the node reads is restored), as its ONNX export does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pose3d_tools import CHECKPOINT_DIR
from pose3d_tools import REPO_ROOT as ROOT
from pose3d_tools.export import example_input, export_onnx
from pose3d_tools.flops import seq2frame, window_flops
from pose3d_tools.models import build_lifter, config_to_dict, lifter_from_checkpoint

# (label, registry name, config) -- extend freely; checkpoints via --checkpoint.
MODELS = [
    ("htnet", "htnet", None),
    ("htnet_paper", "htnet", {"preset": "paper"}),
    ("nanohtnet_t27", "nanohtnet", None),
    ("nanohtnet_t81", "nanohtnet", {"preset": "t81"}),
    ("nanohtnet_t243", "nanohtnet", {"preset": "t243"}),
    ("nanohtnet_paper", "nanohtnet", {"preset": "paper"}),
    ("temporal_htnet_t9", "temporal_htnet", None),
]
TRAIN_BATCH = {"htnet": 256, "nanohtnet": 64, "temporal_htnet": 64}
# Trained lifters benchmarked from their checkpoint (label = file stem), first found wins.
CHECKPOINT_LIFTERS = ("mixste_t27_causal", "hot_mixste_t27_causal")
CHECKPOINT_SEARCH = (CHECKPOINT_DIR, ROOT / "out" / "experiments")


def find_checkpoint(label: str) -> Path | None:
    """``<label>.pt`` in the shipped checkpoints, else in out/experiments (None: not trained)."""
    for folder in CHECKPOINT_SEARCH:
        if (folder / f"{label}.pt").is_file():
            return folder / f"{label}.pt"
    return None


def percentiles(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def time_calls(fn, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def train_step_ms(model, batch: int, steps: int) -> float:
    model.train()
    frames = model.config.frames
    x = example_input(frames, batch)
    y = torch.randn(batch, frames, 17, 3) * 0.2
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = (model(x) - y).norm(dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = time_calls(step, steps, warmup=2)
    model.eval()
    return float(np.median(times) * 1e3)


def bench_model(label, model, threads, runs, train_steps, tmp: Path) -> dict:
    import onnxruntime as ort

    model.eval()
    frames = model.config.frames
    row = {
        "model": label,
        "name": model.name,
        "config": config_to_dict(model.config),
        "frames": frames,
        "params": sum(p.numel() for p in model.parameters()),
        "flops_per_window": window_flops(model)[0],
        "flops_per_published_frame": window_flops(model, published_only=True)[0],
    }
    row["macs_per_window"] = row["flops_per_window"] // 2
    onnx_path = export_onnx(model, tmp / f"{label}.onnx")  # seq2frame where the model has it
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    for batch in (1, 8):
        x = example_input(frames, batch, seed=batch)
        xn = x.numpy()
        with torch.inference_mode(), seq2frame(model, True):
            ref = model(x).numpy()
            eager = time_calls(lambda x=x: model(x), runs)
        out = sess.run(None, {"keypoints": xn})[0]
        row["output_frames"] = int(out.shape[1])
        onnx_times = time_calls(lambda xn=xn: sess.run(None, {"keypoints": xn}), runs)
        row[f"b{batch}"] = {
            "torch": percentiles(eager),
            "onnxruntime": percentiles(onnx_times),
            "max_abs_diff": float(np.abs(out - ref).max()),
        }
    if train_steps > 0:
        batch = TRAIN_BATCH.get(model.name, 64)
        if frames > 27:  # keep the longest windows affordable
            batch = max(4, batch * 27 // frames)
        row["train_step"] = {"batch": batch, "median_ms": train_step_ms(model, batch, train_steps)}
    return row


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'model':17s} {'T':>4s} {'params':>8s} {'MMAC/win':>9s} "
        f"{'b1 torch p50/p95':>17s} {'b1 ort p50/p95':>15s} "
        f"{'b8 torch p50/p95':>17s} {'b8 ort p50/p95':>15s} {'|d|max':>8s} {'train ms (B)':>13s}"
    )
    print(head)
    print("-" * len(head))

    def cell(r, b, k):
        v = r[f"b{b}"][k]
        return f"{v['p50_ms']:.2f}/{v['p95_ms']:.2f}"

    for r in rows:
        diff = max(r["b1"]["max_abs_diff"], r["b8"]["max_abs_diff"])
        train = r.get("train_step")
        train_s = f"{train['median_ms']:.0f} ({train['batch']})" if train else "-"
        print(
            f"{r['model']:17s} {r['frames']:4d} {r['params'] / 1e6:7.3f}M "
            f"{r['macs_per_window'] / 1e6:9.1f} "
            f"{cell(r, 1, 'torch'):>17s} {cell(r, 1, 'onnxruntime'):>15s} "
            f"{cell(r, 8, 'torch'):>17s} {cell(r, 8, 'onnxruntime'):>15s} "
            f"{diff:8.1e} {train_s:>13s}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch and ORT intra-op threads")
    ap.add_argument("--runs", type=int, default=50, help="timed inference calls per setting")
    ap.add_argument("--train-steps", type=int, default=5, help="timed training steps (0: skip)")
    ap.add_argument("--models", nargs="*", help="labels to run (default: all)")
    ap.add_argument("--checkpoint", nargs="*", default=[], help="extra checkpoint files (.pt)")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "lifters.json")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = [
        (label, name, cfg) for label, name, cfg in MODELS if not args.models or label in args.models
    ]
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, cfg in models:
            rows.append(
                bench_model(
                    label,
                    build_lifter(name, cfg),
                    args.threads,
                    args.runs,
                    args.train_steps,
                    Path(tmp),
                )
            )
        for label in CHECKPOINT_LIFTERS:
            if args.models and label not in args.models:
                continue
            path = find_checkpoint(label)
            if path is None:
                print(f"{label}: no checkpoint in {', '.join(map(str, CHECKPOINT_SEARCH))}; "
                      "skipped (train it first)")
                continue
            rows.append(bench_model(label, lifter_from_checkpoint(path), args.threads,
                                    args.runs, 0, Path(tmp)))
        for ckpt in args.checkpoint:
            rows.append(
                bench_model(
                    Path(ckpt).stem,
                    lifter_from_checkpoint(ckpt),
                    args.threads,
                    args.runs,
                    0,
                    Path(tmp),
                )
            )
    print_table(rows)
    report = {
        "threads": args.threads,
        "runs": args.runs,
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "note": "FLOPs from FlopCounterMode, forward pass, one window (T frames) per sample; "
        "MACs = FLOPs / 2. Latency = one call of the whole batch.",
        "models": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
