"""The runtime reads what the exporter wrote (issue 13): untrained tiny MixSTE / HoT exports,
seq2seq and seq2frame, causal and centred, run by pose3d_ros's Lifter (ONNX Runtime) give the
PyTorch model's pose of the frame the metadata names, and the latency the node and `pose3d run`
decide on."""

import numpy as np
import pytest
import torch

from pose3d_ros.backends import load_backend
from pose3d_ros.stages.lifter_input import lifter_features
from pose3d_ros.stages.lifting import Lifter, LifterSettings
from pose3d_tools.export import export_onnx
from pose3d_tools.flops import seq2frame
from pose3d_tools.models import build_lifter

pytest.importorskip("onnxruntime")
torch.set_num_threads(1)

T = 27


@pytest.mark.parametrize(
    ("name", "config", "s2f", "latency"),
    [
        ("hot_mixste", None, True, 0),  # the node's HoT: causal seq2frame
        ("hot_mixste", {"preset": "tiny_centred"}, True, T // 2),  # pose3d run's HoT
        ("mixste", {"causal": False}, False, T // 2),  # seq2seq, centred
    ],
    ids=["hot-causal-seq2frame", "hot-centred-seq2frame", "mixste-centred-seq2seq"],
)
def test_runtime_lifter_reads_the_exported_frame(tmp_path, name, config, s2f, latency):
    torch.manual_seed(0)
    model = build_lifter(name, config).eval()
    torch.nn.init.normal_(model.temporal_pos, std=0.5)  # frames distinguishable
    path = export_onnx(model, tmp_path / "lifter.onnx", seq2frame=s2f)
    lifter = Lifter(load_backend(path, "onnxruntime"), LifterSettings(min_confidence=0.3))
    assert lifter.frames == T and lifter.latency_frames == latency

    rng = np.random.default_rng(1)
    kp = rng.normal(0.0, 0.1, (3, T, 17, 2)) + rng.normal(0.0, 0.3, (3, 1, 1, 2))
    conf = rng.uniform(0.4, 1.0, (3, T, 17))
    conf[0, :, 16] = 0.0  # a missing joint
    got = lifter.lift(kp, conf).joints
    feats, _ = lifter_features(kp, conf, min_confidence=0.3)
    with seq2frame(model, s2f), torch.no_grad():
        ref = model(torch.from_numpy(feats)).numpy()
    row = 0 if s2f else T - 1 - latency
    assert ref.shape[1] == (1 if s2f else T)
    np.testing.assert_allclose(got, ref[:, row], atol=1e-4)
