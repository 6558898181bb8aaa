"""INT8 calibration data for the lifter, made from the project's own training data.

TensorRT's entropy calibrator picks each tensor's INT8 range from the activations it sees, so
the calibration inputs must look like what the robot feeds the lifter: Human3.6M *training*
subjects (S1, S5, S6, S7, S8 only: never the test subjects S9/S11 the accuracy is measured on),
placed and viewed through real Human3.6M and virtual robot cameras, with detector-like 2D noise,
through the same ``lifter_features`` as training and the runtime (the training code's window
synthesiser, so the distribution is the one the model was trained on).

    x = h36m_calibration_set(frames=27, count=512, seed=0)       # (512, 27, 17, 3) float32
    write_calibration_file("out/calib/nanohtnet_t27.npy", x, {"seed": 0})

Core: :func:`calibration_windows` takes poses and cameras as arrays (no files);
:func:`h36m_calibration_set` is the thin adapter that loads them from the data directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_tools.data.h36m import TRAIN_SUBJECTS, check_subjects

CHUNK = 1024  # windows synthesised per step (bounds memory for long windows)


def _camera_subject(name: str) -> str | None:
    head = name.split("_")[0]
    return head if head[:1] == "S" and head[1:].isdigit() else None


def calibration_windows(
    poses: Mapping[str, Mapping[str, np.ndarray]],
    cameras: Sequence[Any],
    *,
    frames: int,
    count: int,
    seed: int = 0,
    causal: bool = True,
    noise: bool = True,
    data_config: Any = None,
) -> np.ndarray:
    """Lifter inputs (count, frames, 17, 3) float32 from 3D poses ``{subject: {clip: (T,17,3)}}``.

    ``cameras`` are :class:`pose3d_tools.data.cameras.Camera` (Human3.6M ones, named
    ``<subject>_<id>``); half of the windows use them, half random robot cameras (training's
    ``DataConfig`` defaults, or ``data_config``). Raises ValueError if a test subject's poses or
    cameras are passed. Deterministic for a given seed.
    """
    from pose3d_tools.data.h36m import FrameTable
    from pose3d_tools.training import DataConfig, WindowSynth

    if count < 1 or frames < 1:
        raise ValueError(f"count and frames must be >= 1, got {count}, {frames}")
    check_subjects(sorted(poses), "train")
    cam_subjects = sorted({s for s in (_camera_subject(c.name) for c in cameras) if s})
    if cam_subjects:
        check_subjects(cam_subjects, "train")
    if not cameras:
        raise ValueError("no cameras given")
    cfg = data_config or DataConfig()
    synth = WindowSynth(FrameTable(dict(poses)), list(cameras), cfg, frames, causal)
    rng = np.random.default_rng([seed, frames, int(causal)])
    out = []
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        feats, _, _ = synth.batch(rng, n, noise=noise)
        out.append(np.asarray(feats, dtype=np.float32))
        done += n
    return np.ascontiguousarray(np.concatenate(out))


def h36m_calibration_set(
    frames: int,
    count: int = 512,
    seed: int = 0,
    *,
    data_dir: str | os.PathLike | None = None,
    subjects: Sequence[str] = TRAIN_SUBJECTS,
    causal: bool = True,
    noise: bool = True,
) -> np.ndarray:
    """:func:`calibration_windows` on the Human3.6M training split in ``data_dir``."""
    from pose3d_tools.data.cameras import load_h36m_cameras
    from pose3d_tools.data.h36m import load_split

    subjects = check_subjects(subjects, "train")
    poses = load_split("train", data_dir, subjects)
    cams = [
        c for k, c in sorted(load_h36m_cameras(data_dir).items()) if _camera_subject(k) in subjects
    ]
    return calibration_windows(
        poses, cams, frames=frames, count=count, seed=seed, causal=causal, noise=noise
    )


def window_of_model(metadata: Mapping[str, str]) -> tuple[int, bool]:
    """(frames, causal) of an exported lifter from its ONNX metadata_props."""
    frames = int(metadata.get("frames", "1"))
    try:
        config = json.loads(metadata.get("config", "{}"))
    except json.JSONDecodeError:
        config = {}
    return frames, bool(config.get("causal", True))


def write_calibration_file(
    path: str | os.PathLike, data: np.ndarray, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Save ``data`` as .npy (what ``--calib`` reads) with a ``.json`` provenance note."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"calibration files are .npy, not {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(data, dtype=np.float32))
    note = {
        "shape": list(data.shape),
        "dtype": "float32",
        "subjects": list(TRAIN_SUBJECTS),
        **dict(provenance or {}),
    }
    path.with_suffix(".json").write_text(json.dumps(note, indent=2, sort_keys=True))
    return path
