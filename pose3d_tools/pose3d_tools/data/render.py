"""Rendered training images for the end-to-end image-to-3D model: capsule people over photographs.

    pose3d-tools render --split train --n 20000 --out out/renders/train --seed 0

Why: no image set with 3D labels is reachable here, so one is rendered from the project's
Human3.6M 3D poses (train split S1, S5, S6, S7, S8; the test split S9, S11 is held out and
rendered separately). Every image is the crop the runtime's E2E model sees (the contract):
the person's ROI is ``rois_from_boxes`` of the box of the 17 projected joints (times
``crop_scale`` 1.4), with a small jitter of centre and side and, sometimes, a small rotation,
and crop pixel (u, v) is image pixel ``roi_transforms(roi, S)[0] @ (u, v, 1)``. Rays are cast
straight through the crop's pixels (no full image is made); crop pixels that fall outside the
camera image are black, as ``cv2.warpAffine`` with a constant border makes them.

What the renders look like: a body of capsules (``body_shapes``: limbs, a torso of a few thick
capsules, a capsule head with a nose and hair on its top and back, sometimes long hair, hands
and feet) with radii scaled by the sampled stature, a random build and clothes' thickness;
per-person skin tone (light to dark), hair, shirt, trousers (or shorts, short sleeves) and shoe
colours, clothing textures (plain, stripes, checks, smooth noise); Lambertian + ambient
lighting from a random direction with a tinted light; backgrounds cut from real photographs
(``backgrounds``: Debian and PyPI packages, licences recorded); occluders in front of the
person (bars, poles, blobs, polygons, filled with photo patches or flat colours) that often
cover limbs; sometimes another capsule person beside, in front of or behind; then exposure
(dark scenes included), blur, a whole-image motion blur, sensor noise and JPEG compression.
Cameras: the real Human3.6M cameras' intrinsics and poses (pinhole: their lens distortion is
ignored when rendering) and random robot head cameras (``sample_robot_cameras``: 55-100 deg
fields of view, people at 1.5-7 m). A person smaller than the crop is rendered at its image
resolution and upsampled, as the runtime's crop is.

What they lack against real people: faces (a nose is the only feature), hair detail, hands
with fingers, cloth folds, loose clothes and skirts, body shape beyond capsules (limbs are
tubes), contact shadows and a floor, crowds, limb motion blur, lens distortion; the
backgrounds are 39 photographs (nature, streets, desks, a cafe), few indoor rooms. A model
trained on them alone will transfer to real photographs imperfectly; its model card must say
it was trained on renders.

Use: ``Renderer.for_split("train").render_batch(rng, n)`` renders on the fly; ``pose3d-tools
render`` writes a dataset (:func:`build_dataset`), sample i drawn from ``sample_rng(seed, i)``
so a dataset does not depend on chunking. About 100 images per CPU second at S = 128 on one
core (numpy + OpenCV, no multiprocessing).

Targets per image: ``joints`` (17, 3) metres, root-relative, in crop axes
(``camera_to_crop_axes`` of the camera-frame joints minus the pelvis); ``joints_2d`` (17, 2)
crop pixels; ``visible`` (17,) the joint's pixel is inside the crop and the image, not under
an occluder and not hidden by another body part or person (the nearest surface there is one
of the joint's own parts, no nearer than the joint's depth - the reach of its own surface -
4 cm: ``body_shapes.surface_reach``; a far hip behind the near one is hidden).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.stages.crops import camera_to_crop_axes, roi_transforms, rois_from_boxes
from pose3d_tools.data.augmentation import (
    AugmentConfig,
    StatureConfig,
    augment_3d,
    skeleton_stature,
)
from pose3d_tools.data.backgrounds import Backgrounds
from pose3d_tools.data.body_shapes import (
    HAIR,
    HEAD_PART,
    REFERENCE_STATURE_M,
    SHIRT,
    TROUSERS,
    BodyParts,
    body_parts,
    capsule_depths,
    part_membership,
    surface_reach,
)
from pose3d_tools.data.cameras import Camera, RobotCameraConfig, sample_robot_cameras

# For the E2E model's card (say plainly that it is trained on renders).
MODEL_CARD_PARAGRAPH = (
    "Training data: synthetic renders only, no photographs of people. Human3.6M 3D poses "
    "(subjects S1, S5, S6, S7, S8; S9 and S11 held out for the test renders) with random "
    "statures and bone proportions, drawn by ray casting as articulated capsule bodies (tube "
    "limbs, a trunk of a few capsules, a capsule head with a nose and hair, hands and feet, "
    "random build) with skin tones from light to dark, random clothing colours and simple "
    "textures (stripes, checks, noise), Lambertian + ambient light from a random direction, "
    "over windows cut from 39 real photographs without people (Debian opencv-doc and "
    "mate-backgrounds, the scikit-image wheel; licences recorded in the dataset's meta.json), "
    "with random occluders, sometimes a second capsule person, and camera effects (exposure "
    "including low light, blur, motion blur, noise, JPEG). Cameras: the real Human3.6M "
    "cameras rendered as pinhole cameras (lens distortion ignored) and random robot head "
    "cameras, people 1.5-7 m away; crops made exactly as the runtime makes them (box of the "
    "17 joints x 1.4, 128 px). The renders have no faces, real hair, fingers, clothing folds "
    "or loose garments, realistic body shapes, floors, shadows or crowds: accuracy on held-out "
    "renders is an upper bound, and the result on real photographs is reported separately."
)
SELF_OCCLUSION_MARGIN_M = 0.04
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
# Skin tones from light to dark (RGB, sRGB 0-255), interpolated at random.
SKIN_TONES = np.array([
    [250, 222, 200], [236, 196, 166], [214, 164, 128], [184, 132, 98], [150, 100, 70],
    [112, 72, 48], [76, 50, 36],
], np.float64)  # fmt: skip
HAIR_COLOURS = np.array([
    [20, 16, 14], [44, 32, 24], [78, 54, 36], [120, 84, 52], [196, 160, 110], [150, 150, 150],
    [130, 60, 30],
], np.float64)  # fmt: skip


def _default_augment() -> AugmentConfig:
    return AugmentConfig(stature=StatureConfig(enabled=True), max_offset_m=1.5)


@dataclass
class RenderConfig:
    """How training crops are rendered (sizes in crop pixels unless said)."""

    size: int = 128  # S, the model's input side
    crop_scale: float = 1.4  # the contract's ROI side / longer side of the joints' box
    robot_camera_prob: float = 0.5  # else a real Human3.6M camera (pinhole)
    centre_jitter: float = 0.03  # SD of the ROI centre shift, fraction of the side
    side_jitter: float = 0.05  # SD of log(side)
    rotation_prob: float = 0.2
    rotation_max_deg: float = 20.0
    min_render_px: int = 24  # a person smaller than S is rendered at its image size, upsampled
    shorts_prob: float = 0.2
    short_sleeves_prob: float = 0.35
    bald_prob: float = 0.08
    long_hair_prob: float = 0.3
    girth_range: tuple[float, float] = (0.85, 1.35)  # build: trunk radii factor beyond stature
    limb_girth_range: tuple[float, float] = (0.9, 1.25)  # limb radii factor beyond stature
    cloth_range_m: tuple[float, float] = (0.0, 0.02)  # clothes' thickness over the capsules
    texture_probs: tuple[float, float, float, float] = (0.4, 0.2, 0.15, 0.25)  # plain, stripes,
    # checks, noise
    plain_background_prob: float = 0.05
    distractor_prob: float = 0.2  # another person beside, in front of or behind
    distractor_side_m: tuple[float, float] = (0.4, 1.3)  # sideways from the person
    distractor_depth_m: tuple[float, float] = (-1.0, 2.0)  # farther from the camera (+)
    occluder_prob: float = 0.5
    max_occluders: int = 2
    occluder_photo_prob: float = 0.6
    occluder_max_cover: float = 0.6  # an occluder hides at most this fraction of the body
    dark_prob: float = 0.15  # low-light scene: gain 0.15-0.45
    blur_prob: float = 0.8
    motion_blur_prob: float = 0.1
    noise_prob: float = 0.6
    jpeg_prob: float = 0.5
    augment: AugmentConfig = field(default_factory=_default_augment)
    robot: RobotCameraConfig = field(default_factory=RobotCameraConfig)


@dataclass
class Sample:
    """One rendered crop and its targets (see the module docstring)."""

    image: np.ndarray  # (S, S, 3) uint8 RGB
    joints: np.ndarray  # (17, 3) float32 metres, root-relative, crop axes
    joints_2d: np.ndarray  # (17, 2) float32 crop pixels
    visible: np.ndarray  # (17,) bool
    roi: np.ndarray  # (4,) the ROI in the camera image (cx, cy, side, angle)
    root: np.ndarray  # (3,) the pelvis in the camera optical frame, metres
    K: np.ndarray  # (3, 3) the pinhole camera matrix
    frame: int  # index of the pose in the renderer's pose table


# -- geometry -------------------------------------------------------------------------------
def intrinsics(camera: Camera) -> np.ndarray:
    """Pinhole matrix (3, 3) of a single camera (lens distortion ignored)."""
    f, c = np.asarray(camera.f, np.float64), np.asarray(camera.c, np.float64)
    return np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])


def project_pinhole(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) -> image pixels (..., 2), no distortion."""
    p = np.asarray(points, np.float64)
    return p[..., :2] / p[..., 2:3] * K[[0, 1], [0, 1]] + K[:2, 2]


@functools.lru_cache(maxsize=256)
def _pixel_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(v, u) pixel index grids (n, n) float64, read-only."""
    v, u = np.mgrid[0:n, 0:n].astype(np.float64)
    v.flags.writeable = False
    u.flags.writeable = False
    return v, u


def crop_rays(K: np.ndarray, roi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray directions (n, n, 3) ``(x, y, 1)`` through the pixel centres of an n x n crop of
    ``roi``, camera optical frame, and the crop-to-image affine (2, 3)."""
    M = roi_transforms(roi, n)[0]
    A = np.linalg.inv(K) @ np.vstack([M, [0.0, 0.0, 1.0]])  # crop (u, v, 1) -> ray
    v, u = _pixel_grid(n)
    rays = u[..., None] * A[:, 0] + v[..., None] * A[:, 1] + A[:, 2]
    return rays, M


def image_to_crop(M: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Image pixels (..., 2) -> crop pixels through the inverse of the affine ``M`` (2, 3)."""
    inv = np.linalg.inv(M[:, :2])
    return (np.asarray(uv, np.float64) - M[:, 2]) @ inv.T


def cast_rays(rays: np.ndarray, K: np.ndarray, M: np.ndarray, a: np.ndarray, b: np.ndarray,
              r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of the crop's rays (n, n, 3) on capsules ``a``, ``b`` (P, 3), ``r`` (P,):
    depth (n, n) (optical z, inf where nothing is hit) and the capsule's index (n, n) (-1).

    Each capsule is tested only on the crop pixels inside the bounding box of its image (the
    convex hull of its two end spheres' images, bounded with a margin): all (pixel, capsule)
    pairs are intersected in one vectorised call and the nearest hit per pixel kept, so the
    cost grows with the body's area, not the crop's area x the capsule count.
    """
    n = rays.shape[0]
    ends = np.stack([a, b], 1)  # (P, 2, 3)
    z = ends[..., 2]
    near = z.min(1) - r
    with np.errstate(invalid="ignore", divide="ignore"):
        uv = project_pinhole(K, np.where(z[..., None] > 1e-3, ends, np.nan))  # (P, 2, 2)
    # Image radius of each end sphere: f r / (z - r), / cos of its angle off the optical axis
    # (an off-axis sphere's image is stretched that much), + 2 px.
    cos_off = z / np.maximum(np.linalg.norm(ends, axis=-1), 1e-9)
    rad = K[0, 0] * r[:, None] / np.maximum(z - r[:, None], 1e-3) / np.maximum(cos_off, 0.1)
    rad = rad + 2.0  # (P, 2)
    lo, hi = (uv - rad[..., None]).min(1), (uv + rad[..., None]).max(1)  # (P, 2) image px
    corners = np.stack([lo, np.stack([hi[:, 0], lo[:, 1]], -1), hi,
                        np.stack([lo[:, 0], hi[:, 1]], -1)], 1)  # (P, 4, 2)
    crop = image_to_crop(M, corners)
    whole = (near < 0.05) | ~np.isfinite(crop).all((1, 2))  # too close: test every pixel
    crop = np.where(whole[:, None, None], np.array([[0.0, 0.0], [n, n]])[[0, 1, 1, 0]], crop)
    c_lo = np.clip(np.floor(crop.min(1)), 0, n).astype(np.int64)  # (P, 2) u0, v0
    c_hi = np.clip(np.ceil(crop.max(1)) + 1, 0, n).astype(np.int64)  # (P, 2) u1, v1
    wh = np.maximum(c_hi - c_lo, 0)
    counts = wh[:, 0] * wh[:, 1]
    part = np.repeat(np.arange(len(r)), counts)
    local = np.arange(len(part)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = wh[part, 0]
    pu, pv = c_lo[part, 0] + local % width, c_lo[part, 1] + local // width
    # Keep the pixels within the end spheres' image radius of the projected axis (the image of
    # a capsule lies inside that band): most of a slanted limb's box is dropped here.
    axis = image_to_crop(M, uv)  # (P, 2, 2) crop px
    band = np.where(whole, np.inf, rad.max(1) / np.sqrt(abs(np.linalg.det(M[:, :2]))))
    p0, seg = axis[:, 0], axis[:, 1] - axis[:, 0]
    seg2 = np.maximum(np.sum(seg * seg, 1), 1e-12)
    du, dv = pu - p0[part, 0], pv - p0[part, 1]
    s = np.clip((du * seg[part, 0] + dv * seg[part, 1]) / seg2[part], 0.0, 1.0)
    du, dv = du - s * seg[part, 0], dv - s * seg[part, 1]
    keep = ~(du * du + dv * dv > band[part] ** 2)  # NaN (end behind the camera) is kept
    part, pix = part[keep], (pv * n + pu)[keep]
    x, y = rays[..., 0].reshape(-1)[pix], rays[..., 1].reshape(-1)[pix]
    t = capsule_depths(x, y, a, b, r, which=part)
    depth = np.full(n * n, np.inf)
    np.minimum.at(depth, pix, t)
    index = np.full(n * n, -1, np.int64)
    win = np.isfinite(t) & (t == depth[pix])
    index[pix[win]] = part[win]
    return depth.reshape(n, n), index.reshape(n, n)


def surface_normals(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Unit normals (N, 3) at surface points (N, 3) of capsules with axes ``a``-``b`` (N, 3),
    and the fraction (N,) along the axis of each point's foot on it."""
    ab = b - a
    length2 = np.maximum(np.sum(ab * ab, 1), 1e-12)
    s = np.clip(np.sum((points - a) * ab, 1) / length2, 0.0, 1.0)
    normal = points - (a + s[:, None] * ab)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    return normal, s


# -- appearance -----------------------------------------------------------------------------
def _random_colour(rng: np.random.Generator, sat: tuple[float, float] = (0.1, 0.9),
                   val: tuple[float, float] = (0.15, 0.95)) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def _trouser_colour(rng: np.random.Generator) -> np.ndarray:
    kind = rng.uniform()
    if kind < 0.3:  # denim
        return np.array([40, 60, 100]) * rng.uniform(0.6, 1.6)
    if kind < 0.55:  # black / grey
        return np.full(3, rng.uniform(20, 160))
    if kind < 0.65:  # khaki
        return np.array([170, 150, 110]) * rng.uniform(0.7, 1.2)
    return _random_colour(rng)


@dataclass
class Look:
    """One person's appearance: base colours (5, 3) per region (RGB 0-255), a second colour
    and a texture per region, hair extent; the light."""

    colours: np.ndarray
    colours2: np.ndarray
    texture: np.ndarray  # (5,) 0 plain, 1 stripes, 2 checks, 3 noise
    period: np.ndarray  # (5,) metres
    phase: np.ndarray  # (5, 3) texture phases / noise directions
    hair_top: float  # hair where the head's normal . head axis > hair_top (2 = bald)
    hair_back: float  # ... or normal . forward < -hair_back
    light: np.ndarray  # (3,) unit vector towards the light, camera frame
    up: np.ndarray  # (3,) the world's vertical, camera frame
    ambient: float
    diffuse: float
    tint: np.ndarray  # (3,) light colour


def sample_look(rng: np.random.Generator, cfg: RenderConfig, up_cam: np.ndarray) -> Look:
    """A random person's clothes, skin and hair, and a random light (``up_cam`` (3,) the world's
    vertical in the camera frame: light comes mostly from above and the camera's side)."""
    x = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(x)
    skin = SKIN_TONES[i] + (x - i) * (SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[i])
    skin = skin * rng.uniform(0.92, 1.08, 3)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.8, 1.2)
    shirt = _random_colour(rng)
    trousers = _trouser_colour(rng)
    shoes = np.full(3, 25.0) if rng.uniform() < 0.6 else _random_colour(rng)
    colours = np.stack([skin, hair, shirt, trousers, shoes])
    colours2 = np.stack([skin, hair, _random_colour(rng), _random_colour(rng), shoes])
    texture = np.zeros(5, np.int64)
    for region in (SHIRT, TROUSERS):
        texture[region] = rng.choice(4, p=np.asarray(cfg.texture_probs) / sum(cfg.texture_probs))
    bald = rng.uniform() < cfg.bald_prob
    d = rng.normal(size=3) + 1.0 * up_cam + np.array([0.0, 0.0, -1.0]) * rng.uniform(0.3, 1.5)
    return Look(
        colours=np.clip(colours, 0, 255), colours2=np.clip(colours2, 0, 255), texture=texture,
        period=rng.uniform(0.03, 0.15, 5), phase=rng.uniform(-np.pi, np.pi, (5, 3)),
        hair_top=2.0 if bald else rng.uniform(-0.1, 0.5), hair_back=rng.uniform(0.0, 0.6),
        light=d / np.linalg.norm(d), up=np.asarray(up_cam, np.float64),
        ambient=rng.uniform(0.25, 0.6), diffuse=rng.uniform(0.4, 0.9),
        tint=rng.uniform(0.85, 1.15, 3),
    )  # fmt: skip


def shade_body(rays: np.ndarray, depth: np.ndarray, index: np.ndarray, parts: BodyParts,
               pelvis: np.ndarray, look: Look) -> tuple[np.ndarray, np.ndarray]:
    """RGB (n, n, 3) float of the hit pixels (0 elsewhere) and the hit mask (n, n)."""
    hit = index >= 0
    k = index[hit]
    p = rays[hit] * depth[hit][:, None]  # surface points, camera frame
    normal, _ = surface_normals(p, parts.a[k], parts.b[k])
    region = parts.region[k].copy()
    on_head = k == HEAD_PART
    if on_head.any():
        head_axis = parts.b[HEAD_PART] - parts.a[HEAD_PART]
        head_axis = head_axis / max(np.linalg.norm(head_axis), 1e-9)
        nh = normal[on_head]
        is_hair = (nh @ head_axis > look.hair_top) | (nh @ parts.forward < -look.hair_back)
        if look.hair_top < 2.0:
            region[np.flatnonzero(on_head)[is_hair]] = HAIR
    side = np.cross(parts.up, parts.forward)
    rel = p - pelvis
    h, w, f = rel @ parts.up, rel @ side, rel @ parts.forward
    period = look.period[region]
    ph = look.phase[region]
    mix = np.zeros(len(p))
    tex = look.texture[region]
    stripes = tex == 1
    mix[stripes] = np.sin(2 * np.pi * h[stripes] / period[stripes] + ph[stripes, 0]) > 0
    checks = tex == 2
    mix[checks] = (np.sin(2 * np.pi * h[checks] / period[checks] + ph[checks, 0])
                   * np.sin(2 * np.pi * (w[checks] + f[checks]) / period[checks])) > 0
    noisy = tex == 3
    if noisy.any():
        q = np.stack([h, w, f], 1)[noisy] / period[noisy, None]
        m = np.sin(q @ np.array([2.1, 1.3, 0.7]) + ph[noisy, 0]) * np.sin(
            q @ np.array([-0.9, 2.3, 1.1]) + ph[noisy, 1])
        mix[noisy] = np.clip(0.5 + 1.5 * m, 0, 1)
    albedo = look.colours[region] * (1 - mix[:, None]) + look.colours2[region] * mix[:, None]
    lam = np.maximum(normal @ look.light, 0.0)
    sky = 0.8 + 0.2 * (normal @ look.up)  # ambient light from above is brighter
    shade = look.ambient * sky + look.diffuse * lam
    out = np.zeros((*depth.shape, 3))
    out[hit] = albedo * shade[:, None] * look.tint
    return out, hit


# -- backgrounds, occluders, camera effects -------------------------------------------------
def photo_window(rng: np.random.Generator, backgrounds: Backgrounds, n: int) -> np.ndarray:
    """A random window of a random photograph, resized to (n, n, 3) float32."""
    levels = backgrounds.pyramids[rng.integers(len(backgrounds))]
    H, W = levels[0].shape[:2]
    side = rng.uniform(0.15, 1.0) * min(H, W)
    aspect = np.exp(rng.uniform(-0.3, 0.3))
    sw, sh = min(side * aspect, W), min(side / aspect, H)
    x0, y0 = rng.uniform(0, W - sw), rng.uniform(0, H - sh)
    level = int(np.clip(np.floor(np.log2(max(min(sw, sh) / n, 1.0))), 0, len(levels) - 1))
    k = 2.0**level
    img = levels[level]
    win = img[int(y0 / k) : max(int((y0 + sh) / k), int(y0 / k) + 1),
              int(x0 / k) : max(int((x0 + sw) / k), int(x0 / k) + 1)]
    out = cv2.resize(win, (n, n), interpolation=cv2.INTER_LINEAR)
    if rng.uniform() < 0.5:
        out = out[:, ::-1]
    return out.astype(np.float32) * rng.uniform(0.8, 1.2, 3).astype(np.float32)


def background(rng: np.random.Generator, backgrounds: Backgrounds, n: int,
               cfg: RenderConfig) -> np.ndarray:
    """(n, n, 3) float RGB: a photograph window, or (rarely) a plain gradient."""
    if len(backgrounds) == 0 or rng.uniform() < cfg.plain_background_prob:
        c0, c1 = _random_colour(rng), _random_colour(rng)
        g = np.linspace(0, 1, n)[:, None, None]
        return np.broadcast_to(c0 * (1 - g) + c1 * g, (n, n, 3)).astype(np.float32)
    return photo_window(rng, backgrounds, n)


def occluder_mask(rng: np.random.Generator, n: int, joints_2d: np.ndarray) -> np.ndarray:
    """(n, n) bool: one occluder in front of the person -- a bar across the crop (table,
    railing), a pole, an ellipse or a polygon around a random joint (a bag, a chair back)."""
    mask = np.zeros((n, n), np.uint8)
    kind = rng.integers(4)
    centre = joints_2d[rng.integers(len(joints_2d))] + rng.normal(0, 0.05 * n, 2)
    if kind == 0:  # horizontal-ish bar
        half = rng.uniform(0.08, 0.2) * n
        ang = np.deg2rad(rng.normal(0, 10))
        d = np.array([np.cos(ang), np.sin(ang)]) * 2 * n
        nrm = np.array([-np.sin(ang), np.cos(ang)]) * half
        pts = np.array([centre - d - nrm, centre + d - nrm, centre + d + nrm, centre - d + nrm])
    elif kind == 1:  # vertical-ish pole
        half = rng.uniform(0.04, 0.14) * n
        ang = np.deg2rad(rng.normal(0, 10))
        d = np.array([np.sin(ang), np.cos(ang)]) * 2 * n
        nrm = np.array([np.cos(ang), -np.sin(ang)]) * half
        pts = np.array([centre - d - nrm, centre + d - nrm, centre + d + nrm, centre - d + nrm])
    elif kind == 2:
        axes = (int(rng.uniform(0.06, 0.25) * n), int(rng.uniform(0.06, 0.25) * n))
        cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, rng.uniform(0, 180), 0, 360,
                    1, -1)
        return mask.astype(bool)
    else:
        m = rng.integers(3, 7)
        ang = np.sort(rng.uniform(0, 2 * np.pi, m))
        rad = rng.uniform(0.08, 0.25, m) * n
        pts = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * rad[:, None]
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(bool)


def apply_occluders(rng: np.random.Generator, image: np.ndarray, joints_2d: np.ndarray,
                    body: np.ndarray, backgrounds: Backgrounds, cfg: RenderConfig) -> np.ndarray:
    """Paint 1..``max_occluders`` occluders over ``image`` (n, n, 3) float in place, filled with
    photo windows or shaded flat colours; each hides at most ``occluder_max_cover`` of the
    ``body`` (n, n) bool pixels. Returns the occluded pixels (n, n) bool."""
    n = image.shape[0]
    occluded = np.zeros((n, n), bool)
    body_px = max(int(body.sum()), 1)
    for _ in range(int(rng.integers(1, cfg.max_occluders + 1))):
        mask = occluder_mask(rng, n, joints_2d)
        if np.count_nonzero(mask & body) > cfg.occluder_max_cover * body_px:
            continue
        if rng.uniform() < cfg.occluder_photo_prob and len(backgrounds):
            fill = photo_window(rng, backgrounds, n)
        else:
            g = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), n)
            fill = np.broadcast_to(_random_colour(rng) * g[:, None, None], (n, n, 3))
        image[mask] = fill[mask]
        occluded |= mask
    return occluded


def joint_visibility(joints_2d: np.ndarray, joint_depth: np.ndarray, depth: np.ndarray,
                     index: np.ndarray, occluded: np.ndarray, reach: np.ndarray,
                     member: np.ndarray, in_image: np.ndarray) -> np.ndarray:
    """(17,) bool: each joint's pixel (``joints_2d`` (17, 2) in the rendered crop) is in the
    crop and the image (``in_image`` (17,)), not ``occluded`` (n, n), and the nearest surface
    there (``depth`` (n, n) optical z, ``index`` (n, n) its part, -1 none) is the joint's own:
    a part it belongs to (``member`` (17, P) bool) no nearer than the joint's depth
    (``joint_depth`` (17,)) - the reach of its own surface (``reach`` (17,)) - 4 cm."""
    n = depth.shape[0]
    px = np.floor(np.asarray(joints_2d) + 0.5).astype(np.int64)
    in_crop = ((px >= 0) & (px < n)).all(1)
    pc = np.clip(px, 0, n - 1)
    front, part = depth[pc[:, 1], pc[:, 0]], index[pc[:, 1], pc[:, 0]]
    is_member = (part >= 0) & (part < member.shape[1])
    is_member[is_member] = member[np.flatnonzero(is_member), part[is_member]]
    own = is_member & (front >= joint_depth - reach - SELF_OCCLUSION_MARGIN_M)
    return in_crop & np.asarray(in_image, bool) & ~occluded[pc[:, 1], pc[:, 0]] & own


def camera_effects(rng: np.random.Generator, image: np.ndarray, cfg: RenderConfig) -> np.ndarray:
    """Exposure (dark scenes included), gamma and white balance (one lookup table per
    channel), blur, sensor noise and JPEG compression: float RGB (0-255) in, uint8 out."""
    out = np.clip(image, 0, 255).astype(np.uint8)
    if rng.uniform() < cfg.dark_prob:
        gamma, gain = rng.uniform(1.0, 1.5), rng.uniform(0.15, 0.45)
    else:
        gamma, gain = np.exp(rng.normal(0, 0.15)), np.exp(rng.normal(0, 0.2))
    levels = np.arange(256.0)[:, None] / 255.0
    lut = np.clip(levels**gamma * gain * rng.uniform(0.92, 1.08, 3) * 255.0 + 0.5, 0, 255)
    out = cv2.LUT(out, lut.astype(np.uint8).reshape(256, 1, 3))
    if rng.uniform() < cfg.blur_prob:  # defocus, or just the optics' softness
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.3))
    if rng.uniform() < cfg.motion_blur_prob:  # the camera or the whole person moving
        length = int(rng.integers(3, 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.uniform() < cfg.noise_prob:
        noise = rng.standard_normal(out.shape, dtype=np.float32) * np.float32(rng.uniform(1, 8))
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.uniform() < cfg.jpeg_prob:
        quality = int(rng.integers(20, 90))
        _ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(out)


def inside_image_mask(M: np.ndarray, n: int, width: float, height: float) -> np.ndarray:
    """(n, n) bool: crop pixels whose image pixel (through ``M``) lies inside the image."""
    v, u = _pixel_grid(n)
    x = M[0, 0] * u + M[0, 1] * v + M[0, 2]
    y = M[1, 0] * u + M[1, 1] * v + M[1, 2]
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


# -- the renderer ---------------------------------------------------------------------------
class Renderer:
    """Renders training crops of people with the poses of one split.

    ``poses`` (N, 17, 3) float metres, world frame (z up); ``cameras`` single Human3.6M cameras
    (:class:`Camera`) used as pinhole cameras; ``backgrounds`` the photographs.
    """

    def __init__(self, poses: np.ndarray, cameras: list[Camera], backgrounds: Backgrounds,
                 cfg: RenderConfig | None = None, subjects: tuple[str, ...] = ()):
        self.poses = np.asarray(poses, np.float32)
        self.cameras = list(cameras)
        self.backgrounds = backgrounds
        self.cfg = cfg or RenderConfig()
        self.subjects = tuple(subjects)

    @classmethod
    def for_split(cls, split: str, cfg: RenderConfig | None = None,
                  data_dir: str | Path | None = None,
                  backgrounds: Backgrounds | None = None) -> Renderer:
        """A renderer over the ``train`` (S1, S5, S6, S7, S8) or ``test`` (S9, S11) poses, with
        the split's subjects' cameras; backgrounds fetched when missing."""
        from pose3d_tools.data.backgrounds import load_backgrounds
        from pose3d_tools.data.cameras import load_h36m_cameras, subject_cameras
        from pose3d_tools.data.h36m import SPLITS, FrameTable, load_split

        table = FrameTable(load_split(split, data_dir))
        cams = load_h36m_cameras(data_dir)
        cameras = [c for s in SPLITS[split] for c in subject_cameras(cams, s)]
        bgs = backgrounds if backgrounds is not None else load_backgrounds()
        subjects = tuple(sorted({c[0] for c in table.clips}))
        return cls(table.positions, cameras, bgs, cfg, subjects)

    def _camera_and_pose(self, rng: np.random.Generator, frame: int
                         ) -> tuple[Camera, np.ndarray, np.ndarray, float]:
        """A camera and the augmented pose of ``frame``: world (17, 3), camera frame (17, 3)
        (every joint at least 0.5 m in front), stature (m)."""
        cfg = self.cfg
        for _ in range(20):
            pose = augment_3d(self.poses[frame][None, None].astype(np.float64), rng,
                              cfg.augment)[0, 0]
            if not self.cameras or rng.uniform() < cfg.robot_camera_prob:
                cam = sample_robot_cameras(rng, pose[:1], cfg.robot)[0]
            else:
                cam = self.cameras[rng.integers(len(self.cameras))]
            joints = cam.world_to_camera(pose)
            if joints[:, 2].min() > 0.5:
                break
        stature = float(skeleton_stature(pose[None, None])[0])
        return cam, pose, joints, stature

    def _person(self, rng: np.random.Generator, joints: np.ndarray, up_cam: np.ndarray,
                size: float) -> tuple[Look, BodyParts]:
        """A random look and body (build, clothes, hair) for camera-frame ``joints``."""
        cfg = self.cfg
        girth, limb = rng.uniform(*cfg.girth_range), rng.uniform(*cfg.limb_girth_range)
        cloth = rng.uniform(*cfg.cloth_range_m)
        look = sample_look(rng, cfg, up_cam)
        long_hair = look.hair_top < 2.0 and rng.uniform() < cfg.long_hair_prob
        parts = body_parts(joints, up_cam, size, girth, limb, cloth,
                           shorts=rng.uniform() < cfg.shorts_prob,
                           short_sleeves=rng.uniform() < cfg.short_sleeves_prob,
                           long_hair=long_hair)
        return look, parts

    def _distractor(self, rng: np.random.Generator, cam: Camera, pose: np.ndarray
                    ) -> np.ndarray | None:
        """Camera-frame joints (17, 3) of another person standing beside, in front of or behind
        the rendered one (``pose`` (17, 3) world), or None if it would be behind the camera."""
        other = augment_3d(self.poses[rng.integers(len(self.poses))][None, None].astype(
            np.float64), rng, self.cfg.augment)[0, 0]
        R = np.asarray(cam.R, np.float64)
        right, ahead = R[:, 0].copy(), R[:, 2].copy()
        right[2] = ahead[2] = 0.0
        right /= max(np.linalg.norm(right), 1e-9)
        ahead /= max(np.linalg.norm(ahead), 1e-9)
        side = rng.choice([-1.0, 1.0]) * rng.uniform(*self.cfg.distractor_side_m)
        shift = pose[0, :2] - other[0, :2] + (side * right + rng.uniform(
            *self.cfg.distractor_depth_m) * ahead)[:2]
        other[:, :2] += shift
        joints = cam.world_to_camera(other)
        return joints if joints[:, 2].min() > 0.5 else None

    def sample(self, rng: np.random.Generator) -> Sample:
        """One rendered crop of a random pose of the split."""
        cfg = self.cfg
        S = cfg.size
        frame = int(rng.integers(len(self.poses)))
        cam, pose, joints, stature = self._camera_and_pose(rng, frame)
        K = intrinsics(cam)
        uv = project_pinhole(K, joints)
        box = np.concatenate([uv.min(0), uv.max(0)])
        roi = rois_from_boxes(box, cfg.crop_scale)[0]
        roi[:2] += rng.normal(0, cfg.centre_jitter, 2) * roi[2]
        roi[2] *= np.exp(rng.normal(0, cfg.side_jitter))
        if rng.uniform() < cfg.rotation_prob:
            roi[3] = np.deg2rad(rng.uniform(-cfg.rotation_max_deg, cfg.rotation_max_deg))
        n = int(np.clip(round(roi[2]), cfg.min_render_px, S))
        rays, M = crop_rays(K, roi, n)

        up_cam = np.asarray(cam.R, np.float64)[2]  # world z in the camera frame
        size = stature / REFERENCE_STATURE_M
        look, parts = self._person(rng, joints, up_cam, size)
        n_main = len(parts.r)
        a, b, r = parts.a, parts.b, parts.r
        other = None
        if rng.uniform() < cfg.distractor_prob:
            other = self._distractor(rng, cam, pose)
        if other is not None:
            size2 = float(skeleton_stature(other[None, None])[0]) / REFERENCE_STATURE_M
            look2, parts2 = self._person(rng, other, up_cam, size2)
            look2 = dataclasses.replace(look2, light=look.light, ambient=look.ambient,
                                        diffuse=look.diffuse, tint=look.tint)
            a, b, r = (np.concatenate([x, y]) for x, y in ((a, parts2.a), (b, parts2.b),
                                                            (r, parts2.r)))
        depth, index = cast_rays(rays, K, M, a, b, r)
        body, hit = shade_body(rays, depth, np.where(index < n_main, index, -1), parts,
                               joints[0], look)
        if other is not None:
            body2, hit2 = shade_body(rays, depth, np.where(index >= n_main, index - n_main, -1),
                                     parts2, other[0], look2)
            body[hit2] = body2[hit2]
            hit |= hit2
        image = background(rng, self.backgrounds, n, cfg)
        image[hit] = body[hit]

        j2d_n = image_to_crop(M, uv)
        occluded = np.zeros((n, n), bool)
        if rng.uniform() < cfg.occluder_prob:
            occluded = apply_occluders(rng, image, j2d_n, hit, self.backgrounds, cfg)

        image = camera_effects(rng, image, cfg)
        if n < S:
            image = cv2.resize(image, (S, S), interpolation=cv2.INTER_LINEAR)
        M_S = roi_transforms(roi, S)[0]
        image[~inside_image_mask(M_S, S, float(cam.w), float(cam.h))] = 0

        visible = joint_visibility(j2d_n, joints[:, 2], depth, index, occluded,
                                   surface_reach(joints, parts), part_membership(n_main),
                                   cam.in_image(np.floor(uv + 0.5)))
        target = camera_to_crop_axes(joints - joints[:1], roi[3])
        return Sample(
            image=image, joints=target.astype(np.float32),
            joints_2d=image_to_crop(M_S, uv).astype(np.float32), visible=visible, roi=roi,
            root=joints[0].copy(), K=K, frame=frame,
        )  # fmt: skip

    def render_batch(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """``n`` samples as arrays: images (n, S, S, 3) uint8, joints (n, 17, 3) float32,
        joints_2d (n, 17, 2) float32, visible (n, 17) bool -- for rendering on the fly."""
        samples = [self.sample(rng) for _ in range(n)]
        return stack_samples(samples)


def stack_samples(samples: list[Sample]) -> dict[str, np.ndarray]:
    return {
        "images": np.stack([s.image for s in samples]),
        "joints": np.stack([s.joints for s in samples]),
        "joints_2d": np.stack([s.joints_2d for s in samples]),
        "visible": np.stack([s.visible for s in samples]),
        "frames": np.array([s.frame for s in samples], np.int64),
        "rois": np.stack([s.roi for s in samples]).astype(np.float32),
        "roots": np.stack([s.root for s in samples]).astype(np.float32),
        "intrinsics": np.stack([s.K for s in samples]).astype(np.float32),
    }


def sample_rng(seed: int, i: int) -> np.random.Generator:
    """The generator of sample ``i`` of a dataset with ``seed``: samples do not depend on how
    the dataset is chunked."""
    return np.random.default_rng([seed, i])


ARRAYS = {  # name -> (per-sample shape given S, dtype)
    "images": (lambda s: (s, s, 3), np.uint8),
    "joints": (lambda s: (17, 3), np.float32),
    "joints_2d": (lambda s: (17, 2), np.float32),
    "visible": (lambda s: (17,), np.bool_),
    "frames": (lambda s: (), np.int64),
    "rois": (lambda s: (4,), np.float32),
    "roots": (lambda s: (3,), np.float32),
    "intrinsics": (lambda s: (3, 3), np.float32),
}


def build_dataset(renderer: Renderer, n: int, out_dir: str | Path, seed: int, split: str,
                  chunk: int = 256, log: bool = True, first: int = 0) -> dict:
    """Render samples ``first`` .. ``first + n - 1`` of ``seed`` into ``out_dir``: one
    memory-mappable .npy per array of :data:`ARRAYS`, ``meta.json`` and ``preview.png``;
    returns the meta (with the measured images per second)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    S = renderer.cfg.size
    files = {
        name: np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=dt,
                                        shape=(n, *shape(S)))
        for name, (shape, dt) in ARRAYS.items()
    }  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        batch = stack_samples([renderer.sample(sample_rng(seed, first + i))
                               for i in range(start, stop)])
        for name, arr in files.items():
            arr[start:stop] = batch[name]
        if log:
            rate = stop / (time.perf_counter() - t0)
            print(f"render {split}: {stop}/{n} ({rate:.1f} images/s)", flush=True)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    for arr in files.values():
        arr.flush()
    commit = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    meta = {
        "split": split,
        "code_commit": commit or None,
        "subjects": list(renderer.subjects),
        "n": n,
        "seed": seed,
        "first_sample": first,
        "size": S,
        "crop_scale": renderer.cfg.crop_scale,
        "mean": list(IMAGE_MEAN),
        "std": list(IMAGE_STD),
        "arrays": {name: f"{name}.npy" for name in ARRAYS},
        "targets": "joints: metres, root-relative (pelvis 0), crop axes (camera_to_crop_axes of "
        "the camera optical frame by the ROI angle); joints_2d: crop pixels; visible: not "
        "occluded at the joint's pixel; frames: index of the pose in FrameTable(load_split(split))"
        ".positions; rois: (cx, cy, side, angle) in the camera image; roots: "
        "the pelvis in the camera optical frame (m); intrinsics: the pinhole K (3, 3)",
        "rendered": "capsule bodies over real photographs (pose3d_tools.data.render); lens "
        "distortion ignored (pinhole)",
        "config": dataclasses.asdict(renderer.cfg),
        "backgrounds": renderer.backgrounds.sources,
        "pose_licence": "Human3.6M: non-commercial research only, and so is anything trained "
        "on it",
        "model_card": MODEL_CARD_PARAGRAPH,
        "seconds": round(seconds, 2),
        "images_per_second": round(n / max(seconds, 1e-9), 1),
        "cpu_seconds": round(cpu, 2),
        "images_per_cpu_second": round(n / max(cpu, 1e-9), 1),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    save_preview(out / "preview.png", files["images"][:32], files["joints_2d"][:32],
                 files["visible"][:32])
    return meta


def load_dataset(out_dir: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """A dataset written by :func:`build_dataset`: its arrays memory-mapped (read-only) by name
    (:data:`ARRAYS`) and its meta."""
    out = Path(out_dir)
    meta = json.loads((out / "meta.json").read_text())
    arrays = {name: np.load(out / f"{name}.npy", mmap_mode="r") for name in ARRAYS
              if (out / f"{name}.npy").exists()}
    return arrays, meta


def save_preview(path: str | Path, images: np.ndarray, joints_2d: np.ndarray,
                 visible: np.ndarray, columns: int = 8) -> None:
    """A PNG grid of crops (B, S, S, 3) RGB with their 2D joints: green visible, red hidden."""
    tiles = []
    for image, j2d, vis in zip(images, joints_2d, visible, strict=True):
        tile = np.ascontiguousarray(image[:, :, ::-1])
        for (u, v), ok in zip(np.rint(j2d).astype(int).tolist(), vis, strict=True):
            cv2.circle(tile, (u, v), 1, (0, 255, 0) if ok else (0, 0, 255), -1)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    cv2.imwrite(str(path), np.vstack(rows))


def add_render_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render training crops (capsule people over photographs)")
    p.add_argument("--split", choices=["train", "test"], required=True)
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--out", type=Path, required=True, help="output folder, e.g. out/renders/train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first", type=int, default=0,
                   help="index of the first sample: --first 20000 continues a 20000-image set")
    p.add_argument("--size", type=int, default=128, help="crop side S (px)")
    p.add_argument("--data-dir", default=None, help="Human3.6M folder (default: shared data)")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    cv2.setNumThreads(1)
    renderer = Renderer.for_split(args.split, RenderConfig(size=args.size), args.data_dir)
    meta = build_dataset(renderer, args.n, args.out, args.seed, args.split, first=args.first)
    print(f"{args.n} images in {args.out}: {meta['images_per_second']} images/s wall, "
          f"{meta['images_per_cpu_second']} per CPU second ({meta['seconds']} s), subjects "
          f"{', '.join(meta['subjects'])}")
    return 0
