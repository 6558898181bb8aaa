"""``estimator: e2e`` through the whole pipeline and ``pose3d run`` on real footage, with a
hand-built E2E model that answers one fixed pose in crop axes (test/e2e_models.py).

So the 3D each person gets is known exactly up to the angle of their crop: the pipeline's
root-relative pose must be that pose turned about the optical axis (z unchanged), by about 0 for
an upright player and about +90 deg for a photo turned a quarter clockwise (head to the right);
and a model answering the lifter's pose must be placed exactly where the lifter's is.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from e2e_models import constant_pose_model
from known_poses import SKELETON_H36M17
from test_pipeline import BASKETBALL_DEPTH_M, camera_for

from pose3d_ros.assets import AssetError, estimator_path
from pose3d_ros.cli import main
from pose3d_ros.core.parameters import build_settings
from pose3d_ros.core.poses import PersonPose
from pose3d_ros.pipeline import PipelineSettings, PosePipeline
from pose3d_ros.stages.crops import camera_to_crop_axes

CONFIDENCE = 0.9  # what the test model answers for every joint


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    return constant_pose_model(tmp_path_factory.mktemp("e2e") / "constant.onnx", SKELETON_H36M17)


def e2e_pipeline(model_dir, model) -> PosePipeline:
    settings = build_settings(
        PipelineSettings,
        {
            "backend": "onnxruntime",
            "model_dir": str(model_dir),
            "estimator": "e2e",
            "e2e.model": str(model),
        },
    )
    return PosePipeline(settings)


def turn_about_optical_axis(rel: np.ndarray, observed: np.ndarray) -> float:
    """The angle a (radians) with rel = SKELETON turned by a about z (x towards y); asserts
    that rel is exactly such a turn (z unchanged, shape unchanged) at the ``observed`` joints
    (the joint refinement stage, on by default, replaces the others' 3D)."""
    assert observed.sum() >= 6, observed
    p, rel = SKELETON_H36M17[observed], rel[observed]
    np.testing.assert_allclose(rel[:, 2], p[:, 2], atol=1e-6)
    a = math.atan2(
        float(np.sum(p[:, 0] * rel[:, 1] - p[:, 1] * rel[:, 0])),
        float(np.sum(p[:, 0] * rel[:, 0] + p[:, 1] * rel[:, 1])),
    )
    c, s = math.cos(a), math.sin(a)
    turned = np.column_stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]])
    np.testing.assert_allclose(rel[:, :2], turned, atol=1e-6)
    return a


def root_relative(pose: PersonPose) -> np.ndarray:
    return pose.joints_3d - pose.root


def left_player(result, image) -> PersonPose:
    left = [p for p in result.poses if p.observed.any() and p.bbox[2] < image.shape[1] / 2]
    assert len(left) == 1, [(p.track_id, p.bbox) for p in result.poses]
    return left[0]


def test_the_image_models_pose_is_placed_as_the_lifters(
    model_dir, footage, constant_model, tmp_path
):
    """basketball1's upright player. First the fixed pose shows the angle of his crop (small:
    upright) and that the 2D stage's valid flags are kept; then a model answering the lifter's
    own pose for him (turned into that crop's axes) must be placed exactly where the lifter's
    is -- same 2D, same placement -- which is where his height in pixels says."""
    image = cv2.imread(str(footage / "basketball1.png"))
    camera = camera_for(image)
    pipeline = e2e_pipeline(model_dir, constant_model)
    assert pipeline.lifter is None and "e2e e2e_constant_test" in pipeline.describe()
    pose = left_player(pipeline.process(image, camera, 0.0), image)
    angle = turn_about_optical_axis(root_relative(pose), pose.observed)
    assert abs(math.degrees(angle)) < 20, math.degrees(angle)  # the 2D crop of an upright man
    np.testing.assert_allclose(pose.confidence_3d, CONFIDENCE, atol=1e-6)
    assert (pose.observed == (pose.confidence > 0)).all()  # valid flags are the 2D stage's

    settings = build_settings(
        PipelineSettings,
        {"backend": "onnxruntime", "model_dir": str(model_dir), "lifter.model": "htnet_small"},
    )
    lifted = left_player(PosePipeline(settings).process(image, camera, 0.0), image)
    assert lifted.confidence_3d is None
    answer = camera_to_crop_axes(root_relative(lifted), angle)
    model = constant_pose_model(tmp_path / "lifters_answer.onnx", answer)
    pose = left_player(e2e_pipeline(model_dir, model).process(image, camera, 0.0), image)
    seen = pose.observed
    np.testing.assert_allclose(root_relative(pose)[seen], root_relative(lifted)[seen], atol=1e-6)
    assert pose.placement == lifted.placement == "size_prior"
    np.testing.assert_allclose(pose.root, lifted.root, atol=1e-4)  # float32 model output
    assert BASKETBALL_DEPTH_M[0] < pose.root[2] < BASKETBALL_DEPTH_M[1], pose.root


def test_a_lying_person_is_cropped_upright_and_turned_back(model_dir, footage, constant_model):
    """messi5 turned a quarter clockwise: the 2D stage's crop is turned by about +90 deg, so the
    model's upright pose comes back turned by that much (its head towards image right)."""
    image = cv2.rotate(cv2.imread(str(footage / "messi5.jpg")), cv2.ROTATE_90_CLOCKWISE)
    pipeline = e2e_pipeline(model_dir, constant_model)
    result = pipeline.process(image, camera_for(image), 0.0)
    people = [p for p in result.poses if np.isfinite(p.joints_3d).all()]
    assert len(people) == 1, [(p.track_id, p.bbox) for p in result.poses]
    angle = turn_about_optical_axis(root_relative(people[0]), people[0].observed)
    assert abs(math.degrees(angle) - 90) < 30, math.degrees(angle)
    head = root_relative(people[0])[10]
    assert head[0] > 0.5 and abs(head[1]) < 0.4  # head top to the right of the pelvis


def test_pose3d_run_with_the_e2e_estimator(model_dir, footage, constant_model, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "run", "--input", str(footage / "vtest.avi"), "--out", str(out), "--max-frames", "3",
            "--estimator", "e2e", "--e2e-model", str(constant_model),
        ]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3 and summary["people_detections"] >= 3, summary
    assert "e2e e2e_constant_test" in summary["pipeline"]
    assert summary["settings"]["estimator"] == "e2e"
    records = [json.loads(line) for line in (out / "skeletons.jsonl").read_text().splitlines()]
    placed = [p for r in records for p in r["people"] if p["placement"]]
    assert len(placed) >= 3
    for person in placed:
        rel = np.array(person["joints_3d_m"], float) - np.array(person["root_m"], float)
        seen = np.array(person["observed"])  # the refinement stage replaces the others
        # written with 4 decimals
        np.testing.assert_allclose(rel[seen, 2], SKELETON_H36M17[seen, 2], atol=2e-4)
        assert person["confidence_3d"] == [CONFIDENCE] * 17


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"joint_set": "coco17"}, "metadata joint_set is 'coco17'"),
        ({"crop_scale": "0.5"}, "metadata crop_scale 0.5 is outside 1.0..3.0"),
    ],
)
def test_pose3d_run_refuses_an_off_contract_model(tmp_path, capsys, metadata, words):
    model = constant_pose_model(tmp_path / "bad.onnx", SKELETON_H36M17, metadata=metadata)
    image = tmp_path / "none.png"  # never opened: the models load first
    rc = main(
        ["run", "--input", str(image), "--out", str(tmp_path / "o"), "--estimator", "e2e",
         "--e2e-model", str(model)]
    )  # fmt: skip
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(model) in err[0] and words in err[0], err
    assert "pose3d-tools export" in err[0]


def test_a_missing_e2e_model_says_how_to_get_one(tmp_path, capsys):
    rc = main(
        ["run", "--input", str(tmp_path / "none.png"), "--out", str(tmp_path / "o"),
         "--estimator", "e2e", "--e2e-model", "no_such_e2e"]
    )  # fmt: skip
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "E2E model 'no_such_e2e' not found" in err[0], err
    assert "pose3d-tools export --checkpoint" in err[0] and "pipeline.estimator: lifter" in err[0]


def test_an_e2e_model_in_the_model_dir_is_found_by_name(tmp_path):
    own = constant_pose_model(tmp_path / "estimators" / "my_e2e.onnx", SKELETON_H36M17)
    assert estimator_path("my_e2e", tmp_path) == own
    assert estimator_path(str(own), tmp_path) == own
    with pytest.raises(AssetError, match="does not exist"):
        estimator_path(str(tmp_path / "gone.onnx"), tmp_path)


def test_people_the_model_cannot_crop_are_skipped_with_a_warning(
    model_dir, footage, constant_model
):
    """vtest's small people with a joint or two unseen, under e2e.min_joints 17: each gets one
    warning naming its track and no 3D (not placed); everyone fully seen is still estimated."""
    settings = build_settings(
        PipelineSettings,
        {
            "backend": "onnxruntime",
            "model_dir": str(model_dir),
            "estimator": "e2e",
            "e2e.model": str(constant_model),
            "e2e.min_joints": 17,
        },
    )
    pipeline = PosePipeline(settings)
    capture = cv2.VideoCapture(str(footage / "vtest.avi"))
    image = capture.read()[1]
    capture.release()
    result = pipeline.process(image, camera_for(image), 0.0)
    seen = [p for p in result.poses if p.observed.any()]
    partial = [p for p in seen if not p.observed.all()]
    whole = [p for p in seen if p.observed.all()]
    assert partial and whole, [(p.track_id, int(p.observed.sum())) for p in seen]
    for p in partial:
        n = int(p.observed.sum())
        text = f"e2e too few joints for a crop: track {p.track_id} skipped ({n} observed"
        assert sum(w.startswith(text) for w in result.warnings) == 1, result.warnings
        assert np.isnan(p.joints_3d).all() and p.placement == ""
    for p in whole:
        assert p.placement == "size_prior"
        turn_about_optical_axis(root_relative(p), p.observed)
