"""The ``pose3d`` command: what a robot runs without ROS (no torch, no training data).

    pose3d run --input video.mp4 --out out/run [--camera-info cam.yaml] [--video]
    pose3d models list|verify [--model-dir DIR]
    pose3d engine check|build --onnx model.onnx ...     (TensorRT, on the Jetson)

Training, evaluation, export, building the 2D models and benchmarks are ``pose3d-tools``
(the pose3d_tools package, installed on a PC, never on a robot).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pose3d_ros.assets import (
    DEFAULT_MODELS,
    MODELS,
    AssetError,
    find_model_dir,
    list_models,
    verify_models,
)


# -- models ---------------------------------------------------------------------------------------
def add_models_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list / verify the built 2D models (pose3d-tools builds)")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    v = msub.add_parser("verify", help="check built models against their manifest's sha256")
    v.add_argument("--model-dir", help="model folder (default: searched, see pose3d_ros.assets)")
    v.add_argument("--models", help=f"comma-separated names (default: {','.join(DEFAULT_MODELS)})")
    v.set_defaults(func=cmd_models_verify)
    ls = msub.add_parser("list", help="the known models, their licences and their state")
    ls.add_argument("--model-dir")
    ls.set_defaults(func=cmd_models_list)


def cmd_models_verify(args: argparse.Namespace) -> int:
    names = tuple(n.strip() for n in (args.models or "").split(",") if n.strip()) or DEFAULT_MODELS
    names = tuple(n if n in MODELS else f"blazepose_{n}" for n in names)
    try:
        verify_models(args.model_dir, names)
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"ok: {', '.join(names)} in {find_model_dir(args.model_dir)}")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    for row in list_models(args.model_dir):
        mark = "*" if row["default"] else " "
        print(f"{mark} {row['name']:<16} {row['state']:<9} {row['licence']:<10} "
              f"{row['source']:<45} {row['file']}")
    print(f"(* built by default; folder {find_model_dir(args.model_dir)})")
    return 0


# -- wiring ---------------------------------------------------------------------------------------
def add_run_parser(sub: argparse._SubParsersAction) -> None:
    from pose3d_ros.run_offline import add_run_parser as add

    add(sub)


def add_engine_parser(sub: argparse._SubParsersAction) -> None:
    from pose3d_ros.backends.engine_commands import add_engine_parser as add

    add(sub)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_run_parser,
    add_models_parser,
    add_engine_parser,
]


def subcommand_parser(
    prog: str, description: str, adders: Sequence[Callable[[argparse._SubParsersAction], None]]
) -> argparse.ArgumentParser:
    """A ``prog COMMAND ...`` parser; each adder declares a subcommand and sets ``func``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in adders:
        add(sub)
    return parser


def build_parser() -> argparse.ArgumentParser:
    return subcommand_parser("pose3d", __doc__.split("\n")[0], SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
