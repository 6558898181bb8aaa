"""Training cost of the lifters on this CPU -> ``out/bench/train.json``.

Why: the lifters are trained on a shared 2-core CPU, so what limits accuracy is training time.
Per config and torch thread count this measures, on the real synthetic-data path and the real
optimiser step:

* ``data_ms``: one batch made by :class:`pose3d_tools.training.WindowSynth` (numpy, 1 core);
* ``model_ms``: forward + loss + backward + clip + AdamW + scheduler (torch);
* ``samples_per_s`` = batch / (data_ms + model_ms) / 1000;
* ``flop_per_sample``: :class:`torch.utils.flop_counter.FlopCounterMode` over one training
  forward + backward (matmul-type ops only; elementwise work is not counted), and
  ``gflops_per_s`` = flops per step / model time;
* ``matmul_gflops_per_s``: one large fp32 matrix product with the same threads (the ceiling).

Thread counts are measured interleaved (round-robin, ``rounds`` times) and the median is kept,
because the machine is shared: absolute numbers move with the other load, ratios measured side
by side move much less. The load average before and after is recorded.

Learning curves (``--curves CKPT ...``, working ``last.pt`` or shipped checkpoints): the
monitor MPJPE (mm; S9/S11, GT 2D, 4 real cameras, default body-size law, see
``training.train``) against wall and CPU minutes, and ``minutes_to_reference``: the minutes a
run took to reach the final monitor MPJPE of the shipped checkpoint of the same model type
(interpolated between epochs). The shipped checkpoints recorded wall time only (1 thread: wall
~ CPU minutes on a quiet machine, more on a busy one).

    python -m pose3d_tools.bench.train --out out/bench/train.json
    python -m pose3d_tools.bench.train --curves out/train/*/last.pt pose3d_tools/checkpoints/*.pt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_tools import training

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "training"


@dataclass
class TrainBenchConfig:
    configs: tuple[str, ...] = ("htnet_small", "nanohtnet_t27_causal", "temporal_htnet_t9")
    threads: tuple[int, ...] = (1, 2)
    batch_sizes: tuple[int, ...] = ()  # () = each config's own batch size
    steps: int = 8  # timed steps per round
    warmup: int = 2
    rounds: int = 2
    compile: bool = False  # also measure torch.compile (slow to compile: ~1-2 min per model)
    extra: dict[str, Any] = field(default_factory=dict)


def matmul_gflops(threads: int, n: int = 1024, reps: int = 10) -> float:
    """fp32 GEMM throughput with ``threads`` torch threads (GFLOP/s)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def step_flops(trainer: training.Trainer, batch: int) -> float:
    """FLOPs of one training forward + backward at ``batch`` (FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    rng = np.random.default_rng(1)
    feats, target, valid = trainer.synth.batch(rng, batch)
    counter = FlopCounterMode(display=False)
    with counter:
        pred = trainer.model(trainer._tensor(feats))
        loss = training.lifting_loss(
            pred,
            trainer._tensor(target),
            torch.from_numpy(valid),
            trainer.out_idx,
            trainer.cfg.optim,
        )
        loss.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


class StepTimer:
    """Times the data and model halves of training steps of one trainer."""

    def __init__(self, trainer: training.Trainer, batch: int, compiled: bool = False):
        import torch

        self.trainer, self.batch = trainer, batch
        self.rng = np.random.default_rng(0)
        self.forward = torch.compile(trainer.model) if compiled else trainer.model

    def step(self) -> tuple[float, float]:
        import torch

        tr = self.trainer
        t0 = time.perf_counter()
        feats, target, valid = tr.synth.batch(self.rng, self.batch)
        x, y, v = tr._tensor(feats), tr._tensor(target), torch.from_numpy(valid)
        t1 = time.perf_counter()
        pred = self.forward(x)
        loss = training.lifting_loss(pred, y, v, tr.out_idx, tr.cfg.optim)
        tr.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tr.model.parameters(), tr.cfg.optim.grad_clip)
        tr.optimizer.step()
        if tr.scheduler.last_epoch + 1 < tr.scheduler.total_steps:
            tr.scheduler.step()
        return t1 - t0, time.perf_counter() - t1


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else the platform's machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(cfg: TrainBenchConfig, progress: bool = True) -> dict[str, Any]:
    import torch

    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    for name in cfg.configs:
        lifter_load = os.getloadavg()
        tcfg = training.load_config(CONFIG_DIR / f"{name}.yaml")
        tcfg.optim.epochs, tcfg.optim.steps_per_epoch = 1, 10_000
        batches = cfg.batch_sizes or (tcfg.optim.batch_size,)
        trainer = training.Trainer(tcfg, progress=False)
        trainer.model.train()
        synth = trainer.synth
        variants = [(t, b, False) for t in cfg.threads for b in batches]
        if cfg.compile:
            variants += [(t, b, True) for t in cfg.threads for b in batches]
        timers: dict[tuple[int, int, bool], StepTimer] = {}
        samples: dict[tuple[int, int, bool], list[tuple[float, float]]] = {v: [] for v in variants}
        flops = {b: step_flops(trainer, b) for b in batches}
        for rnd in range(cfg.rounds):
            for threads, batch, compiled in variants:
                torch.set_num_threads(threads)
                key = (threads, batch, compiled)
                if key not in timers:
                    # One model per variant (own optimiser state), sharing the loaded data.
                    t = training.Trainer(tcfg, synth=synth, progress=False)
                    t.model.train()
                    timers[key] = StepTimer(t, batch, compiled)
                    c0 = time.perf_counter()
                    for _ in range(cfg.warmup):
                        timers[key].step()
                    if compiled:
                        results.setdefault(name, {}).setdefault("compile_s", {})[
                            f"threads{threads}_batch{batch}"
                        ] = time.perf_counter() - c0
                samples[key] += [timers[key].step() for _ in range(cfg.steps)]
                if progress:
                    d, m = np.median(np.asarray(samples[key][-cfg.steps :]), axis=0)
                    print(
                        f"{name} threads={threads} batch={batch} compile={compiled} round "
                        f"{rnd + 1}: data {d * 1e3:.1f} ms, model {m * 1e3:.1f} ms",
                        flush=True,
                    )
        runs = []
        for threads, batch, compiled in variants:
            arr = np.asarray(samples[(threads, batch, compiled)])
            data_s, model_s = (statistics.median(arr[:, 0]), statistics.median(arr[:, 1]))
            runs.append(
                {
                    "threads": threads,
                    "batch_size": batch,
                    "compiled": compiled,
                    "data_ms": 1e3 * data_s,
                    "model_ms": 1e3 * model_s,
                    "samples_per_s": batch / (data_s + model_s),
                    "flop_per_sample": flops[batch] / batch,
                    "gflops_per_s": flops[batch] / model_s / 1e9,
                    "steps_timed": len(arr),
                    "model_ms_per_round": [
                        1e3 * float(np.median(arr[i : i + cfg.steps, 1]))
                        for i in range(0, len(arr), cfg.steps)
                    ],
                }
            )
        results.setdefault(name, {}).update(
            {
                "model": tcfg.model,
                "model_config": tcfg.model_config,
                "params": sum(p.numel() for p in trainer.model.parameters()),
                "config_batch_size": tcfg.optim.batch_size,
                "runs": runs,
                "load_average": [lifter_load, os.getloadavg()],
                "samples_per_s": max(
                    r["samples_per_s"]
                    for r in runs
                    if r["batch_size"] == tcfg.optim.batch_size and not r["compiled"]
                ),
                "gflops_per_s": max(
                    r["gflops_per_s"]
                    for r in runs
                    if r["batch_size"] == tcfg.optim.batch_size and not r["compiled"]
                ),
            }
        )
    return {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "matmul_gflops_per_s": {str(t): matmul_gflops(t) for t in cfg.threads},
        },
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "shared machine: thread counts interleaved round-robin; medians of "
        f"{cfg.rounds} x {cfg.steps} steps; compare ratios, not absolute numbers",
        "lifters": results,
        **cfg.extra,
    }


def learning_curve(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The monitored epochs of a training history: steps, wall/CPU minutes, monitor MPJPE."""
    out = []
    for h in history:
        if h.get("val_mpjpe_mm") is None:
            continue
        out.append(
            {
                "epoch": h["epoch"],
                "global_step": h.get("global_step"),
                "wall_min": h["elapsed_s"] / 60,
                "cpu_min": h["cpu_s"] / 60 if h.get("cpu_s") is not None else None,
                "val_mpjpe_mm": h["val_mpjpe_mm"],
            }
        )
    return out


def minutes_to(
    curve: list[dict[str, Any]], reference_mm: float, clock: str = "wall_min"
) -> float | None:
    """First time (minutes on ``clock``) the monitor MPJPE reaches ``reference_mm``, linearly
    interpolated between the two epochs around the crossing; None if never reached."""
    prev = None
    for point in curve:
        t, v = point.get(clock), point["val_mpjpe_mm"]
        if t is None:
            return None
        if v <= reference_mm:
            if prev is None or prev[1] == v:
                return t
            t0, v0 = prev
            return t0 + (t - t0) * (v0 - reference_mm) / (v0 - v)
        prev = (t, v)
    return None


def curves(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """Learning curves and minutes to the shipped reference for checkpoints ``paths``."""
    from pose3d_tools import CHECKPOINT_DIR
    from pose3d_tools.models.registry import load_checkpoint

    refs: dict[str, tuple[str, float]] = {}
    for shipped in sorted(CHECKPOINT_DIR.glob("*.pt")):
        ck = load_checkpoint(shipped)
        curve = learning_curve(ck.get("history") or [])
        if curve:
            refs[ck["train_config"]["model"]] = (shipped.stem, curve[-1]["val_mpjpe_mm"])
    out: dict[str, Any] = {}
    for path in paths:
        ck = load_checkpoint(path)
        tc = ck.get("train_config") or {}
        curve = learning_curve(ck.get("history") or [])
        ref = refs.get(tc.get("model", ""))
        entry: dict[str, Any] = {
            "path": str(path),
            "model": tc.get("model"),
            "batch_size": tc.get("optim", {}).get("batch_size"),
            "lr": tc.get("optim", {}).get("lr"),
            "threads": tc.get("threads"),
            "global_step": ck.get("global_step"),
            "finished": "optimizer" not in ck
            or (
                ck.get("epoch") == tc.get("optim", {}).get("epochs")
                and ck.get("stage") == "finetune"
            ),
            "curve": curve,
        }
        if ref is not None:
            entry["reference"] = {"checkpoint": ref[0], "val_mpjpe_mm": ref[1]}
            entry["minutes_to_reference"] = {
                clock: minutes_to(curve, ref[1], clock) for clock in ("wall_min", "cpu_min")
            }
        out[f"{tc.get('name', Path(path).stem)}:{Path(path).name}"] = entry
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="out/bench/train.json")
    p.add_argument("--configs", nargs="+", default=list(TrainBenchConfig.configs))
    p.add_argument("--threads", type=int, nargs="+", default=list(TrainBenchConfig.threads))
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[])
    p.add_argument("--steps", type=int, default=TrainBenchConfig.steps)
    p.add_argument("--rounds", type=int, default=TrainBenchConfig.rounds)
    p.add_argument("--compile", action="store_true")
    p.add_argument(
        "--curves", nargs="+", help="only add learning curves of these checkpoints to --out"
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.curves:
        result = json.loads(out.read_text()) if out.is_file() else {}
        result.setdefault("curves", {}).update(curves(args.curves))
        for entry in result["curves"].values():  # the best per shipped reference -> lifter
            ref, mins = entry.get("reference"), entry.get("minutes_to_reference") or {}
            lifter = result.setdefault("lifters", {}).get(ref["checkpoint"]) if ref else None
            if lifter is not None and mins.get("wall_min") is not None:
                best = lifter.get("minutes_to_reference")
                if best is None or mins["wall_min"] < best["wall_min"]:
                    lifter["minutes_to_reference"] = {**mins, "run": entry["path"]}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(out)
        return 0
    cfg = TrainBenchConfig(
        configs=tuple(args.configs),
        threads=tuple(args.threads),
        batch_sizes=tuple(args.batch_sizes),
        steps=args.steps,
        rounds=args.rounds,
        compile=args.compile,
    )
    result = measure(cfg)
    if out.is_file():  # keep fields written by other runs (e.g. minutes_to_reference)
        old = json.loads(out.read_text())
        for name, entry in old.get("lifters", {}).items():
            for key, value in entry.items():
                result["lifters"].setdefault(name, {}).setdefault(key, value)
        if "curves" in old:
            result.setdefault("curves", old["curves"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
