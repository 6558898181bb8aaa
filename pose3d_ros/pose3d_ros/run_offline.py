"""`pose3d run`: the node's pipeline on a video, image or folder, without ROS.

Writes one JSON line per frame (people with ids, 2D keypoints with confidence, metric 3D joints
in the camera frame, root and its uncertainty), optionally an annotated video. What is tested
here is what runs on the robot: the same PosePipeline object, fed frame by frame.

A centred lifter (latency L > 0 frames, which the node refuses) runs here with look-ahead
(lookahead_pipeline.py): each frame is written once the L frames after it are processed (at the
end of the input, with what there is), still in frame order and each record describing its own
frame; the summary says how many frames were held back at most.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from pose3d_ros.assets import AssetError
from pose3d_ros.backends import BackendError
from pose3d_ros.core.camera import CameraModel, load_camera_yaml
from pose3d_ros.core.floor import FloorPlaneError, floor_from_parameters
from pose3d_ros.core.frame_sources import open_source
from pose3d_ros.core.parameters import SettingError, build_settings, flat_values, with_values
from pose3d_ros.core.poses import PersonPose
from pose3d_ros.lookahead_pipeline import LookaheadPipeline, delay_frames_for
from pose3d_ros.pipeline import ESTIMATOR_CHOICES, PipelineSettings, PosePipeline
from pose3d_ros.visualization import SceneView, draw_poses_2d, side_by_side


def _list(a: np.ndarray, digits: int) -> Any:
    """JSON-safe nested lists: NaN becomes null."""
    return (
        [_list(x, digits) for x in a]
        if a.ndim > 1
        else [None if not math.isfinite(v) else round(float(v), digits) for v in a]
    )


def pose_record(pose: PersonPose) -> dict[str, Any]:
    return {
        "id": pose.track_id,
        "state": pose.state.name.lower(),
        "age": pose.age,
        "joint_set": pose.joint_set,
        "score": round(float(pose.score), 4),
        "bbox": _list(pose.bbox, 1),
        "keypoints_2d": _list(pose.keypoints_2d, 2),
        "confidence": _list(pose.confidence, 3),
        "observed": [bool(v) for v in pose.observed],
        "joints_3d_m": _list(pose.joints_3d, 4),
        "root_m": _list(pose.root, 4),
        "root_covariance_m2": _list(pose.root_covariance, 6),
        "root_velocity_mps": _list(pose.root_velocity, 3),
        "placement": pose.placement,
        **(
            {"confidence_3d": _list(pose.confidence_3d, 3)}
            if pose.confidence_3d is not None
            else {}
        ),
    }


def with_floor(settings: PipelineSettings, floor: list[float] | None) -> PipelineSettings:
    """``--floor NX NY NZ D`` (up normal in the camera optical frame, any length, and the camera
    height above the floor in metres) as the static ``placement.floor`` plane."""
    if not floor:
        return settings
    plane = floor_from_parameters(floor[:3], floor[3])  # normalises; FloorPlaneError if invalid
    n = plane.normal
    return with_values(
        settings,
        {
            "placement.floor.enabled": True,
            "placement.floor.normal_x": float(n[0]),
            "placement.floor.normal_y": float(n[1]),
            "placement.floor.normal_z": float(n[2]),
            "placement.floor.distance_m": plane.offset_m,
        },
    )


def load_pipeline_settings(path: str | None) -> PipelineSettings:
    """Pipeline settings from a YAML file: either the node's params file (pose3d_node's
    `ros__parameters.pipeline`) or a plain mapping of pipeline settings."""
    if not path:
        return PipelineSettings()
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    for key in ("/**/pose3d", "pose3d"):
        if key in data:
            data = data[key]["ros__parameters"].get("pipeline", {})
            break
    return build_settings(PipelineSettings, data)


def run(
    input_spec: str,
    out_dir: Path,
    camera_yaml: str | None = None,
    fov_deg: float = 60.0,
    settings: PipelineSettings | None = None,
    fps: float | None = None,
    video: bool = False,
    max_frames: int = 0,
    pipeline: PosePipeline | None = None,
) -> dict[str, Any]:
    """``pipeline``: already built (its models loaded), else built from ``settings``; either
    may have a centred lifter (then the frames are written with a delay, in order)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline = pipeline or PosePipeline(settings or PipelineSettings(), allow_lookahead=True)
    source = open_source(input_spec)
    width, height = source.size
    if camera_yaml:
        camera = load_camera_yaml(camera_yaml)
        if (camera.width, camera.height) != (width, height):
            camera = camera.resized(width, height)
        assumption = f"intrinsics from {camera_yaml}"
    else:
        camera = CameraModel.from_fov(width, height, fov_deg)
        assumption = f"ASSUMED {fov_deg:g} deg horizontal field of view (no camera file given)"
    period = 1.0 / (fps or source.fps or 30.0)
    lookahead = pipeline.windows.lookahead
    delayed = None
    if lookahead:
        delay = delay_frames_for(lookahead, period, pipeline.windows.settings.frame_period_s)
        delayed = LookaheadPipeline(pipeline, delay)
    writer = None
    view = SceneView(height=height, width=round(height * 4 / 3)) if video else None
    frames = 0  # written
    read = 0
    people = 0
    constraints: dict[str, int] = {}
    ids: set[int] = set()
    stage_sums: dict[str, float] = {}
    start = time.perf_counter()
    total = (
        source.frame_count if not max_frames else min(max_frames, source.frame_count or max_frames)
    )
    with open(out_dir / "skeletons.jsonl", "w") as fh, tqdm(total=total, unit="frame") as bar:

        def write(frame, result) -> None:
            nonlocal frames, people, writer
            stamp = frame.index * period
            record = {
                "frame": frame.index,
                "stamp": round(stamp, 6),
                "people": [pose_record(p) for p in result.poses],
                "stages_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
            }
            fh.write(json.dumps(record) + "\n")
            for k, v in result.timings_ms.items():
                stage_sums[k] = stage_sums.get(k, 0.0) + v
            frames += 1
            people += len(result.poses)
            for p in result.poses:
                key = p.placement or "not placed"
                constraints[key] = constraints.get(key, 0) + 1
            ids.update(p.track_id for p in result.poses)
            if view is not None:
                panel = side_by_side(
                    draw_poses_2d(frame.image, result.poses), view.render(result.poses)
                )
                if writer is None:
                    h, w = panel.shape[:2]
                    writer = cv2.VideoWriter(
                        str(out_dir / "poses.mp4"),
                        cv2.VideoWriter_fourcc(*"mp4v"),
                        1.0 / period,
                        (w, h),
                    )
                writer.write(panel)
            bar.update(1)

        while True:
            frame = source.read()
            if frame is None or (max_frames and read >= max_frames):
                break
            read += 1
            stamp = frame.index * period
            if delayed is None:
                write(frame, pipeline.process(frame.image, camera, stamp))
                continue
            for done, result in delayed.push(frame.image, camera, stamp, tag=frame):
                write(done, result)
        for done, result in delayed.flush() if delayed is not None else []:
            write(done, result)
    if writer is not None:
        writer.release()
    source.close()
    elapsed = time.perf_counter() - start
    summary = {
        "input": str(input_spec),
        "camera": assumption,
        "frames": frames,
        "people_detections": people,
        "tracks": len(ids),
        "placement_constraints": constraints,
        "floor": _floor_text(pipeline),
        "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
        "stages_ms_mean": {k: round(v / max(frames, 1), 2) for k, v in stage_sums.items()},
        "pipeline": pipeline.describe(),
        "lookahead_frames": 0 if delayed is None else delayed.delay_frames,
        "settings": flat_values(pipeline.settings),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _floor_text(pipeline: PosePipeline) -> str:
    plane = pipeline.floor
    if plane is None:
        return "none (size prior)"
    n = ", ".join(f"{v:.3f}" for v in plane.normal)
    return f"up normal ({n}) camera optical frame, camera {plane.offset_m:.3f} m above the floor"


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the pose pipeline on a video, image or folder (no ROS)")
    p.add_argument("--input", required=True, help="video file, image, image folder or camera index")
    p.add_argument("--out", required=True, help="output directory (skeletons.jsonl, summary.json)")
    p.add_argument("--camera-info", help="camera_calibration YAML (default: assume --fov)")
    p.add_argument("--fov", type=float, default=60.0, help="assumed horizontal FOV in degrees")
    p.add_argument("--params", help="pose3d_node params YAML (its pipeline settings are used)")
    p.add_argument("--fps", type=float, help="frame rate for stamps (default: the input's)")
    p.add_argument("--video", action="store_true", help="also write poses.mp4 (2D + 3D view)")
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument(
        "--floor",
        nargs=4,
        type=float,
        metavar=("NX", "NY", "NZ", "D"),
        help="floor plane in the camera optical frame: up normal (x right, y down, z forward; "
        "a level camera: 0 -1 0) and the camera's height D above the floor in metres; people "
        "standing or sitting on it are placed with the floor constraint",
    )
    p.add_argument(
        "--lifter",
        help="2D-to-3D lifter: a shipped name (pose3d_ros/lifters) or an .onnx path; a centred "
        "one (latency > 0 frames) runs with look-ahead, each frame written once the frames "
        "after it are in; default: the params file's pipeline.lifter.model, else htnet_small",
    )
    p.add_argument(
        "--estimator",
        choices=ESTIMATOR_CHOICES,
        help="3D stage: lifter (2D keypoints -> 3D) or e2e (the end-to-end image model on each "
        "person's crop); default: the params file's pipeline.estimator, else lifter",
    )
    p.add_argument(
        "--e2e-model",
        help="E2E image model for --estimator e2e: a shipped name (estimators/) or an .onnx path",
    )
    p.set_defaults(func=cmd_run)


def with_estimator(
    settings: PipelineSettings, estimator: str | None, e2e_model: str | None
) -> PipelineSettings:
    """``--estimator`` / ``--e2e-model`` over the params file's pipeline settings."""
    updates: dict[str, Any] = {}
    if estimator:
        updates["estimator"] = estimator
    if e2e_model:
        updates["e2e.model"] = e2e_model
    return with_values(settings, updates) if updates else settings


def cmd_run(args: argparse.Namespace) -> int:
    try:
        settings = with_floor(load_pipeline_settings(args.params), args.floor)
    except (FloorPlaneError, SettingError) as e:
        print(f"error: --floor {' '.join(map(str, args.floor or []))}: {e}", file=sys.stderr)
        return 2
    settings = with_estimator(settings, args.estimator, args.e2e_model)
    if args.lifter:
        settings = with_values(settings, {"lifter.model": args.lifter})
    try:  # models load (and are checked) before the input is opened
        pipeline = PosePipeline(settings, allow_lookahead=True)
    except (AssetError, BackendError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    summary = run(
        args.input,
        Path(args.out),
        args.camera_info,
        args.fov,
        settings,
        args.fps,
        args.video,
        args.max_frames,
        pipeline,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2))
    return 0
