"""E2E training: a resumed run equals an uninterrupted one; augmentation keeps image and 3D
consistent; the shipped checkpoint rebuilds the model."""

import json

import numpy as np
import pytest
import torch

from pose3d_tools.e2e_training import (
    E2EDataConfig,
    E2ETrainConfig,
    E2ETrainer,
    augment_sample,
)

TINY = {"dim": 16, "heads": 2, "points": 1, "ffn_dim": 16, "encoder_layers": 1,
        "decoder_layers": 2, "num_queries": 20, "input_size": 64, "variant": "jdt",
        "backbone": {"stem_channels": 4, "channels": [4, 8, 8, 8], "blocks": [1, 1, 1, 1]}}


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    folder = tmp_path_factory.mktemp("renders")
    rng = np.random.default_rng(0)
    np.save(folder / "images.npy", rng.integers(0, 256, (24, 64, 64, 3), dtype=np.uint8))
    joints = rng.normal(0, 0.3, (24, 17, 3)).astype(np.float32)
    np.save(folder / "joints.npy", joints - joints[:, :1])
    (folder / "meta.json").write_text(json.dumps({"split": "train", "n": 24}))
    return folder


def _cfg(renders, out, name="run"):
    return E2ETrainConfig(
        name=name, model=TINY, seed=3, out_dir=str(out), checkpoint_dir=str(out / "ship"),
        data=E2EDataConfig(renders_dir=str(renders)), checkpoint_minutes=0.0, log_every=2,
        loss={"thresholds_m": (0.1, 0.0)},
        optim={"batch_size": 3, "steps": 4, "warmup_steps": 1})


def test_resumed_training_equals_uninterrupted(renders, tmp_path):
    from pose3d_tools.e2e_training import config_from_dict, config_to_dict

    cfg = config_from_dict(config_to_dict(_cfg(renders, tmp_path / "a")))
    straight = E2ETrainer(cfg, progress=False)
    straight.run()
    cfg_b = config_from_dict(config_to_dict(_cfg(renders, tmp_path / "b")))
    first = E2ETrainer(cfg_b, progress=False)
    assert first.run(max_steps=2)["stopped"]
    del first
    torch.manual_seed(123)  # the resumed run must not depend on the process's RNG
    np.random.seed(123)
    second = E2ETrainer(cfg_b, progress=False)
    assert second.resume()
    assert second.step == 2
    second.run()
    a, b = straight.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in second.history]
    path = second.export()
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["kind"] == "e2e" and ckpt["variant"] == "jdt" and "optimizer" not in ckpt


def test_flip_and_rotation_move_image_and_joints_together():
    # A bright dot at the crop pixel of a joint must follow that joint through the augmentation
    # (crop pixel = centre + s * (x, y) with a fixed scale, perspective ignored).
    s, scale = 64, 40.0
    joints = np.zeros((17, 3), np.float32)
    joints[3] = [0.4, -0.3, 0.1]  # r_ankle
    image = np.zeros((s, s, 3), np.uint8)
    c = (s - 1) / 2
    u, v = c + scale * joints[3, 0], c + scale * joints[3, 1]
    image[int(np.rint(v)), int(np.rint(u))] = 255
    cfg = E2EDataConfig(flip_prob=1.0, rotate_deg=20.0, scale_jitter=0.0, shift_jitter=0.0,
                        colour_jitter=0.0, brightness_jitter=0.0, grey_prob=0.0)
    out, moved = augment_sample(image, joints, np.random.default_rng(5), cfg)
    src = 6  # after the flip the right ankle is the left ankle
    assert np.linalg.norm(moved[src]) == pytest.approx(np.linalg.norm(joints[3]), abs=1e-6)
    peak = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    expected = (c + scale * moved[src, 1], c + scale * moved[src, 0])
    assert abs(peak[0] - expected[0]) <= 1.0 and abs(peak[1] - expected[1]) <= 1.0


def test_ablation_configs_parse_and_share_one_budget():
    from pose3d_tools import TRAINING_CONFIG_DIR
    from pose3d_tools.e2e_training import load_config
    from pose3d_tools.models.e2e_transformer import E2EConfig

    paths = sorted((TRAINING_CONFIG_DIR / "e2e").glob("e2e_*.yaml"))
    cfgs = {p.stem: load_config(p) for p in paths}
    assert set(cfgs) >= {"e2e_baseline_c2f", "e2e_baseline_noc2f", "e2e_jdt_c2f",
                         "e2e_jdt_noc2f"}
    for stem, cfg in cfgs.items():
        assert cfg.name == stem
        model = E2EConfig.from_dict(cfg.model)
        assert model.variant in stem
        assert cfg.loss.coarse_to_fine == ("noc2f" not in stem)
        # without per-layer supervision the last loss must reach the earlier layers
        assert model.detach_references == cfg.loss.coarse_to_fine
    budgets = {(c.optim.steps, c.optim.batch_size, c.optim.lr, c.data.renders_dir)
               for c in cfgs.values()}
    assert len(budgets) == 1


def test_sigterm_saves_the_working_checkpoint_and_stops(renders, tmp_path):
    import os
    import signal

    from pose3d_tools.e2e_training import (
        BatchMaker,
        RenderSet,
        config_from_dict,
        config_to_dict,
    )

    class SignalOnSecondBatch(BatchMaker):
        calls = 0

        def batch(self, rng, n):
            SignalOnSecondBatch.calls += 1
            if SignalOnSecondBatch.calls == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of step 2
            return super().batch(rng, n)

    cfg = config_from_dict(config_to_dict(_cfg(renders, tmp_path)))
    trainer = E2ETrainer(cfg, SignalOnSecondBatch(RenderSet(renders), cfg.data), progress=False)
    entry = trainer.run()
    assert entry == {"stopped": "SIGTERM", "step": 2}
    saved = torch.load(trainer.last_path, weights_only=False)
    assert saved["step"] == 2 and "optimizer" in saved and "numpy_rng" in saved
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
