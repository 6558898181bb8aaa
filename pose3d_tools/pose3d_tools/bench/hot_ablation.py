"""HoT ablation over the pruning block l and the kept tokens k, at INFERENCE TIME, against MixSTE.

    python -m pose3d_tools.bench.hot_ablation \
        --checkpoint out/experiments/hot_mixste_t27_causal.pt \
        --reference out/experiments/mixste_t27_causal.pt --out out/bench/hot_ablation.json

Why: issue 13 asks for the paper's ablation table (l, k) in the model card. The paper trains one
model per setting; here ONE trained HoT model is run with other settings (TPC has no weights
and TRA's learnable queries take any number of kept tokens), so only the trained setting's row
is what a model trained that way would score; the others show how sensitive that model is to
l and k. Every setting gets the same windows: every ``every``-th window of the project protocol
(:func:`pose3d_tools.evaluation.make_eval_set`, S9/S11, 4 real cameras, GT and noisy 2D), the
error of the frame the runtime reads (MPJPE, mm) and the paired difference to the unpruned
MixSTE reference with its standard error. GFLOPs per output frame and per published frame come
from :mod:`pose3d_tools.flops` (batch 1). Writes the JSON and a markdown table beside it
(``.md``) that the hot_mixste model card includes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_tools import REPO_ROOT

K_VALUES = (3, 6, 9, 13, 18)  # kept tokens at the trained pruning block
L_VALUES = (1, 2, 3)  # pruning blocks at the trained kept tokens
INPUTS = ("gt", "noisy")
NOTE = ("Inference-time ablation: the paper trains each (l, k) setting; these rows reuse one "
        "trained model and change l and k at inference only (TPC has no weights, TRA takes any "
        "k). Only the trained setting is what a model trained that way scores.")


def settings(trained_l: int, trained_k: int, depth: int, frames: int) -> list[tuple[int, int]]:
    """(l, k) pairs: every k of K_VALUES at the trained l, every l of L_VALUES at the trained k
    (the trained setting once, first), those the model's depth and window allow."""
    pairs = [(trained_l, trained_k)]
    pairs += [(trained_l, k) for k in K_VALUES] + [(ell, trained_k) for ell in L_VALUES]
    valid = [(ell, k) for ell, k in pairs if 1 <= ell < depth and 1 <= k < frames]
    return list(dict.fromkeys(valid))


def hot_variant(model, pruning_block: int, kept_tokens: int):
    """The trained HoT ``model`` with another l and k (same weights, eval mode)."""
    from pose3d_tools.models.hot import HoTMixSTE

    cfg = dataclasses.replace(model.config, pruning_block=pruning_block, kept_tokens=kept_tokens)
    variant = HoTMixSTE(cfg)
    variant.load_state_dict(model.state_dict())
    return variant.eval()


def file_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _errors(model, data: dict[str, Any], out_idx: int, batch_size: int) -> np.ndarray:
    """Per-window MPJPE (m) of the read frame, (N,)."""
    from pose3d_tools.evaluation import predict
    from pose3d_tools.flops import seq2frame

    with seq2frame(model, True):  # the read frame is the same as in seq2seq, at less cost
        pred = predict(model, data["features"], out_idx, batch_size)
    return np.linalg.norm(pred - data["targets"], axis=-1).mean(-1)


def run_ablation(checkpoint: str | os.PathLike, reference: str | os.PathLike,
                 every: int = 25, threads: int = 1, data_dir: str | None = None,
                 batch_size: int = 256, cache: str | os.PathLike | None = None
                 ) -> dict[str, Any]:
    """The ablation report (JSON-able): one row for the reference, one per (l, k) setting.

    ``cache``: an .npz of per-window errors keyed by checkpoint sha256, setting, input and
    subsample, read and updated after every row, so a re-run with one new checkpoint (e.g. the
    reference retrained) only evaluates that one."""
    from pose3d_tools.bench.machine import machine_facts
    from pose3d_tools.evaluation import EvalConfig, load_eval_inputs, make_eval_set
    from pose3d_tools.flops import window_flops
    from pose3d_tools.training import load_lifter, model_frames, output_index

    started, load_start = time.time(), os.getloadavg()
    cfg = EvalConfig(data_dir=data_dir, inputs=INPUTS, threads=threads, plots=False)
    hot = load_eval_inputs(checkpoint, cfg)
    ref_model, ref_ckpt = load_lifter(reference)
    ref_name = (ref_ckpt.get("train_config") or {}).get("name") or Path(reference).stem
    sets: dict[tuple[int, int, str], dict[str, Any]] = {}
    store: dict[str, np.ndarray] = {}
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as saved:
            store = dict(saved)
    hot_sha, ref_sha = file_sha256(checkpoint), file_sha256(reference)

    def eval_set(frames: int, out_idx: int, input_2d: str) -> dict[str, Any]:
        key = (frames, out_idx, input_2d)
        if key not in sets:
            full = make_eval_set(cfg, frames, out_idx, input_2d, hot.cameras, hot.poses)
            pick = np.arange(0, len(full["features"]), every)
            sets[key] = {"features": full["features"][pick], "targets": full["targets"][pick],
                         "protocol_windows": len(full["features"])}
        return sets[key]

    def measure(model, label: str, key: str) -> dict[str, Any]:
        frames, out_idx = model_frames(model), output_index(model)
        flops, out_frames = window_flops(model)
        row: dict[str, Any] = {
            "model": label,
            "flops_per_window": flops,
            "output_frames": out_frames,
            "gflops_per_frame": round(flops / out_frames / 1e9, 5),
            "gflops_per_published_frame": round(window_flops(model, True)[0] / 1e9, 4),
            "mpjpe_mm": {}, "per_window_m": {},
        }
        for input_2d in INPUTS:
            name = f"{key}_{input_2d}_every{every}_{cfg.protocol}"
            if name not in store:
                store[name] = _errors(model, eval_set(frames, out_idx, input_2d), out_idx,
                                      batch_size)
            err = store[name]
            row["mpjpe_mm"][input_2d] = round(float(err.mean()) * 1000, 2)
            row["per_window_m"][input_2d] = err
        if cache is not None:
            np.savez(cache, **store)
        return row

    reference_row = measure(ref_model, ref_name, f"{ref_sha[:16]}_reference")
    reference_row.update(kind="reference", pruning_block=None, kept_tokens=None,
                         trained_setting=True)
    trained = (hot.model.config.pruning_block, hot.model.config.kept_tokens)
    rows = [reference_row]
    for ell, k in settings(*trained, hot.model.config.depth, hot.frames):
        row = measure(hot_variant(hot.model, ell, k), f"{hot.name} (l={ell}, k={k})",
                      f"{hot_sha[:16]}_l{ell}_k{k}")
        row.update(kind="hot", pruning_block=ell, kept_tokens=k,
                   trained_setting=(ell, k) == trained)
        rows.append(row)
    ref_errs = dict(reference_row["per_window_m"])
    for row in rows:
        per_frame = row["flops_per_window"] / row["output_frames"]
        ref_per_frame = reference_row["flops_per_window"] / reference_row["output_frames"]
        row["flops_saving_pct"] = round(100 * (1 - per_frame / ref_per_frame), 1)
        errs = row.pop("per_window_m")
        row["delta_vs_reference_mm"], row["delta_se_mm"] = {}, {}
        for input_2d in INPUTS:
            diff = (errs[input_2d] - ref_errs[input_2d]) * 1000
            row["delta_vs_reference_mm"][input_2d] = round(float(diff.mean()), 2)
            row["delta_se_mm"][input_2d] = round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 2)
    windows = {input_2d: len(ref_errs[input_2d]) for input_2d in INPUTS}
    protocol_windows = {k[2]: v["protocol_windows"] for k, v in sets.items()}
    return {
        "what": "HoT ablation over pruning block l and kept tokens k (inference time only)",
        "inference_time_only": True,
        "note": NOTE,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": hot_sha,
        "model": hot.name,
        "trained_setting": {"pruning_block": trained[0], "kept_tokens": trained[1]},
        "reference": {"checkpoint": str(reference), "model": ref_name,
                      "checkpoint_sha256": ref_sha},
        "protocol": cfg.protocol,
        "subsample": f"every {every}th window of the protocol, same windows for every row",
        "windows": windows,
        "protocol_windows": protocol_windows or None,  # None: every row came from the cache
        "read_frame": hot.out_idx,
        "flops": "torch.utils.flop_counter.FlopCounterMode at batch 1 (pose3d_tools.flops): "
                 "per frame = one window forward / its output frames (seq2seq); per published "
                 "frame = one seq2frame window forward (the node's cost per pose)",
        "delta": "paired per-window MPJPE difference to the reference (mm), +- its standard "
                 "error (windows from different runs treated as independent)",
        "rows": rows,
        "machine": machine_facts(load_start, started, torch_threads=threads),
    }


def markdown(report: dict[str, Any]) -> str:
    """The ablation as a markdown table (the model card includes it)."""
    ref = report["reference"]["model"]
    trained = report["trained_setting"]
    counts = ", ".join(f"{n} {input_2d}" for input_2d, n in report["windows"].items())
    lines = [
        f"**{NOTE}** Trained setting: l = {trained['pruning_block']}, "
        f"k = {trained['kept_tokens']} (marked *trained*).",
        "",
        f"Windows: {report['subsample']} ({counts}"
        f" of protocol `{report['protocol']}`), error of the frame the runtime reads "
        f"(frame {report['read_frame']}). Δ = paired difference to the unpruned `{ref}` "
        "(± standard error). GFLOPs: FlopCounterMode, batch 1; 'saving' is per output frame.",
        "",
        "| model | l | k | setting | GFLOPs / output frame | saving | GFLOPs / published frame "
        "| MPJPE GT 2D (mm) | Δ GT (mm) | MPJPE noisy 2D (mm) | Δ noisy (mm) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        if r["kind"] == "reference":
            setting, ell, k = "reference (no pruning)", "-", "-"
        else:
            setting = "*trained*" if r["trained_setting"] else "inference-time only"
            ell, k = r["pruning_block"], r["kept_tokens"]

        def delta(input_2d: str, r=r) -> str:
            if r["kind"] == "reference":
                return "-"
            return f"{r['delta_vs_reference_mm'][input_2d]:+.2f} ± {r['delta_se_mm'][input_2d]:.2f}"

        lines.append(
            f"| {r['model'] if r['kind'] == 'reference' else 'HoT'} | {ell} | {k} | {setting} | "
            f"{r['gflops_per_frame']:.4f} | {r['flops_saving_pct']:.0f} % | "
            f"{r['gflops_per_published_frame']:.4f} | {r['mpjpe_mm']['gt']:.1f} | {delta('gt')} | "
            f"{r['mpjpe_mm']['noisy']:.1f} | {delta('noisy')} |")
    return "\n".join(lines) + "\n"


def card_section(report: dict[str, Any], model_name: str,
                 checkpoint: str | os.PathLike | None = None) -> list[str]:
    """Model-card lines for the ablation when it ran on the model ``model_name`` (else []);
    says so when it ran on another file than ``checkpoint`` (the card's)."""
    if report.get("model") != model_name:
        return []
    sha = report.get("checkpoint_sha256", "")
    same = checkpoint is None or file_sha256(checkpoint) == sha
    return ["## Ablation: pruning block l and kept tokens k (inference time)", "",
            "From `python -m pose3d_tools.bench.hot_ablation` on "
            f"`{Path(report['checkpoint']).name}` (sha256 {sha[:12]}..."
            + ("" if same else ", NOT the file of this card: weights may differ")
            + "), `out/bench/hot_ablation.json`.", "", markdown(report).rstrip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="trained hot_mixste checkpoint (.pt)")
    ap.add_argument("--reference", required=True, help="the same transformer without HoT (.pt)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "bench" / "hot_ablation.json")
    ap.add_argument("--every", type=int, default=25,
                    help="use every N-th window of the evaluation protocol (default 25)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path,
                    help="per-window errors .npz reused across runs (rows whose checkpoint, "
                         "setting and subsample are unchanged are not evaluated again)")
    ap.add_argument("--data-dir", help="Human3.6M directory")
    ap.add_argument("--skip-missing", action="store_true",
                    help="exit 0 (skipped, with a message) when a checkpoint does not exist")
    args = ap.parse_args(argv)
    for path in (args.checkpoint, args.reference):
        if not Path(path).is_file():
            print(f"hot_ablation: {path} does not exist (train it first); nothing written")
            return 0 if args.skip_missing else 1
    report = run_ablation(args.checkpoint, args.reference, args.every, args.threads,
                          args.data_dir, cache=args.cache)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    table = markdown(report)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} "
          f"({report['machine']['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
