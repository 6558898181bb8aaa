"""The product: one camera image in, tracked metric 3D skeletons out.

    image -> rotated person ROIs (BlazePose detector + SSDLite boxes fused, or crops following
             the tracks' own landmarks) -> 2D keypoints (batched)
          -> Human3.6M-17 -> tracking (stable ids) -> undistort + One-Euro smoothing
          -> per-track causal windows -> lifter (all people in one inference)
          -> joint refinement of the joints the 2D stage did not see (optional, one inference)
          -> metric placement (root translation + covariance) -> PersonPose list

The same object is driven by pose3d_node (ROS) and `pose3d run` (offline), so what is tested
offline is what runs on the robot. No ROS, no torch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from pose3d_ros.assets import estimator_path, find_model_dir, lifter_path, model_path, refiner_path
from pose3d_ros.backends import BACKEND_CHOICES, Backend, BackendError, load_backend
from pose3d_ros.backends.tensorrt.backend import TensorRTEngineSettings
from pose3d_ros.core.boxes import keypoint_boxes, nms
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.floor import FloorPlane
from pose3d_ros.core.parameters import SettingError, group, setting
from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.core.skeletons import H36M17
from pose3d_ros.stages.appearance import torso_histograms
from pose3d_ros.stages.crops import empty_rois, rois_from_boxes
from pose3d_ros.stages.depth_fusion import DepthImage, DepthSettings, fuse_depth
from pose3d_ros.stages.detection import DetectorSettings, PersonDetector
from pose3d_ros.stages.filters import OneEuroFilterBank, OneEuroSettings
from pose3d_ros.stages.fusion import ProposalSettings, dedupe_rois, fuse, roi_extent_boxes
from pose3d_ros.stages.image_estimation import (
    E2EEstimator,
    E2ESettings,
    crop_angles,
    read_contract,
)
from pose3d_ros.stages.keypoints2d import KeypointEstimator, KeypointSettings, to_h36m17
from pose3d_ros.stages.lifter_input import LifterInputInfo, lifter_features
from pose3d_ros.stages.lifting import Lifter, LifterSettings, LiftResult
from pose3d_ros.stages.placement import PlacementSettings, place_person
from pose3d_ros.stages.pose_detection import PoseDetector
from pose3d_ros.stages.reattach import Reattacher
from pose3d_ros.stages.refinement import JointRefiner, RefinementSettings
from pose3d_ros.stages.track_windows import PendingWindow, TrackWindows, TrackWindowsSettings
from pose3d_ros.stages.tracking import Tracker, TrackerSettings, TrackUpdate

ESTIMATOR_CHOICES = ("lifter", "e2e")


@dataclass(frozen=True)
class PipelineSettings:
    backend: str = setting(
        "auto",
        "Inference backend for all models (auto: TensorRT when a GPU, tensorrt, cuda-python and "
        "onnx are all present and the engine loads, else ONNX Runtime; the reason is logged)",
        choices=BACKEND_CHOICES,
        read_only=True,
    )
    threads: int = setting(
        0,
        "CPU threads per model for ONNX Runtime (0 = its default)",
        range=(0, 64),
        read_only=True,
    )
    model_dir: str = setting(
        "",
        "Directory of built 2D models (empty: $POSE3D_MODEL_DIR, else the first of "
        "<checkout>/data/models, <install>/share/pose3d_ros/models, "
        "~/.local/share/pose3d_ros/models that has a manifest.json)",
        read_only=True,
    )
    keypoint_model: str = setting(
        "blazepose_full",
        "2D keypoint model",
        choices=("blazepose_lite", "blazepose_full", "blazepose_heavy"),
        read_only=True,
    )
    detect_every: int = setting(
        5,
        "Run the person detectors every N frames; in between, crops follow the tracked "
        "people's keypoints (1 = detect every frame)",
        range=(1, 1000),
    )
    publish_coasting: bool = setting(
        True,
        "Also report people hidden for less than the tracker's grace period "
        "(tracking_state COASTING, predicted root, no joints)",
    )
    proposals: ProposalSettings = group(ProposalSettings)
    detector: DetectorSettings = group(DetectorSettings)
    keypoints: KeypointSettings = group(KeypointSettings)
    tracker: TrackerSettings = group(TrackerSettings)
    smoothing: OneEuroSettings = group(OneEuroSettings)
    windows: TrackWindowsSettings = group(TrackWindowsSettings)
    estimator: str = setting(
        "lifter",
        "What turns each person into root-relative 3D joints: lifter (the 2D keypoints through "
        "lifter.model) or e2e (the person's image crop through e2e.model, an end-to-end image "
        "model; the 2D stage still gives boxes, crop angles and the 2D for placement)",
        choices=ESTIMATOR_CHOICES,
        read_only=True,
    )
    lifter: LifterSettings = group(LifterSettings)
    e2e: E2ESettings = group(E2ESettings)
    refinement: RefinementSettings = group(RefinementSettings)
    placement: PlacementSettings = group(PlacementSettings)
    depth: DepthSettings = group(DepthSettings)
    tensorrt: TensorRTEngineSettings = group(TensorRTEngineSettings)

    def backend_options(self, model: str) -> dict:
        """load_backend options of one model ("detector", "keypoints", "lifter", "e2e"): ONNX
        Runtime threads plus the TensorRT engine settings (each backend takes its own). INT8
        applies to the lifter only (calibration inputs exist only for it); the image models
        are then built FP16."""
        options: dict = {"threads": self.threads} if self.threads else {}
        trt = asdict(self.tensorrt)
        if model != "lifter" and trt["precision"] == "int8":
            trt.update(precision="fp16", calibration_file="")
        return {**options, **trt}


@dataclass
class FrameResult:
    poses: list[PersonPose]
    timings_ms: dict[str, float]
    warnings: list[str] = field(default_factory=list)


@dataclass
class ObservedFrame:
    """A frame after detection, 2D keypoints and tracking, its people's 2D pushed into their
    tracks' windows (PosePipeline.observe). PosePipeline.finish lifts, places and re-attaches
    them: at once for a causal lifter, once the windows reach the frames after it for a centred
    one (lookahead_pipeline.py). Arrays are over the N people kept, Human3.6M-17."""

    image: np.ndarray  # (H, W, 3) BGR: torso colours for re-attachment, E2E crops
    camera: CameraModel
    stamp: float  # s
    depth: DepthImage | None
    points: np.ndarray  # (N, 17, 2) px
    conf: np.ndarray  # (N, 17)
    boxes: np.ndarray  # (N, 4) px, tight around the seen keypoints
    scores: np.ndarray  # (N,)
    angles: np.ndarray  # (N,) rad, of the 2D crops
    update: TrackUpdate  # the tracker's assignments in this frame
    live: list[int]  # the tracker's track ids after this frame
    norm: np.ndarray  # (N, 17, 2) undistorted normalised image coordinates
    norm_now: list[np.ndarray]  # per observed track: the (smoothed) 2D in its window
    windows: list[PendingWindow]  # per observed track: this frame's window
    timings_ms: dict[str, float]
    warnings: list[str]
    observe_ms: float  # time observe took


@dataclass
class _Motion:
    """Root history of a track, for its velocity (exponentially smoothed)."""

    stamp: float
    root: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))


@dataclass(frozen=True)
class PipelineModels:
    """The loaded models of a pipeline; the 3D one is the lifter or, with ``estimator: e2e``,
    the end-to-end image model (``lifter`` None). Pipelines of several cameras can share one set
    (one copy of each model in memory; backends/batching.py merges their concurrent calls)."""

    detector: Backend
    pose_detector: Backend
    keypoints: Backend
    lifter: Backend | None = None  # None with estimator e2e
    e2e: Backend | None = None  # estimator e2e: the end-to-end image model
    refiner: Backend | None = None  # the joint refinement network, when enabled

    @classmethod
    def load(cls, s: PipelineSettings) -> PipelineModels:
        """Load (and verify) the models the read-only settings name."""
        model_dir = find_model_dir(s.model_dir or None)
        # Found first: a missing refiner stops start-up before the other models are loaded.
        refiner = refiner_path(s.refinement.model, model_dir) if s.refinement.enabled else None
        return cls(
            detector=load_backend(
                model_path("person_detector", model_dir), s.backend, **s.backend_options("detector")
            ),
            pose_detector=load_backend(
                model_path("pose_detector", model_dir), s.backend, **s.backend_options("detector")
            ),
            keypoints=load_backend(
                model_path(s.keypoint_model, model_dir), s.backend, **s.backend_options("keypoints")
            ),
            lifter=None
            if s.estimator == "e2e"
            else load_backend(
                lifter_path(s.lifter.model, model_dir), s.backend, **s.backend_options("lifter")
            ),
            e2e=_load_e2e(s, model_dir) if s.estimator == "e2e" else None,
            refiner=load_backend(refiner, s.backend, **s.backend_options("refiner"))
            if refiner is not None
            else None,
        )


def _load_e2e(s: PipelineSettings, model_dir) -> Backend:
    """The E2E image model, its metadata checked against the contract at load (one line naming
    the file and the fix when it breaks it)."""
    path = estimator_path(s.e2e.model, model_dir)
    backend = load_backend(path, s.backend, **s.backend_options("e2e"))
    try:
        read_contract(backend.metadata, backend.inputs, backend.outputs)
    except BackendError as e:
        raise BackendError(f"E2E model {path}: {e}") from None
    return backend


class PosePipeline:
    def __init__(
        self,
        settings: PipelineSettings | None = None,
        models: PipelineModels | None = None,
        first_track_id: int = 1,
        allow_lookahead: bool = False,
    ) -> None:
        """``models``: already loaded (shared with other pipelines), else loaded from the
        settings; ``first_track_id``: where this pipeline's ids start (cameras of one node use
        disjoint ranges); ``allow_lookahead``: accept a centred lifter (recorded video only:
        lookahead_pipeline.py drives it), else it is refused with a SettingError."""
        s = settings or PipelineSettings()
        self.settings = s
        self.models = models or PipelineModels.load(s)
        self._detector_backend = self.models.detector
        self._pose_detector_backend = self.models.pose_detector
        self._keypoint_backend = self.models.keypoints
        self._lifter_backend = self.models.lifter
        self.detector = PersonDetector(self._detector_backend, s.detector)
        self.pose_detector = PoseDetector(
            self._pose_detector_backend,
            s.proposals.blazepose_score_threshold,
            s.proposals.blazepose_nms_iou,
        )
        self.keypoints = KeypointEstimator(self._keypoint_backend, s.keypoints)
        # The 3D stage: a lifter, or (estimator e2e) the image model; track windows then hold
        # one frame (they only feed a lifter).
        self.lifter = Lifter(self._lifter_backend, s.lifter) if self.models.lifter else None
        self.e2e = E2EEstimator(self.models.e2e, s.e2e) if self.models.e2e else None
        self._window_frames = self.lifter.frames if self.lifter else 1
        self._lookahead = self.lifter.latency_frames if self.lifter else 0
        if self._lookahead and not allow_lookahead:
            raise SettingError(
                f"pipeline.lifter.model {s.lifter.model!r} is a centred lifter (latency "
                f"{self._lookahead} frames: it needs the frames after the one it describes); "
                "use a causal lifter (latency 0, e.g. temporal_htnet_t9) for live images, and "
                "centred lifters with `pose3d run` on recorded video"
            )
        refiner = self.models.refiner
        self.refiner = JointRefiner(refiner) if refiner is not None else None
        self.tracker = Tracker(s.tracker, first_id=first_track_id)
        self.reattach = Reattacher(s.tracker.reattach)
        self.smoothing = OneEuroFilterBank(s.smoothing)
        self.windows = TrackWindows(self._window_frames, s.windows, lookahead=self._lookahead)
        self._motion: dict[int, _Motion] = {}
        self._last_update: list = []
        self._frame_index = 0
        # Floor plane in the camera optical frame: from TF (set_floor) before the static one.
        self._floor_tf: FloorPlane | None = None
        self._floor_static = s.placement.floor.plane()

    def describe(self) -> str:
        return (
            f"detectors {self.settings.proposals.detectors}: pose "
            f"{self._pose_detector_backend.describe()}, pedestrian "
            f"{self._detector_backend.describe()}; "
            f"keypoints {self.settings.keypoint_model} {self._keypoint_backend.describe()}; "
            + (
                f"lifter {self.lifter.name} ({self.lifter.frames} frames, latency "
                f"{self.lifter.latency_frames} frames) {self._lifter_backend.describe()}"
                if self.lifter
                else self.e2e.describe()
            )
            + (f"; refiner {self.refiner.name} {self.refiner.backend.describe()}"
               if self.refiner is not None else "")
        )

    def update_settings(self, new: PipelineSettings) -> None:
        """Apply settings that can change while running; the rest are read-only."""
        old = self.settings
        self.detector.settings = new.detector
        self.pose_detector.score_threshold = new.proposals.blazepose_score_threshold
        self.pose_detector.nms_iou = new.proposals.blazepose_nms_iou
        self.keypoints.settings = new.keypoints
        self.tracker.settings = new.tracker
        self.reattach.settings = new.tracker.reattach
        if self.lifter:
            self.lifter.settings = new.lifter
        if self.e2e:
            self.e2e.settings = new.e2e
        if new.smoothing != old.smoothing:
            self.smoothing = OneEuroFilterBank(new.smoothing)
        if new.windows != old.windows:
            self.windows = TrackWindows(self._window_frames, new.windows, lookahead=self._lookahead)
        self._floor_static = new.placement.floor.plane()
        self.settings = new

    @property
    def floor(self) -> FloorPlane | None:
        """The floor plane placement uses: the last one from TF, else the static setting."""
        return self._floor_tf if self._floor_tf is not None else self._floor_static

    def set_floor(self, plane: FloorPlane | None) -> None:
        """Floor plane in the camera optical frame from TF (None: TF has none, use the static
        ``placement.floor`` plane if enabled). People on it are placed with the floor
        constraint (stages/placement.py)."""
        self._floor_tf = plane

    def reset(self) -> None:
        """Forget all people (e.g. after a jump in time)."""
        self.tracker.reset()
        self._forget_motion()

    def _forget_motion(self) -> None:
        self._last_update = []
        self.smoothing = OneEuroFilterBank(self.settings.smoothing)
        self.windows = TrackWindows(
            self._window_frames, self.settings.windows, lookahead=self._lookahead
        )
        self._motion.clear()
        self.reattach.reset()

    # ------------------------------------------------------------------ per frame

    def process(
        self,
        image: np.ndarray,
        camera: CameraModel,
        stamp: float,
        depth: DepthImage | None = None,
    ) -> FrameResult:
        """One frame: BGR ``image`` (H, W, 3), its camera, its stamp (s) and optionally the
        depth image registered to it (stages/depth_fusion.py), which then fixes the distance
        of people whose torso it sees (their ``placement`` is "depth"). Causal lifters only: a
        centred one describes an earlier frame (lookahead_pipeline.py)."""
        if self._lookahead:
            raise RuntimeError(
                f"process() gives a frame's poses at once, but the lifter describes the frame "
                f"{self._lookahead} frames back: drive it with LookaheadPipeline"
            )
        return self.finish(self.observe(image, camera, stamp, depth))

    def observe(
        self,
        image: np.ndarray,
        camera: CameraModel,
        stamp: float,
        depth: DepthImage | None = None,
    ) -> ObservedFrame:
        """The first half of :meth:`process` (arguments as there): people found, their 2D
        keypoints, their ids, their 2D pushed into their tracks' windows."""
        s = self.settings
        timings: dict[str, float] = {}
        warnings: list[str] = []
        clock = time.perf_counter
        t_start = t0 = clock()

        # 1. Where are people? The detector, or crops that follow the tracks.
        detect = self._frame_index % s.detect_every == 0 or self.tracker.num_tracks == 0
        self._frame_index += 1
        if detect:  # capped at detector.max_people, best first
            rois, scores = self._detect(image, timings)
        else:
            rois, scores = self._tracked_crops(stamp)
            rois, scores = rois[: s.detector.max_people], scores[: s.detector.max_people]
        t1 = clock()
        timings["detect" if detect else "crops"] = (t1 - t0) * 1e3

        # 2. 2D keypoints of everyone in one batch (rotated crops), in Human3.6M-17.
        kp = self.keypoints.estimate_rois(image, rois)
        if not detect:  # a tracked crop's score is how sure the keypoint model is of a person
            scores = kp.presence.astype(np.float64)
        keep = kp.presence >= s.keypoints.min_presence
        points, conf = to_h36m17(kp)
        angles = crop_angles(kp.crops)  # of the 2D crops: an E2E crop is turned the same way
        boxes = roi_extent_boxes(rois)
        points, conf, boxes, scores = points[keep], conf[keep], boxes[keep], scores[keep]
        angles = angles[keep]
        # A person's box as the tracker should see it: tight around the seen keypoints.
        tight = keypoint_boxes(points, conf, min_joints=2)
        kp_boxes = np.where(np.isfinite(tight).all(1, keepdims=True), tight, boxes)
        points, conf, kp_boxes, scores, angles = _suppress_duplicates(
            points, conf, kp_boxes, scores, angles
        )
        t2 = clock()
        timings["keypoints"] = (t2 - t1) * 1e3

        # 3. Stable ids.
        update = self.tracker.update(stamp, kp_boxes, points, conf)
        if update.reset_reason:
            warnings.append(f"tracker reset: {update.reset_reason}")
            self._forget_motion()
        live = self.tracker.track_ids
        self.windows.retain(live)
        self.smoothing.retain(live)
        self._last_update = list(update)
        observed = [a for a in update if a.det_index is not None]
        t3 = clock()
        timings["tracking"] = (t3 - t2) * 1e3

        # 4. Camera-invariant 2D, smoothed per track, into the tracks' windows.
        norm_all = camera.undistort_pixels(points)  # (N, 17, 2): one call for everyone
        norm_now, pending = [], []
        for a in observed:
            i = a.det_index
            norm = norm_all[i]
            if s.smoothing.enabled:
                norm = self.smoothing(a.track_id, stamp, norm, conf[i])
            norm_now.append(norm)
            self.windows.push(a.track_id, stamp, norm, conf[i])
            pending.append(self.windows.request(a.track_id))
        t4 = clock()
        timings["windows"] = (t4 - t3) * 1e3
        return ObservedFrame(
            image, camera, stamp, depth, points, conf, kp_boxes, scores, angles, update, live,
            norm_all, norm_now, pending, timings, warnings, (t4 - t_start) * 1e3,
        )  # fmt: skip

    def finish(self, frame: ObservedFrame) -> FrameResult:
        """The second half of :meth:`process`: lift everyone at once (each person's window
        describes this frame), place, re-attach ids. Frames are finished in the order they
        were observed."""
        s = self.settings
        clock = time.perf_counter
        t3 = clock()
        image, camera, stamp, depth = frame.image, frame.camera, frame.stamp, frame.depth
        points, conf, kp_boxes, scores = frame.points, frame.conf, frame.boxes, frame.scores
        angles, update, norm_all, norm_now = frame.angles, frame.update, frame.norm, frame.norm_now
        timings, warnings = frame.timings_ms, frame.warnings
        observed = [a for a in update if a.det_index is not None]
        self._motion = {k: v for k, v in self._motion.items() if k in frame.live}
        if observed:
            win = [w.result() for w in frame.windows]
            win_kp = np.stack([w[0] for w in win])
            win_conf = np.stack([w[1] for w in win])
        else:
            win_kp = np.zeros((0, self._window_frames, 17, 2))
            win_conf = np.zeros((0, self._window_frames, 17))
        conf_3d = None
        if self.e2e is not None:  # the people's image crops through the E2E model instead
            lifted, conf_3d = self._estimate_e2e(
                image, observed, points, conf, angles, norm_now, warnings
            )
        else:
            lifted = self.lifter.lift(win_kp, win_conf)  # missing joints: NaN / confidence 0
        t4 = clock()
        # Smoothing and windows (in observe) count as lifting, as they did before the split.
        timings["lifting"] = timings.pop("windows", 0.0) + (t4 - t3) * 1e3
        if self.refiner is not None and observed:
            # Joints the 2D stage did not see (published valid false) get the refiner's estimate
            # instead of the lifter's guess; seen ones are untouched. Unlifted people are skipped.
            seen = np.stack([conf[a.det_index] > 0 for a in observed])
            seen |= ~np.asarray(lifted.info.valid, dtype=bool)[:, None]
            lifted = LiftResult(self.refiner.refine(lifted.joints, seen), lifted.info)
            t4b = clock()
            timings["refinement"] = (t4b - t4) * 1e3
            t4 = t4b

        # 5. Metric placement in the camera frame.
        poses = []
        focal = (camera.fx, camera.fy)
        for k, a in enumerate(observed):
            i = a.det_index
            joints_rel = lifted.joints[k]
            if not lifted.info.valid[k]:
                joints_rel = np.full((17, 3), np.nan)
            placed = place_person(joints_rel, norm_now[k], conf[i], focal, s.placement, self.floor)
            if not placed.ok:
                warnings.append(f"track {a.track_id}: not placed ({placed.reason})")
            elif depth is not None:
                size = (camera.width, camera.height)
                fused = fuse_depth(
                    placed, joints_rel, points[i], norm_all[i], conf[i], depth, size, s.depth
                )
                if fused.used:
                    placed = fused.placement
                else:
                    warnings.append(f"depth not used for track {a.track_id}: {fused.reason}")
            poses.append(
                PersonPose(
                    track_id=a.track_id,
                    joint_set=H36M17.name,
                    keypoints_2d=points[i],
                    confidence=conf[i],
                    observed=conf[i] > 0,
                    confidence_3d=None if conf_3d is None else conf_3d[k],
                    joints_3d=placed.joints(joints_rel),
                    root=placed.root,
                    root_covariance=placed.covariance,
                    placement=placed.constraint if placed.ok else "",
                    root_velocity=self._velocity(a.track_id, stamp, placed.root),
                    score=float(scores[i]),
                    bbox=kp_boxes[i],
                    state=a.state,
                    age=a.age,
                )
            )
        if s.publish_coasting:
            poses.extend(self._coasting(update, stamp))
        t5 = clock()
        timings["placement"] = (t5 - t4) * 1e3

        # 6. Ids again: a new track that is a recently lost person (metric root + torso colour,
        # stages/reattach.py) takes their id, and their coasting track ends.
        idx = [a.det_index for a in observed]
        hists = torso_histograms(image, points[idx], conf[idx])
        by_track = {a.track_id: h for a, h in zip(observed, hists, strict=True)}
        reattached = self.reattach.update(stamp, poses, by_track, frame.live)
        self.tracker.drop(reattached.dropped)
        poses = reattached.poses
        t6 = clock()
        timings["tracking"] += (t6 - t5) * 1e3
        timings["total"] = frame.observe_ms + (t6 - t3) * 1e3
        return FrameResult(poses, timings, warnings)

    # ------------------------------------------------------------------ helpers

    def _detect(self, image: np.ndarray, timings: dict[str, float]) -> tuple[np.ndarray, ...]:
        """Rotated ROIs (N, 4) and scores of the people the detectors find, one per person."""
        s = self.settings
        clock = time.perf_counter
        t0 = clock()
        pose_rois, pose_scores = empty_rois(), np.zeros(0)
        if s.proposals.detectors in ("both", "blazepose"):
            found = self.pose_detector.detect(image, s.proposals.tile_px)
            pose_rois = np.array(
                [[d.roi.cx, d.roi.cy, d.roi.side, d.roi.rotation] for d in found]
            ).reshape(-1, 4)
            pose_scores = np.array([d.score for d in found])
            if s.proposals.tile_px:  # a person seen by the frame and by overlapping tiles
                keep = dedupe_rois(pose_rois, pose_scores, s.proposals.size_ratio)
                pose_rois, pose_scores = pose_rois[keep], pose_scores[keep]
        t1 = clock()
        boxes, box_scores = np.zeros((0, 4)), np.zeros(0)
        if s.proposals.detectors in ("both", "ssdlite"):
            boxes, box_scores = self.detector.detect(image)
        t2 = clock()
        timings["detect_pose"] = (t1 - t0) * 1e3
        timings["detect_pedestrian"] = (t2 - t1) * 1e3
        rois, scores, _ = fuse(
            pose_rois,
            pose_scores,
            boxes,
            box_scores,
            s.keypoints.crop_scale,
            s.detector.max_people,
            s.proposals.size_ratio,
        )
        return rois, scores

    def _estimate_e2e(self, image, observed, points, conf, angles, norm_now, warnings):
        """The E2E image model on the observed people (one batch) -> the lifter's result
        structure (joints (N, 17, 3) root-relative, camera axes; the 2D root ray and scale from
        the undistorted keypoints ``norm_now``) and the model's per-joint confidence (N, 17).
        People it cannot crop are not lifted (valid False), with a warning each."""
        idx = [a.det_index for a in observed]
        out = self.e2e.estimate(image, points[idx], conf[idx], angles[idx])
        for skip in out.skipped:
            warnings.append(skip.text(f"track {observed[skip.index].track_id}"))
        norm = np.reshape(np.asarray(norm_now, np.float64), (-1, 17, 2))
        _, info = lifter_features(norm, conf[idx])
        info = LifterInputInfo(root_2d=info.root_2d, scale=info.scale, valid=out.valid)
        return LiftResult(out.joints, info), out.confidence

    def _tracked_crops(self, stamp: float) -> tuple[np.ndarray, np.ndarray]:
        """Rotated ROIs for this frame's 2D pass from the tracks' last landmarks: the padded
        keypoint box turned by the hip->shoulder angle. (ROIs from BlazePose's auxiliary
        alignment landmarks, as MediaPipe tracks, lost two of five walkers on vtest.avi, whose
        people are 60-100 px tall: measured, not used.)"""
        predicted = self.tracker.predicted_boxes(stamp)
        # Only people seen in the last frame: a coasting track's crop would cost a keypoint
        # pass for someone who is probably hidden; the next detection re-acquires them.
        tracks = [
            a for a in self._last_update if a.track_id in predicted and a.det_index is not None
        ]
        if not tracks:
            return empty_rois(), np.zeros(0)
        points = np.stack([a.keypoints for a in tracks])
        conf = np.stack([a.confidence for a in tracks])
        boxes = self.keypoints.rois_from_keypoints(points, conf)
        fallback = np.stack([predicted[a.track_id] for a in tracks])
        boxes = np.where(np.isfinite(boxes).all(1, keepdims=True), boxes, fallback)
        angles = self.keypoints.angles_from_keypoints(points, conf)
        rois = rois_from_boxes(boxes, self.settings.keypoints.crop_scale, angles)
        scores = np.array([1.0] * len(tracks))
        return rois, scores

    def _velocity(self, track_id: int, stamp: float, root: np.ndarray) -> np.ndarray:
        if not np.isfinite(root).all():
            return np.zeros(3)
        m = self._motion.get(track_id)
        if m is None:
            self._motion[track_id] = _Motion(stamp, root.copy())
            return np.zeros(3)
        dt = stamp - m.stamp
        if dt > 1e-6:
            m.velocity = 0.7 * m.velocity + 0.3 * (root - m.root) / dt
            m.stamp, m.root = stamp, root.copy()
        return m.velocity.copy()

    def _coasting(self, update, stamp: float) -> list[PersonPose]:
        out = []
        for a in update:
            if a.det_index is not None or a.state != TrackState.COASTING:
                continue
            m = self._motion.get(a.track_id)
            root = np.full(3, np.nan) if m is None else m.root + m.velocity * (stamp - m.stamp)
            out.append(
                PersonPose(
                    track_id=a.track_id,
                    joint_set=H36M17.name,
                    keypoints_2d=np.full((17, 2), np.nan),
                    confidence=np.zeros(17),
                    observed=np.zeros(17, bool),
                    joints_3d=np.full((17, 3), np.nan),
                    root=root,
                    root_velocity=np.zeros(3) if m is None else m.velocity,
                    bbox=a.box,
                    state=TrackState.COASTING,
                    age=a.age,
                )
            )
        return out


def _suppress_duplicates(points, conf, boxes, scores, angles, iou_threshold: float = 0.6):
    """Two crops that converged on one person keep only the better one."""
    if len(boxes) < 2:
        return points, conf, boxes, scores, angles
    keep = np.sort(nms(boxes, scores, iou_threshold, len(boxes)))
    return points[keep], conf[keep], boxes[keep], scores[keep], angles[keep]
