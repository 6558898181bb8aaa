"""Synthetic aligned depth images of Human3.6M people, for measuring depth fusion.

Why: Human3.6M's release here has 3D joints and calibrated cameras but no depth images, and the
runtime's depth fusion (``pose3d_ros.stages.depth_fusion``) must be measured on the same runs,
cameras and 2D inputs as the other placement modes. A depth camera registered to each
Human3.6M camera is simulated: its image is the depth (optical z) of a body made of capsules
around the true skeleton's bones, in front of a wall, with sensor noise and holes.

Body: the capsules of ``body_shapes.BODY_CAPSULES`` (segment + radius) between joints, radii
of an average adult (thigh 0.07 m, hip girdle 0.09 m, chest and abdomen 0.12 m, shoulder girdle
0.06 m, upper arm 0.045 m, ...), so the surface in front of the hip joints is about 0.09 m and in
front of the shoulders about 0.06 m away: the joint-to-surface offset the fusion assumes
(0.08 m) is *not* built in.

Noise (:class:`DepthNoise`, about 1 % of the distance): every pixel gets independent Gaussian
noise (``pixel_rel`` x depth) plus a per-frame error common to the whole image (``frame_rel`` x
depth: scale and calibration errors, which no averaging removes); ``hole_frac`` of the pixels
are missing (0), and with ``joint_hole_prob`` the whole neighbourhood of a torso joint is (dark
clothes, sunlight). Only the pixels around the torso keypoints are rendered (the rest of the
image is missing): they are all the fusion reads, and it keeps the evaluation fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pose3d_ros.stages.depth_fusion import (
    TORSO_JOINTS,
    DepthImage,
    DepthSettings,
    depth_image,
    fuse_depth,
)
from pose3d_ros.stages.placement import Placement
from pose3d_tools.data.body_shapes import CAPSULE_A, CAPSULE_B, CAPSULE_R, capsule_depths


@dataclass(frozen=True)
class DepthNoise:
    pixel_rel: float = 0.01  # independent per-pixel noise, SD as a fraction of the depth
    frame_rel: float = 0.005  # error common to the whole frame, SD as a fraction of the depth
    hole_frac: float = 0.1  # pixels missing at random
    joint_hole_prob: float = 0.05  # a torso joint's whole neighbourhood missing
    background_m: float = 2.0  # the wall behind the person, this far behind the root
    patch_px: int = 6  # half size of the rendered square around each torso keypoint


def body_depth(rays: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Optical z (N,) of the nearest capsule surface along each ray; NaN where none is hit.

    ``rays`` (N, 2) undistorted normalised coordinates (the ray is (x, y, 1), so the ray
    parameter of a hit is its z); ``joints`` (17, 3) metres in the camera optical frame.
    """
    x, y = rays[:, :1], rays[:, 1:2]  # (N, 1) against (K,) capsules
    best = capsule_depths(x, y, joints[CAPSULE_A], joints[CAPSULE_B], CAPSULE_R)
    z = best.min(axis=1)
    return np.where(np.isfinite(z), z, np.nan)


def render_torso_patches(
    camera,
    joints: np.ndarray,
    centres_px: np.ndarray,
    rng: np.random.Generator,
    noise: DepthNoise | None = None,
) -> DepthImage:
    """A noisy 32FC1 depth image registered to ``camera`` (a Human3.6M
    :class:`pose3d_tools.data.cameras.Camera`, lens distortion included), rendered in squares
    around ``centres_px`` (K, 2) colour pixels; ``joints`` (17, 3) the true body (camera frame)."""
    nz = noise or DepthNoise()
    w, h = int(camera.w), int(camera.h)
    image = np.zeros((h, w), np.float32)
    p = nz.patch_px
    boxes = []  # (v0, v1, u0, u1) of each rendered square, all rays cast in one call
    for cu, cv in np.round(centres_px[np.isfinite(centres_px).all(1)]).astype(int):
        u0, u1, v0, v1 = max(cu - p, 0), min(cu + p + 1, w), max(cv - p, 0), min(cv + p + 1, h)
        if u0 < u1 and v0 < v1 and rng.uniform() >= nz.joint_hole_prob:
            boxes.append((v0, v1, u0, u1))
    if not boxes:
        return depth_image(image, "32FC1")
    grids = [np.mgrid[v0:v1, u0:u1].reshape(2, -1) for v0, v1, u0, u1 in boxes]
    vu = np.concatenate(grids, axis=1)
    z = body_depth(camera.pixels_to_normalised(vu[::-1].T.astype(np.float64)), joints)
    z = np.where(np.isnan(z), float(joints[0, 2]) + nz.background_m, z)
    z = z * (1.0 + rng.normal(0.0, nz.frame_rel) + rng.normal(0.0, nz.pixel_rel, z.shape))
    z[rng.uniform(size=z.shape) < nz.hole_frac] = 0.0
    image[vu[0], vu[1]] = z
    return depth_image(image, "32FC1")


def depth_placement(
    placement: Placement,
    joints_rel: np.ndarray,
    keypoints_norm: np.ndarray,
    confidence: np.ndarray,
    joints_true: np.ndarray,
    camera,
    rng: np.random.Generator,
    noise: DepthNoise | None = None,
    settings: DepthSettings | None = None,
) -> Placement:
    """The runtime's depth fusion of one placed person with a synthetic depth image of the true
    body ``joints_true`` (17, 3); when the depth is not used, the placement with the reason in
    ``fallback`` (as the floor mode reports its fallbacks)."""
    xy = np.asarray(keypoints_norm, np.float64)
    pixels = camera.project(np.concatenate([xy, np.ones((len(xy), 1))], axis=1))
    depth = render_torso_patches(camera, joints_true, pixels[list(TORSO_JOINTS)], rng, noise)
    size = (int(camera.w), int(camera.h))
    fused = fuse_depth(placement, joints_rel, pixels, xy, confidence, depth, size, settings)
    if fused.used:
        return fused.placement
    return dataclasses.replace(placement, fallback=fused.reason)
