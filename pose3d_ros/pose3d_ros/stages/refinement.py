"""Joint refinement: fill the 3D joints the 2D stage did not observe, through an exported refiner.

A lifter still outputs a position for a joint whose 2D keypoint was missing (a guess from the
rest of the body). The joint refinement network (the BERT-style skeleton completion of
"End-to-end 3D Human Pose Estimation with Transformer", tools: ``pose3d_tools.models.refinement``)
was trained to restore masked joints of a skeleton from the others. Here the lifted skeleton of
every person of a frame goes through it in one batch and only the joints with ``valid`` false
are replaced: observed joints leave this stage bit-identical.

The masking rule is shared with training, so it lives here (numpy, no torch): a masked joint is
replaced by the midpoint of its parent and child in the kinematic tree (the mean of its children
when it has several, e.g. the thorax), by its parent when it is a leaf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose3d_ros.backends import Backend, BackendError
from pose3d_ros.core.parameters import setting
from pose3d_ros.core.skeletons import H36M17, JointSet


@dataclass(frozen=True)
class RefinementSettings:
    enabled: bool = setting(
        True,
        "Fill the 3D joints the 2D stage did not observe (valid false) with the joint "
        "refinement network instead of keeping the lifter's guess (they stay valid false). "
        "Behind htnet_small on Human3.6M S9/S11 it cut the error of missing joints from 181 to "
        "165 mm (noisy 2D) and 91 to 74 mm (one joint removed); behind temporal_htnet_t9 only "
        "the latter (96 to 75 mm; noisy 2D: 127 vs 129 mm, no gain). pose3d_ros/refiners/"
        "<model>.md",
        read_only=True,
    )
    model: str = setting(
        "joint_refinement",
        "Joint refinement network: a shipped one (pose3d_ros/refiners/) or a path to an .onnx",
        read_only=True,
    )


def neighbour_matrices(joint_set: JointSet = H36M17) -> tuple[np.ndarray, np.ndarray]:
    """Parent and child matrices (J, J): ``P @ x`` is each joint's parent (0 for the root),
    ``C @ x`` the mean of its children (0 for a leaf). float32."""
    j = joint_set.num_joints
    parent = np.zeros((j, j), np.float32)
    child = np.zeros((j, j), np.float32)
    for k, p in enumerate(joint_set.parents):
        if p >= 0:
            parent[k, p] = 1.0
        kids = joint_set.children[k]
        for c in kids:
            child[k, c] = 1.0 / len(kids)
    return parent, child


def midpoint_matrix(joint_set: JointSet = H36M17) -> np.ndarray:
    """(J, J) matrix whose row j gives the replacement of a masked joint j: the midpoint of its
    parent and (mean) child, its parent for a leaf, itself for the root (never masked)."""
    parent, child = neighbour_matrices(joint_set)
    mid = 0.5 * (parent + child)
    for k in range(joint_set.num_joints):
        if not joint_set.children[k]:
            mid[k] = parent[k]
        if joint_set.parents[k] < 0:
            mid[k] = 0.0
            mid[k, k] = 1.0
    return mid


def replace_by_midpoints(joints: np.ndarray, masked: np.ndarray,
                         joint_set: JointSet = H36M17) -> np.ndarray:
    """Joints (..., J, 3) with the ``masked`` (..., J) ones replaced by their neighbours'
    midpoint, computed from the unreplaced skeleton."""
    mid = np.einsum("jk,...kc->...jc", midpoint_matrix(joint_set), joints)
    return np.where(masked[..., None], mid, joints)


class JointRefiner:
    """Runs an exported refiner on all people of a frame at once (one inference per frame).

    The ONNX graph takes ``joints`` (B, 17, 3) root-relative metres (masked joints already
    replaced by their midpoints) and ``masked`` (B, 17) float 0/1, and returns the completed
    skeleton ``refined`` (B, 17, 3) in the same frame and unit.
    """

    def __init__(self, backend: Backend, joint_set: JointSet = H36M17) -> None:
        names = {i.name for i in backend.inputs}
        if names != {"joints", "masked"} or backend.outputs[0].name != "refined":
            raise BackendError(
                f"{backend.describe()}: not a joint refiner (inputs {sorted(names)}); export it "
                "with `pose3d-tools export --checkpoint .../joint_refinement.pt`"
            )
        self.backend = backend
        self.joint_set = joint_set
        self.name = backend.metadata.get("model", "joint_refinement")

    def refine(self, joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Lifted joints (B, 17, 3) (root-relative metres) and per-joint ``valid`` (B, 17) ->
        joints where only the invalid ones are replaced by the refiner's estimate. People with
        no invalid joint or with non-finite joints (an unlifted person) come back untouched."""
        joints = np.asarray(joints)
        valid = np.asarray(valid, dtype=bool)
        missing = ~valid
        missing[..., self.joint_set.root] = False  # the root is 0 by definition
        todo = missing.any(-1) & np.isfinite(joints).all((-1, -2))
        if not todo.any():
            return joints
        x = replace_by_midpoints(joints[todo], missing[todo], self.joint_set)
        out = self.backend.run({
            "joints": np.ascontiguousarray(x, dtype=np.float32),
            "masked": np.ascontiguousarray(missing[todo], dtype=np.float32),
        })["refined"]
        result = joints.copy()
        filled = np.where(missing[todo][..., None], np.asarray(out, dtype=joints.dtype),
                          joints[todo])
        result[todo] = filled
        return result
