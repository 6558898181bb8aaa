"""The body as capsules around a Human3.6M-17 skeleton, and rays meeting them.

One home for the body's shape: the synthetic depth images (``synthetic_depth``) and the rendered
training images (``render``) both use these capsules and this ray-capsule intersection.

A capsule is a segment ``a``-``b`` (metres) and a radius: the points within ``r`` of the segment.
:data:`BODY_CAPSULES` are the radii of an average adult (stature about 1.70 m): thigh 0.07 m, hip
girdle 0.09 m, chest and abdomen 0.12 m, shoulder girdle 0.06 m, upper arm 0.045 m, ... The
rendered body adds :data:`EXTRA_PARTS` (flanks from the shoulders to the hips so the torso is
wider than deep) and hands and feet beyond the end joints and a nose (:func:`body_parts`), which the
skeleton has no joints for.

Rays start at the camera centre with directions ``(x, y, 1)`` in the camera optical frame, so
the ray parameter of a hit is its optical depth z (metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose3d_ros.core.skeletons import H36M17

_J = H36M17.index
REFERENCE_STATURE_M = 1.70  # the stature the radii below are for

# (joint a, joint b, radius m): an average adult as capsules.
BODY_CAPSULES = (
    ("r_hip", "l_hip", 0.09),  # hip girdle: the front of the pelvis and thighs
    ("pelvis", "spine", 0.12),  # abdomen
    ("spine", "thorax", 0.12),  # chest
    ("l_shoulder", "r_shoulder", 0.06),  # shoulder girdle
    ("thorax", "neck", 0.05),
    ("neck", "head", 0.09),
    ("r_hip", "r_knee", 0.07),
    ("l_hip", "l_knee", 0.07),
    ("r_knee", "r_ankle", 0.05),
    ("l_knee", "l_ankle", 0.05),
    ("l_shoulder", "l_elbow", 0.045),
    ("r_shoulder", "r_elbow", 0.045),
    ("l_elbow", "l_wrist", 0.035),
    ("r_elbow", "r_wrist", 0.035),
)
CAPSULE_A = np.array([_J(a) for a, _, _ in BODY_CAPSULES])
CAPSULE_B = np.array([_J(b) for _, b, _ in BODY_CAPSULES])
CAPSULE_R = np.array([r for _, _, r in BODY_CAPSULES])

# Rendered body only: flanks (shoulder to hip), so the torso's outline is a trapezoid.
EXTRA_PARTS = (
    ("l_shoulder", "l_hip", 0.07),
    ("r_shoulder", "r_hip", 0.07),
)

# Clothing regions of the rendered body.
SKIN, HAIR, SHIRT, TROUSERS, SHOES = range(5)
REGION_NAMES = ("skin", "hair", "shirt", "trousers", "shoes")
HEAD_PART = 5  # index of ("neck", "head") in the part list: skin, hair on its top and back
CHEST_PART = 2  # index of ("spine", "thorax")
CHEST_DROP = 0.07  # metres (at 1.70 m) the rendered chest's top is below the thorax joint
_REGIONS = (TROUSERS, SHIRT, SHIRT, SHIRT, SKIN, SKIN, TROUSERS, TROUSERS, TROUSERS, TROUSERS,
            SHIRT, SHIRT, SHIRT, SHIRT, SHIRT, SHIRT)
SHIN_PARTS = (8, 9)  # skin with shorts
FOREARM_PARTS = (12, 13)  # skin with short sleeves
# Hands (from the wrists along the forearms) and feet (from the ankles forwards and down).
HAND_LENGTH, HAND_RADIUS = 0.085, 0.04
FOOT_LENGTH, FOOT_DROP, FOOT_RADIUS = 0.14, 0.04, 0.045
NOSE_RADIUS = 0.02
# Trunk parts (scaled by the build's girth; the rest are limbs): hips, abdomen, chest, shoulder
# girdle, neck, head, flanks.
_TRUNK = np.array([True] * 6 + [False] * 8 + [True] * 2)


@dataclass
class BodyParts:
    """Capsules of one rendered body, camera optical frame: ``a``, ``b`` (K, 3) metres, ``r``
    (K,) metres, ``region`` (K,) clothing region; ``forward`` and ``up`` (3,) unit vectors of the
    body (chest direction, pelvis-to-thorax) for textures and hair."""

    a: np.ndarray
    b: np.ndarray
    r: np.ndarray
    region: np.ndarray
    forward: np.ndarray
    up: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def body_parts(joints: np.ndarray, world_up: np.ndarray, size: float = 1.0, girth: float = 1.0,
               limb_girth: float | None = None, cloth_m: float = 0.0, shorts: bool = False,
               short_sleeves: bool = False, long_hair: bool = False) -> BodyParts:
    """The rendered body of a skeleton ``joints`` (17, 3) (metres, any frame in which
    ``world_up`` (3,) is the vertical): the radii scaled by ``size`` (stature / 1.70 m), the
    trunk's by ``girth`` and the limbs' by ``limb_girth`` (1 = average build; default
    ``girth``), clothed parts ``cloth_m`` thicker; hands, feet, a nose and (``long_hair``) hair
    down the back of the head to the shoulders added."""
    j = np.asarray(joints, np.float64)
    extra_a = np.array([_J(a) for a, _, _ in EXTRA_PARTS])
    extra_b = np.array([_J(b) for _, b, _ in EXTRA_PARTS])
    a = np.concatenate([j[CAPSULE_A], j[extra_a]])
    b = np.concatenate([j[CAPSULE_B], j[extra_b]])
    # The chest's top ends below the thorax joint, so its round cap stops at the shoulders'
    # line instead of swallowing the neck (the depth images keep the plain capsule).
    chest = b[CHEST_PART] - a[CHEST_PART]
    b[CHEST_PART] -= CHEST_DROP * size * chest / max(np.linalg.norm(chest), 1e-9)
    scale = np.where(_TRUNK, girth, girth if limb_girth is None else limb_girth) * size
    region = np.array(_REGIONS, np.int64)
    if shorts:
        region[list(SHIN_PARTS)] = SKIN
    if short_sleeves:
        region[list(FOREARM_PARTS)] = SKIN
    r = np.concatenate([CAPSULE_R, [p[2] for p in EXTRA_PARTS]]) * scale
    r = r + np.where((region == SHIRT) | (region == TROUSERS), cloth_m, 0.0)
    up = _unit(np.asarray(world_up, np.float64))
    left = j[_J("l_hip")] - j[_J("r_hip")]
    forward = _unit(np.cross(left, up))
    hands_a = j[[_J("l_wrist"), _J("r_wrist")]]
    hands_dir = _unit(hands_a - j[[_J("l_elbow"), _J("r_elbow")]])
    feet_a = j[[_J("l_ankle"), _J("r_ankle")]]
    feet_b = feet_a + size * (FOOT_LENGTH * forward - FOOT_DROP * up)
    # Nose: on the front of the head (the body's forward, square to the head's axis).
    head_a, head_b = j[_J("neck")], j[_J("head")]
    axis = _unit(head_b - head_a)
    face = _unit(forward - (forward @ axis) * axis)
    head_r = CAPSULE_R[HEAD_PART] * size * girth
    nose_a = 0.5 * (head_a + head_b) - 0.2 * head_r * axis + 0.6 * head_r * face
    nose_b = nose_a + 0.45 * head_r * face - 0.2 * head_r * axis
    a = np.concatenate([a, hands_a, feet_a, nose_a[None]])
    b = np.concatenate([b, hands_a + size * HAND_LENGTH * hands_dir, feet_b, nose_b[None]])
    r = np.concatenate([r, np.full(2, HAND_RADIUS * size), np.full(2, FOOT_RADIUS * size),
                        [NOSE_RADIUS * size]])
    region = np.concatenate([region, [SKIN, SKIN, SHOES, SHOES, SKIN]])
    if long_hair:
        hair_a = 0.5 * (head_a + head_b) - 0.35 * head_r * face
        hair_b = head_a - 0.5 * head_r * face - 0.9 * head_r * axis
        a, b = np.concatenate([a, hair_a[None]]), np.concatenate([b, hair_b[None]])
        r = np.concatenate([r, [0.8 * head_r]])
        region = np.concatenate([region, [HAIR]])
    body_up = _unit(j[_J("thorax")] - j[_J("pelvis")])
    return BodyParts(a, b, r, region, forward, body_up)


# Each rendered part's joints (the first 16 parts: their segment's ends; then hands, feet, nose,
# long hair): a joint's own surface is that of the parts it belongs to.
_PART_JOINTS = (
    [(_J(a), _J(b)) for a, b, _ in BODY_CAPSULES + EXTRA_PARTS]
    + [(_J("l_wrist"),), (_J("r_wrist"),), (_J("l_ankle"),), (_J("r_ankle"),),
       (_J("neck"), _J("head")), (_J("neck"), _J("head"))]
)
# The trunk's parts (hip and shoulder girdles, abdomen, chest, flanks) and its centre joints.
_TRUNK_PARTS = np.array([0, 1, 2, 3, 14, 15])
_TRUNK_CENTRE = np.array([_J("pelvis"), _J("spine"), _J("thorax")])


def part_membership(n_parts: int) -> np.ndarray:
    """(17, n_parts) bool: the rendered parts each joint belongs to (its segments, hand, foot,
    nose, hair); the trunk's centre joints (pelvis, spine, thorax) own every trunk part."""
    out = np.zeros((17, n_parts), bool)
    for k, members in enumerate(_PART_JOINTS[:n_parts]):
        out[list(members), k] = True
    out[np.ix_(_TRUNK_CENTRE, _TRUNK_PARTS)] = True
    return out


def surface_reach(joints: np.ndarray, parts: BodyParts) -> np.ndarray:
    """(17,) metres: how far from each joint its own body surface reaches -- the largest radius
    of the parts it belongs to; for the trunk's centre joints (pelvis, spine, thorax), which
    sit inside the trunk, the trunk's half-width there (distance to the nearest point of each
    trunk part's axis + its radius, the largest of them)."""
    j = np.asarray(joints, np.float64)
    out = np.zeros(17)
    for k, members in enumerate(_PART_JOINTS[: len(parts.r)]):
        for m in members:
            out[m] = max(out[m], parts.r[k])
    a, b, r = parts.a[_TRUNK_PARTS], parts.b[_TRUNK_PARTS], parts.r[_TRUNK_PARTS]
    ab = b - a
    for c in _TRUNK_CENTRE:
        s = np.clip(_dot(j[c] - a, ab) / np.maximum(_dot(ab, ab), 1e-12), 0.0, 1.0)
        dist = np.linalg.norm(j[c] - (a + s[:, None] * ab), axis=1)
        out[c] = max(out[c], float((dist + r).max()))
    return out


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x[..., 0] * y[..., 0] + x[..., 1] * y[..., 1] + x[..., 2] * y[..., 2]


def capsule_depths(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray,
                   which: np.ndarray | None = None) -> np.ndarray:
    """Optical depth where each ray first meets its capsule; inf where it misses.

    Rays start at the camera centre with directions ``(x, y, 1)`` (``x``, ``y`` arrays of
    normalised image coordinates); capsules are ``a``, ``b`` (K, 3) segment ends and ``r`` (K,)
    radii, metres, camera optical frame. Without ``which``, the capsules' (K,) quantities
    broadcast against ``x`` and ``y`` (e.g. x, y (N, 1) give (N, K)); with ``which`` (same
    shape as ``x``), ray i is tested against capsule ``which[i]`` only. A hit behind the camera
    is a miss.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    r2 = np.asarray(r, np.float64) ** 2
    ab = b - a
    length = np.sqrt(_dot(ab, ab))
    u = ab / np.maximum(length, 1e-9)[..., None]
    au = _dot(a, u)
    nv = au[..., None] * u - a  # the axis' point nearest the camera, negated: normal to u
    per_capsule = (u[..., 0], u[..., 1], u[..., 2], nv[..., 0], nv[..., 1], nv[..., 2],
                   a[..., 0], a[..., 1], a[..., 2], b[..., 0], b[..., 1], b[..., 2], au, length,
                   _dot(nv, nv) - r2, _dot(a, a) - r2, _dot(b, b) - r2)
    if which is not None:
        per_capsule = tuple(q[which] for q in per_capsule)
    ux, uy, uz, nx, ny, nz, ax, ay, az, bx, by, bz, au, length, qc, ca, cb = per_capsule
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dd = x * x + y * y + 1.0
    du = x * ux + y * uy + uz
    with np.errstate(invalid="ignore", divide="ignore"):
        # Cylinder: |t m + n| = r, m = d - (d.u) u and n = -a + (a.u) u (n is normal to u).
        qa, qb = dd - du * du, x * nx + y * ny + nz
        t = (-qb - np.sqrt(qb * qb - qa * qc)) / qa
        along = t * du - au
        best = np.where((t > 0) & (along >= 0) & (along <= length), t, np.inf)
        for cx, cy, cz, cc in ((ax, ay, az, ca), (bx, by, bz, cb)):  # spherical caps
            dc = x * cx + y * cy + cz
            t = (dc - np.sqrt(dc * dc - dd * cc)) / dd
            best = np.where((t > 0) & (t < best), t, best)
    return best
