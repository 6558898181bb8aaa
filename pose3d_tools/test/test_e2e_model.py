"""End-to-end image model: deformable attention known answers, shapes, the JDT inference
assignment, and ONNX export parity against ONNX Runtime (tiny random models)."""

import math

import numpy as np
import pytest
import torch

from pose3d_tools.models.deformable_attention import MultiScaleDeformableAttention
from pose3d_tools.models.e2e_transformer import build_e2e

torch.set_num_threads(1)

TINY = {"dim": 16, "heads": 2, "points": 2, "ffn_dim": 32, "encoder_layers": 1,
        "decoder_layers": 2, "num_queries": 20, "input_size": 64,
        "backbone": {"stem_channels": 8, "channels": [8, 8, 16, 16], "blocks": [1, 1, 1, 1]}}


def _identity_attention(heads: int, shape: tuple[int, int], offset_px=(0.0, 0.0)):
    """Deformable attention whose value/output projections are the identity and whose sampling
    offsets are the constant ``offset_px`` (pixels of the level) for every head and point."""
    attn = MultiScaleDeformableAttention(4, heads, [shape], points=2)
    with torch.no_grad():
        for lin in (attn.value_proj, attn.output_proj):
            lin.weight.copy_(torch.eye(4))
            lin.bias.zero_()
        attn.sampling_offsets.weight.zero_()
        attn.sampling_offsets.bias.copy_(torch.tensor(offset_px).repeat(heads * 2))
    return attn


def _bilinear(fmap: np.ndarray, px: float, py: float) -> np.ndarray:
    """Bilinear value of fmap (H, W, C) at pixel (px, py) (centres at integers), zero outside."""
    h, w, _ = fmap.shape
    x0, y0 = math.floor(px), math.floor(py)
    out = np.zeros(fmap.shape[-1])
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * fmap[yy, xx]
    return out


@pytest.mark.parametrize("heads", [1, 2])
def test_zero_offsets_sample_the_bilinear_value_at_the_reference(heads):
    h, w = 3, 4
    fmap = np.random.default_rng(0).normal(size=(h, w, 4))
    value = torch.tensor(fmap.reshape(1, h * w, 4), dtype=torch.float32)
    attn = _identity_attention(heads, (h, w))
    ref = torch.tensor([[[0.3, 0.6], [0.5, 0.5], [0.99, 0.01]]])  # normalised (x, y)
    query = torch.randn(1, 3, 4)  # any query: every point sits on the reference
    out = attn(query, ref, value).detach().numpy()[0]
    for k, (x, y) in enumerate(ref[0].tolist()):
        expected = _bilinear(fmap, x * w - 0.5, y * h - 0.5)  # (0.3, 0.6) -> pixel (0.7, 1.3)
        np.testing.assert_allclose(out[k], expected, atol=1e-5)


def test_offsets_are_in_pixels_of_the_level():
    h, w = 3, 4
    fmap = np.random.default_rng(1).normal(size=(h, w, 4))
    value = torch.tensor(fmap.reshape(1, h * w, 4), dtype=torch.float32)
    attn = _identity_attention(2, (h, w), offset_px=(1.0, -0.5))
    ref = torch.tensor([[[0.3, 0.6]]])
    out = attn(torch.randn(1, 1, 4), ref, value).detach().numpy()[0, 0]
    np.testing.assert_allclose(out, _bilinear(fmap, 0.7 + 1.0, 1.3 - 0.5), atol=1e-5)


def test_sampling_outside_the_map_reads_zero():
    fmap = np.random.default_rng(2).normal(size=(3, 4, 4)) + 5.0
    value = torch.tensor(fmap.reshape(1, 12, 4), dtype=torch.float32)
    attn = _identity_attention(1, (3, 4))
    ref = torch.tensor([[[-0.5, 0.5], [0.5, 1.6]]])  # 2.5 px left of the map, 1.8 px below it
    out = attn(torch.randn(1, 2, 4), ref, value).detach().numpy()
    assert np.abs(out).max() == 0.0


@pytest.mark.parametrize("variant", ["baseline", "jdt"])
def test_shapes_root_and_confidence(variant):
    torch.manual_seed(0)
    model = build_e2e({**TINY, "variant": variant}).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        joints_l, logits_l = model.forward_layers(x)
        joints, conf = model(x)
    queries = 17 if variant == "baseline" else 20
    classes = 1 if variant == "baseline" else 18
    assert joints_l.shape == (2, 3, queries, 3)
    assert logits_l.shape == (2, 3, queries, classes)
    assert joints.shape == (3, 17, 3) and conf.shape == (3, 17)
    assert torch.all(joints[:, 0] == 0)
    assert torch.all((conf >= 0) & (conf <= 1))
    assert model.config.spatial_shapes == ([(2, 2)] if variant == "baseline"
                                           else [(8, 8), (4, 4), (2, 2)])


def test_jdt_assignment_by_class_probability_alone():
    model = build_e2e({**TINY, "variant": "jdt"})
    q, j = 20, 17
    joints = torch.arange(q * 3, dtype=torch.float32).reshape(1, q, 3)
    logits = torch.zeros(1, q, j + 1)
    owner = [19 - k for k in range(j)]  # joint type k belongs to query 19 - k
    for k, qi in enumerate(owner):
        logits[0, qi, k] = 4.0
    logits[0, 0, 0] = 3.0  # a weaker candidate for joint type 0 loses to query 19
    logits[0, 1, -1] = 9.0  # a confident background query is never chosen
    chosen, conf = model.assign(joints, logits)
    np.testing.assert_array_equal(chosen[0].numpy(), joints[0, owner].numpy())
    p = math.exp(4) / (math.exp(4) + 17)  # softmax over 18 classes, one logit at 4
    np.testing.assert_allclose(conf[0].numpy(), np.full(17, p), rtol=1e-6)


@pytest.mark.parametrize("variant", ["baseline", "jdt"])
def test_onnx_export_parity_metadata_and_ops(variant, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from pose3d_ros.backends.onnx_checks import check_tensorrt_ops, read_metadata
    from pose3d_tools.export import export_e2e_onnx

    torch.manual_seed(1)
    model = build_e2e({**TINY, "variant": variant}).eval()
    with torch.no_grad():  # move the sampling points off their initial pattern
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = export_e2e_onnx(model, tmp_path / f"{variant}.onnx")
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        ref_j, ref_c = model(x)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["joints", "confidence"]
    out_j, out_c = sess.run(None, {"image": x.numpy()})  # batch 3 (exported with 2)
    assert np.abs(out_j - ref_j.numpy()).max() <= 1e-4
    assert np.abs(out_c - ref_c.numpy()).max() <= 1e-4
    assert np.all(out_j[:, 0] == 0.0)
    meta = read_metadata(path)
    assert {k: meta[k] for k in ("kind", "joint_set", "input_size", "crop_scale", "mean", "std",
                                 "variant")} == {
        "kind": "e2e", "joint_set": "h36m17", "input_size": "64", "crop_scale": "1.4",
        "mean": "0.485,0.456,0.406", "std": "0.229,0.224,0.225", "variant": variant}
    assert check_tensorrt_ops(path) == ["GridSample"]  # the only op outside the allow-list
