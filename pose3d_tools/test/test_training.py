"""Training loop, checkpoints, configs and CLI wiring, on a tiny synthetic dataset.

The loop is tested against a stand-in lifter defined here (fast and independent of the model
architectures); the configs shipped in config/training must parse and name registered lifters.
"""

import dataclasses
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pose3d_ros.core.skeletons import H36M17
from pose3d_tools import training
from pose3d_tools.cli import build_parser
from pose3d_tools.data.cameras import Camera, look_rotation
from pose3d_tools.data.h36m import FrameTable

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "training"


@dataclasses.dataclass
class StandInConfig:
    frames: int = 1
    causal: bool = True
    hidden: int = 64


class StandIn(nn.Module):
    """(B, T, 17, 3) -> (B, T, 17, 3), root row 0: a per-frame MLP with the lifter contract."""

    name = "standin"

    def __init__(self, config: StandInConfig | None = None):
        super().__init__()
        self.config = config or StandInConfig()
        h = self.config.hidden
        self.net = nn.Sequential(nn.Linear(51, h), nn.ReLU(), nn.Dropout(0.1), nn.Linear(h, 51))

    def forward(self, x):
        b, t = x.shape[:2]
        y = self.net(x.reshape(b, t, 51)).reshape(b, t, 17, 3)
        return y - y[:, :, :1]


def fake_poses(seed=0, clips=2, frames=60):
    """Walking-ish skeletons: a rest pose with smoothly varying limb angles (metres, z up)."""
    rng = np.random.default_rng(seed)
    rest = np.array([[0, 0, 1.0], [-.13, 0, 1.0], [-.13, 0, .55], [-.13, 0, .1], [.13, 0, 1.0],
                     [.13, 0, .55], [.13, 0, .1], [0, 0, 1.23], [0, 0, 1.48], [0, 0, 1.6],
                     [0, 0, 1.72], [.16, 0, 1.45], [.16, 0, 1.18], [.16, 0, .93], [-.16, 0, 1.45],
                     [-.16, 0, 1.18], [-.16, 0, .93]])
    out = {}
    for c in range(clips):
        t = np.arange(frames)[:, None]
        phase = rng.uniform(0, 2 * np.pi, 17)
        amp = rng.uniform(0.02, 0.15, 17)
        pose = np.repeat(rest[None], frames, 0).copy()
        pose[:, :, 1] += amp * np.sin(0.2 * t + phase)
        pose[:, :, 0] += 0.5 * amp * np.cos(0.15 * t + phase)
        pose[:, 0, :2] += np.c_[0.01 * t[:, 0], np.zeros(frames)]
        out[f"walking_{c}"] = pose.astype(np.float32)
    return {"S1": out}


def fake_camera():
    return Camera(R=look_rotation(np.array([0.0, 1.0, 0.0])), T=np.array([0.0, -4.5, 1.2]),
                  f=np.array([1000.0, 1000.0]), c=np.array([500.0, 500.0]), k=np.zeros(3),
                  p=np.zeros(2), w=np.asarray(1000.0), h=np.asarray(1000.0), name="fake")


def tiny_config(tmp_path, epochs=3, steps=6):
    cfg = training.TrainConfig(name="tiny", model="standin", seed=3, threads=1,
                               out_dir=str(tmp_path / "out"), checkpoint_dir=str(tmp_path / "ckpt"))
    cfg.data.frame_stride = 2
    cfg.data.val_samples = 0
    cfg.optim = training.OptimConfig(batch_size=32, lr=3e-3, epochs=epochs, steps_per_epoch=steps)
    return cfg


def make_trainer(cfg):
    torch.manual_seed(0)
    model = StandIn()
    synth = training.WindowSynth(FrameTable(fake_poses()), [fake_camera()], cfg.data, 1, True)
    return training.Trainer(cfg, synth=synth, model=model, progress=False)


def test_synth_batch_shapes_and_targets(tmp_path):
    cfg = tiny_config(tmp_path)
    synth = training.WindowSynth(FrameTable(fake_poses()), [fake_camera()], cfg.data, 5, True)
    rng = np.random.default_rng(0)
    feats, target, valid = synth.batch(rng, 8)
    assert feats.shape == target.shape == (8, 5, 17, 3)
    assert np.all(target[:, :, 0] == 0) and valid.all()
    assert np.all((feats[..., 2] >= 0) & (feats[..., 2] <= 1))
    # Targets are root-relative metres of a person-sized skeleton.
    assert np.isfinite(target).all() and 0.05 < H36M17.bone_lengths(target).mean() < 0.4
    fa, fb, _ = synth.pair(rng, 4)
    assert fa.shape == fb.shape == (4, 5, 17, 3) and not np.allclose(fa, fb)


def test_a_few_steps_reduce_the_loss(tmp_path):
    cfg = tiny_config(tmp_path, epochs=1, steps=40)
    cfg.data.noise.clean_prob = 1.0
    trainer = make_trainer(cfg)
    rng = np.random.default_rng(123)
    feats, target, valid = trainer.synth.batch(rng, 256, noise=False)

    def loss():
        with torch.no_grad():
            pred = trainer.model.eval()(torch.from_numpy(feats))
            return float(training.lifting_loss(pred, torch.from_numpy(target),
                                               torch.from_numpy(valid), 0, cfg.optim))

    before = loss()
    trainer.run()
    after = loss()
    assert after < 0.7 * before


def assert_same_weights(a, b):
    for key, value in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[key], value, rtol=1e-6, atol=1e-7)


def test_resume_continues_at_the_right_epoch(tmp_path):
    cfg_a = tiny_config(tmp_path / "a")
    full = make_trainer(cfg_a)
    full.run()
    assert full.epoch == 3 and len(full.history) == 3

    cfg_b = tiny_config(tmp_path / "b")
    part = make_trainer(cfg_b)
    stopped = part.run(max_steps=6)  # exactly one epoch
    assert stopped["stopped"] and part.epoch == 1 and part.step == 0
    resumed = make_trainer(cfg_b)
    assert resumed.resume()
    assert resumed.epoch == 1 and resumed.stage == "finetune"
    resumed.run()
    assert resumed.epoch == 3
    assert_same_weights(full, resumed)
    assert resumed.scheduler.state_dict()["last_epoch"] == full.scheduler.state_dict()["last_epoch"]

    shipped = torch.load(resumed.export(), weights_only=False)
    assert shipped["name"] == "standin" and "optimizer" not in shipped
    assert all(v.dtype == torch.float32 for v in shipped["state_dict"].values())
    assert "non-commercial" in shipped["licence"]


def test_two_chunks_split_mid_epoch_equal_one_run(tmp_path):
    """Stopped by a step limit in the middle of an epoch (data generator, dropout RNG, Adam
    moments and the one-cycle position all mid-way), then resumed in a new trainer."""
    full = make_trainer(tiny_config(tmp_path / "a"))
    full.run()
    cfg = tiny_config(tmp_path / "b")
    part = make_trainer(cfg)
    assert part.run(max_steps=8)["stopped"] == "step limit 8"
    assert (part.epoch, part.step, part.global_step) == (1, 2, 8)
    # A different global RNG state in between must not matter: it is restored from last.pt.
    torch.manual_seed(12345)
    np.random.seed(7)
    resumed = make_trainer(cfg)
    assert resumed.resume() and (resumed.epoch, resumed.step) == (1, 2)
    resumed.run()
    assert resumed.global_step == full.global_step == 18
    assert_same_weights(full, resumed)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history])


def test_a_mid_epoch_resume_without_restored_rng_differs(tmp_path):
    """The equality above is not vacuous: restarting the epoch's data stream changes weights."""
    full = make_trainer(tiny_config(tmp_path / "a"))
    full.run()
    cfg = tiny_config(tmp_path / "b")
    make_trainer(cfg).run(max_steps=8)
    ckpt = torch.load(Path(cfg.out_dir) / "tiny" / "last.pt", weights_only=False)
    ckpt["rng"]["numpy_epoch"] = np.random.default_rng(0).bit_generator.state
    torch.save(ckpt, Path(cfg.out_dir) / "tiny" / "last.pt")
    resumed = make_trainer(cfg)
    resumed.resume()
    resumed.run()
    with pytest.raises(AssertionError):
        assert_same_weights(full, resumed)


def test_sigterm_saves_and_stops_cleanly_then_resumes_exactly(tmp_path):
    full = make_trainer(tiny_config(tmp_path / "a"))
    full.run()
    cfg = tiny_config(tmp_path / "b")
    part = make_trainer(cfg)

    def send_sigterm(trainer):
        if trainer.global_step == 11:
            os.kill(os.getpid(), signal.SIGTERM)

    part.on_step = send_sigterm
    entry = part.run()
    assert entry["stopped"] == "SIGTERM" and part.global_step == 11
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler removed again
    ckpt = torch.load(part.last_path, weights_only=False)
    assert (ckpt["epoch"], ckpt["step"]) == (1, 5)
    resumed = make_trainer(cfg)
    assert resumed.resume()
    resumed.run()
    assert_same_weights(full, resumed)


def test_time_budget_is_per_run_so_a_resumed_run_makes_progress(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg.max_minutes = 1e-9  # exceeded after every step
    first = make_trainer(cfg)
    assert first.run()["stopped"].startswith("time budget") and first.global_step == 1
    second = make_trainer(cfg)
    assert second.resume() and second.run()["stopped"] and second.global_step == 2
    assert second.elapsed >= first.elapsed  # wall time still adds up over runs


def test_periodic_checkpoints_mid_epoch(tmp_path):
    cfg = tiny_config(tmp_path, epochs=1, steps=6)
    cfg.checkpoint_minutes = 1e-9  # every step
    trainer = make_trainer(cfg)
    seen = []
    trainer.on_step = lambda t: seen.append(t.last_path.is_file() and
                                            torch.load(t.last_path, weights_only=False)["step"])
    trainer.run()
    assert seen[1:5] == [1, 2, 3, 4]  # the save after step k is visible at step k + 1


def test_run_lock_refuses_a_second_live_trainer_and_takes_over_a_stale_one(tmp_path):
    with training.RunLock(tmp_path) as lock:
        assert lock.path.read_text() == str(os.getpid())
        lock.path.write_text("1")  # pid 1 is alive: another trainer
        with pytest.raises(RuntimeError, match="running"):
            training.RunLock(tmp_path).__enter__()
        lock.path.write_text("999999999")  # no such process: stale
        with training.RunLock(tmp_path) as again:
            assert again.path.read_text() == str(os.getpid())
    assert not (tmp_path / "run.lock").exists()


def test_cli_resume_requires_a_checkpoint(tmp_path):
    cfg = tiny_config(tmp_path)
    trainer = make_trainer(cfg)
    assert not trainer.resume()
    args = build_parser().parse_args(["train", "--config", "x.yaml", "--resume",
                                      "--max-steps", "5", "--checkpoint-minutes", "2"])
    assert args.resume and args.max_steps == 5 and args.checkpoint_minutes == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--config", "x.yaml", "--resume", "--no-resume"])


def test_resume_refuses_other_data(tmp_path):
    cfg = tiny_config(tmp_path, epochs=1, steps=2)
    trainer = make_trainer(cfg)
    trainer.run()
    other = training.WindowSynth(FrameTable(fake_poses(seed=1)), [fake_camera()], cfg.data, 1, True)
    t2 = training.Trainer(cfg, synth=other, model=StandIn(), progress=False)
    with pytest.raises(ValueError, match="fingerprint"):
        t2.resume()


def test_training_refuses_test_subjects(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg.data.train_subjects = ("S1", "S9")
    with pytest.raises(ValueError, match="train split"):
        training.train(cfg)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_parse(path):
    cfg = training.load_config(path)
    assert cfg.name == path.stem
    assert set(cfg.data.train_subjects) <= {"S1", "S5", "S6", "S7", "S8"}
    try:
        from pose3d_tools.models.registry import build_lifter
    except ImportError:  # pragma: no cover
        pytest.skip("models not importable")
    from pose3d_tools import refinement_training

    if refinement_training.is_refiner_config(cfg):  # not a lifter: 3D skeletons in and out
        assert refinement_training.build_refiner(cfg).config.num_joints == 17
        return
    model = build_lifter(cfg.model, dict(cfg.model_config))
    assert training.model_frames(model) >= 1


def test_config_from_dict_rejects_typos():
    with pytest.raises(ValueError, match="unknown"):
        training.config_from_dict({"optim": {"epoch": 3}})
    cfg = training.config_from_dict({"data": {"window_steps": [1, 3]}})
    assert cfg.data.window_steps == (1, 3)


def test_cli_subcommands_parse():
    parser = build_parser()
    args = parser.parse_args(["train", "--config", "x.yaml", "--epochs", "2"])
    assert args.func.__name__ == "cmd_train" and args.epochs == 2
    args = parser.parse_args(["eval", "--checkpoint", "a.pt", "b.pt", "--inputs", "gt"])
    assert args.checkpoint == ["a.pt", "b.pt"] and args.inputs == ["gt"]
    args = parser.parse_args(["eval", "--out", "o"])  # what `make eval` runs
    assert args.checkpoint is None and args.out_dir == "o"
    args = parser.parse_args(["export", "--checkpoint", "a.pt"])
    assert args.func.__name__ == "cmd_export"


def test_poseclr_pretrain_then_finetune_with_a_real_lifter(tmp_path):
    registry = pytest.importorskip("pose3d_tools.models.registry")
    pytest.importorskip("pose3d_tools.models.poseclr")
    cfg = tiny_config(tmp_path, epochs=1, steps=2)
    cfg.model, cfg.model_config = "nanohtnet", {"frames": 5, "dct_coefficients": 3}
    cfg.pretrain = training.PretrainConfig(enabled=True, epochs=1, steps_per_epoch=2, batch_size=8)
    cfg.optim.batch_size = 8
    model = registry.build_lifter(cfg.model, cfg.model_config)
    synth = training.WindowSynth(FrameTable(fake_poses()), [fake_camera()], cfg.data, 5, True)
    trainer = training.Trainer(cfg, synth=synth, model=model, progress=False)
    assert trainer.stage == "pretrain"
    trainer.run()
    stages = [h["stage"] for h in trainer.history]
    assert stages == ["pretrain", "finetune"] and trainer.stage == "finetune"
    ckpt = torch.load(trainer.last_path, weights_only=False)
    assert ckpt["stage"] == "finetune" and ckpt["epoch"] == 1
    shipped, _ = training.load_lifter(trainer.export())
    assert training.output_index(shipped) == 4
