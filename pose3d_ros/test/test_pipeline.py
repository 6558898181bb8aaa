"""The whole pipeline (detector -> BlazePose -> tracker -> lifter -> placement) on real footage,
with the real ONNX Runtime models built by `make setup`. No ROS.

There is no 3D ground truth for this footage, so the expected values come from the images
themselves and from published anthropometry: the depth a person's size in pixels implies for the
assumed camera (pinhole relation, adult stature range), bone lengths around Human3.6M S1's, and
pelvis positions read by hand off the video to check that an id stays on one person. Also: odd
input (a blank image, time going backwards) is handled. They are not an accuracy test.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import build_settings
from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.pipeline import PipelineSettings, PosePipeline

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
FOV_DEG = 60.0  # what `pose3d run` assumes without a camera file
LIFTERS = ("htnet_small", "nanohtnet_t27_causal", "temporal_htnet_t9")
WINDOW_FRAMES = {"htnet_small": 1, "nanohtnet_t27_causal": 27, "temporal_htnet_t9": 9}

# -- where a person should be: the pinhole relation depth = f * length / pixel length ------------
# Adult stature, about the 5th-percentile woman to the 95th-percentile man.
STATURE_M = (1.50, 1.95)
# The pipeline's root is the pelvis, which need not lie in the plane of the measured points
# (body depth, a turned torso): that much slack on either side of a band.
PELVIS_OFF_PLANE_M = 0.1


def focal_px(width: int) -> float:
    """Focal length (px) of the assumed camera: FOV_DEG across the image width."""
    return 0.5 * width / math.tan(math.radians(FOV_DEG) / 2)


def depth_band(
    width: int, pixels: tuple[float, float], stature_fraction: float, max_tilt_deg: float = 0.0
) -> tuple[float, float]:
    """Plausible pelvis depth (m) of a person whose body part of ``stature_fraction`` x stature
    spans ``pixels`` (shortest, longest reading) in the image. A part tilted out of the image
    plane by up to ``max_tilt_deg`` looks shorter by cos(tilt), which lowers the near end."""
    f = focal_px(width)
    near = f * stature_fraction * STATURE_M[0] * math.cos(math.radians(max_tilt_deg)) / pixels[1]
    far = f * stature_fraction * STATURE_M[1] / pixels[0]
    return near - PELVIS_OFF_PLANE_M, far + PELVIS_OFF_PLANE_M


def chain_px(points: list[tuple[float, float]]) -> float:
    return float(sum(np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(points)))


# messi5.jpg (548 x 342), read by hand off the photo: the player lunges, so his height in the
# image is not his stature; the chain crown -> left hip -> left knee -> left ankle along his
# stretched left leg is. Segment heights as fractions of stature (Drillis & Contini, as
# tabulated in Winter, Biomechanics and Motor Control of Human Movement): crown 1.0, hip 0.530,
# knee 0.285, ankle 0.039, so the chain is 0.961 x stature. His torso leans towards the camera
# and the leg points partly away from it: up to 30 deg out of the image plane.
MESSI_CHAIN = [(248, 63), (290, 240), (357, 257), (415, 272)]  # pixels, about 311 px long
MESSI_DEPTH_M = depth_band(
    548, (chain_px(MESSI_CHAIN) - 10, chain_px(MESSI_CHAIN) + 10), 0.961, max_tilt_deg=30
)  # (1.75, 3.06)
# basketball1/2.png (640 x 480): the player on the left stands upright facing the camera, crown
# at y ~ 83 px and soles at y ~ 470 px (the near foot at the image border), both +-4 px.
BASKETBALL_DEPTH_M = depth_band(640, (470 - 83 - 8, 470 - 83 + 8), 1.0)  # (2.00, 2.95)

# -- what a person's bones should measure ---------------------------------------------------------
# Human3.6M S1's bone lengths (m), one per H36M17 joint but the pelvis, i.e. the bone to it from
# its parent (identical for every frame of S1; published with the dataset's skeleton, and the
# only bone lengths the lifters were trained on): pelvis-hip, thigh, shin (right, then left),
# pelvis-spine, spine-thorax, thorax-neck, neck-head, thorax-shoulder, upper arm, forearm (left,
# then right).
S1_BONES_M = np.array(
    [0.1329, 0.4429, 0.4542, 0.1329, 0.4429, 0.4542, 0.2335, 0.2571,
     0.1211, 0.1150, 0.1510, 0.2789, 0.2517, 0.1510, 0.2789, 0.2517]
)
# Training varied the body (global scale 0.88-1.12, each bone +-6 %), so a lifter's bones lie
# within S1 x [0.88 x 0.94, 1.12 x 1.06] = [0.83, 1.19] when it is right; on top of that comes its
# error: the mean error of its worst joint with detector-like 2D, from the model cards
# (pose3d_ros/lifters/*.md: wrists, 112 mm and 136 mm).
# The temporal lifter on a still image sees one frame repeated 27 times (never seen in training):
# on messi5 its right forearm is 0.097 m from the SSDLite box crop and 0.072 m from the BlazePose
# detector's ROI, whose wrist lies 5 px further along the forearm (both on the wrist by eye), so
# it gets 20 mm more than its mean worst-joint error.
BONE_SCALE = (0.83, 1.19)
# A still image repeated through temporal_htnet_t9's window has the same 2D error in every frame:
# its worst joint with the card's correlated-jitter input (noisy_corr, 84 mm) is the figure.
LIFTER_ERROR_M = {"htnet_small": 0.112, "nanohtnet_t27_causal": 0.136 + 0.020,
                  "temporal_htnet_t9": 0.084}


def assert_adult_bones(pose: PersonPose, lifter: str) -> None:
    bones = H36M17.bone_lengths(pose.joints_3d)
    lo = BONE_SCALE[0] * S1_BONES_M - LIFTER_ERROR_M[lifter]
    hi = BONE_SCALE[1] * S1_BONES_M + LIFTER_ERROR_M[lifter]
    names = [H36M17.joints[c] for _, c in H36M17.bones]
    bad = {n: round(b, 3) for n, b, a, z in zip(names, bones, lo, hi, strict=True)
           if not a < b < z}
    assert not bad, f"bones (named by their end joint) outside S1's range: {bad}"


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


@pytest.mark.parametrize("lifter", LIFTERS)
def test_messi_still_image_gives_one_metric_skeleton(lifter, model_dir, footage):
    """Every shipped lifter; the temporal ones pad their window at the start of a track."""
    settings = build_settings(
        PipelineSettings,
        {"backend": "onnxruntime", "model_dir": str(model_dir), "lifter.model": lifter},
    )
    pipeline = PosePipeline(settings)
    assert pipeline.lifter.frames == WINDOW_FRAMES[lifter]
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

    root = pose.root
    assert MESSI_DEPTH_M[0] < root[2] < MESSI_DEPTH_M[1], (root, MESSI_DEPTH_M)
    # The root is the pelvis, and it projects near the 2D pelvis.
    np.testing.assert_allclose(pose.joints_3d[H36M17.root], root)
    u = camera_for(image).fx * root[0] / root[2] + camera_for(image).cx
    v = camera_for(image).fy * root[1] / root[2] + camera_for(image).cy
    assert np.hypot(u - pose.keypoints_2d[0, 0], v - pose.keypoints_2d[0, 1]) < 30.0

    assert_adult_bones(pose, lifter)
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


@pytest.mark.parametrize("lifter", LIFTERS)
@pytest.mark.parametrize("name", ["basketball1.png", "basketball2.png"])
def test_upright_player_stands_where_his_height_says(name, lifter, model_dir, footage):
    """The left player of the basketball photos: whole body in view, upright, facing the camera."""
    settings = build_settings(
        PipelineSettings,
        {"backend": "onnxruntime", "model_dir": str(model_dir), "lifter.model": lifter},
    )
    image = cv2.imread(str(footage / name))
    result = PosePipeline(settings).process(image, camera_for(image), 0.0)
    left = [p for p in result.poses if p.observed.any() and p.bbox[2] < image.shape[1] / 2]
    assert len(left) == 1, [(p.track_id, p.bbox) for p in result.poses]
    pose = left[0]
    assert pose.observed.all()
    assert BASKETBALL_DEPTH_M[0] < pose.root[2] < BASKETBALL_DEPTH_M[1], (pose.root, lifter)
    assert_adult_bones(pose, lifter)


# Pelvis positions (pixels) read by hand off vtest.avi frames 100 and 114 (the first and last
# frame of the test below), of everyone near the people who are tracked all along. The blonde
# woman walks beside the man in the red top, 25 px apart; the man in black walks in front of the
# man in jeans around frame 105.
VTEST_PELVIS = {
    "man in jeans, standing": ((392, 216), (383, 217)),
    "man in black, walking right": ((362, 237), (473, 247)),
    "man in red top, walking right": ((505, 186), (551, 172)),
    "blonde woman beside him": ((530, 187), (577, 172)),
    "man in dark jacket, walking right": ((603, 195), (643, 176)),
}
WALK_MAX_MPS = 2.0  # a brisk walk; nobody runs in this clip
PERSON_HEIGHT_M = 1.7  # to turn a box height (px) into a pixels-per-metre scale
KEYPOINT_NOISE_PX = 4.0  # the 2D pelvis of a 70 px person wobbles by 1-2 px per frame each way


def _person_at(pelvis: np.ndarray, frame: int, box_height: float) -> str | None:
    """The hand-labelled person (frame 0 or 1: first or last) whose pelvis is nearest, if
    within a quarter of the person's height."""
    dist = {n: np.hypot(*(pelvis - np.array(p[frame]))) for n, p in VTEST_PELVIS.items()}
    name = min(dist, key=dist.get)
    return name if dist[name] < 0.25 * box_height else None


def test_ids_stay_on_their_person_across_vtest_frames(pipeline, footage):
    cap = cv2.VideoCapture(str(footage / "vtest.avi"))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    n_frames = 15
    reported_in: dict[int, list[int]] = {}  # frames where an id was reported (maybe coasting)
    seen: dict[int, dict[int, tuple[np.ndarray, float]]] = {}  # id -> frame -> (pelvis, box h)
    camera = CameraModel.from_fov(
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), FOV_DEG
    )
    for k in range(n_frames):
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
                if p.observed[H36M17.root]:
                    seen.setdefault(p.track_id, {})[k] = (p.keypoints_2d[0], p.bbox[3] - p.bbox[1])
    cap.release()

    # Ids followed all along: reported in every frame, and observed in the first, the last and
    # at least 10 of the 15 (a walker may be hidden briefly and coast).
    persistent = [
        i for i, s in seen.items()
        if len(reported_in[i]) == n_frames and {0, n_frames - 1} <= set(s) and len(s) >= 10
    ]
    people = {}
    for i in persistent:
        (first, h0), (last, h1) = seen[i][0], seen[i][n_frames - 1]
        start, end = _person_at(first, 0, h0), _person_at(last, 1, h1)
        # Identity: the person an id starts on is the person it ends on...
        assert start is not None and start == end, (i, start, end, first, last)
        people[i] = start
        # ...and it never jumps in between: from one observation to the next its pelvis moves
        # no further than a brisk walk (plus keypoint noise), less than the 25 px to a neighbour.
        frames = sorted(seen[i])
        for a, b in itertools.pairwise(frames):
            (pa, ha), (pb, _) = seen[i][a], seen[i][b]
            px_per_m = ha / PERSON_HEIGHT_M
            limit = WALK_MAX_MPS * (b - a) / fps * px_per_m + KEYPOINT_NOISE_PX
            assert np.hypot(*(pb - pa)) < limit, (i, people[i], a, b, pa, pb, limit)
    # At least the standing man and two walkers keep one id each, and no two ids share a person.
    assert len(people) >= 3, (people, {i: sorted(s) for i, s in seen.items()}, reported_in)
    assert len(set(people.values())) == len(people), people


def test_blank_image_gives_no_people(pipeline):
    image = np.zeros((480, 640, 3), np.uint8)
    for k in range(3):
        result = pipeline.process(image, camera_for(image), k / 30.0)
        assert result.poses == []
        assert result.warnings == []


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
    assert None not in root and MESSI_DEPTH_M[0] < root[2] < MESSI_DEPTH_M[1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1
    assert summary["tracks"] == 1
    assert "ASSUMED 60 deg" in summary["camera"]
    assert set(summary["stages_ms_mean"]) >= {"keypoints", "lifting", "placement", "total"}
