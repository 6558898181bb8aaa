"""Joint sets (names, kinematic tree, limb parts, symmetry) and linear mappings between them.

The lifter speaks Human3.6M-17; 2D detectors speak COCO-17 or BlazePose-33. Every synthesised
joint is a fixed linear combination of detected joints, so a mapping is one matrix product and a
joint whose sources are missing is reported missing, never invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class JointSet:
    """A named skeleton topology.

    ``parents[j]`` is the parent of joint ``j`` in the kinematic tree (-1 for the root).
    ``parts`` are the limb parts of HTNet's part level, each ordered from the joint nearest the
    root to the end joint. ``symmetric`` pairs a left joint with its right counterpart.
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    symmetric: tuple[tuple[int, int], ...]
    parts: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.joints)
        if len(self.parents) != n:
            raise ValueError(f"{self.name}: {n} joints but {len(self.parents)} parents")
        if sum(p < 0 for p in self.parents) != 1:
            raise ValueError(f"{self.name}: exactly one root joint (parent -1) expected")
        for j, p in enumerate(self.parents):
            if p >= n or p == j:
                raise ValueError(f"{self.name}: joint {j} has invalid parent {p}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"joint {joint!r} is not in joint set {self.name!r}") from None

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) pairs of the kinematic tree."""
        return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints (for mirroring a pose)."""
        perm = np.arange(self.num_joints)
        for left, right in self.symmetric:
            perm[left], perm[right] = right, left
        return perm

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        return tuple(
            tuple(c for c, p in enumerate(self.parents) if p == j) for j in range(self.num_joints)
        )

    @cached_property
    def end_joints(self) -> tuple[int, ...]:
        """Leaves of the tree: the joints where lifting errors accumulate (wrists, ankles, head)."""
        return tuple(j for j in range(self.num_joints) if not self.children[j])

    def adjacency(self, self_loops: bool = True) -> np.ndarray:
        """Symmetric bone adjacency matrix (J, J) as float32."""
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for p, c in self.bones:
            a[p, c] = a[c, p] = 1.0
        if self_loops:
            a += np.eye(self.num_joints, dtype=np.float32)
        return a

    def bone_lengths(self, points: np.ndarray) -> np.ndarray:
        """Bone lengths of poses (..., J, D) -> (..., B) in the points' unit."""
        parents = np.array([p for p, _ in self.bones])
        children = np.array([c for _, c in self.bones])
        return np.linalg.norm(points[..., children, :] - points[..., parents, :], axis=-1)


H36M17 = JointSet(
    name="h36m17",
    joints=(
        "pelvis",
        "r_hip",
        "r_knee",
        "r_ankle",
        "l_hip",
        "l_knee",
        "l_ankle",
        "spine",
        "thorax",
        "neck",
        "head",
        "l_shoulder",
        "l_elbow",
        "l_wrist",
        "r_shoulder",
        "r_elbow",
        "r_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    symmetric=((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)),
    parts={
        "r_leg": (1, 2, 3),
        "l_leg": (4, 5, 6),
        "torso": (7, 8, 9, 10),
        "l_arm": (11, 12, 13),
        "r_arm": (14, 15, 16),
    },
)

COCO17 = JointSet(
    name="coco17",
    joints=(
        "nose",
        "l_eye",
        "r_eye",
        "l_ear",
        "r_ear",
        "l_shoulder",
        "r_shoulder",
        "l_elbow",
        "r_elbow",
        "l_wrist",
        "r_wrist",
        "l_hip",
        "r_hip",
        "l_knee",
        "r_knee",
        "l_ankle",
        "r_ankle",
    ),
    # COCO has no pelvis: the tree is rooted at the nose for drawing purposes only.
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    symmetric=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    parts={
        "l_arm": (5, 7, 9),
        "r_arm": (6, 8, 10),
        "l_leg": (11, 13, 15),
        "r_leg": (12, 14, 16),
    },
)

BLAZEPOSE33 = JointSet(
    name="blazepose33",
    joints=(
        "nose",
        "l_eye_inner",
        "l_eye",
        "l_eye_outer",
        "r_eye_inner",
        "r_eye",
        "r_eye_outer",
        "l_ear",
        "r_ear",
        "mouth_l",
        "mouth_r",
        "l_shoulder",
        "r_shoulder",
        "l_elbow",
        "r_elbow",
        "l_wrist",
        "r_wrist",
        "l_pinky",
        "r_pinky",
        "l_index",
        "r_index",
        "l_thumb",
        "r_thumb",
        "l_hip",
        "r_hip",
        "l_knee",
        "r_knee",
        "l_ankle",
        "r_ankle",
        "l_heel",
        "r_heel",
        "l_foot_index",
        "r_foot_index",
    ),
    parents=(
        -1,
        0,
        1,
        2,
        0,
        4,
        5,
        3,
        6,
        0,
        0,
        0,
        0,
        11,
        12,
        13,
        14,
        15,
        16,
        15,
        16,
        15,
        16,
        11,
        12,
        23,
        24,
        25,
        26,
        27,
        28,
        27,
        28,
    ),
    symmetric=(
        (1, 4),
        (2, 5),
        (3, 6),
        (7, 8),
        (9, 10),
        (11, 12),
        (13, 14),
        (15, 16),
        (17, 18),
        (19, 20),
        (21, 22),
        (23, 24),
        (25, 26),
        (27, 28),
        (29, 30),
        (31, 32),
    ),
    parts={
        "l_arm": (11, 13, 15),
        "r_arm": (12, 14, 16),
        "l_leg": (23, 25, 27),
        "r_leg": (24, 26, 28),
    },
)

JOINT_SETS: dict[str, JointSet] = {s.name: s for s in (H36M17, COCO17, BLAZEPOSE33)}


def joint_set(name: str) -> JointSet:
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise KeyError(f"unknown joint set {name!r}; known: {sorted(JOINT_SETS)}") from None


@dataclass(frozen=True)
class JointMapping:
    """A linear map from one joint set to another: ``target = weights @ source``.

    Confidence of a target joint is the minimum confidence of the source joints it is made from,
    so a synthesised joint is missing (0) as soon as one of its sources is missing.
    """

    source: JointSet
    target: JointSet
    weights: np.ndarray  # (J_target, J_source)

    def __call__(
        self, points: np.ndarray, confidence: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map points (..., J_src, D) and confidence (..., J_src) to the target joint set."""
        points = np.asarray(points, dtype=np.float64)
        if points.shape[-2] != self.source.num_joints:
            raise ValueError(
                f"expected {self.source.num_joints} {self.source.name} joints, "
                f"got shape {points.shape}"
            )
        if confidence is None:
            confidence = np.ones(points.shape[:-1])
        confidence = np.asarray(confidence, dtype=np.float64)
        # Missing sources must not leak NaN/garbage into joints that do not use them.
        clean = np.where(np.isfinite(points), points, 0.0)
        mapped = np.einsum("ts,...sd->...td", self.weights, clean)
        used = self.weights != 0  # (T, S)
        seen = np.isfinite(points).all(-1) & np.isfinite(confidence)
        conf_src = np.where(seen, confidence, 0.0)
        conf = np.where(used, conf_src[..., None, :], np.inf).min(-1)
        return mapped, conf


def _mapping(
    source: JointSet, target: JointSet, recipe: dict[str, dict[str, float]]
) -> JointMapping:
    w = np.zeros((target.num_joints, source.num_joints))
    for tgt, combo in recipe.items():
        for src, weight in combo.items():
            w[target.index(tgt), source.index(src)] += weight
    missing = [target.joints[t] for t in range(target.num_joints) if not w[t].any()]
    if missing:
        raise ValueError(f"mapping {source.name}->{target.name} leaves {missing} undefined")
    return JointMapping(source, target, w)


# Head top above the eyes: H36M's neck->head distance is about 0.4 x the thorax->eye-level
# distance, so the head top is extrapolated from the shoulder midpoint through the eye midpoint.
_HEAD_EXTRAPOLATION = 0.4


def _to_h36m_recipe(eye_l: str, eye_r: str) -> dict[str, dict[str, float]]:
    k = _HEAD_EXTRAPOLATION
    return {
        "pelvis": {"l_hip": 0.5, "r_hip": 0.5},
        "r_hip": {"r_hip": 1.0},
        "r_knee": {"r_knee": 1.0},
        "r_ankle": {"r_ankle": 1.0},
        "l_hip": {"l_hip": 1.0},
        "l_knee": {"l_knee": 1.0},
        "l_ankle": {"l_ankle": 1.0},
        # spine: halfway between pelvis and thorax
        "spine": {"l_hip": 0.25, "r_hip": 0.25, "l_shoulder": 0.25, "r_shoulder": 0.25},
        "thorax": {"l_shoulder": 0.5, "r_shoulder": 0.5},
        "neck": {"nose": 1.0},
        "head": {
            eye_l: 0.5 * (1 + k),
            eye_r: 0.5 * (1 + k),
            "l_shoulder": -0.5 * k,
            "r_shoulder": -0.5 * k,
        },
        "l_shoulder": {"l_shoulder": 1.0},
        "l_elbow": {"l_elbow": 1.0},
        "l_wrist": {"l_wrist": 1.0},
        "r_shoulder": {"r_shoulder": 1.0},
        "r_elbow": {"r_elbow": 1.0},
        "r_wrist": {"r_wrist": 1.0},
    }


COCO17_TO_H36M17 = _mapping(COCO17, H36M17, _to_h36m_recipe("l_eye", "r_eye"))
BLAZEPOSE33_TO_H36M17 = _mapping(BLAZEPOSE33, H36M17, _to_h36m_recipe("l_eye", "r_eye"))
BLAZEPOSE33_TO_COCO17 = _mapping(BLAZEPOSE33, COCO17, {name: {name: 1.0} for name in COCO17.joints})

MAPPINGS: dict[tuple[str, str], JointMapping] = {
    (m.source.name, m.target.name): m
    for m in (COCO17_TO_H36M17, BLAZEPOSE33_TO_H36M17, BLAZEPOSE33_TO_COCO17)
}


def mapping(source: str, target: str) -> JointMapping:
    """The mapping between two joint sets by name (identity when they are the same)."""
    if source == target:
        js = joint_set(source)
        return JointMapping(js, js, np.eye(js.num_joints))
    try:
        return MAPPINGS[(source, target)]
    except KeyError:
        raise KeyError(
            f"no mapping from {source!r} to {target!r}; known: {sorted(MAPPINGS)}"
        ) from None
