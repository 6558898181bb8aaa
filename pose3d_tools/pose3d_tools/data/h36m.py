"""Human3.6M 3D poses in the VideoPose3D container layout.

``np.load(path, allow_pickle=True)['positions_3d'].item()`` is ``{subject: {clip: (T, J, 3)}}``
in metres, world frame, z up. ``J`` is 17 (Human3.6M-17 order, as in the project's
``data_3d_h36m_expmap17.npz``) or 32 (VideoPose3D's ``data_3d_h36m.npz``: the 17 joints are
selected here). The data file is never part of the repository: its location is a parameter
(default: ``$POSE3D_H36M_DIR`` or ``../shared/data/h36m`` next to the repository root).

Splits are fixed and enforced: train S1, S5, S6, S7, S8; test S9, S11.
Licence: Human3.6M is for non-commercial research only, and so is anything trained on it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
SPLITS: dict[str, tuple[str, ...]] = {"train": TRAIN_SUBJECTS, "test": TEST_SUBJECTS}
FPS = 50.0
DATA_FILENAMES = ("data_3d_h36m_expmap17.npz", "data_3d_h36m.npz")
CAMERAS_FILENAME = "cameras.json"
ENV_VAR = "POSE3D_H36M_DIR"

# VideoPose3D's selection of the 17 Human3.6M joints out of the 32 of the raw skeleton.
H36M32_TO_17 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])

Poses = dict[str, dict[str, np.ndarray]]


def repository_root() -> Path:
    from pose3d_tools import REPO_ROOT

    return REPO_ROOT


def default_data_dir() -> Path:
    """``$POSE3D_H36M_DIR`` if set, else ``<repo>/../shared/data/h36m``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return repository_root().parent / "shared" / "data" / "h36m"


def resolve_data_file(path: str | os.PathLike | None = None) -> Path:
    """The data file from a file, a directory holding one of DATA_FILENAMES, or None."""
    p = Path(path).expanduser() if path else default_data_dir()
    if p.is_dir():
        for name in DATA_FILENAMES:
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"none of {DATA_FILENAMES} in {p} (set ${ENV_VAR} or pass a path)")
    if not p.is_file():
        raise FileNotFoundError(f"Human3.6M data not found at {p} (set ${ENV_VAR} or pass a path)")
    return p


def resolve_cameras_file(path: str | os.PathLike | None = None) -> Path:
    p = Path(path).expanduser() if path else default_data_dir()
    if p.is_dir():
        p = p / CAMERAS_FILENAME
    if not p.is_file():
        raise FileNotFoundError(f"cameras.json not found at {p} (set ${ENV_VAR} or pass a path)")
    return p


def select_17(positions: np.ndarray) -> np.ndarray:
    """(T, 17 | 32, 3) -> (T, 17, 3) float32 in Human3.6M-17 order."""
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ValueError(f"expected (T, J, 3) positions, got {positions.shape}")
    if positions.shape[1] == 32:
        positions = positions[:, H36M32_TO_17]
    elif positions.shape[1] != 17:
        raise ValueError(f"expected 17 or 32 joints, got {positions.shape[1]}")
    return np.ascontiguousarray(positions, dtype=np.float32)


def check_subjects(subjects: Iterable[str], split: str) -> tuple[str, ...]:
    """Raise unless ``subjects`` is a subset of ``split`` (no test subject leaks into training)."""
    subjects = tuple(subjects)
    allowed = SPLITS[split]
    bad = [s for s in subjects if s not in allowed]
    if bad:
        raise ValueError(f"subjects {bad} are not in the {split} split {allowed}")
    if not subjects:
        raise ValueError(f"no subjects given for the {split} split")
    return subjects


def load_positions(
    path: str | os.PathLike | None = None, subjects: Sequence[str] | None = None
) -> Poses:
    """Load ``{subject: {clip: (T, 17, 3) float32}}`` (metres, world frame) from a container."""
    f = resolve_data_file(path)
    with np.load(f, allow_pickle=True) as z:
        raw = z["positions_3d"].item()
    wanted = set(subjects) if subjects is not None else None
    out: Poses = {}
    for subject in sorted(raw):
        if wanted is not None and subject not in wanted:
            continue
        out[subject] = {clip: select_17(arr) for clip, arr in sorted(raw[subject].items())}
    if wanted is not None:
        missing = wanted - set(out)
        if missing:
            raise KeyError(f"subjects {sorted(missing)} not in {f}")
    return out


def load_split(split: str, path: str | os.PathLike | None = None,
               subjects: Sequence[str] | None = None) -> Poses:
    """Load the ``train`` or ``test`` split (optionally a subset of its subjects)."""
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r}; known: {sorted(SPLITS)}")
    subjects = check_subjects(subjects if subjects is not None else SPLITS[split], split)
    return load_positions(path, subjects)


def fingerprint(poses: Poses) -> str:
    """A short, stable hash of the subjects, clips, frame counts and a sample of the values."""
    h = hashlib.sha256()
    for subject in sorted(poses):
        for clip in sorted(poses[subject]):
            arr = poses[subject][clip]
            h.update(f"{subject}/{clip}/{arr.shape}".encode())
            sample = arr[:: max(1, len(arr) // 8)]
            h.update(np.ascontiguousarray(sample, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


class FrameTable:
    """All clips concatenated into one array, with clip boundaries, for fast window gathering.

    ``positions``: (N, 17, 3) float32; ``clip_start[i]``/``clip_end[i]`` bound frame i's clip;
    ``clips``: list of (subject, clip, start, length).
    """

    def __init__(self, poses: Poses):
        arrays, starts, ends, clips = [], [], [], []
        offset = 0
        for subject in sorted(poses):
            for clip in sorted(poses[subject]):
                arr = poses[subject][clip]
                n = len(arr)
                if n == 0:
                    continue
                arrays.append(arr)
                starts.append(np.full(n, offset, dtype=np.int64))
                ends.append(np.full(n, offset + n, dtype=np.int64))
                clips.append((subject, clip, offset, n))
                offset += n
        if not arrays:
            raise ValueError("no frames")
        self.positions = np.concatenate(arrays).astype(np.float32, copy=False)
        self.clip_start = np.concatenate(starts)
        self.clip_end = np.concatenate(ends)
        self.clips = clips
        self.fingerprint = fingerprint(poses)

    def __len__(self) -> int:
        return len(self.positions)

    def window_indices(
        self, centre: np.ndarray, frames: int, causal: bool = True, step: np.ndarray | int = 1
    ) -> np.ndarray:
        """Frame indices (B, frames) of windows ending at (causal) or centred on ``centre`` (B,).

        ``step`` (scalar or (B,)) is the frame stride inside the window (1 = 50 Hz, 2 = 25 Hz).
        Indices outside the clip are clamped to its first/last frame (edge padding), as at the
        start of a live stream.
        """
        centre = np.asarray(centre, dtype=np.int64)
        step = np.broadcast_to(np.asarray(step, dtype=np.int64), centre.shape)
        if causal:
            offsets = np.arange(-(frames - 1), 1)
        else:
            half = frames // 2
            offsets = np.arange(-half, frames - half)
        idx = centre[:, None] + offsets[None, :] * step[:, None]
        lo = self.clip_start[centre][:, None]
        hi = self.clip_end[centre][:, None] - 1
        return np.clip(idx, lo, hi)
