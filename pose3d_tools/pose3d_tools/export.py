"""ONNX export of the lifters (the TensorRT op check is pose3d_ros.backends.onnx_checks).

    path = export_onnx(build_lifter("nanohtnet"), "out/nanohtnet_t27.onnx")

The graph has one input ``keypoints`` (B, T, 17, 3) and one output ``joints3d`` (B, T_out, 17, 3)
with a dynamic batch axis (several people per call); T is fixed by the model. T_out = T for
seq2seq lifters, 1 for seq2frame exports (HoT: only the frame the runtime reads is restored;
its TPC-only variant always). Metadata: ``frames`` = T, ``output_frame`` = the window index the
read pose describes (T-1 causal, T//2 centred), ``output_frames`` = T_out; a runtime reads
output row ``output_frame`` when T_out = T, else row 0.

HoT's token pruning is exported through :class:`TensorRTTokenPruning`: the same selection as
``models.hot.TokenPruningCluster`` written with ops on the project's TensorRT allow-list
(``pose3d_ros.backends.onnx_checks``). The PyTorch form exports TopK (kNN distances, top-k
scores, the index sort), GatherElements (taking the kept frames) and Range, none of which are on
the list. The exporter is the classic TorchScript one (``dynamo=False``): the dynamo exporter
needs ``onnxscript``, which is not installed here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .models.hot import HoTMixSTE, TokenPruningCluster, token_distances

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


class TensorRTTokenPruning(nn.Module):
    """HoT's Token Pruning Cluster as a (B, k, T) selection matrix, without TopK/GatherElements.

    Same density x separation scores as :class:`TokenPruningCluster` (kNN distances by k + 1
    rounds of ArgMin instead of TopK), then rank_i = number of frames scoring higher (ties: the
    earlier frame ranks higher); frames with rank < k are kept and row p of the selection has a
    1 at the p-th kept frame in time order (position by a MatMul with a triangular matrix, not a
    sort). Selecting by MatMul with 0/1 weights is exact for finite features. No parameters.
    """

    def __init__(self, tpc: TokenPruningCluster, frames: int):
        super().__init__()
        self.kept_tokens, self.knn, self.force = tpc.kept_tokens, tpc.knn, tpc.force
        t = torch.arange(frames)
        self.register_buffer("order", t.to(torch.float32), persistent=False)  # (T,)
        self.register_buffer("slots", torch.arange(tpc.kept_tokens, dtype=torch.float32)
                             .reshape(-1, 1), persistent=False)  # (k, 1)
        # before[j, i] = 1 when frame j < frame i (both as rows/cols of a (T, T) matrix)
        self.register_buffer("before", (t.reshape(-1, 1) < t.reshape(1, -1)).to(torch.float32),
                             persistent=False)

    def scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """Frame tokens (B, T, D) -> DPC-kNN centre scores (B, T), as TokenPruningCluster."""
        b, t, _ = tokens.shape
        dist2, dist = token_distances(tokens)
        nearest, rest = [], dist2
        for _ in range(self.knn + 1):  # ascending k + 1 smallest per row; the first is itself
            pick = self.order == rest.argmin(-1, keepdim=True).to(torch.float32)  # (B, T, T)
            nearest.append((rest * pick).sum(-1))
            rest = torch.where(pick, torch.full_like(rest, 1e30), rest)
        density = torch.exp(-torch.stack(nearest[1:], -1).mean(-1)) + self.order * 1e-6
        denser = density.unsqueeze(-2) > density.unsqueeze(-1)
        far = dist.flatten(1).max(-1).values.reshape(b, 1, 1).expand(b, t, t)
        score = density * torch.where(denser, dist, far).min(-1).values
        if self.force is not None:
            score = score + (self.order == self.force).to(score.dtype) * 1e4
        return score

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> selection (B, k, T): row p is one-hot at the p-th kept frame."""
        score = self.scores(tokens)
        s_i, s_j = score.unsqueeze(-1), score.unsqueeze(-2)  # [b, i, j]
        higher = (s_j > s_i).to(score.dtype) + (s_j == s_i).to(score.dtype) * self.before
        kept = (higher.sum(-1) < self.kept_tokens).to(score.dtype)  # (B, T), k ones
        position = kept @ self.before  # number of kept frames before frame i
        return kept.unsqueeze(1) * (position.unsqueeze(1) == self.slots).to(score.dtype)


class TensorRTHoT(HoTMixSTE):
    """HoTMixSTE with :class:`TensorRTTokenPruning` and kept frames taken by MatMul: the graph
    that is exported (same weights, same outputs; checked by the export parity tests)."""

    def __init__(self, model: HoTMixSTE, seq2frame: bool):
        super().__init__(model.config)
        self.load_state_dict(model.state_dict())
        self.pruning = TensorRTTokenPruning(model.pruning, model.config.frames)
        self.seq2frame = seq2frame
        self.eval()

    def encode_pruned(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        h = self.embed_tokens(x)
        mask = self.time_mask if cfg.causal else None
        for i in range(cfg.pruning_block):
            h = self.spatial_temporal(h, i, mask)
        b, t, j, d = h.shape
        select = self.pruning(h.mean(dim=2))  # (B, k, T)
        kept = (select @ self.pruning.order).to(torch.int64)  # (B, k) frame numbers, exact
        h = (select @ h.reshape(b, t, j * d)).reshape(b, cfg.kept_tokens, j, d)
        kept_mask = self._kept_mask(kept)
        for i in range(cfg.pruning_block, cfg.depth):
            h = self.spatial_temporal(h, i, kept_mask)
        return h, kept


def graph_model(model: nn.Module, seq2frame: bool = True) -> nn.Module:
    """The module whose graph is exported: HoT as :class:`TensorRTHoT` (seq2frame: only the
    read frame is restored; its TPC-only variant is seq2frame anyway), anything else as is."""
    if isinstance(model, HoTMixSTE):
        with torch.random.fork_rng(devices=[]):  # the throw-away initialisation leaves no trace
            return TensorRTHoT(model, seq2frame)
    return model


def export_onnx(
    model: nn.Module,
    path: str | Path,
    frames: int | None = None,
    opset: int = 17,
    metadata: dict[str, str] | None = None,
    seq2frame: bool = True,
) -> Path:
    """Export ``model`` to ONNX at ``path`` with a dynamic batch axis and metadata_props.

    ``frames`` defaults to ``model.config.frames``; a different value is only allowed when the
    model is frame-independent (HTNet). Extra ``metadata`` strings are added to metadata_props.
    ``seq2frame``: a model that can restore only the read frame (HoT) is exported that way,
    output (B, 1, 17, 3), what the node runs; False exports its full sequence. ``model``
    itself is not changed.
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
    graph = graph_model(model, seq2frame)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation / tracer warnings
            out_frames = int(graph(dummy).shape[1])
            torch.onnx.export(
                graph,
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
            t = frames if value.name == INPUT_NAME else out_frames
            for i, size in enumerate((None, t, num_joints, channels)):
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
        "output_frames": str(out_frames),
        "exporter": f"torch {torch.__version__} torchscript (dynamo=False), opset {opset}",
    }
    props.update(metadata or {})
    return _save_with_metadata(proto, props, path)


# -- joint refiners -----------------------------------------------------------------------------
REFINER_INPUTS = ("joints", "masked")
REFINER_OUTPUT = "refined"
REFINER_DESCRIPTION = (
    "joints: float32 (B, 17, 3) Human3.6M-17 root-relative metres, camera frame, the masked "
    "joints replaced by their neighbours' midpoint (pose3d_ros.stages.refinement."
    "replace_by_midpoints); masked: float32 (B, 17) 1 = not observed. refined: float32 (B, 17, "
    "3) the completed skeleton, same frame and unit; the runtime keeps the observed joints."
)


def export_refiner_onnx(model: nn.Module, path: str | Path, opset: int = 17,
                        metadata: dict[str, str] | None = None) -> Path:
    """Export a joint refinement network with a dynamic batch axis (all people of a frame)."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    joints = 0.3 * torch.randn(2, 17, 3, generator=g)
    joints = joints - joints[:, :1]
    masked = (torch.rand(2, 17, generator=g) < 0.2).float()
    _trace_to_onnx(model, (joints, masked), path, list(REFINER_INPUTS), [REFINER_OUTPUT], opset)
    proto = onnx.load(str(path))
    props = {
        "model": _model_name(model),
        "config": json.dumps(_config_dict(model), sort_keys=True),
        "joint_set": JOINT_SET,
        "input_description": REFINER_DESCRIPTION,
        "exporter": f"torch {torch.__version__} torchscript (dynamo=False), opset {opset}",
        **(metadata or {}),
    }
    return _save_with_metadata(proto, props, path)


# -- end-to-end image models ---------------------------------------------------------------------
E2E_INPUT = "image"
E2E_OUTPUTS = ("joints", "confidence")
E2E_DESCRIPTION = (
    "image: float32 (B, 3, S, S) RGB crop, (pixel / 255 - mean) / std; the crop is "
    "cv2.warpAffine(image, roi_transforms(rois_from_boxes(box of the person's 2D joints, "
    "crop_scale), S)[0], (S, S), INTER_LINEAR | WARP_INVERSE_MAP, constant border 0). "
    "joints: float32 (B, 17, 3) Human3.6M-17 root-relative metres (pelvis 0) in the crop's axes "
    "(pose3d_ros.stages.crops.camera_to_crop_axes); confidence: float32 (B, 17) in [0, 1]."
)


def export_e2e_onnx(model: nn.Module, path: str | Path, opset: int = 17,
                    metadata: dict[str, str] | None = None) -> Path:
    """Export an end-to-end image model (models.e2e_transformer) with a dynamic batch axis.

    Opset >= 16 for GridSample (the deformable attention's bilinear sampling). metadata_props
    follow the E2E contract: kind, model, joint_set, input_size, crop_scale, mean, std, variant.
    """
    import onnx

    if opset < 16:
        raise ValueError("GridSample needs opset >= 16")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    size = int(cfg.input_size)
    dummy = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    _trace_to_onnx(model, (dummy,), path, [E2E_INPUT], list(E2E_OUTPUTS), opset)
    proto = onnx.load(str(path))
    props = {
        "kind": "e2e",
        "model": _model_name(model),
        "variant": cfg.variant,
        "joint_set": JOINT_SET,
        "input_size": str(size),
        "crop_scale": "1.4",
        "mean": "0.485,0.456,0.406",
        "std": "0.229,0.224,0.225",
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "input": E2E_INPUT,
        "output": ",".join(E2E_OUTPUTS),
        "input_description": E2E_DESCRIPTION,
        "exporter": f"torch {torch.__version__} torchscript (dynamo=False), opset {opset}",
        **(metadata or {}),
    }
    return _save_with_metadata(proto, props, path)


def _trace_to_onnx(model: nn.Module, args: tuple, path: Path, inputs: list[str],
                   outputs: list[str], opset: int) -> None:
    """Trace ``model`` (in eval mode, restored after) to ``path`` with a dynamic batch axis on
    every input and output (the legacy TorchScript exporter: its graphs are the ones TensorRT
    was checked against)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation / tracer warnings
            torch.onnx.export(
                model, args, str(path), input_names=inputs, output_names=outputs,
                dynamic_axes={n: {0: "batch"} for n in (*inputs, *outputs)},
                opset_version=opset, do_constant_folding=True, dynamo=False,
            )
    finally:
        model.train(was_training)


def _save_with_metadata(proto, props: dict[str, Any], path: Path) -> Path:
    """Replace the model's metadata_props by ``props`` (values as strings), check and save."""
    import onnx

    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = "pose3d_ros"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path
