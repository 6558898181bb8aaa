"""``pose3d engine ...`` and ``pose3d bench``: the backend tools of the ``pose3d`` command.

    pose3d engine check --onnx out/htnet_small.onnx
    pose3d engine calib --onnx out/nanohtnet_t27.onnx --count 512 --out out/calib/nanohtnet_t27.npy
    pose3d engine build --onnx out/htnet_small.onnx --fp16 --max-batch 8
    pose3d engine build --onnx out/nanohtnet_t27.onnx --int8 --max-batch 8 --calib out/calib/x.npy
    pose3d bench --batch 1 4 8 --out out/bench/backends.json

``cli.py`` wires them in with ``add_engine_parser`` and ``add_bench_parser``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.backends.base import Backend, BackendError

REPO = Path(__file__).resolve().parents[3]
DEFAULT_CHECKPOINT_DIR = REPO / "pose3d_ros" / "checkpoints"
DEFAULT_BENCH_OUT = Path("out/bench/backends.json")


# -- pose3d engine ------------------------------------------------------------------------------
def add_engine_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "engine",
        help="TensorRT engines: check ONNX, make INT8 calibration data, build (trtexec-like)",
    )
    esub = p.add_subparsers(dest="engine_command", required=True, metavar="ACTION")

    b = esub.add_parser("build", help="build (or reuse from the cache) a TensorRT engine")
    b.add_argument("--onnx", required=True, help="exported model (.onnx)")
    prec = b.add_mutually_exclusive_group()
    prec.add_argument("--fp32", dest="precision", action="store_const", const="fp32")
    prec.add_argument("--fp16", dest="precision", action="store_const", const="fp16")
    prec.add_argument("--int8", dest="precision", action="store_const", const="int8")
    b.set_defaults(precision="fp16")
    b.add_argument("--max-batch", type=int, default=8, help="people per call, profile max")
    b.add_argument("--opt-batch", type=int, default=0, help="profile opt (0: max/2)")
    b.add_argument(
        "--calib",
        help="int8: .npy of real inputs (default: made from Human3.6M "
        "training subjects, see `engine calib`)",
    )
    b.add_argument("--calib-count", type=int, default=512)
    b.add_argument("--data-dir", help="Human3.6M directory for the default calibration data")
    b.add_argument("--workspace-mb", type=int, default=1024)
    b.add_argument("--cache-dir", help="engine cache (default ~/.cache/pose3d_ros/engines)")
    b.add_argument("--output", help="also copy the engine (+ .json sidecar) here")
    b.add_argument("--rebuild", action="store_true", help="ignore a valid cached engine")
    b.add_argument("--device", type=int, default=0)
    b.add_argument("--iterations", type=int, default=200, help="timed runs per batch size")
    b.set_defaults(func=cmd_engine_build)

    c = esub.add_parser("calib", help="write INT8 calibration inputs from Human3.6M train subjects")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx", help="take the window length from this model's metadata")
    src.add_argument("--frames", type=int, help="window length")
    c.add_argument("--centred", action="store_true", help="with --frames: centred window")
    c.add_argument("--count", type=int, default=512)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--data-dir")
    c.add_argument("--out", required=True, help="output .npy")
    c.set_defaults(func=cmd_engine_calib)

    k = esub.add_parser("check", help="TensorRT compatibility of an ONNX model (no GPU needed)")
    k.add_argument("--onnx", required=True)
    k.set_defaults(func=cmd_engine_check)


def cmd_engine_check(args: argparse.Namespace) -> int:
    from pose3d_ros.backends.onnx_checks import check_tensorrt_compatibility

    try:
        problems = check_tensorrt_compatibility(args.onnx)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"problem: {p}")
    if not problems:
        print(f"{args.onnx}: no known TensorRT problem")
    return 1 if problems else 0


def _calibration_array(
    onnx: str | None, frames: int | None, causal: bool, count: int, seed: int, data_dir: str | None
) -> tuple[np.ndarray, dict[str, Any]]:
    from pose3d_ros.backends.calibration import h36m_calibration_set, window_of_model

    if onnx is not None:
        from pose3d_ros.backends.tensorrt_backend import onnx_interface

        frames, causal = window_of_model(onnx_interface(Path(onnx))[1])
    data = h36m_calibration_set(frames, count, seed, data_dir=data_dir, causal=causal)
    return data, {
        "frames": frames,
        "causal": causal,
        "count": count,
        "seed": seed,
        "source": "Human3.6M train split, WindowSynth (real + robot cameras, noise)",
    }


def cmd_engine_calib(args: argparse.Namespace) -> int:
    from pose3d_ros.backends.calibration import write_calibration_file

    data, prov = _calibration_array(
        args.onnx, args.frames, not args.centred, args.count, args.seed, args.data_dir
    )
    path = write_calibration_file(args.out, data, prov)
    print(f"{path}: {data.shape} float32")
    return 0


def _percentiles(times_ms: list[float]) -> dict[str, float]:
    a = np.asarray(times_ms)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
    }


def time_backend(
    backend: Backend, feeds: dict[str, np.ndarray], runs: int, warmup: int
) -> dict[str, float]:
    for _ in range(warmup):
        backend.run(feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.run(feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return _percentiles(times)


def cmd_engine_build(args: argparse.Namespace) -> int:
    from pose3d_ros.backends.onnx_checks import check_tensorrt_compatibility
    from pose3d_ros.backends.tensorrt_backend import TensorRTBackend, format_layer_summary

    onnx = Path(args.onnx)
    try:
        problems = check_tensorrt_compatibility(onnx)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"warning: {p} (TensorRT's parser decides)", file=sys.stderr)
    options: dict[str, Any] = {
        "precision": args.precision,
        "max_batch": args.max_batch,
        "opt_batch": args.opt_batch,
        "workspace_mb": args.workspace_mb,
        "rebuild": args.rebuild,
        "device": args.device,
        "warmup_runs": 20,
    }
    if args.cache_dir:
        options["engine_cache_dir"] = args.cache_dir
    try:
        if args.precision == "int8":
            if args.calib:
                options["calibration_file"] = args.calib
            else:
                from pose3d_ros.backends.calibration import write_calibration_file
                from pose3d_ros.backends.engine_cache import default_cache_dir

                data, prov = _calibration_array(
                    str(onnx), None, True, args.calib_count, 0, args.data_dir
                )
                cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
                calib = write_calibration_file(cache / f"{onnx.stem}.calib.npy", data, prov)
                print(f"calibration data: {calib} {data.shape}")
                options["calibration_file"] = str(calib)
        start = time.perf_counter()
        backend = TensorRTBackend(onnx, **options)
    except BackendError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{backend.describe()}")
    print(
        f"engine: {backend.engine_path} ({backend.engine_status}), "
        f"{time.perf_counter() - start:.1f} s incl. warm-up"
    )
    print(format_layer_summary(backend.layers()))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(backend.engine_path, out)
        shutil.copyfile(f"{backend.engine_path}.json", f"{out}.json")
        print(f"copied to {out} (+ {out.name}.json)")
    for batch in sorted({1, backend._opt_batch, backend.max_batch}):
        stats = time_backend(backend, backend.example_feeds(batch), args.iterations, 10)
        print(
            f"batch {batch:>3}: p50 {stats['p50_ms']:.3f} ms  p95 {stats['p95_ms']:.3f} ms  "
            f"p99 {stats['p99_ms']:.3f} ms"
        )
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
        from pose3d_ros.backends.calibration import h36m_calibration_set

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
        onnx = c.with_suffix(".onnx")
        if not onnx.is_file():
            onnx = out_dir / "onnx" / f"{c.stem}.onnx"
            if not onnx.is_file() or onnx.stat().st_mtime < c.stat().st_mtime:
                from pose3d_ros.export import export_onnx
                from pose3d_ros.models.registry import lifter_from_checkpoint

                export_onnx(lifter_from_checkpoint(c), onnx)
        models.append({"name": c.stem, "checkpoint": c, "onnx": onnx})
    for o in args.onnx:
        models.append({"name": Path(o).stem, "checkpoint": None, "onnx": Path(o)})
    return models


def _load(kind: str, model: dict[str, Any], args: argparse.Namespace) -> Backend:
    from pose3d_ros.backends import create_backend, select_backend

    select_backend(kind, None)  # fails fast (no GPU / module) with the reason
    if kind == "torch":
        if model["checkpoint"] is None:
            raise BackendError("no checkpoint (ONNX-only model)")
        return create_backend("torch", model["checkpoint"], threads=args.threads)
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
