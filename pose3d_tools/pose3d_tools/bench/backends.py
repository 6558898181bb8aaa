"""``pose3d-tools calib`` (INT8 calibration inputs) and ``pose3d-tools bench`` (latency per
backend / lifter / batch size).

    pose3d-tools calib --onnx pose3d_ros/lifters/htnet_small.onnx --count 512 --out calib.npy
    pose3d-tools bench --batch 1 4 8 --out out/bench/backends.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.backends.base import Backend, BackendError
from pose3d_ros.backends.engine_commands import time_backend
from pose3d_tools import CHECKPOINT_DIR as DEFAULT_CHECKPOINT_DIR
from pose3d_tools import REPO_ROOT

DEFAULT_BENCH_OUT = Path("out/bench/backends.json")


# -- pose3d-tools calib ---------------------------------------------------------------------------
def add_calib_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("calib", help="write INT8 calibration inputs from Human3.6M train subjects")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx", help="take the window length from this model's metadata")
    src.add_argument("--frames", type=int, help="window length")
    c.add_argument("--centred", action="store_true", help="with --frames: centred window")
    c.add_argument("--count", type=int, default=512)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--data-dir")
    c.add_argument(
        "--out", required=True, help="output .npy (give it to `pose3d engine build --int8 --calib`)"
    )
    c.set_defaults(func=cmd_calib)


def cmd_calib(args: argparse.Namespace) -> int:
    from pose3d_ros.backends.onnx_checks import read_metadata
    from pose3d_tools.calibration import (
        h36m_calibration_set,
        window_of_model,
        write_calibration_file,
    )

    frames, causal = (
        window_of_model(read_metadata(args.onnx)) if args.onnx else (args.frames, not args.centred)
    )
    data = h36m_calibration_set(
        frames, args.count, args.seed, data_dir=args.data_dir, causal=causal
    )
    prov = {
        "frames": frames,
        "causal": causal,
        "count": args.count,
        "seed": args.seed,
        "source": "Human3.6M train split, WindowSynth (real + robot cameras, noise)",
    }
    path = write_calibration_file(args.out, data, prov)
    print(f"{path}: {data.shape} float32")
    return 0


# -- pose3d bench -------------------------------------------------------------------------------
def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="latency percentiles per backend/model/batch size")
    p.add_argument(
        "--checkpoint",
        nargs="*",
        help=f"lifter checkpoints (default: {DEFAULT_CHECKPOINT_DIR}/*.pt)",
    )
    p.add_argument("--onnx", nargs="*", default=[], help="extra ONNX models (ORT/TensorRT only)")
    p.add_argument(
        "--backends",
        nargs="+",
        default=["torch", "onnxruntime", "tensorrt"],
        choices=["torch", "onnxruntime", "tensorrt"],
    )
    p.add_argument("--batch", nargs="+", type=int, default=[1, 4, 8])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch, onnxruntime)")
    p.add_argument(
        "--precision", default="fp16", choices=["fp32", "fp16"], help="TensorRT engine precision"
    )
    p.add_argument("--data-dir", help="Human3.6M directory for real-ish inputs")
    p.add_argument("--out", default=str(DEFAULT_BENCH_OUT))
    p.set_defaults(func=cmd_bench)


def _bench_inputs(frames: int, causal: bool, count: int, data_dir: str | None):
    """Real-ish inputs: Human3.6M training windows when the data is there, else synthetic."""
    try:
        from pose3d_tools.calibration import h36m_calibration_set

        x = h36m_calibration_set(
            frames, count, seed=123, data_dir=data_dir, subjects=("S1",), causal=causal
        )
        return x, "h36m S1 windows (train split), synthesised 2D"
    except (FileNotFoundError, KeyError, OSError) as e:
        rng = np.random.default_rng(0)
        xy = 0.25 * rng.standard_normal((count, frames, 17, 2))
        xy -= xy[:, :, :1]
        conf = 0.3 + 0.7 * rng.uniform(size=(count, frames, 17, 1))
        return np.concatenate([xy, conf], -1).astype(np.float32), f"synthetic ({e})"


def _models(args: argparse.Namespace, out_dir: Path) -> list[dict[str, Any]]:
    """[{name, checkpoint|None, onnx|None}] — exports checkpoints lacking an ONNX sibling."""
    ckpts = args.checkpoint
    if ckpts is None:
        ckpts = sorted(str(p) for p in DEFAULT_CHECKPOINT_DIR.glob("*.pt"))
    models = []
    for c in ckpts:
        c = Path(c)
        onnx = REPO_ROOT / "pose3d_ros" / "lifters" / f"{c.stem}.onnx"  # the shipped export
        if not onnx.is_file():
            onnx = out_dir / "onnx" / f"{c.stem}.onnx"
            if not onnx.is_file() or onnx.stat().st_mtime < c.stat().st_mtime:
                from pose3d_tools.export import export_onnx
                from pose3d_tools.models.registry import lifter_from_checkpoint

                export_onnx(lifter_from_checkpoint(c), onnx)
        models.append({"name": c.stem, "checkpoint": c, "onnx": onnx})
    for o in args.onnx:
        models.append({"name": Path(o).stem, "checkpoint": None, "onnx": Path(o)})
    return models


def _load(kind: str, model: dict[str, Any], args: argparse.Namespace) -> Backend:
    from pose3d_ros.backends import create_backend, select_backend

    if kind == "torch":
        from pose3d_tools.torch_backend import TorchBackend

        if model["checkpoint"] is None:
            raise BackendError("no checkpoint (ONNX-only model)")
        return TorchBackend(model["checkpoint"], threads=args.threads)
    select_backend(kind, model["onnx"])  # fails fast (GPU, tensorrt, cuda-python, onnx) with why
    if kind == "onnxruntime":
        return create_backend("onnxruntime", model["onnx"], threads=args.threads)
    return create_backend(
        "tensorrt",
        model["onnx"],
        precision=args.precision,
        max_batch=max(args.batch),
        warmup_runs=0,
    )


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    models = _models(args, out.parent)
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for model in models:
        loaded: dict[str, Backend] = {}
        for kind in args.backends:
            try:
                loaded[kind] = _load(kind, model, args)
            except BackendError as e:
                skipped.append({"model": model["name"], "backend": kind, "reason": str(e)})
        if not loaded:
            continue
        spec = next(iter(loaded.values())).inputs[0]
        frames = int(spec.shape[1])
        meta = next(iter(loaded.values())).metadata
        causal = json.loads(meta.get("config", "{}") or "{}").get("causal", True)
        data, source = _bench_inputs(frames, causal, max(args.batch), args.data_dir)
        for batch in args.batch:
            feeds = {spec.name: data[:batch]}
            reference = None
            if "torch" in loaded:
                reference = next(iter(loaded["torch"].run(feeds).values()))
            for kind, backend in loaded.items():
                stats = time_backend(backend, feeds, args.runs, args.warmup)
                row: dict[str, Any] = {
                    "model": model["name"],
                    "backend": kind,
                    "describe": backend.describe(),
                    "batch": batch,
                    "runs": args.runs,
                    **stats,
                    "per_person_p50_ms": stats["p50_ms"] / batch,
                    "input": source,
                }
                if reference is not None and kind != "torch":
                    got = next(iter(backend.run(feeds).values()))
                    row["max_abs_diff_vs_torch"] = float(np.abs(got - reference).max())
                results.append(row)
                print(
                    f"{model['name']:<24} {kind:<12} batch {batch:>3}: p50 {stats['p50_ms']:7.3f}"
                    f"  p95 {stats['p95_ms']:7.3f}  p99 {stats['p99_ms']:7.3f} ms"
                )
    for s in skipped:
        print(f"skipped {s['backend']} for {s['model']}: {s['reason']}")
    import onnxruntime

    report = {
        "host": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "threads": args.threads,
        },
        "settings": {
            "batch": args.batch,
            "runs": args.runs,
            "warmup": args.warmup,
            "backends": args.backends,
        },
        "results": results,
        "skipped": skipped,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(out)
    return report


def cmd_bench(args: argparse.Namespace) -> int:
    run_bench(args)
    return 0
