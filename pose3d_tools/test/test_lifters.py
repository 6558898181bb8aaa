"""Lifter contract tests: shapes, root, missing joints, which input frames an output frame
depends on, the DCT basis against scipy's, DCT low-pass, Intra-Part Constraint, parameter counts
from the layer formulas, config round trip and PoseCLR."""

import json
import math

import numpy as np
import pytest
import scipy.fft
import torch

from pose3d_ros.core.skeletons import H36M17
from pose3d_tools.models import (
    HTNetConfig,
    NanoHTNetConfig,
    PoseCLR,
    available_lifters,
    build_lifter,
    config_to_dict,
    dct_basis,
)
from pose3d_tools.models.graph import IntraPartConstraint
from pose3d_tools.models.nanohtnet import DCTLowPass

torch.set_num_threads(1)

# (registry name, config dict) for the shape/NaN tests; keep these cheap.
CASES = [
    ("htnet", None),
    ("nanohtnet", None),
    ("nanohtnet", {"frames": 81, "causal": False, "depth": 1}),
    ("nanohtnet", {"frames": 243, "depth": 1}),
    ("temporal_htnet", None),
    ("temporal_htnet", {"frames": 16, "depth": 1}),
]


def _ids(case):
    return f"{case[0]}-{json.dumps(case[1])}"


@pytest.fixture(params=CASES, ids=_ids)
def model(request):
    torch.manual_seed(0)
    name, cfg = request.param
    return build_lifter(name, cfg)


def test_registry_names():
    assert available_lifters() == ["hot_mixste", "htnet", "mixste", "nanohtnet", "temporal_htnet"]
    with pytest.raises(KeyError):
        build_lifter("nope")


def test_output_shape_and_root(model):
    t = model.config.frames
    x = torch.randn(2, t, 17, 3)
    y = model(x)
    assert y.shape == (2, t, 17, 3)
    assert y.dtype == torch.float32
    assert torch.all(y[..., 0, :] == 0.0)  # exactly zero, not approximately
    assert y[..., 1:, :].abs().sum() > 0


def test_encode_decode_is_forward(model):
    model.eval()
    x = torch.randn(2, model.config.frames, 17, 3)
    features = model.encode(x)
    assert features.shape == (2, model.config.frames, 17, model.config.embed_dim)
    assert torch.allclose(model.decode(features), model(x))


def test_missing_joints_no_nan(model):
    t = model.config.frames
    x = torch.zeros(2, t, 17, 3, requires_grad=True)
    y = model(x)
    assert torch.isfinite(y).all()
    y.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # Some joints missing in a real-looking input.
    x2 = torch.randn(2, t, 17, 3)
    x2[:, :, [3, 13, 16]] = 0.0
    assert torch.isfinite(model(x2)).all()


def test_batch_independence(model):
    model.eval()
    x = torch.randn(3, model.config.frames, 17, 3)
    together = model(x)
    alone = model(x[1:2])
    assert torch.allclose(together[1:2], alone, atol=1e-5)


def test_nanohtnet_window_checked():
    model = build_lifter("nanohtnet")
    with pytest.raises(ValueError):
        model(torch.randn(1, model.config.frames - 1, 17, 3))
    assert model.output_index == model.config.frames - 1  # causal: the newest frame
    # centred: the middle of 243 frames, 121 before it and 121 after it
    assert build_lifter("nanohtnet", {"preset": "t243_centred"}).output_index == 121


def _frame_jacobian(model, frames: int, out_frame: int) -> torch.Tensor:
    """(T,) how much output frame ``out_frame`` responds to each input frame (gradient norm)."""
    x = torch.randn(1, frames, 17, 3, requires_grad=True)
    model(x)[0, out_frame].square().sum().backward()
    return x.grad[0].flatten(1).norm(dim=1)


def test_htnet_lifts_each_frame_alone():
    """A single-frame lifter given T frames: output frame t depends on input frame t only, so
    shuffling the frames shuffles the output the same way."""
    torch.manual_seed(0)
    model = build_lifter("htnet", {"depth": 1}).eval()
    reach = _frame_jacobian(model, 5, 2)
    assert reach[2] > 0 and torch.all(reach[[0, 1, 3, 4]] == 0), reach
    x = torch.randn(2, 5, 17, 3)
    order = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(model(x[:, order]), model(x)[:, order], atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_nanohtnet_read_frame_uses_the_whole_window(causal):
    """The frame the runtime reads sees every frame of its window, the oldest included (a window
    that silently ignored part of itself would waste latency)."""
    torch.manual_seed(0)
    model = build_lifter("nanohtnet", {"depth": 1, "causal": causal}).eval()
    reach = _frame_jacobian(model, model.config.frames, model.output_index)
    assert torch.all(reach > 0), reach


def _train_temporal_mixers(model) -> None:
    """Give the (zero-initialised) temporal output projections non-zero weights, as training
    would, so the tests below see a model that really mixes frames."""
    for mixer in model.temporal:
        torch.nn.init.normal_(mixer.proj.weight, std=0.2)


def test_temporal_htnet_is_causal():
    """Output frame t depends on input frames 0..t and on no later frame; the read (last) frame
    sees the whole window."""
    torch.manual_seed(0)
    model = build_lifter("temporal_htnet", {"frames": 6, "depth": 2}).eval()
    _train_temporal_mixers(model)
    assert model.output_index == 5
    for t in (0, 3, 5):
        reach = _frame_jacobian(model, 6, t)
        assert torch.all(reach[: t + 1] > 0), (t, reach)
        assert torch.all(reach[t + 1:] == 0), (t, reach)
    with pytest.raises(ValueError):
        model(torch.randn(1, 5, 17, 3))


def test_temporal_htnet_warm_start_is_the_single_frame_model(tmp_path):
    """Loaded from an htnet checkpoint of the same width, the untrained temporal model gives the
    single-frame model's output on every frame (its temporal mixers start as the identity)."""
    from pose3d_tools.training import warm_start

    torch.manual_seed(1)
    single = build_lifter("htnet").eval()
    for p in single.parameters():  # not the initial values: a trained-looking model
        p.data.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "single.pt"
    torch.save({"name": "htnet", "config": config_to_dict(single.config),
                "state_dict": single.state_dict()}, path)
    temporal = build_lifter("temporal_htnet", {"frames": 5})
    left = warm_start(temporal, path)
    assert left and all(k.startswith("temporal.") for k in left)
    temporal.eval()
    x = torch.randn(2, 5, 17, 3)
    assert torch.allclose(temporal(x), single(x), atol=1e-6)
    # A checkpoint of another architecture has nothing to give: refused, not silently ignored.
    other = tmp_path / "other.pt"
    torch.save({"name": "x", "config": {}, "state_dict": {"w": torch.zeros(3)}}, other)
    with pytest.raises(ValueError, match="no weight matches"):
        warm_start(build_lifter("temporal_htnet"), other)


# ---------------------------------------------------------------- DCT low-pass


@pytest.mark.parametrize("frames,k", [(27, 9), (81, 9), (243, 9), (16, 5)])
def test_dct_basis_orthonormal(frames, k):
    b = dct_basis(frames, k).double()
    assert b.shape == (frames, k)
    assert torch.allclose(b.t() @ b, torch.eye(k, dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("frames,k", [(27, 9), (81, 9), (16, 16)])
def test_dct_basis_is_scipys_orthonormal_dct_ii(frames, k):
    """Known answer from an independent implementation: column k of the basis is row k of the
    orthonormal DCT-II matrix (scipy.fft.dct of the identity)."""
    reference = scipy.fft.dct(np.eye(frames), type=2, norm="ortho", axis=0)  # (T, T), c = M @ x
    np.testing.assert_allclose(dct_basis(frames, k).double().numpy(), reference[:k].T, atol=1e-6)
    # and by hand: the DC column is flat at 1/sqrt(T), column 1 is a half cosine, odd about the
    # window's centre
    b = dct_basis(frames, k).double()
    assert torch.allclose(b[:, 0], torch.full((frames,), frames**-0.5, dtype=torch.float64))
    assert torch.allclose(b[:, 1], -b.flip(0)[:, 1], atol=1e-7)


@pytest.mark.parametrize("frames,k", [(27, 9), (243, 9)])
def test_dct_low_pass(frames, k):
    lp = DCTLowPass(frames, k)
    t = torch.arange(frames, dtype=torch.float64) + 0.5

    def cosine(freq):
        return torch.cos(math.pi * t * freq / frames)

    g = torch.Generator().manual_seed(0)
    amps = torch.randn(k, generator=g, dtype=torch.float64)
    low = sum(a * cosine(i) for i, a in enumerate(amps)).float()  # (T,)
    signal = low.reshape(1, frames, 1, 1).repeat(2, 1, 17, 4)  # (B, T, J, D)
    assert torch.allclose(lp(signal), signal, atol=1e-5)

    high = cosine(k + 3).float().reshape(1, frames, 1, 1).repeat(2, 1, 17, 4)
    assert lp(high).abs().max() < 1e-5
    # mixed: only the low part survives
    assert torch.allclose(lp(signal + high), signal, atol=1e-5)
    # analysis gives K tokens
    assert lp.analyse(signal).shape == (2, k, 17, 4)


# ---------------------------------------------------------------- Intra-Part Constraint


def _ipc_input(dim=8, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(17, n, dim, generator=g)  # joint-major (J, N, D)


def test_intra_part_constraint_parent_relative():
    torch.manual_seed(0)
    ipc = IntraPartConstraint(8, 16, H36M17).eval()
    h = _ipc_input()
    rel = ipc.reference_relative(h)  # (P, L, N, D)
    parts = list(H36M17.parts.values())
    k = parts.index(H36M17.parts["l_arm"])  # (11, 12, 13): shoulder, elbow, wrist
    assert torch.allclose(rel[k, 0], h[11])
    assert torch.allclose(rel[k, 2], h[13] - h[11])  # wrist relative to the part's reference
    assert torch.allclose(rel[k, 3], torch.zeros_like(h[0]))  # padding (arm has 3 joints)


def test_intra_part_constraint_uses_parent_joint():
    torch.manual_seed(0)
    ipc = IntraPartConstraint(8, 16, H36M17).eval()
    h = _ipc_input()
    base = ipc(h)
    delta = torch.linspace(-1.0, 1.0, 8)  # not a constant shift (LayerNorm would remove that)
    wrist, elbow, shoulder, r_ankle = 13, 12, 11, 3
    for parent in (elbow, shoulder):  # the wrist's parent and the part reference
        h2 = h.clone()
        h2[parent] += delta
        assert (ipc(h2)[wrist] - base[wrist]).abs().max() > 1e-4, parent
    # a joint outside the wrist's part does not reach it at the part level
    h3 = h.clone()
    h3[r_ankle] += delta
    assert torch.allclose(ipc(h3)[wrist], base[wrist])
    # the parent term sees the wrist relative to its kinematic parent (the elbow)
    bone = ipc.parent_relative @ h.reshape(17, -1)
    assert torch.allclose(bone.reshape(17, 3, 8)[wrist], h[wrist] - h[elbow])


# ---------------------------------------------------------------- sizes and configs
# Parameter counts from the layer formulas, not from the code: Linear(i, o) has i*o weights plus
# o biases, LayerNorm(d) 2d, a learnable (r, c) table r*c. Each term is (numbers, tensors), so
# the state_dict layout a checkpoint depends on is pinned by the architecture, not by a reading
# of its own output.
J = 17
PART_SLOTS = max(len(p) for p in H36M17.parts.values())  # torso: spine, thorax, neck, head = 4


def _linear(i: int, o: int, bias: bool = True) -> tuple[int, int]:
    return i * o + (o if bias else 0), 2 if bias else 1


def _norm(d: int) -> tuple[int, int]:
    return 2 * d, 2


def _table(rows: int, cols: int) -> tuple[int, int]:
    return rows * cols, 1


def _sum(*terms: tuple[int, int]) -> tuple[int, int]:
    return sum(t[0] for t in terms), sum(t[1] for t in terms)


def _mlp(d: int, hidden: int) -> tuple[int, int]:
    return _sum(_linear(d, hidden), _linear(hidden, d))


def _graph_conv(i: int, o: int) -> tuple[int, int]:
    """Learnable (J, J) adjacency offset, self weights with bias, neighbour weights without."""
    return _sum(_table(J, J), _linear(i, o), _linear(i, o, bias=False))


def _mixer(dim: int, mlp: int, gcn: int) -> tuple[int, int]:
    """One Hierarchical Mixer: channels split in three levels of dim/3 each, then a channel MLP."""
    d = dim // 3
    joint = _sum(_norm(d), _graph_conv(d, gcn), _graph_conv(gcn, d), _norm(d))
    part = _sum(  # part token from PART_SLOTS reference-relative features, + parent/bone terms
        _norm(d), _linear(d * PART_SLOTS, d), _norm(d), _mlp(d, max(d, mlp // 3)),
        _linear(d, d), _linear(d, d, bias=False),
    )
    body = _sum(_norm(d), _linear(d, 3 * d), _linear(d, d))  # attention: qkv + projection
    return _sum(joint, part, body, _norm(dim), _mlp(dim, mlp))


def _htnet_size(c: HTNetConfig) -> tuple[int, int]:
    embed = _sum(_linear(c.in_channels, c.embed_dim), _table(J, c.embed_dim))
    blocks = [_mixer(c.embed_dim, c.mlp_hidden, c.gcn_hidden)] * c.depth
    head = _sum(_norm(c.embed_dim), _linear(c.embed_dim, 3))
    return _sum(embed, *blocks, _norm(c.embed_dim), head)


def _nanohtnet_size(c: NanoHTNetConfig) -> tuple[int, int]:
    d, k = c.embed_dim, c.dct_coefficients
    embed = _sum(_linear(c.in_channels, d), _table(J, d))
    freq = _table(k, d)  # learnable code per DCT coefficient; the window length T adds nothing
    temporal = _sum(_norm(d), _mlp(k, c.temporal_hidden) if c.temporal_hidden else _linear(k, k))
    blocks = [_sum(_mixer(d, c.mlp_hidden, c.gcn_hidden), temporal)] * c.depth
    head = _sum(_norm(d), _linear(d, 3))
    return _sum(embed, freq, *blocks, _norm(d), _norm(d), head)


def _size(model) -> tuple[int, int]:
    sd = model.state_dict()
    return sum(v.numel() for v in sd.values()), len(sd)


@pytest.mark.parametrize(
    "name,config",
    [
        ("htnet", {}),
        ("htnet", {"preset": "paper"}),
        ("htnet", {"depth": 1, "embed_dim": 48, "mlp_hidden": 30, "num_heads": 1}),
        ("nanohtnet", {}),
        ("nanohtnet", {"preset": "t243"}),
        ("nanohtnet", {"preset": "paper"}),
    ],
    ids=json.dumps,
)
def test_state_dict_matches_the_architecture(name, config):
    """Checkpoints store (name, config, state_dict): the weights must be exactly the layers the
    architecture describes (a changed layer breaks every trained checkpoint)."""
    model = build_lifter(name, config)
    expected = (_htnet_size if name == "htnet" else _nanohtnet_size)(model.config)
    assert _size(model) == expected
    assert expected[0] == sum(p.numel() for p in model.parameters())  # no weights in buffers


def test_sizes_match_the_documented_budgets():
    """The config docstrings promise 0.29 M (HTNet small), 2.2 M (HTNet paper layout), 0.15 M
    (NanoHTNet) and 1.5 M (NanoHTNet paper layout) parameters."""
    for config, documented in (
        (HTNetConfig(), 0.29e6),
        (HTNetConfig.preset("paper"), 2.2e6),
    ):
        assert _htnet_size(config)[0] == pytest.approx(documented, rel=0.05)
    for config, documented in (
        (NanoHTNetConfig(), 0.15e6),
        (NanoHTNetConfig.preset("paper"), 1.5e6),
    ):
        assert _nanohtnet_size(config)[0] == pytest.approx(documented, rel=0.05)
    # ETST: the window length adds no parameters (the DCT basis is a fixed buffer)
    assert _nanohtnet_size(NanoHTNetConfig.preset("t243")) == _nanohtnet_size(NanoHTNetConfig())


@pytest.mark.parametrize("name,cls", [("htnet", HTNetConfig), ("nanohtnet", NanoHTNetConfig)])
def test_config_round_trip(name, cls):
    model = build_lifter(name, {"depth": 2})
    d = json.loads(json.dumps(config_to_dict(model.config)))
    assert cls.from_dict(d) == model.config
    rebuilt = build_lifter(name, d)
    rebuilt.load_state_dict(model.state_dict())
    assert d["num_joints"] == 17 and d["in_channels"] == 3
    with pytest.raises(ValueError):
        build_lifter(name, {"no_such_field": 1})
    assert isinstance(cls.preset("paper"), cls)


def test_nanohtnet_config_fields():
    cfg = NanoHTNetConfig()
    assert (cfg.frames, cfg.dct_coefficients, cfg.causal) == (27, 9, True)
    for preset, frames in (("t81", 81), ("t243", 243)):
        assert NanoHTNetConfig.preset(preset).frames == frames
    with pytest.raises(ValueError):
        NanoHTNetConfig(frames=5, dct_coefficients=9)


# ---------------------------------------------------------------- PoseCLR


def _project(points, yaw):
    """Rotate poses (B, J, 3) about the vertical axis, 4 m ahead, project to (x, y, conf=1)."""
    c, s = math.cos(yaw), math.sin(yaw)
    rot = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    cam = points @ rot.t() + torch.tensor([0.0, 0.0, 4.0])
    xy = cam[..., :2] / cam[..., 2:]
    xy = (xy - xy[:, :1]) * 4.0  # root-relative, roughly unit scale
    return torch.cat([xy, torch.ones_like(xy[..., :1])], -1)


def test_poseclr_aligned_lower_than_shuffled_and_grads():
    torch.manual_seed(0)
    lifter = build_lifter("htnet", {"depth": 1})
    clr = PoseCLR(lifter, projection_dim=32, temperature=0.1)
    g = torch.Generator().manual_seed(1)
    poses = 0.5 * torch.randn(16, 17, 3, generator=g)
    poses[:, 0] = 0.0
    view_a = _project(poses, -0.15).unsqueeze(1)  # (B, 1, J, 3)
    view_b = _project(poses, 0.15).unsqueeze(1)
    aligned = clr(view_a, view_b)
    shuffled = clr(view_a, view_b[torch.roll(torch.arange(16), 1)])
    assert torch.isfinite(aligned) and aligned < shuffled
    aligned.backward()
    grads = [p.grad for p in lifter.parameters() if p.requires_grad]
    assert all(gr is not None for gr in grads[:3])
    assert sum(gr.abs().sum() for gr in grads if gr is not None) > 0
    assert lifter.embed.proj.weight.grad.abs().sum() > 0  # reaches the joint embedding


def test_poseclr_temporal_encoder():
    torch.manual_seed(0)
    lifter = build_lifter("nanohtnet", {"depth": 1})
    clr = PoseCLR(lifter, projection_dim=16)
    x = torch.randn(4, 27, 17, 3)
    loss = clr(x, x + 0.01 * torch.randn_like(x))
    loss.backward()
    assert torch.isfinite(loss)
    assert lifter.embed.proj.weight.grad.abs().sum() > 0
