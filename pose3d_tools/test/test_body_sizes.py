"""Body-size augmentation: statures follow the stated distributions and reach the skeletons."""

import dataclasses

import numpy as np
import pytest
from test_training import fake_poses

from pose3d_ros.core.skeletons import H36M17
from pose3d_tools.data import augmentation as aug


def stature_config(**kw) -> aug.AugmentConfig:
    return aug.AugmentConfig(stature=aug.StatureConfig(enabled=True, **kw))


def test_sampled_statures_have_the_stated_mean_and_sd_per_sex():
    cfg = aug.StatureConfig(enabled=True)
    h, female = aug.sample_statures(np.random.default_rng(0), 400_000, cfg)
    assert female.mean() == pytest.approx(0.5, abs=0.005)
    for sel, mean, sd in ((female, 1.6129, 0.0655), (~female, 1.7526, 0.0724)):
        # The published figures in metres (69.0 / 63.5 in means, 2.85 / 2.58 in SDs), and the
        # sample's standard error is < 0.2 mm: tolerances 1 mm and 2 % (3-SD clipping: -1 %).
        assert h[sel].mean() == pytest.approx(mean, abs=1e-3)
        assert h[sel].std() == pytest.approx(sd, rel=0.02)
    assert h.min() >= aug.STATURE_FEMALE_MEAN_M - 3 * aug.STATURE_FEMALE_SD_M - 1e-9
    assert h.max() <= aug.STATURE_MALE_MEAN_M + 3 * aug.STATURE_MALE_SD_M + 1e-9


def test_female_probability_and_population_are_configurable():
    cfg = aug.StatureConfig(enabled=True, female_prob=1.0, female_mean_m=1.55, female_sd_m=0.05)
    h, female = aug.sample_statures(np.random.default_rng(1), 100_000, cfg)
    assert female.all()
    assert h.mean() == pytest.approx(1.55, abs=1e-3) and h.std() == pytest.approx(0.05, rel=0.02)


def test_augmented_skeletons_have_the_sampled_stature_and_plausible_proportions():
    frame = fake_poses()["S1"]["walking_0"][:1]  # (1, 17, 3): a rigid 4-frame window
    pos = np.repeat(np.repeat(frame[None], 4, 1), 2000, 0).astype(np.float64)
    cfg = stature_config()
    factors, target = aug.stature_factors(np.random.default_rng(2), pos, cfg)
    out = aug.apply_bone_factors(pos, factors)
    np.testing.assert_allclose(aug.skeleton_stature(out), target, rtol=1e-9)
    # Bone lengths are constant over the window and left/right symmetric.
    lengths = H36M17.bone_lengths(out)  # (B, T, 16)
    np.testing.assert_allclose(lengths, lengths[:, :1].repeat(4, 1), rtol=1e-9)
    rel = lengths[:, 0] / H36M17.bone_lengths(pos[:, 0])  # (B, 16) factors applied
    np.testing.assert_allclose(rel[:, 1], rel[:, 4], rtol=1e-9)  # knee-ankle, right = left
    np.testing.assert_allclose(rel[:, 12], rel[:, 15], rtol=1e-9)  # elbow-wrist, right = left
    assert rel[:, 1].std() > 0.05  # the factors do vary
    # Proportions stay within +-25 % of the source skeleton's after removing the global scale.
    rel /= np.median(rel, axis=1, keepdims=True)
    assert rel.min() > 0.75 / 1.25 and rel.max() < 1.25 / 0.75


def test_augment_3d_uses_the_stature_law_only_when_enabled():
    clip = fake_poses()["S1"]["walking_1"]
    pos = np.repeat(clip[None, :3], 5000, 0).astype(np.float64)
    cfg = stature_config()
    cfg = dataclasses.replace(cfg, bone_std=0.0)
    out = aug.augment_3d(pos, np.random.default_rng(3), cfg)
    h = aug.skeleton_stature(out)
    mix_mean = 0.5 * (1.7526 + 1.6129)
    assert h.mean() == pytest.approx(mix_mean, abs=3e-3)
    assert h.std() == pytest.approx(np.sqrt(0.5 * (0.0724**2 + 0.0655**2)
                                            + 0.25 * (1.7526 - 1.6129) ** 2), rel=0.05)
    uniform = aug.augment_3d(pos, np.random.default_rng(3), aug.AugmentConfig(bone_std=0.0))
    hu = aug.skeleton_stature(uniform) / aug.skeleton_stature(pos)
    assert hu.min() >= 0.88 - 1e-9 and hu.max() <= 1.12 + 1e-9  # the old uniform global scale


def test_stature_of_a_straight_skeleton():
    clip = fake_poses()["S1"]["walking_0"]
    lengths = H36M17.bone_lengths(clip[0].astype(np.float64))
    legs = 0.5 * (lengths[1] + lengths[2] + lengths[4] + lengths[5])  # hip-knee-ankle, r/l
    trunk = lengths[6:10].sum()
    assert aug.stature_from_bone_lengths(lengths) == pytest.approx((legs + trunk) / 0.961)


def test_mixture_moments_match_samples_and_give_the_relative_scale_sd():
    cfg = aug.StatureConfig(enabled=True)
    mean, sd = aug.stature_moments(cfg)
    h, _ = aug.sample_statures(np.random.default_rng(4), 400_000, cfg)
    assert h.mean() == pytest.approx(mean, abs=1e-3) and h.std() == pytest.approx(sd, rel=0.02)
    assert 0.05 < sd / mean < 0.065  # about 5.8 %: the default body-scale uncertainty
