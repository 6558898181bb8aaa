"""The whole pipeline (detector -> BlazePose -> tracker -> lifter -> placement) on real footage,
with the real ONNX Runtime models built by `make setup`. No ROS.

There is no 3D ground truth for this footage, so these tests check what can be checked without
one: that people are found, that the 3D skeletons are finite, metric and body-shaped and placed
at a plausible distance for the assumed camera, that ids persist, and that odd input (a blank
image, time going backwards) is handled. They are not an accuracy test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose3d_ros.assets import find_model_dir, lifter_path, verify_models
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import build_settings
from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.pipeline import PipelineSettings, PosePipeline

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
FOV_DEG = 60.0  # what `pose3d run` assumes without a camera file

# Bone lengths (metres) of any adult in Human3.6M-17: generous bounds around the dataset's
# ~0.13 (hip), 0.45 (thigh, shin), 0.25 (spine), 0.28 (upper arm), 0.25 (forearm), 0.11 (neck).
BONE_RANGE_M = (0.03, 0.75)
LIMB_BONES = {  # (parent, child) -> (min, max) metres for the long bones
    ("r_hip", "r_knee"): (0.2, 0.7),
    ("r_knee", "r_ankle"): (0.2, 0.7),
    ("l_hip", "l_knee"): (0.2, 0.7),
    ("l_knee", "l_ankle"): (0.2, 0.7),
    ("l_shoulder", "l_elbow"): (0.15, 0.5),
    ("r_shoulder", "r_elbow"): (0.15, 0.5),
}


@pytest.fixture(scope="module")
def model_dir() -> Path:
    d = find_model_dir()
    try:
        verify_models(d, ("person_detector", "blazepose_full"))
    except Exception as e:
        pytest.fail(f"models not built in {d} ({e}): run `make setup`")
    for lifter in ("htnet_small", "nanohtnet_t27_causal"):
        lifter_path(lifter, d)  # the shipped exports; raises if missing
    return d


@pytest.fixture
def pipeline(model_dir) -> PosePipeline:
    return PosePipeline(PipelineSettings(backend="onnxruntime", model_dir=str(model_dir)))


def camera_for(image: np.ndarray) -> CameraModel:
    h, w = image.shape[:2]
    return CameraModel.from_fov(w, h, FOV_DEG)


def assert_finite_where_observed(pose: PersonPose) -> None:
    seen = pose.observed
    assert seen.any()
    assert np.isfinite(pose.keypoints_2d[seen]).all()
    assert np.isfinite(pose.confidence).all()
    assert (pose.confidence[seen] > 0).all()
    assert np.isfinite(pose.joints_3d[seen]).all(), pose.joints_3d
    assert np.isfinite(pose.root).all()
    assert np.isfinite(pose.root_covariance).all()
    assert np.isfinite(pose.root_velocity).all()


@pytest.mark.parametrize("lifter", ["htnet_small", "nanohtnet_t27_causal"])
def test_messi_still_image_gives_one_metric_skeleton(lifter, model_dir, footage):
    """Both shipped lifters; the temporal one pads its window at the start of a track."""
    settings = build_settings(
        PipelineSettings,
        {"backend": "onnxruntime", "model_dir": str(model_dir), "lifter.model": lifter},
    )
    pipeline = PosePipeline(settings)
    assert pipeline.lifter.frames == (27 if lifter.startswith("nano") else 1)
    image = cv2.imread(str(footage / "messi5.jpg"))
    result = pipeline.process(image, camera_for(image), 0.0)

    assert result.warnings == []
    observed = [p for p in result.poses if p.observed.any()]
    assert len(observed) == 1, [(p.track_id, p.state) for p in result.poses]
    pose = observed[0]
    assert pose.joint_set == H36M17.name
    assert pose.state != TrackState.COASTING
    assert pose.observed.sum() >= 14  # the whole player is in view
    assert_finite_where_observed(pose)

    # The player's joints span ~210 px vertically (a lunge, about 1 m high) in a 548 px wide
    # image; at the assumed 60 deg FOV (f ~ 475 px) that is ~2.3 m away (measured: 2.2 m with
    # the shipped models). The bounds are the plausible range for that assumption, not a
    # ground truth (there is none for this photo).
    root = pose.root
    assert 2.0 < root[2] < 30.0, root
    # The root is the pelvis, and it projects near the 2D pelvis.
    np.testing.assert_allclose(pose.joints_3d[H36M17.root], root)
    u = camera_for(image).fx * root[0] / root[2] + camera_for(image).cx
    v = camera_for(image).fy * root[1] / root[2] + camera_for(image).cy
    assert np.hypot(u - pose.keypoints_2d[0, 0], v - pose.keypoints_2d[0, 1]) < 30.0

    bones = H36M17.bone_lengths(pose.joints_3d)
    assert np.all((bones > BONE_RANGE_M[0]) & (bones < BONE_RANGE_M[1])), bones
    for (a, b), (lo, hi) in LIMB_BONES.items():
        length = np.linalg.norm(pose.joints_3d[H36M17.index(a)] - pose.joints_3d[H36M17.index(b)])
        assert lo < length < hi, (a, b, length)
    # A whole body in metres, not pixels or normalised units.
    extent = np.ptp(pose.joints_3d, axis=0).max()
    assert 0.8 < extent < 2.5, extent

    # Camera optical frame: y points down, so the head is above (smaller y than) the pelvis,
    # and the thorax is too.
    y = pose.joints_3d[:, 1]
    assert y[H36M17.index("head")] < y[H36M17.index("pelvis")] - 0.2
    assert y[H36M17.index("thorax")] < y[H36M17.index("pelvis")]
    # The 2D skeleton agrees: head above the pelvis in the image.
    assert pose.keypoints_2d[H36M17.index("head"), 1] < pose.keypoints_2d[0, 1]


def test_ids_persist_across_vtest_frames(pipeline, footage):
    cap = cv2.VideoCapture(str(footage / "vtest.avi"))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    seen_in: dict[int, list[int]] = {}  # frames where the id's person was observed
    reported_in: dict[int, list[int]] = {}  # ... or reported at all (coasting: briefly hidden)
    boxes: dict[tuple[int, int], np.ndarray] = {}
    camera = CameraModel.from_fov(
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), FOV_DEG
    )
    for k in range(15):
        ok, frame = cap.read()
        assert ok
        result = pipeline.process(frame, camera, k / fps)
        assert result.warnings == [] or all("not placed" in w for w in result.warnings)
        ids = [p.track_id for p in result.poses]
        assert len(ids) == len(set(ids)), f"frame {k}: an id given twice: {ids}"
        for p in result.poses:
            reported_in.setdefault(p.track_id, []).append(k)
            if p.observed.any():
                assert_finite_where_observed(p)
                seen_in.setdefault(p.track_id, []).append(k)
                boxes[p.track_id, k] = p.bbox
    cap.release()

    # Several pedestrians walk through the whole clip: at least two of them keep one id all
    # along (reported in 14 of the 15 frames, observed in 10: a walker may be hidden briefly).
    persistent = [i for i in seen_in if len(reported_in[i]) >= 14 and len(seen_in[i]) >= 10]
    assert len(persistent) >= 2, f"observed {seen_in}, reported {reported_in}"
    # ...and an id stays on one person: between consecutive frames (0.1 s) a walker's box
    # centre moves by much less than the box's height.
    for track_id in persistent:
        for k in seen_in[track_id]:
            if (track_id, k - 1) in boxes:
                a, b = boxes[track_id, k - 1], boxes[track_id, k]
                shift = np.hypot(*(0.5 * (a[:2] + a[2:]) - 0.5 * (b[:2] + b[2:])))
                assert shift < 0.5 * (a[3] - a[1]), (track_id, k, a, b)


def test_blank_image_gives_no_people(pipeline):
    image = np.zeros((480, 640, 3), np.uint8)
    for k in range(3):
        result = pipeline.process(image, camera_for(image), k / 30.0)
        assert result.poses == []
        assert result.warnings == []
        assert result.timings_ms["total"] > 0


def test_time_going_backwards_warns_and_goes_on(pipeline, footage):
    image = cv2.imread(str(footage / "messi5.jpg"))
    camera = camera_for(image)
    first = [pipeline.process(image, camera, 10.0 + k / 30.0) for k in range(3)]
    assert all(r.warnings == [] for r in first)
    old_id = first[-1].poses[0].track_id

    back = pipeline.process(image, camera, 5.0)
    assert any("backwards" in w for w in back.warnings), back.warnings
    observed = [p for p in back.poses if p.observed.any()]
    assert len(observed) == 1  # processed as a fresh start, not dropped
    assert observed[0].track_id != old_id  # ids are never reused
    assert_finite_where_observed(observed[0])

    after = pipeline.process(image, camera, 5.0 + 1 / 30.0)
    assert after.warnings == []
    assert [p.track_id for p in after.poses if p.observed.any()] == [observed[0].track_id]


def test_pose3d_run_on_messi_writes_one_line_and_a_summary(tmp_path, model_dir, footage):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            str(VENV_BIN / "pose3d"),
            "run",
            "--input",
            str(footage / "messi5.jpg"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (out / "skeletons.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["frame"] == 0
    people = [p for p in record["people"] if any(p["observed"])]
    assert len(people) == 1
    root = people[0]["root_m"]
    assert None not in root and 2.0 < root[2] < 30.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1
    assert summary["tracks"] == 1
    assert "ASSUMED 60 deg" in summary["camera"]
    assert set(summary["stages_ms_mean"]) >= {"keypoints", "lifting", "placement", "total"}


def test_offline_run_never_imports_torch(tmp_path, model_dir, footage):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pose3d_ros import run_offline\n"
        f"s = run_offline.run({str(footage / 'messi5.jpg')!r}, Path({str(tmp_path)!r}))\n"
        "assert s['frames'] == 1, s\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TORCH False" in proc.stdout, proc.stdout
