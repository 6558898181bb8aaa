"""End-to-end image -> root-relative 3D joints (``pipeline.estimator: e2e``): an exported image
model that takes the place of the 2D -> 3D lifter.

The 2D stage still runs: it finds the people, gives their Human3.6M-17 keypoints (placement and
tracking need them; their box is the crop) and the angle of its own crop (so a person lying down
is cropped upright, as the lifters' 2D crops are). Each person is then cropped as the model was
trained -- the E2E contract shared by the renderer, the export and this runtime:

* ROI ``(cx, cy, side, angle)`` = ``crops.rois_from_boxes(box, crop_scale, angle)``, ``box`` the
  (x_min, y_min, x_max, y_max) of the person's H36M-17 joints, image pixels with pixel centres
  at integers; ``angle`` 0 unless the 2D stage's crop was rotated. The box takes all 17 joints
  the 2D stage places (seen or not: BlazePose places occluded and out-of-image joints too, and
  the training renders' box is of all 17), so an occluded leg does not shrink the crop; a person
  needs ``min_joints`` seen joints to be cropped at all;
* crop = ``cv2.warpAffine(image, crops.roi_transforms(roi, S)[0], (S, S), INTER_LINEAR |
  WARP_INVERSE_MAP, BORDER_CONSTANT 0)``, RGB, ``(pixel / 255 - mean) / std``, input "image"
  (B, 3, S, S) float32; S, crop_scale, mean and std come from the ONNX metadata;
* output "joints" (B, 17, 3): metres, pelvis-relative, in the crop's axes
  (``crops.camera_to_crop_axes`` of the camera optical frame: x right, y down, z forward when
  the angle is 0), turned back here with ``crops.crop_to_camera_axes``; "confidence" (B, 17)
  in [0, 1], the model's own per-joint confidence.

Off-centre perspective is ignored: a crop is treated as if the person stood on the optical axis.
A person seen at an angle theta off the axis gets a 3D pose turned by up to theta about the
camera's axes (30 deg at the side edge of a 60 deg horizontal field of view); the lifters,
which see the ray of the pelvis, do not have that error. All people of a frame go through the
model in one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pose3d_ros.backends import Backend, BackendError
from pose3d_ros.core.boxes import keypoint_boxes
from pose3d_ros.core.parameters import setting
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.crops import (
    crop_to_camera_axes,
    roi_corners,
    roi_transforms,
    rois_from_boxes,
)

KIND = "e2e"
MEAN = (0.485, 0.456, 0.406)  # RGB, of pixel / 255 (the contract's; checked, not configurable)
STD = (0.229, 0.224, 0.225)
INPUT, JOINTS, CONFIDENCE = "image", "joints", "confidence"
# Below this longer side (image pixels) a person's box is treated as empty (joints on one spot):
# a crop of it would be one pixel stretched over the whole model input.
MIN_BOX_PX = 2.0
# A crop with less than this fraction of its area inside the image shows only the black border.
MIN_INSIDE_FRACTION = 0.01
EXPORT_HINT = "re-export it with `pose3d-tools export` to the E2E contract"


@dataclass(frozen=True)
class E2ESettings:
    model: str = setting(
        "",
        "End-to-end image model for pipeline.estimator e2e: a shipped name (estimators/) or a "
        "path to an .onnx; empty: the one shipped, when exactly one is (none is shipped yet: "
        "docs/e2e_results.md)",
        read_only=True,
    )
    min_joints: int = setting(
        6,
        "Observed 2D joints a person needs to be cropped for the image model (fewer: no 3D for "
        "them in that frame)",
        range=(2, 17),
    )


@dataclass(frozen=True)
class E2EContract:
    """What the model's metadata says about its input (checked against the contract)."""

    name: str
    variant: str
    size: int  # S: crop side in model pixels
    crop_scale: float  # ROI side / longer side of the joints' box


@dataclass(frozen=True)
class Skipped:
    """A person the image model could not run on, and why."""

    index: int  # in the order the people were given
    kind: str  # e.g. "crop off the image": the warning's throttling key
    detail: str

    def text(self, who: str = "person") -> str:
        return f"e2e {self.kind}: {who} skipped ({self.detail})"


@dataclass(frozen=True)
class E2EResult:
    """The image model's answer for N people, in the order they were given."""

    joints: np.ndarray  # (N, 17, 3) metres, pelvis-relative, camera optical axes; NaN: skipped
    confidence: np.ndarray  # (N, 17) the model's per-joint confidence in [0, 1]; 0: skipped
    valid: np.ndarray  # (N,) bool: False for people skipped (see skipped)
    rois: np.ndarray  # (N, 4) the crops' ROIs (cx, cy, side, angle), image pixels / radians
    skipped: list[Skipped]  # one per person with valid False


def read_contract(metadata: dict[str, str], inputs: list, outputs: list) -> E2EContract:
    """The model's crop parameters from its metadata_props, or BackendError saying which entry
    breaks the E2E contract and how to fix it (one line)."""
    kind = metadata.get("kind")
    if kind != KIND:
        lifter = "frames" in metadata
        raise BackendError(
            f"not an end-to-end image model (metadata kind {kind!r}, want {KIND!r})"
            + ("; a 2D->3D lifter goes in pipeline.lifter.model" if lifter else f"; {EXPORT_HINT}")
        )
    joint_set = metadata.get("joint_set")
    if joint_set != H36M17.name:
        raise BackendError(
            f"metadata joint_set is {joint_set!r}, the runtime takes {H36M17.name!r}; {EXPORT_HINT}"
        )
    try:
        size = int(metadata["input_size"])
        crop_scale = float(metadata["crop_scale"])
    except (KeyError, ValueError) as e:
        raise BackendError(
            f"metadata input_size / crop_scale missing or not a number ({e}); {EXPORT_HINT}"
        ) from e
    if not 16 <= size <= 1024:
        raise BackendError(f"metadata input_size {size} is outside 16..1024; {EXPORT_HINT}")
    if not (math.isfinite(crop_scale) and 1.0 <= crop_scale <= 3.0):
        raise BackendError(f"metadata crop_scale {crop_scale} is outside 1.0..3.0; {EXPORT_HINT}")
    for key, want in (("mean", MEAN), ("std", STD)):
        try:
            got = tuple(float(v) for v in metadata[key].split(","))
        except (KeyError, ValueError):
            got = ()
        if len(got) != 3 or not np.allclose(got, want, rtol=0, atol=1e-6):
            raise BackendError(
                f"metadata {key} is {metadata.get(key)!r}, the contract's is "
                f"{','.join(map(str, want))} (RGB, of pixel / 255); {EXPORT_HINT}"
            )
    names = {t.name: t for t in inputs}
    image = names.get(INPUT)
    if image is None or len(inputs) != 1:
        raise BackendError(
            f"inputs are {sorted(names)}, the contract has one, {INPUT!r}; {EXPORT_HINT}"
        )
    want_shape = (3, size, size)
    got_shape = tuple(image.shape[1:])
    if len(image.shape) != 4 or any(
        isinstance(g, int) and g != w for g, w in zip(got_shape, want_shape, strict=True)
    ):
        raise BackendError(
            f"input {INPUT!r} has shape {tuple(image.shape)}, metadata input_size {size} means "
            f"(B, 3, {size}, {size}); {EXPORT_HINT}"
        )
    missing = {JOINTS, CONFIDENCE} - {t.name for t in outputs}
    if missing:
        raise BackendError(
            f"outputs {sorted(t.name for t in outputs)} lack {sorted(missing)}; {EXPORT_HINT}"
        )
    return E2EContract(
        name=metadata.get("model", "e2e"),
        variant=metadata.get("variant", "?"),
        size=size,
        crop_scale=crop_scale,
    )


def crop_angles(transforms: np.ndarray) -> np.ndarray:
    """(N,) rotation (radians, the ROI convention of stages/crops.py) of crop -> image affine
    maps (N, 2, 3) such as the 2D stage's ``Keypoints2D.crops``."""
    m = np.asarray(transforms, np.float64).reshape(-1, 2, 3)
    return np.arctan2(m[:, 1, 0], m[:, 0, 0])


def normalise(crops_bgr: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR crops -> (N, 3, S, S) float32 RGB, (pixel / 255 - mean) / std."""
    rgb = crops_bgr[..., ::-1].astype(np.float32) * np.float32(1.0 / 255.0)
    out = (rgb - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def crop_rois(image_bgr: np.ndarray, rois: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S, 3) uint8 crops of rotated ROIs (N, 4), exactly as the contract warps them."""
    out = np.zeros((len(rois), size, size, 3), np.uint8)
    for i, m in enumerate(roi_transforms(rois, size)):
        cv2.warpAffine(
            image_bgr,
            m,
            (size, size),
            dst=out[i],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return out


def inside_fraction(rois: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) fraction of each rotated ROI's area that lies on the image [-0.5, w-0.5] x
    [-0.5, h-0.5]."""
    frame = np.array(
        [[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]],
        np.float32,
    )
    out = np.zeros(len(rois))
    for i, (corners, side) in enumerate(zip(roi_corners(rois), rois[:, 2], strict=True)):
        area, _ = cv2.intersectConvexConvex(corners.astype(np.float32), frame)
        out[i] = max(float(area), 0.0) / max(float(side) ** 2, 1e-9)
    return out


class E2EEstimator:
    """Runs an exported E2E image model on all people of a frame at once (one inference)."""

    def __init__(self, backend: Backend, settings: E2ESettings | None = None) -> None:
        try:
            self.contract = read_contract(backend.metadata, backend.inputs, backend.outputs)
        except BackendError as e:
            raise BackendError(f"E2E model ({backend.describe()}): {e}") from None
        self.backend = backend
        self.settings = settings or E2ESettings()
        self.name = self.contract.name
        self.size = self.contract.size
        batch = backend.inputs[0].shape[0]
        self.batched = not isinstance(batch, int)  # a fixed batch of 1 falls back to a loop

    def model_input(self, image_bgr: np.ndarray, rois: np.ndarray) -> np.ndarray:
        """The model input (N, 3, S, S) float32 for ROIs (N, 4) of a BGR image (H, W, 3)."""
        return normalise(crop_rois(image_bgr, rois, self.size))

    def estimate(
        self,
        image_bgr: np.ndarray,
        points: np.ndarray,
        confidence: np.ndarray,
        angles: np.ndarray | None = None,
    ) -> E2EResult:
        """Root-relative 3D joints of N people from the BGR image (H, W, 3) and their H36M-17
        keypoints (N, 17, 2) pixels / confidence (N, 17); ``angles`` (N,) radians: the 2D
        stage's crop angles (None: upright). People whose crop cannot be made (too few joints,
        an empty box, a crop off the image, non-finite input or output) are skipped (valid
        False) with a ``Skipped`` record each; the others still run."""
        points = np.asarray(points, np.float64).reshape(-1, 17, 2)
        confidence = np.asarray(confidence, np.float64).reshape(-1, 17)
        n = len(points)
        skipped: list[Skipped] = []
        ok = np.ones(n, bool)

        def skip(bad: np.ndarray, kind: str, detail) -> None:
            for i in np.flatnonzero(ok & bad):
                ok[i] = False
                skipped.append(Skipped(int(i), kind, detail(i)))

        seen = confidence > 0
        finite = np.isfinite(points).all(-1)
        skip((seen & ~finite).any(1), "non-finite 2D keypoints", lambda i: "NaN/inf pixels")
        skip(
            seen.sum(1) < self.settings.min_joints,
            "too few joints for a crop",
            lambda i: f"{int(seen[i].sum())} observed, min_joints {self.settings.min_joints}",
        )
        boxes = keypoint_boxes(np.nan_to_num(points), finite, 1)  # all placed joints, seen or not
        extent = np.nan_to_num(boxes[:, 2:] - boxes[:, :2]).max(1)
        skip(extent < MIN_BOX_PX, "zero-size person box", lambda i: f"{extent[i]:.1f} px")
        rois = rois_from_boxes(np.nan_to_num(boxes), self.contract.crop_scale, angles)
        rois[~ok] = np.nan
        h, w = image_bgr.shape[:2]
        inside = np.zeros(n)
        inside[ok] = inside_fraction(rois[ok], w, h)
        skip(
            inside < MIN_INSIDE_FRACTION,
            "crop off the image",
            lambda i: f"{100 * inside[i]:.1f} % inside, centre {rois[i, 0]:.0f},{rois[i, 1]:.0f}",
        )
        joints = np.full((n, 17, 3), np.nan)
        conf = np.zeros((n, 17))
        idx = np.flatnonzero(ok)
        if len(idx):
            out_joints, out_conf = self._infer(self.model_input(image_bgr, rois[idx]))
            angle = np.nan_to_num(rois[idx, 3])
            for k, i in enumerate(idx):
                j = out_joints[k]
                c = out_conf[k]
                if not (np.isfinite(j).all() and np.isfinite(c).all()):
                    ok[i] = False
                    skipped.append(Skipped(int(i), "model output not finite", "NaN/inf"))
                    continue
                j = j - j[0]  # the contract's pelvis is 0; exactly so after any rounding
                joints[i] = crop_to_camera_axes(j, float(angle[k]))
                conf[i] = np.clip(c, 0.0, 1.0)
        return E2EResult(joints, conf, ok, rois, skipped)

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 17, 3) joints in crop axes and (B, 17) confidence, float64."""
        if self.batched or len(batch) == 1:
            runs = [self.backend.run({INPUT: batch})]
        else:
            runs = [self.backend.run({INPUT: batch[i : i + 1]}) for i in range(len(batch))]
        joints = np.concatenate([np.asarray(r[JOINTS], np.float64) for r in runs])
        conf = np.concatenate([np.asarray(r[CONFIDENCE], np.float64) for r in runs])
        return joints.reshape(len(batch), 17, 3), conf.reshape(len(batch), 17)

    def describe(self) -> str:
        c = self.contract
        return (
            f"e2e {c.name} ({c.variant}, {c.size}x{c.size} crops x{c.crop_scale:g}) "
            f"{self.backend.describe()}"
        )
