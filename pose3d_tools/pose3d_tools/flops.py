"""FLOPs of a lifter, counted once here for the evaluation records, the benchmarks and the HoT
ablation: torch.utils.flop_counter.FlopCounterMode over one forward at batch 1 (matmul-type ops
only: Linear, MatMul, convolutions; FLOPs = 2 x MACs; norms, softmax and activations are not
counted).

    per_frame, per_published = gflops_per_frame(model), gflops_per_published_frame(model)
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def example_window(model: nn.Module, batch: int = 1) -> torch.Tensor:
    """A (B, T, J, C_in) input of the model's window; values do not change the count."""
    from pose3d_tools.export import example_input

    cfg = model.config
    x = example_input(int(getattr(cfg, "frames", 1) or 1), batch)
    return x[..., : int(getattr(cfg, "in_channels", 3))]


@contextmanager
def seq2frame(model: nn.Module, enabled: bool):
    """Temporarily switch a model that has a seq2frame mode (HoT) to it; others are unchanged."""
    has = hasattr(model, "seq2frame")
    old = getattr(model, "seq2frame", None)
    if has:
        model.seq2frame = enabled
    try:
        yield model
    finally:
        if has:
            model.seq2frame = old


def window_flops(model: nn.Module, published_only: bool = False) -> tuple[int, int]:
    """(FLOPs of one window forward at batch 1, frames in its output).

    ``published_only``: the forward the node runs (seq2frame where the model has it)."""
    was_training = model.training
    model.eval()
    try:
        with seq2frame(model, published_only), torch.no_grad(), \
                FlopCounterMode(display=False) as counter:
            out = model(example_window(model))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()), int(out.shape[1])


def gflops_per_frame(model: nn.Module) -> float:
    """GFLOPs of one full window forward / the frames it outputs (seq2seq: T; a single-frame
    lifter or an output of one frame: the whole forward)."""
    flops, frames = window_flops(model)
    return flops / frames / 1e9


def gflops_per_published_frame(model: nn.Module) -> float:
    """GFLOPs the node spends per published pose: one window forward, seq2frame where the model
    has it (HoT), else the full forward (its other output frames are thrown away)."""
    return window_flops(model, published_only=True)[0] / 1e9


def flops_record(model: nn.Module) -> dict[str, float]:
    """The compute fields of an eval.json record (GFLOPs, 4 significant digits)."""
    return {"gflops_per_frame": float(f"{gflops_per_frame(model):.4g}"),
            "gflops_per_published_frame": float(f"{gflops_per_published_frame(model):.4g}")}
