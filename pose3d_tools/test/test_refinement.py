"""Joint Refinement Network: the paper's masking rule (statistics), the loss on masked joints
only, ONNX parity, resumable training, the evaluation's joint removal, and the shipped model
against the midpoint guess on held-out S9 poses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_training import fake_camera, fake_poses

from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.lifter_input import lifter_features
from pose3d_ros.stages.refinement import midpoint_matrix
from pose3d_tools import REPO_ROOT, training
from pose3d_tools.data.h36m import FrameTable
from pose3d_tools.export import REFINER_INPUTS, REFINER_OUTPUT, export_refiner_onnx
from pose3d_tools.models.refinement import (
    JointRefinementConfig,
    JointRefinementNetwork,
    bert_mask,
    masked_joint_loss,
)
from pose3d_tools.refinement_eval import REFINER_CHECKPOINT, drop_joint
from pose3d_tools.refinement_training import RefinementTrainer, load_refiner

ort = pytest.importorskip("onnxruntime")
torch.set_num_threads(1)
SHIPPED_ONNX = REPO_ROOT / "pose3d_ros" / "refiners" / "joint_refinement.onnx"
NON_ROOT = np.array([j for j in range(17) if j != H36M17.root])


def skeletons(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, 17, 3))
    return x - x[:, :1]


def within(p_hat: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    """|p_hat - p| within ``sigmas`` binomial standard deviations of n draws."""
    return abs(p_hat - p) <= sigmas * np.sqrt(p * (1 - p) / n)


def test_masking_picks_20_percent_and_replaces_80_percent_of_those_by_the_midpoint():
    n = 20000
    x = skeletons(n)
    out, picked, replaced = bert_mask(np.random.default_rng(7), x)
    assert not picked[:, H36M17.root].any()
    assert within(picked[:, NON_ROOT].mean(), 0.2, picked[:, NON_ROOT].size)
    for j in NON_ROOT:  # every joint, not just on average
        assert within(picked[:, j].mean(), 0.2, n), H36M17.joints[j]
    assert not (replaced & ~picked).any()
    assert within(replaced[picked].mean(), 0.8, int(picked.sum()))
    # Replaced: the neighbours' midpoint (leaf: the parent). Everything else: untouched.
    np.testing.assert_array_equal(out[~replaced], x[~replaced])
    mid = np.einsum("jk,bkc->bjc", midpoint_matrix(), x)
    np.testing.assert_allclose(out[replaced], mid[replaced], atol=1e-12)
    for leaf in H36M17.end_joints:
        rows = replaced[:, leaf]
        parent = H36M17.parents[leaf]
        np.testing.assert_allclose(out[rows, leaf], x[rows, parent], atol=1e-12)


def test_loss_counts_the_masked_joints_only():
    target = torch.from_numpy(skeletons(8, seed=1)).float()
    picked = torch.zeros(8, 17, dtype=torch.bool)
    picked[:, 13] = True
    picked[::2, 3] = True
    pred = target.clone()
    pred[picked] += torch.tensor([0.03, 0.04, 0.0])  # 5 cm off on every picked joint
    loss = masked_joint_loss(pred, target, picked)
    assert float(loss) == pytest.approx(0.05, abs=1e-6)
    moved = pred.clone()
    moved[~picked] += 10.0  # unmasked predictions changed wildly: the same loss
    assert float(masked_joint_loss(moved, target, picked)) == float(loss)
    moved[picked] += 0.1
    assert float(masked_joint_loss(moved, target, picked)) != float(loss)
    leaf = pred.clone().requires_grad_(True)
    masked_joint_loss(leaf, target, picked).backward()
    assert (leaf.grad[~picked] == 0).all() and (leaf.grad[picked] != 0).any()


def random_network(seed: int = 0) -> JointRefinementNetwork:
    torch.manual_seed(seed)
    model = JointRefinementNetwork(JointRefinementConfig(hidden=64, blocks=2))
    torch.nn.init.normal_(model.head.weight, std=0.05)  # the zero-initialised head hides bugs
    return model.eval()


def test_output_is_root_relative_metres_of_the_whole_skeleton():
    model = random_network()
    x = torch.from_numpy(skeletons(4)).float()
    masked = torch.zeros(4, 17)
    out = model(x, masked)
    assert out.shape == (4, 17, 3) and (out[:, H36M17.root] == 0).all()
    # Scale-normalised inside: a person twice as large gives twice the output.
    torch.testing.assert_close(model(2 * x, masked), 2 * out, rtol=1e-5, atol=1e-6)


def onnx_outputs(path, joints: np.ndarray, masked: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(REFINER_INPUTS)
    return sess.run([REFINER_OUTPUT], {"joints": joints.astype(np.float32),
                                       "masked": masked.astype(np.float32)})[0]


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_export_matches_torch(tmp_path, batch):
    model = random_network(1)
    path = export_refiner_onnx(model, tmp_path / "refiner.onnx")
    x, masked, _ = bert_mask(np.random.default_rng(batch), skeletons(batch, seed=2))
    out = onnx_outputs(path, x, masked)
    with torch.no_grad():
        ref = model(torch.from_numpy(x).float(), torch.from_numpy(masked).float()).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_shipped_onnx_is_the_shipped_checkpoint():
    model, ckpt = load_refiner(REFINER_CHECKPOINT)
    assert "non-commercial" in ckpt["licence"]
    x, masked, _ = bert_mask(np.random.default_rng(3), skeletons(16, seed=3))
    with torch.no_grad():
        ref = model(torch.from_numpy(x).float(), torch.from_numpy(masked).float()).numpy()
    np.testing.assert_allclose(onnx_outputs(SHIPPED_ONNX, x, masked), ref, atol=1e-4)


def test_training_resumes_bit_for_bit(tmp_path):
    def trainer(sub):
        cfg = training.TrainConfig(name="tiny", model="joint_refinement", seed=1, threads=1,
                                   out_dir=str(tmp_path / sub), checkpoint_dir=str(tmp_path / sub),
                                   model_config={"hidden": 32, "blocks": 1})
        cfg.data.frame_stride = 2
        cfg.data.val_samples = 0
        cfg.optim = training.OptimConfig(batch_size=16, epochs=2, steps_per_epoch=4)
        torch.manual_seed(0)
        synth = training.WindowSynth(FrameTable(fake_poses()), [fake_camera()], cfg.data, 1, True)
        return RefinementTrainer(cfg, synth=synth, progress=False)

    full = trainer("a")
    full.run()
    part = trainer("b")
    assert part.run(max_steps=3)["stopped"]
    resumed = trainer("b")
    assert resumed.resume() and resumed.global_step == 3
    resumed.run()
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    shipped = torch.load(resumed.export(), weights_only=False)
    assert shipped["name"] == "joint_refinement" and "optimizer" not in shipped
    assert load_refiner(tmp_path / "b" / "tiny.pt")[0].config.hidden == 32


def test_drop_joint_gives_the_runtime_features_without_that_joint():
    rng = np.random.default_rng(4)
    xy = rng.normal(0.0, 0.2, (3, 2, 17, 2)) + 0.1  # (N, T, 17, 2) normalised image coords
    conf = rng.uniform(0.5, 1.0, (3, 2, 17))
    feats, _ = lifter_features(xy, conf)
    for joint in (3, 13, 1):
        gone = conf.copy()
        gone[..., joint] = 0.0
        expected, _ = lifter_features(xy, gone)
        np.testing.assert_allclose(drop_joint(feats, joint), expected, atol=1e-6)


@pytest.mark.skipif(not REFINER_CHECKPOINT.is_file(), reason="no shipped refiner")
def test_refined_joint_beats_the_midpoint_guess_on_held_out_s9():
    """One joint masked per pose (midpoint-replaced, as at runtime) on S9 poses seen by a real
    camera: the refined joint is closer to the truth than the midpoint, by more than 3
    standard errors of the paired difference."""
    from pose3d_tools.data.cameras import load_h36m_cameras
    from pose3d_tools.data.h36m import load_split

    try:
        poses = load_split("test", subjects=["S9"])
        cams = load_h36m_cameras()
    except FileNotFoundError:
        pytest.skip("Human3.6M data not available")
    clips = sorted(poses["S9"])[:8]
    world = np.concatenate([poses["S9"][c][::250][:32] for c in clips]).astype(np.float64)
    cam = cams[sorted(k for k in cams if k.startswith("S9"))[0]]
    x = cam.world_to_camera(world)
    x = x - x[:, :1]
    n = len(x)
    joint = NON_ROOT[np.arange(n) % len(NON_ROOT)]
    masked = np.zeros((n, 17), bool)
    masked[np.arange(n), joint] = True
    mid = np.einsum("jk,bkc->bjc", midpoint_matrix(), x)
    inp = np.where(masked[..., None], mid, x)
    model, _ = load_refiner(REFINER_CHECKPOINT)
    with torch.no_grad():
        out = model(torch.from_numpy(inp).float(), torch.from_numpy(masked).float()).numpy()
    rows = np.arange(n)
    e_mid = np.linalg.norm(mid[rows, joint] - x[rows, joint], axis=-1)
    e_ref = np.linalg.norm(out[rows, joint] - x[rows, joint], axis=-1)
    diff = e_mid - e_ref
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(n), (e_mid.mean(), e_ref.mean())
