"""The pipeline with the joint refinement network on and off, on real footage with real models.

messi5.jpg cut off above the knees: the 2D stage sees the upper body and hips but not the knees
and ankles (valid false). With refinement on, exactly those joints change (root-relative) and
stay unobserved; the seen ones keep their lifted 3D.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose3d_ros.assets import AssetError
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import build_settings
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.pipeline import PipelineModels, PipelineSettings, PosePipeline

LEGS = [H36M17.index(j) for j in ("r_knee", "r_ankle", "l_knee", "l_ankle")]


def run(model_dir, image, enabled: bool):
    settings = build_settings(PipelineSettings, {
        "backend": "onnxruntime", "model_dir": str(model_dir),
        "refinement.enabled": enabled, "refinement.model": "joint_refinement"})
    pipeline = PosePipeline(settings)
    h, w = image.shape[:2]
    result = pipeline.process(image, CameraModel.from_fov(w, h, 60.0), 0.0)
    poses = [p for p in result.poses if p.observed.any()]
    assert len(poses) == 1 and result.warnings == []
    return pipeline, result, poses[0]


def test_refinement_fills_only_the_joints_the_2d_stage_missed(model_dir, footage):
    image = cv2.imread(str(footage / "messi5.jpg"))
    image = np.ascontiguousarray(image[: int(0.7 * image.shape[0])])  # cut above the knees
    off_pipeline, off_result, off = run(model_dir, image, False)
    on_pipeline, on_result, on = run(model_dir, image, True)
    assert off_pipeline.refiner is None and "refinement" not in off_result.timings_ms
    assert on_pipeline.refiner is not None and "refinement" in on_result.timings_ms
    assert "refiner joint_refinement" in on_pipeline.describe()

    missing = ~on.observed
    assert set(np.nonzero(missing)[0]) == set(LEGS)  # what the cut hides
    np.testing.assert_array_equal(on.observed, off.observed)  # filled joints stay valid false
    rel_on, rel_off = on.joints_3d - on.root, off.joints_3d - off.root
    np.testing.assert_allclose(rel_on[~missing], rel_off[~missing], rtol=0, atol=1e-9)
    assert np.isfinite(on.joints_3d).all()
    assert (np.linalg.norm(rel_on[missing] - rel_off[missing], axis=-1) > 1e-6).all()
    # Still a standing body: knees below the hips, ankles below the knees (camera y down).
    y = rel_on[:, 1]
    for hip, knee, ankle in (("r_hip", "r_knee", "r_ankle"), ("l_hip", "l_knee", "l_ankle")):
        assert y[H36M17.index(hip)] < y[H36M17.index(knee)] < y[H36M17.index(ankle)]


def test_a_missing_refiner_stops_the_pipeline_naming_the_fix(model_dir):
    settings = build_settings(PipelineSettings, {
        "backend": "onnxruntime", "model_dir": str(model_dir),
        "refinement.enabled": True, "refinement.model": "no_such_refiner"})
    with pytest.raises(AssetError, match="refiner 'no_such_refiner' not found"):
        PipelineModels.load(settings)
