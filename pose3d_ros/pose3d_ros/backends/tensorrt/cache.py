"""TensorRT engine cache: keys, sidecar metadata and the reuse-or-rebuild decision (no TensorRT).

A serialised TensorRT engine only runs on the TensorRT version and GPU it was built for, and it
silently encodes the precision and the optimisation profile. Every engine file therefore has a
sidecar ``<engine>.json`` holding the :class:`EngineKey` it was built for plus the engine's size
and sha256. An engine is reused only when the sidecar exists, parses, has the same key and the
engine bytes match the recorded size and hash; otherwise :func:`check_engine` says why and the
caller rebuilds (or, with no ONNX to rebuild from, fails with that reason).

    key = EngineKey.create(onnx_path, trt_version="10.3.0", gpu_name="Orin",
                           compute_capability="8.7", precision="fp16",
                           profile={"keypoints": ((1, 27, 17, 3), (4, 27, 17, 3), (8, 27, 17, 3))})
    engine, sidecar = cache_paths(cache_dir(), onnx_path, key)   # assets.engine_dir()
    decision = check_engine(engine, key)      # CacheDecision(usable=False, reason="no engine ...")
    if not decision.usable:
        write_engine(engine, build(...), key, metadata={...})
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pose3d_ros.assets import engine_dir
from pose3d_ros.core.checksums import sha256_file

SIDECAR_SUFFIX = ".json"
SIDECAR_FORMAT = 1
PRECISIONS = ("fp32", "fp16", "int8")

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max)


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where engines live: ``explicit`` when given (node ``pipeline.tensorrt.engine_dir``,
    ``pose3d engine build --engine-dir``), else :func:`pose3d_ros.assets.engine_dir`
    (``$POSE3D_ENGINE_DIR``, else ``~/.cache/pose3d_ros/engines``)."""
    return engine_dir(explicit or None)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalise_profile(profile: Mapping[str, Sequence[Sequence[int]]]) -> Profile:
    """Validate and canonicalise ``{input: (min, opt, max)}`` (sorted names, int tuples)."""
    out: Profile = {}
    for name in sorted(profile):
        shapes = profile[name]
        if len(shapes) != 3:
            raise ValueError(f"profile for {name!r} needs (min, opt, max) shapes, got {shapes!r}")
        mn, opt, mx = (tuple(int(d) for d in s) for s in shapes)
        if not len(mn) == len(opt) == len(mx):
            raise ValueError(f"profile for {name!r}: shapes of different ranks {mn} {opt} {mx}")
        if not all(a <= b <= c for a, b, c in zip(mn, opt, mx, strict=True)):
            raise ValueError(f"profile for {name!r}: need min <= opt <= max, got {mn} {opt} {mx}")
        if any(d < 1 for d in mn):
            raise ValueError(f"profile for {name!r}: dimensions must be >= 1, got {mn}")
        out[name] = (mn, opt, mx)
    return out


@dataclass(frozen=True)
class EngineKey:
    """Everything that makes a serialised engine (in)valid for this model on this device."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.7" (Orin), "8.6" (RTX 30xx), ...
    precision: str  # fp32 | fp16 | int8
    profile: Profile
    calibration_sha256: str = ""  # int8 only: the calibration data the scales came from
    builder: dict[str, Any] = field(default_factory=dict)  # other flags (workspace, opt level)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {PRECISIONS}")

    @classmethod
    def create(
        cls,
        onnx_path: str | os.PathLike,
        *,
        trt_version: str,
        gpu_name: str,
        compute_capability: str,
        precision: str,
        profile: Mapping[str, Sequence[Sequence[int]]],
        calibration_sha256: str = "",
        builder: Mapping[str, Any] | None = None,
    ) -> EngineKey:
        return cls(
            onnx_sha256=sha256_file(onnx_path),
            tensorrt_version=str(trt_version),
            gpu_name=str(gpu_name),
            compute_capability=str(compute_capability),
            precision=precision,
            profile=normalise_profile(profile),
            calibration_sha256=calibration_sha256 if precision == "int8" else "",
            builder=dict(builder or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["profile"] = {k: [list(s) for s in v] for k, v in self.profile.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EngineKey:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown engine key field(s) {sorted(unknown)}")
        values = dict(d)
        values["profile"] = normalise_profile(values.get("profile", {}))
        values["builder"] = dict(values.get("builder") or {})
        return cls(**values)

    def digest(self) -> str:
        """sha256 of the canonical JSON of the key (the cache file name uses its first 16)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, other: EngineKey) -> list[str]:
        """Human-readable differences ``field: ours != theirs`` (empty when equal)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {b[k]!r} (engine) != {a[k]!r} (here)" for k in a if a[k] != b[k]]


def cache_paths(
    cache_dir: str | os.PathLike, onnx_path: str | os.PathLike, key: EngineKey
) -> tuple[Path, Path]:
    """``<cache>/<onnx stem>.<precision>.b<max batch>.<digest16>.engine`` and its sidecar."""
    max_batch = max((shapes[2][0] for shapes in key.profile.values()), default=0)
    stem = Path(onnx_path).stem
    engine = (
        Path(cache_dir).expanduser()
        / f"{stem}.{key.precision}.b{max_batch}.{key.digest()[:16]}.engine"
    )
    return engine, sidecar_path(engine)


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class CacheDecision:
    usable: bool
    reason: str
    sidecar: dict[str, Any] | None = None  # parsed sidecar when it could be read


def read_sidecar(engine_path: str | os.PathLike) -> dict[str, Any]:
    """The parsed sidecar of an engine; raises ValueError/OSError with the path on any problem."""
    path = sidecar_path(engine_path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"engine sidecar {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or "key" not in data:
        raise ValueError(f"engine sidecar {path} has no 'key'")
    return data


def check_engine(engine_path: str | os.PathLike, key: EngineKey | None) -> CacheDecision:
    """Can the engine at ``engine_path`` be used for ``key``? Never raises for a bad cache entry.

    ``key=None`` checks only integrity (sidecar readable, bytes match): use it for an engine
    given without its ONNX, then compare the device part of the key yourself
    (:func:`device_mismatch`).
    """
    engine = Path(engine_path)
    if not engine.is_file():
        return CacheDecision(False, f"no engine file {engine}")
    try:
        side = read_sidecar(engine)
    except FileNotFoundError:
        return CacheDecision(
            False,
            f"engine {engine} has no sidecar {sidecar_path(engine)}: "
            "cannot tell what it was built for",
        )
    except (OSError, ValueError) as e:
        return CacheDecision(False, str(e))
    try:
        stored = EngineKey.from_dict(side["key"])
    except (TypeError, ValueError) as e:
        return CacheDecision(
            False, f"engine sidecar {sidecar_path(engine)} has a bad key: {e}", side
        )
    if key is not None and stored != key:
        diff = "; ".join(key.differences(stored))
        return CacheDecision(False, f"stale engine {engine}: {diff}", side)
    size = engine.stat().st_size
    if side.get("engine_size") != size:
        return CacheDecision(
            False,
            f"corrupt engine {engine}: {size} bytes, sidecar says {side.get('engine_size')}",
            side,
        )
    if side.get("engine_sha256") != sha256_file(engine):
        return CacheDecision(
            False, f"corrupt engine {engine}: sha256 differs from its sidecar", side
        )
    return CacheDecision(True, f"cached engine {engine} matches", side)


@dataclass(frozen=True)
class DeviceKey:
    """The device part of an engine key: an engine deserialises only where all three match."""

    trt_version: str
    gpu_name: str  # name + SM count (memory.GpuInfo.key_name): Orin Nano != AGX Orin
    compute_capability: str


DEVICE_FIELDS = {"tensorrt_version": "trt_version", "gpu_name": "gpu_name",
                 "compute_capability": "compute_capability"}  # EngineKey field -> DeviceKey field


def device_mismatch(stored: EngineKey, here: DeviceKey) -> list[str]:
    """Why an engine built for ``stored`` cannot be deserialised here (empty when it can)."""
    return [
        f"built for {f.replace('_', ' ')} {getattr(stored, f)!r}, "
        f"this is {getattr(here, mine)!r}"
        for f, mine in DEVICE_FIELDS.items()
        if str(getattr(stored, f)) != str(getattr(here, mine))
    ]


def write_engine(
    engine_path: str | os.PathLike,
    engine_bytes: bytes,
    key: EngineKey,
    metadata: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write the engine and then its sidecar (key, size, sha256, model metadata)."""
    engine = Path(engine_path).expanduser()
    engine.parent.mkdir(parents=True, exist_ok=True)
    data = bytes(engine_bytes)
    if not data:
        raise ValueError("refusing to cache an empty engine")
    side = {
        "format": SIDECAR_FORMAT,
        "key": key.to_dict(),
        "key_digest": key.digest(),
        "engine_size": len(data),
        "engine_sha256": sha256_bytes(data),
        "metadata": dict(metadata or {}),
        **dict(extra or {}),
    }
    tmp = engine.with_name(engine.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, engine)
    side_path = sidecar_path(engine)
    tmp_side = side_path.with_name(side_path.name + ".tmp")
    tmp_side.write_text(json.dumps(side, indent=2, sort_keys=True))
    os.replace(tmp_side, side_path)
    return engine


def invalidate(engine_path: str | os.PathLike) -> None:
    """Remove an engine and its sidecar (missing files are fine)."""
    for p in (Path(engine_path), sidecar_path(engine_path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


@dataclass
class EngineResult:
    engine: Any  # whatever ``deserialize`` returned (a tensorrt.ICudaEngine)
    path: Path
    built: bool  # True: built in this call; False: reused from the cache
    reason: str  # why it was built or reused
    sidecar: dict[str, Any]


def obtain_engine(
    engine_path: str | os.PathLike,
    key: EngineKey,
    *,
    build: Callable[[], bytes],
    deserialize: Callable[[bytes], Any],
    metadata: Mapping[str, str] | None = None,
    force: bool = False,
    allow_build: bool = True,
    logger: logging.Logger | None = None,
) -> EngineResult:
    """Reuse the cached engine when it is valid for ``key``, else (re)build, cache and load it.

    A cached engine is rebuilt when the sidecar is missing/unreadable, the key differs, the
    bytes do not match the sidecar, or ``deserialize`` fails on it (returns None or raises):
    it is never used in any of those cases. ``allow_build=False`` turns a needed build into a
    FileNotFoundError carrying the reason (for robots that must not build at start-up).
    """
    log = logger or logging.getLogger(__name__)
    engine_path = Path(engine_path)
    reason = "rebuild forced"
    if not force:
        decision = check_engine(engine_path, key)
        reason = decision.reason
        if decision.usable:
            data = engine_path.read_bytes()
            try:
                engine = deserialize(data)
            except Exception as e:  # TensorRT raises RuntimeError/TypeError on bad plans
                engine, err = None, f": {e}"
            else:
                err = ""
            if engine is not None:
                return EngineResult(
                    engine, engine_path, False, decision.reason, decision.sidecar or {}
                )
            reason = f"cached engine {engine_path} failed to deserialise{err}"
        if engine_path.exists() or sidecar_path(engine_path).exists():
            log.warning("%s: rebuilding", reason)
    if not allow_build:
        raise FileNotFoundError(
            f"{reason}; building engines at start-up is disabled "
            "(build it first with `pose3d engine build`)"
        )
    invalidate(engine_path)
    log.info("building TensorRT engine %s (%s)", engine_path.name, reason)
    data = build()
    write_engine(engine_path, data, key, metadata)
    engine = deserialize(data)
    if engine is None:
        invalidate(engine_path)
        raise RuntimeError(f"the freshly built engine {engine_path} does not deserialise")
    return EngineResult(engine, engine_path, True, reason, read_sidecar(engine_path))
