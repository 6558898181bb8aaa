"""The training benchmark's pieces on a tiny synthetic dataset (no Human3.6M needed)."""

import numpy as np
import pytest
import torch
from test_training import fake_camera, fake_poses, tiny_config

from pose3d_tools import training
from pose3d_tools.bench import train as train_bench
from pose3d_tools.data.h36m import FrameTable


@pytest.fixture
def htnet_trainer(tmp_path):
    registry = pytest.importorskip("pose3d_tools.models.registry")
    cfg = tiny_config(tmp_path)
    cfg.model, cfg.model_config = "htnet", {"preset": "small"}
    model = registry.build_lifter(cfg.model, cfg.model_config)
    synth = training.WindowSynth(FrameTable(fake_poses()), [fake_camera()], cfg.data, 1, True)
    return training.Trainer(cfg, synth=synth, model=model, progress=False)


def test_flops_per_step_grow_linearly_with_the_batch(htnet_trainer):
    f8, f16 = (train_bench.step_flops(htnet_trainer, b) for b in (8, 16))
    assert f8 > 1e6  # HTNet-small: tens of MFLOP per sample (forward + backward)
    assert f16 == pytest.approx(2 * f8, rel=1e-6)
    assert all(p.grad is None for p in htnet_trainer.model.parameters())


def test_step_timer_times_both_halves_and_trains(htnet_trainer):
    before = [p.detach().clone() for p in htnet_trainer.model.parameters()]
    timer = train_bench.StepTimer(htnet_trainer, 8)
    data_s, model_s = timer.step()
    assert data_s > 0 and model_s > 0
    after = htnet_trainer.model.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_matmul_ceiling_is_positive():
    assert train_bench.matmul_gflops(1, n=128, reps=2) > 0.01
    assert np.isfinite(train_bench.matmul_gflops(1, n=64, reps=1))


def test_minutes_to_reference_interpolates_the_crossing():
    history = [{"epoch": 1, "val_mpjpe_mm": 100.0, "elapsed_s": 60.0, "cpu_s": 30.0},
               {"epoch": 2, "val_mpjpe_mm": 80.0, "elapsed_s": 120.0, "cpu_s": 60.0},
               {"epoch": 3, "val_mpjpe_mm": 60.0, "elapsed_s": 180.0, "cpu_s": 90.0},
               {"stage": "pretrain", "epoch": 1, "val_mpjpe_mm": None, "elapsed_s": 1.0}]
    curve = train_bench.learning_curve(history)
    assert [c["epoch"] for c in curve] == [1, 2, 3]
    assert train_bench.minutes_to(curve, 70.0) == pytest.approx(2.5)
    assert train_bench.minutes_to(curve, 70.0, "cpu_min") == pytest.approx(1.25)
    assert train_bench.minutes_to(curve, 100.0) == pytest.approx(1.0)
    assert train_bench.minutes_to(curve, 59.9) is None
