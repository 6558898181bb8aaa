"""Joint sets (trees, symmetry, parts) and the linear mappings between them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pose3d_ros.core.skeletons import (
    BLAZEPOSE33,
    BLAZEPOSE33_TO_COCO17,
    BLAZEPOSE33_TO_H36M17,
    COCO17,
    COCO17_TO_H36M17,
    H36M17,
    JOINT_SETS,
    MAPPINGS,
    JointSet,
    joint_set,
    mapping,
)

SETS = list(JOINT_SETS.values())
set_ids = [s.name for s in SETS]


def _path_to_root(js: JointSet, j: int) -> list[int]:
    path = [j]
    while js.parents[path[-1]] >= 0:
        path.append(js.parents[path[-1]])
        assert len(path) <= js.num_joints, f"{js.name}: cycle through {path}"
    return path


def _mirror(name: str) -> str:
    for a, b in (("l_", "r_"), ("r_", "l_")):
        if name.startswith(a):
            return b + name[2:]
    for a, b in (("_l", "_r"), ("_r", "_l")):
        if name.endswith(a):
            return name[:-2] + b
    return name


# --- joint sets -------------------------------------------------------------------------------


def test_registry_holds_the_three_sets():
    assert {name: js.num_joints for name, js in JOINT_SETS.items()} == {
        "h36m17": 17,
        "coco17": 17,
        "blazepose33": 33,
    }
    assert joint_set("coco17") is COCO17


@pytest.mark.parametrize("js", SETS, ids=set_ids)
def test_kinematic_tree_is_a_tree(js):
    assert len(js.joints) == len(set(js.joints)) == len(js.parents)
    roots = [j for j, p in enumerate(js.parents) if p == -1]
    assert roots == [js.root]
    for j in range(js.num_joints):
        assert _path_to_root(js, j)[-1] == js.root
    assert len(js.bones) == js.num_joints - 1
    assert sorted(c for _, c in js.bones) == [j for j in range(js.num_joints) if j != js.root]
    assert js.end_joints == tuple(j for j in range(js.num_joints) if not js.children[j])


def test_h36m17_topology():
    assert H36M17.root == H36M17.index("pelvis") == 0
    assert len(H36M17.bones) == 16
    assert H36M17.end_joints == (3, 6, 10, 13, 16)
    assert [H36M17.joints[j] for j in H36M17.end_joints] == [
        "r_ankle",
        "l_ankle",
        "head",
        "l_wrist",
        "r_wrist",
    ]
    # HTNet's part level: the five parts cover every joint but the root, once each.
    covered = sorted(j for part in H36M17.parts.values() for j in part)
    assert covered == list(range(1, 17))


@pytest.mark.parametrize("js", SETS, ids=set_ids)
def test_flip_permutation_swaps_left_and_right(js):
    perm = js.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(js.num_joints))  # an involution
    assert [js.joints[perm[j]] for j in range(js.num_joints)] == [_mirror(n) for n in js.joints]
    assert (perm != np.arange(js.num_joints)).sum() == 2 * len(js.symmetric)


@pytest.mark.parametrize("js", SETS, ids=set_ids)
def test_symmetric_bones_have_symmetric_parents(js):
    perm = js.flip_permutation
    for j, p in enumerate(js.parents):
        if p >= 0:
            assert js.parents[perm[j]] == perm[p], js.joints[j]


PARTS = [(js, name) for js in SETS for name in js.parts]


@pytest.mark.parametrize(
    ("js", "part"),
    [
        pytest.param(js, name, id=f"{js.name}-{name}")
        for js, name in PARTS
    ],
)
def test_parts_are_chains_from_the_root_side(js, part):
    joints = js.parts[part]
    assert len(set(joints)) == len(joints)
    for prev, j in itertools.pairwise(joints):
        assert js.parents[j] == prev, f"{js.joints[j]}'s parent is not {js.joints[prev]}"
    # ordered from the joint nearest the root
    assert js.parents[joints[0]] not in joints


def test_adjacency_and_bone_lengths():
    a = H36M17.adjacency()
    np.testing.assert_array_equal(a, a.T)
    assert a.sum() == 17 + 2 * 16
    assert H36M17.adjacency(self_loops=False).trace() == 0
    points = np.zeros((17, 3))
    points[1] = [0.0, 3.0, 4.0]  # r_hip, 5 from the pelvis
    lengths = H36M17.bone_lengths(points[None])
    assert lengths.shape == (1, 16)
    assert lengths[0, H36M17.bones.index((0, 1))] == 5.0
    assert lengths[0, H36M17.bones.index((1, 2))] == 5.0  # r_knee at the origin


def test_invalid_joint_sets_are_refused():
    with pytest.raises(ValueError, match="2 joints but 1 parents"):
        JointSet("x", ("a", "b"), (-1,), ())
    with pytest.raises(ValueError, match="exactly one root"):
        JointSet("x", ("a", "b"), (-1, -1), ())
    with pytest.raises(ValueError, match="joint 1 has invalid parent 1"):
        JointSet("x", ("a", "b"), (-1, 1), ())


def test_unknown_names_are_reported():
    with pytest.raises(KeyError, match=r"unknown joint set 'h36m'; known: \['blazepose33'"):
        joint_set("h36m")
    with pytest.raises(KeyError, match="joint 'neck' is not in joint set 'coco17'"):
        COCO17.index("neck")
    with pytest.raises(KeyError, match="no mapping from 'h36m17' to 'coco17'"):
        mapping("h36m17", "coco17")
    with pytest.raises(KeyError, match="unknown joint set 'foo'"):
        mapping("foo", "foo")


def test_wrong_joint_count_is_reported():
    with pytest.raises(ValueError, match=r"expected 17 coco17 joints, got shape \(16, 2\)"):
        COCO17_TO_H36M17(np.zeros((16, 2)))
    with pytest.raises(ValueError, match="expected 33 blazepose33 joints"):
        mapping("blazepose33", "h36m17")(np.zeros((17, 3)))


# --- mappings ---------------------------------------------------------------------------------

# A hand-made COCO pose (3D, so the z column checks the arithmetic too).
COCO_POSE = {
    "nose": (0.5, 2.0, 1.0),
    "l_eye": (1.0, 1.0, 0.0),
    "r_eye": (-1.0, 1.0, 2.0),
    "l_ear": (2.0, 1.5, 0.0),
    "r_ear": (-2.0, 1.5, 0.0),
    "l_shoulder": (2.0, 4.0, 0.0),
    "r_shoulder": (-2.0, 4.0, 4.0),
    "l_elbow": (3.0, 6.0, 0.0),
    "r_elbow": (-3.0, 6.0, 0.0),
    "l_wrist": (3.5, 8.0, 0.0),
    "r_wrist": (-3.5, 8.0, 0.0),
    "l_hip": (1.0, 10.0, 0.0),
    "r_hip": (-1.0, 10.0, 2.0),
    "l_knee": (1.0, 14.0, 0.0),
    "r_knee": (-1.0, 14.0, 0.0),
    "l_ankle": (1.0, 18.0, 0.0),
    "r_ankle": (-1.0, 18.0, 0.5),
}
# What the documented recipe gives for it.
H36M_EXPECTED = {
    "pelvis": (0.0, 10.0, 1.0),  # hip midpoint
    "thorax": (0.0, 4.0, 2.0),  # shoulder midpoint
    "spine": (0.0, 7.0, 1.5),  # halfway between pelvis and thorax
    "neck": (0.5, 2.0, 1.0),  # the nose (H36M's "neck/nose" joint)
    # eye midpoint (0, 1, 1) + 0.4 x (eye midpoint - thorax) = (0, 1, 1) + 0.4 x (0, -3, -1)
    "head": (0.0, -0.2, 0.6),
    **{n: COCO_POSE[n] for n in H36M17.joints if n in COCO_POSE},
}


def _coco_points() -> np.ndarray:
    return np.array([COCO_POSE[n] for n in COCO17.joints], dtype=float)


def _blazepose_points(rng: np.random.Generator) -> np.ndarray:
    """A BlazePose pose whose COCO-named joints are COCO_POSE and the rest random."""
    points = rng.normal(size=(33, 3)) * 10
    for name, xyz in COCO_POSE.items():
        points[BLAZEPOSE33.index(name)] = xyz
    return points


def _expected() -> np.ndarray:
    return np.array([H36M_EXPECTED[n] for n in H36M17.joints])


def test_coco17_to_h36m17_known_answer():
    points, conf = COCO17_TO_H36M17(_coco_points())
    np.testing.assert_allclose(points, _expected(), atol=1e-12)
    np.testing.assert_array_equal(conf, np.ones(17))


def test_blazepose33_to_h36m17_known_answer():
    points, conf = BLAZEPOSE33_TO_H36M17(_blazepose_points(np.random.default_rng(0)))
    np.testing.assert_allclose(points, _expected(), atol=1e-12)
    np.testing.assert_array_equal(conf, np.ones(17))


def test_2d_mapping_and_batches():
    xy = _coco_points()[:, :2]
    points, conf = COCO17_TO_H36M17(np.broadcast_to(xy, (2, 3, 17, 2)))
    assert points.shape == (2, 3, 17, 2) and conf.shape == (2, 3, 17)
    np.testing.assert_allclose(points[1, 2], _expected()[:, :2], atol=1e-12)


def test_confidence_is_the_minimum_over_the_sources_used():
    conf_in = np.ones(17)
    conf_in[COCO17.index("l_hip")] = 0.3
    conf_in[COCO17.index("l_eye")] = 0.6
    conf_in[COCO17.index("r_shoulder")] = 0.8
    conf_in[COCO17.index("l_ear")] = 0.1  # used by no H36M joint
    _, conf = COCO17_TO_H36M17(_coco_points(), conf_in)
    expected = dict.fromkeys(H36M17.joints, 1.0)
    expected.update(pelvis=0.3, l_hip=0.3, spine=0.3, thorax=0.8, r_shoulder=0.8, head=0.6)
    np.testing.assert_allclose(conf, [expected[n] for n in H36M17.joints])


def test_missing_source_makes_the_joint_missing_and_nothing_else():
    points_in = _coco_points()
    conf_in = np.full(17, 0.9)
    points_in[COCO17.index("r_eye")] = np.nan  # used by head only
    conf_in[COCO17.index("l_knee")] = 0.0  # a source reported missing by the detector
    points, conf = COCO17_TO_H36M17(points_in, conf_in)
    missing = {H36M17.index("head"), H36M17.index("l_knee")}
    assert {int(j) for j in np.flatnonzero(conf == 0)} == missing
    others = [j for j in range(17) if j not in missing]
    np.testing.assert_allclose(conf[others], 0.9)
    np.testing.assert_allclose(points[others], _expected()[others], atol=1e-12)
    assert np.isfinite(points).all()  # NaN is replaced, the confidence says it is missing


def test_nan_in_an_unused_joint_does_not_leak():
    points_in = _coco_points()
    points_in[COCO17.index("l_ear")] = np.nan
    points_in[COCO17.index("r_ear"), 1] = np.inf
    points, conf = COCO17_TO_H36M17(points_in)
    np.testing.assert_allclose(points, _expected(), atol=1e-12)
    np.testing.assert_array_equal(conf, np.ones(17))


def test_blazepose_through_coco_equals_blazepose_directly():
    rng = np.random.default_rng(1)
    points_in = rng.normal(size=(4, 33, 3))
    conf_in = rng.uniform(0.2, 1.0, size=(4, 33))
    points_in[2, BLAZEPOSE33.index("l_hip")] = np.nan
    direct = BLAZEPOSE33_TO_H36M17(points_in, conf_in)
    via_coco = COCO17_TO_H36M17(*BLAZEPOSE33_TO_COCO17(points_in, conf_in))
    np.testing.assert_allclose(via_coco[0], direct[0], atol=1e-12)
    np.testing.assert_array_equal(via_coco[1], direct[1])
    assert direct[1][2, H36M17.index("pelvis")] == 0.0
    assert direct[1][2, H36M17.index("r_hip")] > 0.0


def test_blazepose_to_coco_picks_the_same_named_joints():
    points_in = np.arange(33 * 2, dtype=float).reshape(33, 2)
    points, _ = BLAZEPOSE33_TO_COCO17(points_in)
    expected = [points_in[BLAZEPOSE33.index(n)] for n in COCO17.joints]
    np.testing.assert_array_equal(points, expected)


def test_mapping_lookup():
    assert mapping("coco17", "h36m17") is COCO17_TO_H36M17
    assert set(MAPPINGS) == {
        ("coco17", "h36m17"),
        ("blazepose33", "h36m17"),
        ("blazepose33", "coco17"),
    }
    identity = mapping("h36m17", "h36m17")
    points = np.random.default_rng(2).normal(size=(17, 3))
    np.testing.assert_array_equal(identity(points)[0], points)
    # every mapping's rows sum to 1: an affine combination, so translation carries over
    for m in MAPPINGS.values():
        np.testing.assert_allclose(m.weights.sum(axis=1), 1.0)


def test_nan_confidence_counts_as_missing():
    from pose3d_ros.core.skeletons import COCO17_TO_H36M17

    conf = np.ones(17)
    conf[11] = np.nan  # l_hip
    _, out = COCO17_TO_H36M17(np.zeros((17, 2)), conf)
    assert out[H36M17.index("pelvis")] == 0.0 and out[H36M17.index("l_hip")] == 0.0
    assert out[H36M17.index("r_hip")] == 1.0
