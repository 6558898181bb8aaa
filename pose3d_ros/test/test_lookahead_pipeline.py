"""A centred lifter on recorded video (lookahead_pipeline.py): every frame's poses are lifted
from the window centred on that frame, including the frames at the end of a track and of the
input, and the delay line stays bounded. Real 2D models and ONNX Runtime on real footage
(messi5.jpg moved a few pixels per frame, then blank frames: the person's track ends
mid-video); the lifter is hand-built (toy_lifters.centre_echo_lifter): it answers its centre
slot's own features, so the test sees exactly which frame was at the centre."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from toy_lifters import centre_echo_lifter, echo_lifter

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import with_values
from pose3d_ros.core.poses import TrackState
from pose3d_ros.lookahead_pipeline import LookaheadPipeline, delay_frames_for
from pose3d_ros.pipeline import PipelineSettings, PosePipeline
from pose3d_ros.stages.lifter_input import lifter_features

FRAMES = 9  # window T: look-ahead L = 4
L = FRAMES // 2
SEEN = 14  # frames with the person; then BLANK frames without anyone
BLANK = 6
PERIOD = 1.0 / 30.0


def _frames(footage, step_px: int = 3) -> list[np.ndarray]:
    image = cv2.imread(str(footage / "messi5.jpg"))
    h, w = image.shape[:2]
    moved = [
        cv2.warpAffine(image, np.float32([[1, 0, step_px * k], [0, 1, k]]), (w, h),
                       borderMode=cv2.BORDER_REPLICATE)
        for k in range(SEEN)
    ]  # fmt: skip
    return moved + [np.full_like(image, 128) for _ in range(BLANK)]


@pytest.fixture
def centred(model_dir, tmp_path) -> PosePipeline:
    lifter = centre_echo_lifter(tmp_path / "echo_t9.onnx", FRAMES)
    settings = with_values(
        PipelineSettings(backend="onnxruntime", model_dir=str(model_dir)),
        {
            "lifter.model": str(lifter),
            "smoothing.enabled": False,  # windows hold the published 2D itself
            "windows.frame_period_s": PERIOD,
        },
    )
    return PosePipeline(settings, allow_lookahead=True)


def test_each_frame_is_lifted_from_the_window_centred_on_it(centred, footage):
    pipeline = centred
    lifts = []  # (keypoints window, confidence window, joints) per finished frame, in order
    lift = pipeline.lifter.lift

    def spy(kp, conf):
        result = lift(kp, conf)
        lifts.append((kp.copy(), conf.copy(), result.joints.copy()))
        return result

    pipeline.lifter.lift = spy
    runner = LookaheadPipeline(pipeline)
    assert runner.delay_frames == L
    images = _frames(footage)
    h, w = images[0].shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)
    out = []
    for k, image in enumerate(images):
        out += runner.push(image, camera, k * PERIOD, tag=k)
        assert runner.waiting <= L  # the delay line: never more than L frames held back
        assert pipeline.windows.waiting <= L * max(len(pipeline.windows), 1)
    out += runner.flush()
    assert runner.waiting == 0 and pipeline.windows.waiting == 0

    assert [tag for tag, _ in out] == list(range(SEEN + BLANK))  # every frame, in order
    assert len(lifts) == len(out)  # one lift per finished frame
    seen = [[p for p in r.poses if p.state != TrackState.COASTING] for _, r in out]
    assert all(len(people) == 1 for people in seen[:SEEN]), [len(p) for p in seen]
    assert not any(seen[SEEN:])
    assert len({p[0].track_id for p in seen[:SEEN]}) == 1
    # Each frame's own 2D, as the window holds it: undistorted, missing joints NaN.
    own = []
    for people in seen[:SEEN]:
        norm = camera.undistort_pixels(people[0].keypoints_2d)
        conf = people[0].confidence
        own.append((np.where((conf > 0)[:, None], norm, np.nan), np.where(conf > 0, conf, 0.0)))

    for t in range(SEEN):
        kp, conf, joints = lifts[t]
        assert kp.shape == (1, FRAMES, 17, 2)
        # The window is frames t-L .. t+L, padded with the first frame at the start of the
        # track and with its last frame (SEEN - 1) where the track ended.
        for slot in range(FRAMES):
            source = min(max(t - L + slot, 0), SEEN - 1)
            np.testing.assert_allclose(kp[0, slot], own[source][0], rtol=0, atol=1e-12,
                                       err_msg=f"frame {t} slot {slot}")
            np.testing.assert_allclose(conf[0, slot], own[source][1], rtol=0, atol=1e-12)
        # The lifter's answer (its centre slot's features) is frame t's own 2D.
        expected, _ = lifter_features(own[t][0], own[t][1], min_confidence=0.3)
        np.testing.assert_allclose(joints[0], expected, atol=1e-6, err_msg=f"frame {t}")
    # The frames differ enough that a window off by one frame would have failed above.
    assert min(np.nanmax(np.abs(own[t + 1][0] - own[t][0])) for t in range(SEEN - 1)) > 1e-3


def test_causal_pipeline_refuses_a_centred_lifter_and_process_refuses_lookahead(centred):
    from pose3d_ros.core.parameters import SettingError

    with pytest.raises(SettingError, match=r"is a centred lifter \(latency 4 frames.*`pose3d run`"):
        PosePipeline(centred.settings, models=centred.models)
    with pytest.raises(RuntimeError, match="LookaheadPipeline"):
        centred.process(np.zeros((64, 64, 3), np.uint8), CameraModel.from_fov(64, 64, 60.0), 0.0)


def test_delay_covers_the_look_ahead_in_slots():
    assert delay_frames_for(13, 1 / 30, 1 / 30) == 13
    assert delay_frames_for(13, 1 / 25, 1 / 30) == 13  # slower frames: >= 1 slot each
    assert delay_frames_for(13, 1 / 60, 1 / 30) == 26  # a slot every 2 frames
    assert delay_frames_for(13, 1 / 60, 0.0) == 13  # grid inferred from the frames
    assert delay_frames_for(0, 1 / 30, 1 / 30) == 0


def test_pose3d_run_with_a_centred_lifter_writes_every_frame_in_order(footage, tmp_path):
    """`pose3d run --lifter <centred .onnx>` on an image folder: all frames written, in order,
    the held-back ones flushed at the end, each record with its own frame's person."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "frames"
    folder.mkdir()
    moved = _frames(footage, step_px=12)  # more than BlazePose's pelvis jitter (<= 6 px here)
    images = moved[: SEEN - 4] + moved[SEEN : SEEN + 2]
    for k, image in enumerate(images):
        cv2.imwrite(str(folder / f"{k:03d}.png"), image)
    lifter = centre_echo_lifter(tmp_path / "echo_t9.onnx", FRAMES)
    out = tmp_path / "run"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pose3d"), "run", "--input", str(folder),
         "--out", str(out), "--lifter", str(lifter)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in (out / "skeletons.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(images)))
    assert [r["stamp"] for r in records] == [round(k / 30.0, 6) for k in range(len(images))]
    people = [[p for p in r["people"] if any(p["observed"])] for r in records]
    assert all(len(p) == 1 for p in people[: SEEN - 4]) and not any(people[SEEN - 4 :])
    # The image moves 12 px right per frame: each record's 2D is its own frame's.
    pelvis_x = [p[0]["keypoints_2d"][0][0] for p in people[: SEEN - 4]]
    np.testing.assert_allclose(np.diff(pelvis_x), 12.0, atol=6.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == len(images) and summary["lookahead_frames"] == L
    assert "latency 4 frames" in summary["pipeline"]


def test_causal_seq2frame_lifter_keeps_the_frame_by_frame_path(model_dir, footage, tmp_path):
    """A causal seq2frame export (as HoT's for the node) through process(): each frame lifted
    at once from the window ending at it (the newest slot is the frame's own 2D)."""
    lifter = echo_lifter(tmp_path / "newest_t9.onnx", FRAMES, FRAMES - 1)
    settings = with_values(
        PipelineSettings(backend="onnxruntime", model_dir=str(model_dir)),
        {"lifter.model": str(lifter), "smoothing.enabled": False},
    )
    pipeline = PosePipeline(settings)  # no look-ahead needed: the node can take it
    assert pipeline.windows.lookahead == 0
    lifted = []
    lift = pipeline.lifter.lift
    pipeline.lifter.lift = lambda kp, conf: lifted.append(lift(kp, conf)) or lifted[-1]
    images = _frames(footage)[:4]
    h, w = images[0].shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)
    for k, image in enumerate(images):
        people = pipeline.process(image, camera, k * PERIOD).poses
        assert len(people) == 1 and len(lifted) == k + 1
        conf = people[0].confidence
        norm = np.where((conf > 0)[:, None], camera.undistort_pixels(people[0].keypoints_2d), 0)
        expected, _ = lifter_features(norm, conf, min_confidence=0.3)
        np.testing.assert_allclose(lifted[k].joints[0], expected, atol=1e-6)
