"""The joint refinement stage: the masking rule's neighbours, and that only unobserved joints
change (with a stand-in refiner that would change everything, and with the shipped ONNX)."""

from __future__ import annotations

import numpy as np
import pytest

from pose3d_ros.assets import AssetError, lifter_path, refiner_path
from pose3d_ros.backends import load_backend
from pose3d_ros.backends.base import Backend, BackendError, TensorSpec
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.refinement import JointRefiner, midpoint_matrix, replace_by_midpoints

J = H36M17.index


class ShiftEverything(Backend):
    """A refiner that moves every joint it is given by 1 m: whatever the stage keeps unchanged,
    it kept itself."""

    name = "shift"

    def __init__(self) -> None:
        self._inputs = [TensorSpec("joints", ("batch", 17, 3), np.float32),
                        TensorSpec("masked", ("batch", 17), np.float32)]
        self._outputs = [TensorSpec("refined", ("batch", 17, 3), np.float32)]
        self.calls: list[dict[str, np.ndarray]] = []

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append(feeds)
        return {"refined": feeds["joints"] + 1.0}


def skeletons(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, 17, 3))
    return x - x[:, :1]


def test_midpoints_follow_the_kinematic_tree():
    x = skeletons(1)[0]
    mid = midpoint_matrix() @ x
    np.testing.assert_allclose(mid[J("l_wrist")], x[J("l_elbow")])  # leaf: its parent
    np.testing.assert_allclose(mid[J("head")], x[J("neck")])
    np.testing.assert_allclose(mid[J("l_elbow")], (x[J("l_shoulder")] + x[J("l_wrist")]) / 2)
    np.testing.assert_allclose(mid[J("r_knee")], (x[J("r_hip")] + x[J("r_ankle")]) / 2)
    children = (x[J("neck")] + x[J("l_shoulder")] + x[J("r_shoulder")]) / 3
    np.testing.assert_allclose(mid[J("thorax")], (x[J("spine")] + children) / 2)
    np.testing.assert_allclose(mid[J("pelvis")], x[J("pelvis")])  # never masked
    masked = np.zeros(17, bool)
    masked[[J("l_wrist"), J("r_knee")]] = True
    y = replace_by_midpoints(x, masked)
    np.testing.assert_array_equal(y[~masked], x[~masked])
    np.testing.assert_allclose(y[J("l_wrist")], x[J("l_elbow")])


def test_only_unobserved_joints_change_and_observed_ones_are_bit_identical():
    backend = ShiftEverything()
    refiner = JointRefiner(backend)
    joints = skeletons(4)
    valid = np.ones((4, 17), bool)
    valid[0, [J("l_wrist"), J("head")]] = False
    valid[2, J("r_ankle")] = False
    valid[3, J("pelvis")] = False  # the root is 0 by definition: never refined
    out = refiner.refine(joints, valid)

    assert len(backend.calls) == 1  # everyone who needs it, in one inference
    np.testing.assert_array_equal(backend.calls[0]["masked"].sum(1), [2, 1])  # persons 0 and 2
    changed = out != joints
    expected = ~valid
    expected[3, J("pelvis")] = False
    np.testing.assert_array_equal(changed.any(-1), expected)
    np.testing.assert_array_equal(out[~expected], joints[~expected])  # bit-identical
    # What a changed joint got: the refiner's output for the midpoint-replaced input.
    np.testing.assert_allclose(out[0, J("l_wrist")], joints[0, J("l_elbow")] + 1.0, rtol=1e-6)


def test_nothing_to_fill_runs_no_inference():
    backend = ShiftEverything()
    refiner = JointRefiner(backend)
    joints = skeletons(2)
    unlifted = joints.copy()
    unlifted[1] = np.nan
    valid = np.ones((2, 17), bool)
    valid[1, 5] = False  # missing, but the person was not lifted (NaN): left alone
    out = refiner.refine(unlifted, valid)
    assert backend.calls == []
    np.testing.assert_array_equal(out[0], joints[0])
    assert np.isnan(out[1]).all()
    assert refiner.refine(np.zeros((0, 17, 3)), np.zeros((0, 17), bool)).shape == (0, 17, 3)


def test_a_model_that_is_not_a_refiner_is_refused():
    lifter = load_backend(str(lifter_path("htnet_small")), "onnxruntime")
    with pytest.raises(BackendError, match="not a joint refiner"):
        JointRefiner(lifter)


def test_missing_refiner_names_the_fix():
    fix = r"pipeline\.refinement\.enabled:=false.*pose3d-tools export"
    with pytest.raises(AssetError, match=fix):
        refiner_path("no_such_refiner")


def test_shipped_refiner_onnx_fills_only_unobserved_joints():
    backend = load_backend(str(refiner_path("joint_refinement")), "onnxruntime")
    refiner = JointRefiner(backend)
    joints = skeletons(3, seed=1)
    valid = np.ones((3, 17), bool)
    valid[:, J("r_wrist")] = False
    valid[1, J("l_knee")] = False
    out = refiner.refine(joints, valid)
    np.testing.assert_array_equal(out[valid], joints[valid])
    assert np.isfinite(out).all() and (out[~valid] != joints[~valid]).any(-1).all()
