"""E2E evaluation: the real-photo agreement measure (known answers) and the render records."""

import json

import numpy as np
import pytest
import torch

from pose3d_tools.e2e_eval import agreement_2d, evaluate_e2e_checkpoint, fit_scale_translation


def test_scale_and_translation_are_fitted_away():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (17, 2))
    joints = np.c_[(kp - 40.0) / 250.0, rng.normal(size=17)]  # metres-ish, any depth
    used = np.ones(17, bool)
    a = agreement_2d(joints, kp, used)
    assert a["pck"] == 1.0 and a["norm_err"] == pytest.approx(0.0, abs=1e-9)


def test_fit_never_mirrors():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    fitted = fit_scale_translation(-pts, pts)  # a mirrored set: best s < 0 is refused
    np.testing.assert_allclose(fitted, np.broadcast_to(pts.mean(0), pts.shape))


def test_agreement_counts_joints_within_a_tenth_of_the_box():
    kp = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]] * 4 + [[50, 50]])
    joints = np.c_[kp, np.zeros(17)].astype(float)
    joints[16, :2] += [0.0, 30.0]  # one joint 30 px off on a 100 px box; the fit moves a little
    a = agreement_2d(joints, kp.astype(float), np.ones(17, bool))
    assert a["pck"] == pytest.approx(16 / 17)
    # translation alone would leave 30/17 px on 16 joints and 30 x 16/17 px on the moved one
    assert a["norm_err"] == pytest.approx((16 * 30 / 17 + 30 * 16 / 17) / 17 / 100, abs=1e-3)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from pose3d_tools.e2e_training import (
        E2EDataConfig,
        E2ETrainConfig,
        E2ETrainer,
        config_from_dict,
        config_to_dict,
    )

    root = tmp_path_factory.mktemp("e2e")
    rng = np.random.default_rng(0)
    for split, subjects in (("train", ["S1"]), ("test", ["S9", "S11"])):
        d = root / split
        d.mkdir()
        np.save(d / "images.npy", rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8))
        j = rng.normal(0, 0.3, (6, 17, 3)).astype(np.float32)
        np.save(d / "joints.npy", j - j[:, :1])
        (d / "meta.json").write_text(json.dumps({"split": split, "subjects": subjects,
                                                 "n": 6, "seed": 1}))
    model = {"dim": 16, "heads": 2, "points": 1, "ffn_dim": 16, "decoder_layers": 2,
             "num_queries": 20, "input_size": 64, "variant": "baseline",
             "backbone": {"stem_channels": 4, "channels": [4, 8, 8, 8]}}
    cfg = E2ETrainConfig(name="e2e_tiny", model=model, out_dir=str(root / "work"),
                         checkpoint_dir=str(root / "ship"), loss={"thresholds_m": (0.1, 0.0)},
                         data=E2EDataConfig(renders_dir=str(root / "train")),
                         optim={"batch_size": 2, "steps": 1}, checkpoint_minutes=0.0)
    trainer = E2ETrainer(config_from_dict(config_to_dict(cfg)), progress=False)
    trainer.run()
    return trainer.export(), root, trainer.model


def test_render_record_names_e2e_and_its_input(tiny_checkpoint):
    path, root, model = tiny_checkpoint
    rec = evaluate_e2e_checkpoint(path, root / "test")
    assert "e2e" in rec["model"] and rec["input"] == "renders (held-out S9/S11 poses)"
    assert rec["frames"] == 6 and rec["variant"] == "baseline"
    images = np.load(root / "test" / "images.npy")
    gt = np.load(root / "test" / "joints.npy")
    x = (images.astype(np.float32) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    with torch.no_grad():
        pred = model.eval()(torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32))[0]
    expected = np.linalg.norm(pred.numpy() - gt, axis=-1).mean() * 1000
    assert rec["mpjpe_mm"] == pytest.approx(expected, abs=0.01)


def test_training_renders_are_refused_as_test_data(tiny_checkpoint):
    path, root, _ = tiny_checkpoint
    with pytest.raises(ValueError, match="held-out"):
        evaluate_e2e_checkpoint(path, root / "train")
