"""Depth-image fusion: an aligned depth image fixes how far away a placed person is.

Why: monocular placement (:mod:`pose3d_ros.stages.placement`) gets a person's distance from the
lifted skeleton's metric size, so a body 10 % larger than the lifter's average is placed 10 %
too far. Many robot cameras (RealSense, ZED, OAK-D, Kinect) also give a depth image; the depth
of the visible torso measures the distance directly and needs no body size.

Assumptions (say them to users):

* the depth image is **registered to the colour camera** (``aligned_depth_to_color``): pixel
  (u, v) of the depth image sees what pixel (u, v) of the colour image sees. A depth image of
  another size is taken to cover the **same field of view** (same optics, other resolution): a
  colour pixel is mapped by scaling its coordinates (pixel-centre convention); aspect ratios
  that differ by more than 2 % are refused, because then the two images cannot be the same view;
* values are the optical-frame z (REP-103: depth along the optical axis, not range along the
  ray), 16UC1 in millimetres or 32FC1 in metres; 0 and NaN (and inf) are missing.

Method, per person:

1. for each torso joint seen in 2D (shoulders, hips: rigid, rarely self-occluded, and the
   surface in front of them is close to the joint), the patch of depth pixels around its 2D
   keypoint; missing pixels are dropped and, of the rest, only those within ``edge_tolerance_m``
   of the patch's nearest quarter are kept, so a patch straddling the silhouette does not mix
   in the background behind the person;
2. the sensor sees the body's surface, the joint centre lies behind it: the surface point is
   moved ``surface_offset_m`` further along the viewing ray (default 0.08 m: the shoulder joint
   centre lies about 0.06 m behind the skin in front of or beside it, the hip joint about
   0.08-0.10 m behind the front of the thigh and about 0.12 m in front of the buttock; one value
   for all, with ``surface_offset_std_m`` = 0.03 m covering that spread);
3. each joint gives a root depth (its centre's z minus the lifted pose's root-relative z of that
   joint). Occlusion only ever makes a joint's estimate too near (an arm in front of the chest,
   the far hip hidden behind the near one when the person is seen side on), so the estimates are
   grouped: the largest group within ``consistency_m`` of each other is used, the farthest of
   equally large groups; too few agreeing joints give no measurement;
4. the root depth is fused with the monocular placement as one scalar measurement of z
   (information form, i.e. a Kalman update): the update moves the root along the direction the
   placement's covariance correlates with depth, which for a size error is the viewing ray. The
   placement's covariance is first widened by ``prior_scale_std`` (the lifter's body-size
   uncertainty) along the ray, because without it a perfect 2D fit claims a depth it cannot know.

Noise model of one depth reading: ``sigma(z) = noise_m + noise_per_m * z + noise_per_m2 * z^2``
(time-of-flight sensors grow about linearly, stereo quadratically). The sensor error is taken as
common to all torso joints (calibration and scale errors are), so averaging joints reduces only
the surface-offset error. Nothing here raises for bad data: every refusal is a ``reason``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pose3d_ros.core.image_encoding import ImageEncodingError
from pose3d_ros.core.parameters import setting
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.placement import Placement

DEPTH_ENCODINGS = ("16UC1", "32FC1")
TORSO_JOINTS = tuple(H36M17.index(j) for j in ("l_shoulder", "r_shoulder", "l_hip", "r_hip"))
_ASPECT_TOLERANCE = 0.02
# Unit sniffing: people are 0.2-30 m away. 16UC1 millimetres of a scene whose median is below
# 20 means the values are metres (or decimetres); 32FC1 metres above 200 are millimetres.
_MM_MEDIAN_MIN = 20.0
_M_MEDIAN_MAX = 200.0


class DepthImageError(ImageEncodingError):
    """A depth image that cannot be used (encoding, size, units); the message says why."""


@dataclass(frozen=True)
class DepthSettings:
    """Fusion of an aligned depth image with the monocular placement (``pipeline.depth.*``)."""

    patch_radius_px: int = setting(
        4,
        "Half size of the square of depth pixels read around each torso keypoint, in colour-image "
        "pixels (scaled with the depth image's resolution, at least 1 depth pixel)",
        range=(1, 50),
        unit="px",
    )
    min_valid_fraction: float = setting(
        0.25,
        "Fewest valid (non-zero, finite) depth pixels in a joint's patch, as a fraction of the "
        "patch, for the joint to be measured",
        range=(0.0, 1.0),
    )
    edge_tolerance_m: float = setting(
        0.15,
        "Pixels of a patch further than this behind its nearest quarter are background (the "
        "patch straddles the silhouette) and are not used",
        range=(0.01, 5.0),
        unit="m",
    )
    min_joints: int = setting(
        2,
        "Fewest torso joints (shoulders, hips) with consistent depth needed to use the depth",
        range=(1, 4),
    )
    min_confidence: float = setting(
        0.3, "Torso keypoints with 2D confidence below this are not measured", range=(0.0, 1.0)
    )
    consistency_m: float = setting(
        0.1,
        "Torso joints agree when their root depths are within this of each other; the largest "
        "agreeing group is used (the farthest of equal groups: an occluder is always nearer), "
        "the rest are taken as occluded (an arm in front, the far hip of a person seen side on)",
        range=(0.01, 5.0),
        unit="m",
    )
    surface_offset_m: float = setting(
        0.08,
        "Distance from the body surface the sensor sees to the joint centre behind it, along the "
        "viewing ray (shoulders about 0.06 m, hips 0.08-0.12 m)",
        range=(0.0, 0.5),
        unit="m",
    )
    surface_offset_std_m: float = setting(
        0.03,
        "Standard deviation of that offset between people, postures and joints",
        range=(0.0, 0.5),
        unit="m",
    )
    noise_m: float = setting(
        0.005, "Depth noise, constant part (standard deviation)", range=(0.0, 1.0), unit="m"
    )
    noise_per_m: float = setting(
        0.01,
        "Depth noise growing with the distance: standard deviation per metre of depth "
        "(0.01 = 1 % of the distance, typical of time-of-flight and active stereo up to 4 m)",
        range=(0.0, 1.0),
    )
    noise_per_m2: float = setting(
        0.0,
        "Depth noise growing with the square of the distance (stereo), per m^2 of depth",
        range=(0.0, 1.0),
        unit="1/m",
    )
    min_depth_m: float = setting(
        0.2, "Depth readings nearer than this are missing", range=(0.0, 100.0), unit="m"
    )
    max_depth_m: float = setting(
        15.0, "Depth readings further than this are missing", range=(0.1, 1000.0), unit="m"
    )
    prior_scale_std: float = setting(
        0.1,
        "Relative uncertainty of the monocular distance (the lifter's body-size error) assumed "
        "when fusing; the part already in placement.scale_std is not counted twice",
        range=(0.0, 1.0),
    )
    max_innovation_sigma: float = setting(
        5.0,
        "Depth that disagrees with the monocular placement by more than this many standard "
        "deviations of their difference is not used (an occluder or another person in front)",
        range=(1.0, 100.0),
    )


@dataclass(frozen=True)
class DepthImage:
    """An aligned depth image: ``values`` (H, W) as received, ``scale`` metres per unit.

    The raw array is kept (a view of the message) and only the patches that are read are
    converted, so a 16UC1 frame costs nothing until a person is measured.
    """

    values: np.ndarray  # (H, W) uint16 millimetres or float32 metres
    scale: float  # metres per unit: 0.001 for 16UC1, 1 for 32FC1
    encoding: str

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def height(self) -> int:
        return int(self.values.shape[0])

    def metres(self, rows: slice, cols: slice) -> np.ndarray:
        """A patch in metres (float64), missing readings (0, NaN, inf) as NaN."""
        patch = self.values[rows, cols].astype(np.float64) * self.scale
        patch[~np.isfinite(patch) | (patch <= 0)] = np.nan
        return patch

    def pixel_scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors from colour-image pixels (width x height) to this image's pixels; raises
        DepthImageError if the two cannot show the same field of view (other aspect ratio)."""
        sx, sy = self.width / width, self.height / height
        if abs(sx / sy - 1.0) > _ASPECT_TOLERANCE:
            raise DepthImageError(
                f"depth image {self.width}x{self.height} and colour image {width}x{height} have "
                "different aspect ratios: not a registered (aligned) depth image"
            )
        return sx, sy


def depth_image(array: np.ndarray, encoding: str) -> DepthImage:
    """Check a depth array (H, W) and its units; raises DepthImageError with the reason.

    16UC1 must be millimetres and 32FC1 metres (REP-118); the median of a sparse grid of valid
    pixels tells metres stored as 16UC1 or millimetres stored as 32FC1 apart, because people
    are never 2 cm or 200 m away. An image with no valid pixel is accepted (every person then
    gets "too few valid depth samples").
    """
    if encoding not in DEPTH_ENCODINGS:
        raise DepthImageError(
            f"depth encoding {encoding!r} is not supported; use 16UC1 (mm) or 32FC1 (m)"
        )
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    want = np.uint16 if encoding == "16UC1" else np.float32
    if arr.ndim != 2 or arr.dtype.newbyteorder("=") != want or min(arr.shape) == 0:
        raise DepthImageError(
            f"depth {encoding} needs an HxW {np.dtype(want)} array, got {arr.shape} {arr.dtype}"
        )
    step = max(1, min(arr.shape) // 64)
    grid = arr[::step, ::step].astype(np.float64)
    grid = grid[np.isfinite(grid) & (grid > 0)]
    if grid.size:
        median = float(np.median(grid))
        if encoding == "16UC1" and median < _MM_MEDIAN_MIN:
            raise DepthImageError(
                f"16UC1 depth values look like metres (median {median:g}), 16UC1 must be "
                "millimetres: fix the driver's depth units or publish 32FC1 metres"
            )
        if encoding == "32FC1" and median > _M_MEDIAN_MAX:
            raise DepthImageError(
                f"32FC1 depth values look like millimetres (median {median:g}), 32FC1 must be "
                "metres: fix the driver's depth units or publish 16UC1 millimetres"
            )
    return DepthImage(arr, 0.001 if encoding == "16UC1" else 1.0, encoding)


@dataclass(frozen=True)
class DepthFusion:
    """Result of :func:`fuse_depth`: the placement to use and whether depth changed it."""

    placement: Placement  # fused (constraint "depth") when used, else the input unchanged
    used: bool
    reason: str = ""  # why the depth was not used ("" when used)
    root_depth_m: float = float("nan")  # measured root z, camera optical frame
    root_depth_std_m: float = float("nan")  # its standard deviation
    joints_used: int = 0


def depth_noise_std(z: np.ndarray | float, s: DepthSettings) -> np.ndarray | float:
    """Standard deviation (m) of one depth reading at depth ``z`` (m)."""
    return s.noise_m + s.noise_per_m * z + s.noise_per_m2 * np.square(z)


def patch_depth(
    depth: DepthImage, pixel: np.ndarray, scale: tuple[float, float], s: DepthSettings
) -> tuple[float, str]:
    """Robust surface depth (m) around one colour-image ``pixel`` (2,), or NaN and why not."""
    sx, sy = scale
    u, v = (pixel[0] + 0.5) * sx - 0.5, (pixel[1] + 0.5) * sy - 0.5
    if not (np.isfinite(u) and np.isfinite(v)):
        return float("nan"), "no keypoint"
    r = max(1, round(s.patch_radius_px * 0.5 * (sx + sy)))
    cu, cv = round(u), round(v)
    if not (0 <= cu < depth.width and 0 <= cv < depth.height):
        return float("nan"), "outside the depth image"
    rows = slice(max(0, cv - r), min(depth.height, cv + r + 1))
    cols = slice(max(0, cu - r), min(depth.width, cu + r + 1))
    patch = depth.metres(rows, cols).ravel()
    patch[(patch < s.min_depth_m) | (patch > s.max_depth_m)] = np.nan
    good = patch[np.isfinite(patch)]
    if good.size < max(1, s.min_valid_fraction * (2 * r + 1) ** 2):
        return float("nan"), "hole"
    near = np.quantile(good, 0.25)
    body = good[good <= near + s.edge_tolerance_m]
    return float(np.median(body)), ""


def fuse_depth(
    placement: Placement,
    joints_rel: np.ndarray,
    pixels: np.ndarray,
    keypoints_norm: np.ndarray,
    confidence: np.ndarray,
    depth: DepthImage,
    image_size: tuple[int, int],
    settings: DepthSettings | None = None,
) -> DepthFusion:
    """Fuse a person's torso depth with their monocular placement.

    ``joints_rel`` (17, 3) Human3.6M-17 root-relative metres (camera orientation);
    ``pixels`` (17, 2) keypoints in colour-image pixels (where the depth is read);
    ``keypoints_norm`` (17, 2) the same undistorted and normalised (the viewing rays);
    ``confidence`` (17,); ``image_size`` the colour image's (width, height). The placed body
    is ``placement.scale * joints_rel + placement.root``; a size-prior placement's covariance is
    widened to ``prior_scale_std`` along the ray (minus the ``placement.scale_std`` it already
    holds), a floor placement's is used as it is (the floor fixed the size). The fused placement
    keeps projecting onto the 2D: its scale follows the root's depth. Bad data gives
    ``used=False`` with a reason, never an exception.
    """
    s = settings or DepthSettings()
    if not placement.ok:
        return DepthFusion(placement, False, f"no monocular placement ({placement.reason})")
    try:
        scale = depth.pixel_scale(*image_size)
    except DepthImageError as e:
        return DepthFusion(placement, False, str(e))
    X = np.asarray(joints_rel, np.float64)
    px = np.asarray(pixels, np.float64)
    rays = np.asarray(keypoints_norm, np.float64)
    conf = np.asarray(confidence, np.float64)
    body_scale = float(getattr(placement, "scale", 1.0))

    # 1-3. One root-depth estimate per torso joint with a usable patch.
    estimates, holes = [], 0
    for j in TORSO_JOINTS:
        if not (conf[j] >= s.min_confidence and np.isfinite(X[j]).all()):
            continue
        if not np.isfinite(rays[j]).all():
            continue
        z_surface, why = patch_depth(depth, px[j], scale, s)
        if why:
            holes += why == "hole"
            continue
        ray_length = float(np.sqrt(1.0 + rays[j] @ rays[j]))  # |(x, y, 1)|: offset along the ray
        estimates.append(z_surface + s.surface_offset_m / ray_length - body_scale * X[j, 2])
    if len(estimates) < s.min_joints:
        return DepthFusion(
            placement,
            False,
            f"too few valid depth samples: {len(estimates)} torso joints measured "
            f"({holes} in holes), need {s.min_joints}",
        )
    est = np.asarray(estimates)
    agree = _agreeing(est, s.consistency_m)
    if agree.size < s.min_joints:
        return DepthFusion(
            placement,
            False,
            f"inconsistent depth: torso joints give root depths {np.round(est, 2).tolist()} m, "
            f"fewer than {s.min_joints} within {s.consistency_m:g} m of each other",
        )
    z_meas = float(agree.mean())
    sensor = float(depth_noise_std(z_meas, s))
    var_meas = sensor**2 + s.surface_offset_std_m**2 / agree.size

    # 4. Kalman update with the scalar measurement z = H t, H = (0, 0, 1).
    t = np.asarray(placement.root, np.float64)
    P = np.asarray(placement.covariance, np.float64)
    if getattr(placement, "constraint", "size_prior") == "size_prior":
        counted = float(getattr(placement, "scale_std", 0.0))
        counted = counted if np.isfinite(counted) else 0.0
        P = P + max(0.0, s.prior_scale_std**2 - counted**2) * np.outer(t, t)
    innovation = z_meas - t[2]
    S = P[2, 2] + var_meas
    if abs(innovation) > s.max_innovation_sigma * np.sqrt(S):
        return DepthFusion(
            placement,
            False,
            f"depth disagrees with the monocular placement: torso depth gives a root at "
            f"{z_meas:.2f} m, the body size at {t[2]:.2f} m (more than "
            f"{s.max_innovation_sigma:g} sigma apart)",
            z_meas,
            float(np.sqrt(var_meas)),
            int(agree.size),
        )
    gain = P[:, 2] / S
    root = t + gain * innovation
    cov = P - np.outer(gain, P[2, :])
    cov = 0.5 * (cov + cov.T)
    return DepthFusion(
        _marked(placement, root, cov), True, "", z_meas, float(np.sqrt(var_meas)), int(agree.size)
    )


def _agreeing(estimates: np.ndarray, tolerance: float) -> np.ndarray:
    """The largest group of estimates within ``tolerance`` of each other; of equally large
    groups the farthest, since occlusion (the only way a seen surface errs besides noise) makes
    an estimate too near, never too far."""
    best = estimates[:0]
    for top in np.sort(estimates)[::-1]:
        group = estimates[(estimates <= top) & (estimates >= top - tolerance)]
        if group.size > best.size:
            best = group
    return best


def _marked(placement: Placement, root: np.ndarray, cov: np.ndarray) -> Placement:
    """The placement with the fused root and covariance and constraint "depth". The 2D fixes
    the root only up to the body's scale (``(s, t)`` and ``(k s, k t)`` project alike), so the
    scale follows the root's depth and its uncertainty the fused depth variance."""
    names = {f.name for f in dataclasses.fields(Placement)}
    extra: dict = {"constraint": "depth"} if "constraint" in names else {}
    if "scale" in names:
        ratio = root[2] / placement.root[2]
        extra["scale"] = placement.scale * ratio
        extra["scale_std"] = extra["scale"] * float(np.sqrt(cov[2, 2])) / root[2]
    return dataclasses.replace(placement, root=root, covariance=cov, **extra)
