"""HoT on MixSTE (issue 13): output shapes of every variant, Token Pruning Cluster known answers,
causality by gradients (which input frames an output frame can depend on), ONNX export parity
against ONNX Runtime with the TensorRT op list, and FLOPs against a count from the layer
formulas. Untrained tiny models: fast, and the properties tested do not depend on training."""

import numpy as np
import pytest
import torch

from pose3d_ros.backends.onnx_checks import check_tensorrt_ops, read_metadata
from pose3d_tools.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    TensorRTTokenPruning,
    example_input,
    export_onnx,
)
from pose3d_tools.flops import seq2frame, window_flops
from pose3d_tools.models import build_lifter
from pose3d_tools.models.hot import TokenPruningCluster

ort = pytest.importorskip("onnxruntime")

torch.set_num_threads(1)

T, J = 27, 17
# (id, registry name, config, seq2frame) -> output frames: T for seq2seq, 1 for seq2frame
VARIANTS = [
    ("mixste-causal", "mixste", {"causal": True}, False),
    ("mixste-centred", "mixste", {"causal": False}, False),
    ("hot-causal-seq2seq", "hot_mixste", None, False),
    ("hot-causal-seq2frame", "hot_mixste", None, True),
    ("hot-centred-seq2seq", "hot_mixste", {"preset": "tiny_centred"}, False),
    ("hot-centred-seq2frame", "hot_mixste", {"preset": "tiny_centred"}, True),
    ("hot-tpc-only", "hot_mixste", {"preset": "tiny_tpc_only"}, True),
]


def _model(name, config, seed=0):
    torch.manual_seed(seed)
    model = build_lifter(name, config).eval()
    torch.nn.init.normal_(model.temporal_pos, std=0.5)  # frames distinguishable, as after training
    return model


@pytest.mark.parametrize(("name", "config", "s2f"), [v[1:] for v in VARIANTS],
                         ids=[v[0] for v in VARIANTS])
def test_output_shapes(name, config, s2f):
    model = _model(name, config)
    x = example_input(T, batch=3)
    with seq2frame(model, s2f), torch.no_grad():
        y = model(x)
    assert y.shape == (3, 1 if s2f else T, J, 3)
    assert torch.isfinite(y).all()
    assert torch.all(y[..., 0, :] == 0.0)


def test_seq2frame_is_the_read_row_of_seq2seq():
    for config in (None, {"preset": "tiny_centred"}):
        model = _model("hot_mixste", config)
        x = example_input(T, batch=4, seed=1)
        with torch.no_grad():
            full = model(x)
            with seq2frame(model, True):
                one = model(x)
        assert torch.allclose(one[:, 0], full[:, model.output_index], atol=1e-6)


# -- Token Pruning Cluster ------------------------------------------------------------------------
def _clustered_tokens(seed: int, frames: int = 15, dim: int = 8):
    """Frames drawn from 3 tight clusters (centres 10 apart, spread 0.01), labels interleaved."""
    g = torch.Generator().manual_seed(seed)
    centres = 10.0 * torch.eye(3, dim)
    labels = torch.randperm(frames, generator=g) % 3
    tokens = centres[labels] + 0.01 * torch.randn(frames, dim, generator=g)
    return tokens[None], labels


@pytest.mark.parametrize("seed", range(5))
def test_tpc_keeps_one_frame_per_cluster(seed):
    tokens, labels = _clustered_tokens(seed)
    for tpc in (TokenPruningCluster(3, 2), TensorRTTokenPruning(TokenPruningCluster(3, 2), 15)):
        out = tpc(tokens)
        kept = out[0] if out.dim() == 2 else (out[0] @ torch.arange(15.0)).long()
        assert sorted(labels[kept].tolist()) == [0, 1, 2]
        assert torch.all(kept[1:] > kept[:-1])


def test_tpc_forced_frame_kept_indices_ascending():
    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(8, T, 48, generator=g)
    for force in (0, T // 2, T - 1):
        kept = TokenPruningCluster(9, 2, force)(tokens)
        assert kept.shape == (8, 9)
        assert torch.all((kept == force).sum(-1) == 1)
        assert torch.all(kept[:, 1:] > kept[:, :-1])


def test_tpc_identical_tokens_valid_and_finite():
    tokens = torch.ones(2, T, 48)
    for force in (None, T - 1):
        tpc = TokenPruningCluster(9, 2, force)
        kept = tpc(tokens)
        assert torch.all(kept[:, 1:] > kept[:, :-1]) and kept.min() >= 0 and kept.max() < T
        select = TensorRTTokenPruning(tpc, T)(tokens)
        assert torch.isfinite(select).all()
        assert torch.all(select.sum(-1) == 1) and torch.all(select.sum(-2) <= 1)
    model = _model("hot_mixste", None)
    with torch.no_grad():
        assert torch.isfinite(model(torch.zeros(2, T, J, 3))).all()


def test_tensorrt_pruning_selects_the_same_frames():
    g = torch.Generator().manual_seed(4)
    tokens = torch.randn(64, T, 48, generator=g)
    for force in (None, T - 1, T // 2):
        tpc = TokenPruningCluster(9, 2, force)
        select = TensorRTTokenPruning(tpc, T)(tokens)
        assert torch.all(select.sum(-1) == 1)
        assert torch.equal((select @ torch.arange(float(T))).long(), tpc(tokens))


# -- causality ------------------------------------------------------------------------------------
def _input_gradient(model, x, row):
    """|d output[row] / d input| summed per input frame: (T,)."""
    x = x.clone().requires_grad_(True)
    model(x)[0, row].square().sum().backward()
    return x.grad[0].abs().sum(dim=(-1, -2))


def test_causal_mixste_sees_no_future_frame():
    model = _model("mixste", {"causal": True})
    x = example_input(T, batch=1, seed=5)
    for t in range(T):
        grad = _input_gradient(model, x, t)
        assert torch.all(grad[t + 1:] == 0.0), f"output {t} depends on a later frame"
        assert grad[t] > 0


@pytest.mark.parametrize("seed", range(3))
def test_causal_hot_sees_no_future_frame(seed):
    model = _model("hot_mixste", None, seed)
    x = example_input(T, batch=1, seed=10 + seed)
    with torch.no_grad():
        _, kept = model.encode_pruned(x)
    assert kept[0, -1] == T - 1  # the newest frame is always kept
    for t in range(int(kept.min()), T):
        grad = _input_gradient(model, x, t)
        assert torch.all(grad[t + 1:] == 0.0), f"output {t} depends on a later frame"
        assert grad[: t + 1].sum() > 0


def test_causal_hot_keeps_the_newest_frame():
    for config in (None, {"preset": "tiny_tpc_only"}):
        model = _model("hot_mixste", config)
        with torch.no_grad():
            _, kept = model.encode_pruned(example_input(T, batch=16, seed=6))
        assert torch.all(kept[:, -1] == T - 1)


@pytest.mark.parametrize(("name", "config"), [
    ("mixste", {"causal": False}),
    ("hot_mixste", {"preset": "tiny_centred"}),
    ("hot_mixste", {"preset": "tiny_centred", "recovery": False}),
])
def test_centred_models_see_future_frames(name, config):
    """The same probe finds the dependence when it exists (so the causal tests can fail)."""
    model = _model(name, config)
    with seq2frame(model, True):
        grad = _input_gradient(model, example_input(T, batch=1, seed=7), 0)
    assert grad[T // 2 + 1:].sum() > 0


# -- ONNX export ----------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[v for v in VARIANTS if v[0] != "hot-centred-seq2seq"],
                ids=lambda v: v[0])
def exported(request, tmp_path_factory):
    _, name, config, s2f = request.param
    model = _model(name, config)
    path = export_onnx(model, tmp_path_factory.mktemp("hot") / f"{request.param[0]}.onnx",
                       seq2frame=s2f)
    return model, s2f, path


def test_export_parity_and_tensorrt_ops(exported):
    model, s2f, path = exported
    assert check_tensorrt_ops(path) == []
    assert getattr(model, "seq2frame", False) is False  # the export did not change the model
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for seed, batch in ((1, 1), (2, 5)):
        x = example_input(T, batch=batch, seed=seed)
        x[0, :, 16] = 0.0  # a missing joint
        with seq2frame(model, s2f), torch.no_grad():
            ref = model(x).numpy()
        out = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        assert out.shape == ref.shape == (batch, 1 if s2f else T, J, 3)
        assert np.abs(out - ref).max() <= 1e-4


def test_export_metadata(exported):
    model, s2f, path = exported
    meta = read_metadata(path)
    assert int(meta["frames"]) == T
    assert int(meta["output_frame"]) == (T - 1 if model.config.causal else T // 2)
    assert int(meta["output_frames"]) == (1 if s2f else T)


# -- FLOPs ----------------------------------------------------------------------------------------
def analytic_flops(cfg, recovered_frames: int | None) -> int:
    """2 x MACs of every Linear and attention MatMul, from the layer formulas of MixSTE / HoT.

    ``recovered_frames``: None for MixSTE, else the TRA queries (T or 1), 0 for TPC-only."""
    t, j, d, c = cfg.frames, cfg.num_joints, cfg.embed_dim, cfg.in_channels
    hidden = int(d * cfg.mlp_ratio)

    def block(tokens):  # q, kv, proj, MLP of a pre-LN block
        return tokens * (4 * d * d + 2 * d * hidden)

    def attention(groups, queries, keys):  # QK^T and AV over all heads
        return 2 * groups * queries * keys * d

    def pair(frames):  # STB over the joints of each frame, TTB over the frames of each joint
        return 2 * block(frames * j) + attention(frames, j, j) + attention(j, frames, frames)

    macs = t * j * c * d
    if recovered_frames is None:
        macs += cfg.depth * pair(t) + t * j * d * 3
    else:
        k, block_l = cfg.kept_tokens, cfg.pruning_block
        macs += block_l * pair(t) + t * t * d + (cfg.depth - block_l) * pair(k)  # + TPC distances
        if recovered_frames:
            q = recovered_frames * j
            macs += q * (2 * d * d + 2 * d * hidden) + 2 * k * j * d * d
            macs += attention(j, recovered_frames, k) + q * d * 3
        else:
            macs += k * j * d * 3
    return 2 * macs


def test_flops_match_the_layer_formulas_and_hot_saves_40_percent():
    mixste = build_lifter("mixste")
    hot = build_lifter("hot_mixste")
    tpc_only = build_lifter("hot_mixste", {"preset": "tiny_tpc_only"})
    assert window_flops(mixste) == (analytic_flops(mixste.config, None), T)
    assert window_flops(hot) == (analytic_flops(hot.config, T), T)
    assert window_flops(hot, published_only=True) == (analytic_flops(hot.config, 1), 1)
    assert window_flops(tpc_only) == (analytic_flops(tpc_only.config, 0), 1)
    per_frame = analytic_flops(hot.config, T) / analytic_flops(mixste.config, None)
    assert per_frame <= 0.6


# -- evaluation and ablation helpers --------------------------------------------------------------
def test_eval_predict_reads_one_frame_outputs():
    from pose3d_tools.evaluation import predict

    features = example_input(T, batch=6, seed=8).numpy()
    seq2seq = _model("hot_mixste", None)
    tpc_only = _model("hot_mixste", {"preset": "tiny_tpc_only"})
    with torch.no_grad():
        want = seq2seq(torch.from_numpy(features))[:, T - 1].numpy()
        want_tpc = tpc_only(torch.from_numpy(features))[:, 0].numpy()
    assert np.allclose(predict(seq2seq, features, T - 1, batch_size=4), want, atol=1e-6)
    with seq2frame(seq2seq, True):
        assert np.allclose(predict(seq2seq, features, T - 1, batch_size=4), want, atol=1e-6)
    assert np.allclose(predict(tpc_only, features, T - 1), want_tpc, atol=1e-6)


def test_ablation_settings_and_card_labels():
    from pose3d_tools.bench.hot_ablation import card_section, markdown, settings

    assert settings(1, 9, depth=4, frames=T) == [
        (1, 9), (1, 3), (1, 6), (1, 13), (1, 18), (2, 9), (3, 9)]
    assert (3, 9) not in settings(1, 9, depth=3, frames=T)  # l must stay below the depth
    row = {"gflops_per_frame": 0.0033, "gflops_per_published_frame": 0.076,
           "flops_saving_pct": 41.1, "mpjpe_mm": {"gt": 50.0, "noisy": 60.0},
           "delta_vs_reference_mm": {"gt": 0.5, "noisy": -0.2},
           "delta_se_mm": {"gt": 0.1, "noisy": 0.1}}
    report = {"model": "hot_x", "checkpoint": "hot_x.pt", "checkpoint_sha256": "ab" * 32,
              "reference": {"model": "mixste_x"}, "trained_setting": {"pruning_block": 1,
                                                                     "kept_tokens": 9},
              "subsample": "every 25th", "windows": {"gt": 10, "noisy": 10}, "protocol": "p",
              "read_frame": T - 1, "rows": [
                  {**row, "model": "mixste_x", "kind": "reference", "flops_saving_pct": 0.0},
                  {**row, "model": "hot", "kind": "hot", "pruning_block": 1, "kept_tokens": 9,
                   "trained_setting": True},
                  {**row, "model": "hot", "kind": "hot", "pruning_block": 1, "kept_tokens": 3,
                   "trained_setting": False}]}
    table = markdown(report).splitlines()
    assert "reuse one trained model" in table[0]
    assert "| HoT | 1 | 9 | *trained* |" in table[-2]
    assert "| HoT | 1 | 3 | inference-time only |" in table[-1]
    assert "+0.50 ± 0.10" in table[-1]
    assert card_section(report, "another_model") == []
    assert card_section(report, "hot_x")[0].startswith("## Ablation")
