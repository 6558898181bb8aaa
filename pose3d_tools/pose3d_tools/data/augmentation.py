"""3D augmentation (placement, bone lengths, flips) and a detector-like 2D error model.

All functions are vectorised numpy over a batch of windows ``(B, T, 17, 3)`` (world frame,
metres, z up) and take an explicit ``np.random.Generator`` so training is reproducible.

Why each one exists:
* every subject of the project's Human3.6M release has S1's bone lengths -> random global scale
  and per-bone (left/right symmetric) length factors, re-applied by forward kinematics; with
  :class:`StatureConfig` the global scale makes the skeleton's stature follow published adult
  stature distributions of women and men (:func:`sample_statures`, :func:`skeleton_stature`);
* clip heading and placement are not the recorded ones -> random heading and offset;
* left/right flip doubles the pose variety;
* real 2D detectors jitter (more on small people and end joints), produce occasional large
  outliers, swap left and right, and miss joints (confidence 0) -> :func:`detector_noise`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pose3d_ros.core.skeletons import H36M17

PARENTS = np.asarray(H36M17.parents)
BONES = H36M17.bones  # (parent, child), child = 1..16 in order
FLIP = H36M17.flip_permutation
END_JOINTS = np.asarray(H36M17.end_joints)  # ankles, head, wrists
_MIRROR = {a: b for a, b in H36M17.symmetric} | {b: a for a, b in H36M17.symmetric}
# A bone (indexed by its child joint) shares its length factor with its mirror bone.
_BONE_GROUP = np.array([min(c, _MIRROR.get(c, c)) for _, c in BONES])
SWAP_GROUPS = {
    "legs": ((2, 5), (3, 6)),
    "arms": ((12, 15), (13, 16)),
    "all": tuple(H36M17.symmetric),
}


# Adult stature (m) by sex. Means: US adults aged 20 and over, NHANES 2015-2018 (Fryar CD,
# Carroll MD, Gu Q, Afful J, Ogden CL. Anthropometric reference data for children and adults:
# United States, 2015-2018. Vital Health Stat 3(46), NCHS, 2021; CDC FastStats: 69.0 in men,
# 63.5 in women). SDs: Stoudt HW, Damon A, McFarland R, Roberts J. Weight, height, and selected
# body dimensions of adults, United States 1960-1962. Vital Health Stat 11(8), NCHS, 1965,
# estimated SD of height, 18-79 years: 2.85 in men, 2.58 in women. (The 2015-2018 report
# gives standard errors and percentiles, not SDs; its 5th-95th percentile spread is close to
# +-1.645 of these SDs.) A US sample is taller than the world average (NCD-RisC, eLife 2016);
# override the numbers in the config for another population.
STATURE_MALE_MEAN_M = 69.0 * 0.0254  # 1.7526 m
STATURE_MALE_SD_M = 2.85 * 0.0254  # 0.0724 m
STATURE_FEMALE_MEAN_M = 63.5 * 0.0254  # 1.6129 m
STATURE_FEMALE_SD_M = 2.58 * 0.0254  # 0.0655 m
# Floor to ankle joint centre as a fraction of stature (Drillis R, Contini R. Body segment
# parameters. Report 1166-03, New York University, 1966; the segment-length diagram reproduced
# in Winter DA, Biomechanics and Motor Control of Human Movement: 0.039 H).
ANKLE_HEIGHT_FRAC = 0.039
_LEG_BONES = {"right": (1, 2), "left": (4, 5)}  # bone index = child joint - 1: hip-knee, knee-ankle
_TRUNK_BONES = (6, 7, 8, 9)  # pelvis-spine, spine-thorax, thorax-neck, neck-head top


@dataclass
class StatureConfig:
    """Body sizes from adult stature distributions (metres); ``enabled`` replaces
    :attr:`AugmentConfig.scale_range` as the source of the global scale."""

    enabled: bool = False
    female_prob: float = 0.5
    male_mean_m: float = STATURE_MALE_MEAN_M
    male_sd_m: float = STATURE_MALE_SD_M
    female_mean_m: float = STATURE_FEMALE_MEAN_M
    female_sd_m: float = STATURE_FEMALE_SD_M
    clip_sd: float = 3.0  # statures beyond +-3 SD of their sex are redrawn at the bound


@dataclass
class AugmentConfig:
    scale_range: tuple[float, float] = (0.88, 1.12)  # global body scale (S1 is about 1.70 m)
    bone_std: float = 0.06  # per-bone relative length std (symmetric left/right)
    stature: StatureConfig = field(default_factory=StatureConfig)
    flip_prob: float = 0.5
    max_offset_m: float = 1.5  # placement offset from the capture-volume origin
    random_heading: bool = True


@dataclass
class NoiseConfig:
    clean_prob: float = 0.3  # samples kept as ground-truth 2D with confidence 1
    jitter_frac: tuple[float, float] = (0.0, 0.07)  # Gaussian std as fraction of the 2D size
    end_joint_jitter_mult: float = 1.5
    outlier_prob: float = 0.01  # per joint and frame
    outlier_frac: tuple[float, float] = (0.2, 0.8)  # outlier displacement, fraction of 2D size
    swap_prob: float = 0.015  # per frame: left/right swap of legs, arms or the whole body
    end_missing_prob: float = 0.06  # per window and end joint: a missing span
    random_missing_prob: float = 0.01  # per joint and frame
    out_of_image_missing: bool = True
    conf_noise: float = 0.1
    # Lag-1 correlation of the jitter between consecutive frames (AR(1), same marginal spread).
    # 0 = independent per frame. A detector run on nearly identical consecutive images errs
    # nearly alike, so real jitter is correlated and averaging frames removes less of it than
    # independent jitter suggests: the evaluation's "noisy_corr" input measures that.
    jitter_correlation: float = 0.0


def bone_factors(rng: np.random.Generator, b: int, cfg: AugmentConfig) -> np.ndarray:
    """(B, 16) length factors per bone: global scale x symmetric per-bone variation."""
    g = rng.uniform(*cfg.scale_range, (b, 1))
    return g * proportion_factors(rng, b, cfg)


def proportion_factors(rng: np.random.Generator, b: int, cfg: AugmentConfig) -> np.ndarray:
    """(B, 16) per-bone length factors around 1 (left/right symmetric, clipped to +-25 %)."""
    per_group = np.clip(1 + cfg.bone_std * rng.standard_normal((b, 17)), 0.75, 1.25)
    return per_group[:, _BONE_GROUP]


def sample_statures(rng: np.random.Generator, n: int,
                    cfg: StatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """``n`` adult statures (m) and sexes (True = female) from the configured normal laws."""
    female = rng.uniform(size=n) < cfg.female_prob
    mean = np.where(female, cfg.female_mean_m, cfg.male_mean_m)
    sd = np.where(female, cfg.female_sd_m, cfg.male_sd_m)
    z = np.clip(rng.standard_normal(n), -cfg.clip_sd, cfg.clip_sd)
    return mean + sd * z, female


def stature_moments(cfg: StatureConfig) -> tuple[float, float]:
    """Mean and SD (m) of the sex mixture (ignoring the 3-SD clip, < 1 % on the SD).

    SD / mean is the relative body-scale uncertainty of a person of unknown size: the
    depth/scale prior the runtime's root covariance should carry (``placement.scale_std``).
    """
    w = cfg.female_prob
    mean = w * cfg.female_mean_m + (1 - w) * cfg.male_mean_m
    second = (w * (cfg.female_sd_m**2 + cfg.female_mean_m**2)
              + (1 - w) * (cfg.male_sd_m**2 + cfg.male_mean_m**2))
    return mean, float(np.sqrt(second - mean**2))


def stature_from_bone_lengths(lengths: np.ndarray) -> np.ndarray:
    """Standing height (m) of skeletons with bone lengths (..., 16) (H36M17 bone order).

    Floor -> ankle (ANKLE_HEIGHT_FRAC of stature) + mean leg (knee-ankle + hip-knee) + trunk and
    head (pelvis-spine-thorax-neck-head top): the straight-standing height. Linear in the bone
    lengths, so a global scale g scales it by g.
    """
    legs = 0.5 * sum(lengths[..., list(ix)].sum(-1) for ix in _LEG_BONES.values())
    trunk = lengths[..., list(_TRUNK_BONES)].sum(-1)
    return (legs + trunk) / (1.0 - ANKLE_HEIGHT_FRAC)


def skeleton_stature(pos: np.ndarray) -> np.ndarray:
    """Standing height (m) of (B, T, 17, 3) windows from the bone lengths of frame 0 -> (B,)."""
    return stature_from_bone_lengths(H36M17.bone_lengths(np.asarray(pos)[:, 0]))


def stature_factors(rng: np.random.Generator, pos: np.ndarray,
                    cfg: AugmentConfig) -> tuple[np.ndarray, np.ndarray]:
    """(B, 16) bone factors giving each window a sampled stature, and those statures (m).

    Proportions vary per bone (``bone_std``); the global scale then sets the stature exactly.
    """
    b = len(pos)
    prop = proportion_factors(rng, b, cfg)
    lengths = H36M17.bone_lengths(np.asarray(pos)[:, 0])  # (B, 16)
    target, _ = sample_statures(rng, b, cfg.stature)
    g = target / stature_from_bone_lengths(lengths * prop)
    return prop * g[:, None], target


def apply_bone_factors(pos: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Rescale bones of (B, ..., 17, 3) poses by (B, 16) factors about the root.

    The lowest ankle of each window keeps its height (no floating or sinking feet).
    """
    pos = np.asarray(pos, dtype=np.float64)
    f = factors.reshape(factors.shape[:1] + (1,) * (pos.ndim - 3) + factors.shape[1:])
    out = np.empty_like(pos)
    out[..., 0, :] = pos[..., 0, :]
    for bi, (p, c) in enumerate(BONES):
        out[..., c, :] = out[..., p, :] + (pos[..., c, :] - pos[..., p, :]) * f[..., bi, None]
    # Keep the lowest ankle of each window at the same height (no floating or sinking).
    axes = tuple(range(1, pos.ndim - 2))
    low_before = pos[..., [3, 6], 2].min(-1).min(axis=axes, keepdims=True)
    low_after = out[..., [3, 6], 2].min(-1).min(axis=axes, keepdims=True)
    out[..., 2] += (low_before - low_after)[..., None]
    return out


def flip_lr(pos: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mirror the poses of the batch items where ``mask`` (B,) is True (x -> -x, swap sides)."""
    pos = pos.copy()
    flipped = pos[mask][..., FLIP, :]
    flipped[..., 0] *= -1
    pos[mask] = flipped
    return pos


def rotation_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    rows = [np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)]
    return np.stack(rows, -2)


def place_in_volume(pos: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
                    anchor: int = -1) -> np.ndarray:
    """Random heading about the vertical axis and horizontal offset (<= max_offset_m) of the
    pelvis at frame ``anchor`` of each window (B, T, 17, 3)."""
    b = len(pos)
    heading = rng.uniform(0, 2 * np.pi, b) if cfg.random_heading else np.zeros(b)
    r = cfg.max_offset_m * np.sqrt(rng.uniform(0, 1, b))
    phi = rng.uniform(0, 2 * np.pi, b)
    offset = np.stack([r * np.cos(phi), r * np.sin(phi)], -1)
    return place(pos, heading, offset, anchor)


def place(pos: np.ndarray, heading: np.ndarray, offset_xy: np.ndarray,
          anchor: int = -1) -> np.ndarray:
    """Rotate (B, T, 17, 3) windows by ``heading`` about z around the anchor-frame pelvis and move
    that pelvis to ``offset_xy`` (B, 2) horizontally (height unchanged)."""
    centre = pos[:, anchor, 0, :].copy()
    centre[:, 2] = 0.0
    rot = rotation_z(np.asarray(heading, dtype=np.float64))  # (B, 3, 3)
    out = np.einsum("bij,btkj->btki", rot, pos - centre[:, None, None, :])
    out[..., :2] += np.asarray(offset_xy)[:, None, None, :]
    return out


def augment_3d(pos: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
               anchor: int = -1) -> np.ndarray:
    """Bone lengths, flip and placement of a batch of windows (B, T, 17, 3) (world frame)."""
    if cfg.stature.enabled:
        factors, _ = stature_factors(rng, pos, cfg)
    else:
        factors = bone_factors(rng, len(pos), cfg)
    pos = apply_bone_factors(pos, factors)
    if cfg.flip_prob > 0:
        pos = flip_lr(pos, rng.uniform(size=len(pos)) < cfg.flip_prob)
    return place_in_volume(pos, rng, cfg, anchor)


def size_2d(xy: np.ndarray) -> np.ndarray:
    """RMS distance of the joints from the pelvis (..., 17, 2) -> (...)."""
    rel = xy - xy[..., :1, :]
    return np.sqrt(np.square(rel).sum(-1).mean(-1))


def detector_noise(rng: np.random.Generator, xy: np.ndarray, cfg: NoiseConfig,
                   in_image: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like errors on clean 2D (B, T, 17, 2) -> (noisy 2D, confidence (B, T, 17)).

    Units are whatever ``xy`` is in (normalised image coordinates in training): every error is
    relative to the person's 2D size. Missing joints get confidence 0 (their coordinates are
    left as they are; :func:`pose3d_ros.stages.lifter_input.lifter_features` zeroes them).
    """
    b, t, j, _ = xy.shape
    xy = xy.astype(np.float64, copy=True)
    size = np.maximum(size_2d(xy), 1e-6)[..., None, None]  # (B, T, 1, 1)
    conf = np.ones((b, t, j))
    noisy = rng.uniform(size=b) >= cfg.clean_prob  # (B,)
    if not noisy.any():
        return xy, conf
    nb = int(noisy.sum())
    sub = xy[noisy]
    sz = size[noisy]
    # Gaussian jitter, stronger on end joints.
    sigma = rng.uniform(*cfg.jitter_frac, (nb, 1, 1, 1)) * sz
    mult = np.ones(j)
    mult[END_JOINTS] = cfg.end_joint_jitter_mult
    white = rng.standard_normal((nb, t, j, 2))
    rho = cfg.jitter_correlation
    if rho:
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"jitter_correlation must be in [0, 1), got {rho}")
        for k in range(1, t):  # AR(1) over frames with unit marginal variance
            white[:, k] = rho * white[:, k - 1] + np.sqrt(1.0 - rho * rho) * white[:, k]
    err = white * sigma * mult[:, None]
    # Occasional large outliers.
    out_mask = rng.uniform(size=(nb, t, j)) < cfg.outlier_prob
    ang = rng.uniform(0, 2 * np.pi, (nb, t, j))
    mag = rng.uniform(*cfg.outlier_frac, (nb, t, j)) * sz[..., 0]
    err += out_mask[..., None] * np.stack([np.cos(ang), np.sin(ang)], -1) * mag[..., None]
    sub = sub + err
    # Left/right swaps (legs, arms or everything) on single frames.
    swap = rng.uniform(size=(nb, t)) < cfg.swap_prob
    if swap.any():
        kind = rng.integers(0, 3, size=(nb, t))
        for ki, name in enumerate(("legs", "arms", "all")):
            m = swap & (kind == ki)
            if m.any():
                for a, c in SWAP_GROUPS[name]:
                    tmp = sub[m, a].copy()
                    sub[m, a] = sub[m, c]
                    sub[m, c] = tmp
    # Confidence: high for good joints, lower with error, low for outliers.
    rel_err = np.linalg.norm(err, axis=-1) / sz[..., 0]
    c = (1.0 - rng.uniform(0.5, 3.0, (nb, 1, 1)) * rel_err
         + cfg.conf_noise * rng.standard_normal((nb, t, j)))
    c = np.clip(c, 0.05, 1.0)
    # Missing joints: spans on end joints, random single joints.
    miss = rng.uniform(size=(nb, t, j)) < cfg.random_missing_prob
    span = rng.uniform(size=(nb, len(END_JOINTS))) < cfg.end_missing_prob
    if span.any():
        start = rng.integers(0, t, size=(nb, len(END_JOINTS)))
        length = rng.integers(1, t + 1, size=(nb, len(END_JOINTS)))
        tt = np.arange(t)[None, :, None]
        in_span = (tt >= start[:, None, :]) & (tt < (start + length)[:, None, :]) & span[:, None, :]
        miss[:, :, END_JOINTS] |= in_span
    if cfg.out_of_image_missing and in_image is not None:
        miss |= ~in_image[noisy]
    c[miss] = 0.0
    # A detector has no pelvis: the runtime makes it from the hips (confidence = the lower one).
    c[..., 0] = np.minimum(c[..., 1], c[..., 4])
    xy[noisy] = sub
    conf[noisy] = c
    return xy, conf
