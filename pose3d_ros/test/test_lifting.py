"""The Lifter reads the pose its metadata names: seq2seq (one pose per window slot, read slot
``output_frame``) and seq2frame (one pose, read it), with real ONNX Runtime on hand-built models
whose answer is known (toy_lifters.py); inconsistent metadata is refused with what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from toy_lifters import centre_echo_lifter, offset_lifter

from pose3d_ros.backends import BackendError, load_backend
from pose3d_ros.stages.lifter_input import lifter_features
from pose3d_ros.stages.lifting import Lifter, LifterSettings

SETTINGS = LifterSettings(min_confidence=0.3)


def _windows(batch: int, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random people: keypoints (B, T, 17, 2) around the image centre, confidence (B, T, 17)."""
    rng = np.random.default_rng(seed)
    kp = rng.normal(0.0, 0.1, (batch, frames, 17, 2)) + rng.normal(0.0, 0.2, (batch, 1, 1, 2))
    conf = rng.uniform(0.5, 1.0, (batch, frames, 17))
    return kp, conf


def _lifter(path) -> Lifter:
    return Lifter(load_backend(path, "onnxruntime"), SETTINGS)


@pytest.mark.parametrize(
    ("frames", "output_frame", "seq2frame", "meta"),
    [
        (9, 8, False, None),  # causal seq2seq as shipped (no "output_frames")
        (9, 8, False, 9),
        (9, 4, False, 9),  # centred seq2seq
        (27, 26, True, 1),  # causal seq2frame (HoT's node export)
        (27, 13, True, 1),  # centred seq2frame
        (1, 0, False, None),  # single frame
    ],
)
def test_reads_the_slot_the_metadata_names(tmp_path, frames, output_frame, seq2frame, meta):
    path = offset_lifter(
        tmp_path / "toy.onnx", frames, output_frame, seq2frame=seq2frame, output_frames_meta=meta
    )
    lifter = _lifter(path)
    assert lifter.frames == frames and lifter.output_frame == output_frame
    assert lifter.latency_frames == frames - 1 - output_frame
    assert lifter.causal == (output_frame == frames - 1)
    kp, conf = _windows(3, frames)
    result = lifter.lift(kp, conf)
    feats, info = lifter_features(kp, conf, min_confidence=SETTINGS.min_confidence)
    # The toy answers slot k as feats[:, k] + k: only the named slot gives this.
    np.testing.assert_allclose(result.joints, feats[:, output_frame] + output_frame, atol=1e-6)
    np.testing.assert_array_equal(result.info.root_2d, info.root_2d[:, output_frame])
    assert result.joints.shape == (3, 17, 3)


def test_centre_echo_answers_the_centre_frames_features(tmp_path):
    lifter = _lifter(centre_echo_lifter(tmp_path / "echo.onnx", 27))
    assert lifter.latency_frames == 13
    kp, conf = _windows(2, 27, seed=1)
    feats, _ = lifter_features(kp, conf, min_confidence=SETTINGS.min_confidence)
    np.testing.assert_allclose(lifter.lift(kp, conf).joints, feats[:, 13], atol=1e-6)


def test_empty_batch_gives_no_poses(tmp_path):
    lifter = _lifter(offset_lifter(tmp_path / "toy.onnx", 27, 13, seq2frame=True,
                                   output_frames_meta=1))
    result = lifter.lift(np.zeros((0, 27, 17, 2)), np.zeros((0, 27, 17)))
    assert result.joints.shape == (0, 17, 3)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (dict(frames=9, output_frame=9), "'output_frame' 9 is outside the 9-frame window"),
        (dict(frames=9, output_frame=-1), "'output_frame' -1 is outside the 9-frame window"),
        (
            dict(frames=9, output_frame=8, output_frames_meta=5),
            "'output_frames' is 5: must be 1 (seq2frame) or 'frames' = 9 (seq2seq)",
        ),
        (  # seq2seq graph declared as seq2frame
            dict(frames=9, output_frame=8, output_frames_meta=1),
            "the output tensor has 9 frames but the metadata says 'output_frames' = 1",
        ),
        (  # seq2frame graph without "output_frames" (absent means the window length)
            dict(frames=9, output_frame=8, seq2frame=True),
            "the output tensor has 1 frames but the metadata says 'output_frames' = 9 (absent",
        ),
    ],
)
def test_inconsistent_metadata_is_refused_with_what_is_wrong(tmp_path, build, message):
    path = offset_lifter(tmp_path / "bad.onnx", **build)
    with pytest.raises(BackendError) as e:
        _lifter(path)
    assert message in str(e.value)
    assert "export it with `pose3d-tools export`" in str(e.value)


def test_wrong_window_length_is_refused_per_call(tmp_path):
    lifter = _lifter(offset_lifter(tmp_path / "toy.onnx", 9, 8))
    with pytest.raises(ValueError, match="takes 9-frame windows, got 8"):
        lifter.lift(*_windows(1, 8))
