"""``pose3d engine build|check``: TensorRT engines on the robot (trtexec-like), ONNX pre-flight.

    pose3d engine check --onnx htnet_small.onnx
    pose3d engine build --onnx htnet_small.onnx --fp16 --max-batch 8
    pose3d engine build --onnx htnet_small.onnx --int8 --max-batch 8 --calib calib.npy

The engine lands in the same cache, under the same key, as the node's own build
(``pipeline.tensorrt.*`` parameters), so an engine built here is the one the node loads.
INT8 calibration inputs are made on a PC by ``pose3d-tools calib`` (they need the training data).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from pose3d_ros.backends.base import Backend, BackendError
from pose3d_ros.backends.tensorrt.backend import TensorRTSettings, tensorrt_settings


# -- pose3d engine build|check -----------------------------------------------------------------
def add_engine_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "engine",
        help="TensorRT engines: check an ONNX model, build an engine (trtexec-like)",
    )
    esub = p.add_subparsers(dest="engine_command", required=True, metavar="ACTION")

    b = esub.add_parser("build", help="build (or reuse from the cache) a TensorRT engine")
    b.add_argument("--onnx", required=True, help="exported model (.onnx)")
    prec = b.add_mutually_exclusive_group()
    for precision in ("fp32", "fp16", "int8"):
        prec.add_argument(
            f"--{precision}",
            dest="precision",
            action="store_const",
            const=precision,
            help=f"{precision} engine (node: pipeline.tensorrt.precision)",
        )
    defaults = TensorRTSettings()
    b.set_defaults(precision=defaults.precision)
    b.add_argument(
        "--max-batch", type=int, default=defaults.max_batch, help="people per call, profile max"
    )
    b.add_argument(
        "--opt-batch", type=int, default=defaults.opt_batch, help="profile opt (0: max/2)"
    )
    b.add_argument(
        "--calib",
        help="int8: .npy of real lifter inputs (made on a PC by `pose3d-tools calib`)",
    )
    b.add_argument(
        "--workspace-mb",
        type=int,
        default=defaults.workspace_mb,
        help="builder workspace, MiB (node: pipeline.tensorrt.workspace_mb)",
    )
    b.add_argument(
        "--engine-dir",
        "--cache-dir",
        dest="engine_dir",
        default=defaults.engine_dir,
        help="engine folder (default: $POSE3D_ENGINE_DIR, else ~/.cache/pose3d_ros/engines; "
        "the node's pipeline.tensorrt.engine_dir)",
    )
    b.add_argument("--output", help="also copy the engine (+ .json sidecar) here")
    b.add_argument("--rebuild", action="store_true", help="ignore a valid cached engine")
    b.add_argument("--device", type=int, default=defaults.device)
    b.add_argument("--iterations", type=int, default=200, help="timed runs per batch size")
    b.set_defaults(func=cmd_engine_build)

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


def build_settings_from_args(args: argparse.Namespace) -> TensorRTSettings:
    """The backend settings of ``pose3d engine build``: the flags map onto the same fields as
    the node's ``pipeline.tensorrt.*`` parameters, so both compute the same engine key."""
    onnx = Path(args.onnx)
    if args.precision == "int8" and not args.calib:
        raise BackendError(
            "--int8 needs --calib <file.npy> of real inputs; make it on a PC with: "
            f"pose3d-tools calib --onnx {onnx} --out {onnx.stem}.calib.npy"
        )
    return tensorrt_settings(
        precision=args.precision,
        max_batch=args.max_batch,
        opt_batch=args.opt_batch,
        workspace_mb=args.workspace_mb,
        engine_dir=args.engine_dir or "",
        calibration_file=(args.calib or "") if args.precision == "int8" else "",
        rebuild=args.rebuild,
        device=args.device,
        warmup_runs=20,
    )


def cmd_engine_build(args: argparse.Namespace) -> int:
    from pose3d_ros.backends.onnx_checks import check_tensorrt_compatibility
    from pose3d_ros.backends.tensorrt.backend import TensorRTBackend
    from pose3d_ros.backends.tensorrt.build import format_layer_summary

    onnx = Path(args.onnx)
    try:
        problems = check_tensorrt_compatibility(onnx)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"warning: {p} (TensorRT's parser decides)", file=sys.stderr)
    try:
        settings = build_settings_from_args(args)
        start = time.perf_counter()
        backend = TensorRTBackend(onnx, settings=settings)
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
