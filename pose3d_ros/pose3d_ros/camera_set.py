"""Several cameras in one process: one pipeline per camera, one shared set of models.

    pipelines = shared_pipelines(PipelineSettings(), cameras=2, window_ms=2.0)
    # thread k: pipelines[k].process(image_k, camera_k, stamp)

Each camera keeps its own tracker, smoothing, windows and camera model; the models are loaded
once and wrapped in a BatchingBackend (backends/batching.py), so calls that the cameras' threads
make at about the same time run as one inference. Camera k gives out ids from
``k * ID_BLOCK + 1``, so an id names one person across all the cameras of a node (REP-155 frames
``body_<id>`` cannot collide). pose3d_node's ``cameras.*`` parameters and the multi-camera
benchmark both build their pipelines here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pose3d_ros.backends.batching import BatchingBackend
from pose3d_ros.core.parameters import SettingError, setting
from pose3d_ros.pipeline import PipelineModels, PipelineSettings, PosePipeline

# Ids of camera k are k * ID_BLOCK + 1, + 2, ...: a camera would need a million tracks to reach
# the next camera's ids; uint32 ids leave room for 4294 cameras.
ID_BLOCK = 1_000_000
MAX_CAMERAS = 64
_NAMESPACE = re.compile(r"^/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class CameraSetSettings:
    namespaces: str = setting(
        "",
        "Comma-separated camera namespaces served by this one node with one shared set of "
        "models (e.g. `/front,/rear`): per camera `<ns>/image_raw` + `<ns>/camera_info` in, "
        "`<ns>/skeletons` + `<ns>/markers` out, ids in disjoint ranges (camera k from "
        "k*1000000+1); empty: one camera on `image` / `camera_info`",
        read_only=True,
    )
    batch_window_ms: float = setting(
        2.0,
        "How long a camera's model call waits for the other cameras' calls to run them as one "
        "inference (it stops waiting once every other camera is waiting or inside that model; "
        "0 = never wait)",
        range=(0.0, 50.0),
        unit="ms",
        read_only=True,
    )
    max_batch: int = setting(
        32,
        "Most rows (people's crops, detector images) in one merged inference",
        range=(1, 1024),
        read_only=True,
    )


def parse_namespaces(text: str) -> list[str]:
    """Camera namespaces from the comma-separated parameter; SettingError naming the fix for an
    invalid or repeated one."""
    names = [n.strip().rstrip("/") for n in text.split(",") if n.strip()]
    for n in names:
        if not _NAMESPACE.match(n):
            raise SettingError(
                f"cameras.namespaces: {n!r} is not a ROS namespace (letters, digits, _ and /, "
                "e.g. /front_camera)"
            )
    if len(set(names)) != len(names):
        raise SettingError(f"cameras.namespaces: a namespace is listed twice in {text!r}")
    if len(names) > MAX_CAMERAS:
        raise SettingError(f"cameras.namespaces: at most {MAX_CAMERAS} cameras per node")
    return names


def batched_models(
    models: PipelineModels, callers: int, window_ms: float = 2.0, max_batch: int = 32
) -> PipelineModels:
    """The same loaded models, each wrapped so that ``callers`` threads share its inferences."""
    return PipelineModels(
        **{
            name: BatchingBackend(getattr(models, name), window_ms, max_batch, callers)
            for name in ("detector", "pose_detector", "keypoints", "lifter", "refiner", "e2e")
            if getattr(models, name) is not None
        }
    )


def shared_pipelines(
    settings: PipelineSettings,
    cameras: int,
    window_ms: float = 2.0,
    max_batch: int = 32,
    models: PipelineModels | None = None,
) -> list[PosePipeline]:
    """One pipeline per camera over one set of (batched) models; camera k's ids start at
    ``k * ID_BLOCK + 1``."""
    if not 1 <= cameras <= MAX_CAMERAS:
        raise SettingError(f"cameras: 1 .. {MAX_CAMERAS}, got {cameras}")
    shared = batched_models(models or PipelineModels.load(settings), cameras, window_ms, max_batch)
    return [
        PosePipeline(settings, shared, first_track_id=k * ID_BLOCK + 1)
        for k in range(cameras)
    ]
