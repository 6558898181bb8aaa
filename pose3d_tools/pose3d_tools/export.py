"""ONNX export of the lifters (the TensorRT op check is pose3d_ros.backends.onnx_checks).

    path = export_onnx(build_lifter("nanohtnet"), "out/nanohtnet_t27.onnx")

The graph has one input ``keypoints`` (B, T, 17, 3) and one output ``joints3d`` (B, T, 17, 3) with
a dynamic batch axis (several people per call); T is fixed by the model. The exporter is the
classic TorchScript one (``dynamo=False``): the dynamo exporter needs ``onnxscript``, which is not
installed here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

INPUT_NAME = "keypoints"
OUTPUT_NAME = "joints3d"
JOINT_SET = "h36m17"
INPUT_DESCRIPTION = (
    "keypoints: float32 (B, T, 17, 3) Human3.6M-17 joints as (x, y, confidence); x, y are "
    "undistorted camera-normalised image coordinates ((u-cx)/fx, (v-cy)/fy) made root-relative "
    "and scale-normalised as in training; missing joints are (0, 0, 0). "
    "joints3d: float32 (B, T, 17, 3) root-relative 3D joints in metres, camera frame, root = 0."
)



def _model_name(model: nn.Module) -> str:
    name = getattr(model, "name", None)
    return name if isinstance(name, str) else type(model).__name__.lower()


def _config_dict(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if config is None:
        return {}
    from .models.registry import config_to_dict

    return config_to_dict(config)


def example_input(frames: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """Real-ish keypoints (B, T, 17, 3): root-relative coordinates, confidences in [0.3, 1]."""
    g = torch.Generator().manual_seed(seed)
    xy = 0.25 * torch.randn(batch, frames, 17, 2, generator=g)
    xy = xy - xy[:, :, :1]  # root-relative
    conf = 0.3 + 0.7 * torch.rand(batch, frames, 17, 1, generator=g)
    return torch.cat([xy, conf], dim=-1)


def export_onnx(
    model: nn.Module,
    path: str | Path,
    frames: int | None = None,
    opset: int = 17,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Export ``model`` to ONNX at ``path`` with a dynamic batch axis and metadata_props.

    ``frames`` defaults to ``model.config.frames``; a different value is only allowed when the
    model is frame-independent (HTNet). Extra ``metadata`` strings are added to metadata_props.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = getattr(model, "config", None)
    model_frames = getattr(config, "frames", None)
    if frames is None:
        frames = model_frames or 1
    elif model_frames is not None and frames != model_frames and _model_name(model) != "htnet":
        raise ValueError(
            f"{_model_name(model)} has a fixed window of {model_frames} frames, not {frames}"
        )
    in_channels = getattr(config, "in_channels", 3)
    num_joints = getattr(config, "num_joints", 17)

    was_training = model.training
    model.eval()
    dummy = example_input(frames, batch=2)[..., :in_channels]
    if dummy.shape[2] != num_joints:
        raise ValueError(f"model expects {num_joints} joints")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation / tracer warnings
            torch.onnx.export(
                model,
                (dummy,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.train(was_training)

    proto = onnx.load(str(path))
    # Declare the full I/O shapes (the tracer may leave the frame axis symbolic after reshapes).
    for value in (*proto.graph.input, *proto.graph.output):
        if value.name in (INPUT_NAME, OUTPUT_NAME):
            dims = value.type.tensor_type.shape.dim
            channels = in_channels if value.name == INPUT_NAME else 3
            for i, size in enumerate((None, frames, num_joints, channels)):
                if size is None:
                    dims[i].dim_param = "batch"
                else:
                    dims[i].dim_value = size
    props = {
        "model": _model_name(model),
        "config": json.dumps(_config_dict(model), sort_keys=True),
        "frames": str(frames),
        "joint_set": JOINT_SET,
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "input_description": INPUT_DESCRIPTION,
        "output_frame": str(getattr(model, "output_index", frames - 1)),
        "exporter": f"torch {torch.__version__} torchscript (dynamo=False), opset {opset}",
    }
    props.update(metadata or {})
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = "pose3d_ros"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path
