"""The posture test set: people sitting, bending, close up, from behind, in crowds, in low light
and rotated, for the front-end benchmark (bench/front_end.py).

    .venv/bin/python -m pose3d_tools.bench.posture_set fetch   # -> data/posture_set/

The manifest (pose3d_tools/posture_set/manifest.json) lists every image: category, expected number
of people, source (repository + commit + path, or Debian/PyPI package + path), licence, sha256 and,
where the source gives them, COCO-17 keypoints. Images whose source is a public repository are
committed under pose3d_tools/posture_set/images/ (permissive licences only); the others come from
Debian's opencv-doc (via data/footage/, fetched by `make setup`) and the scikit-image wheel on PyPI
at fetch time. Rotated and darkened copies are made here, keypoints transformed with them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose3d_tools import REPO_ROOT

SET_DIR = REPO_ROOT / "pose3d_tools" / "posture_set"
MANIFEST = SET_DIR / "manifest.json"
OUT_DIR = REPO_ROOT / "data" / "posture_set"
FOOTAGE = REPO_ROOT / "data" / "footage"


@dataclass
class PostureImage:
    """One image of the set as the benchmark uses it."""

    id: str
    category: str
    people: int
    path: Path
    keypoints: np.ndarray | None  # (P, 17, 3) COCO-17 x, y, visibility (0 = not labelled)
    areas: np.ndarray | None  # (P,) object areas in px^2 for OKS
    boxes: np.ndarray | None = None  # (people, 4) x0, y0, x1, y1 px, labelled by eye


def load_manifest(path: Path = MANIFEST) -> dict:
    """The manifest as a dict."""
    return json.loads(path.read_text())


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rotate_image(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate by 90/180/270 degrees clockwise."""
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(image, codes[degrees])


def rotate_points(points: np.ndarray, degrees: int, width: int, height: int) -> np.ndarray:
    """Pixel coordinates (..., 2+) of an image of size width x height after rotate_image.

    Pixel centres map exactly: x' = H-1-y, y' = x for 90 deg clockwise, and so on.
    """
    out = np.array(points, dtype=np.float64, copy=True)
    x, y = points[..., 0], points[..., 1]
    if degrees == 90:
        out[..., 0], out[..., 1] = height - 1 - y, x
    elif degrees == 180:
        out[..., 0], out[..., 1] = width - 1 - x, height - 1 - y
    elif degrees == 270:
        out[..., 0], out[..., 1] = y, width - 1 - x
    else:
        raise ValueError(f"rotation must be 90, 180 or 270, not {degrees}")
    return out


def rotate_boxes(boxes: np.ndarray, degrees: int, width: int, height: int) -> np.ndarray:
    """Boxes (N, 4: x0, y0, x1, y1) of an image after rotate_image."""
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 3]]], axis=1)  # (N, 2, 2)
    turned = rotate_points(corners, degrees, width, height)
    return np.concatenate([turned.min(axis=1), turned.max(axis=1)], axis=1)


def darken(
    image: np.ndarray, gain: float, gamma: float, noise_sigma: float, seed: int
) -> np.ndarray:
    """Synthetic low light: gamma, then gain, then Gaussian sensor noise (8-bit in and out)."""
    x = (image.astype(np.float64) / 255.0) ** gamma * gain * 255.0
    x += np.random.default_rng(seed).normal(0.0, noise_sigma, image.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _skimage_files(names: list[str], dest: Path, requirement: str) -> None:
    """Copy skimage/data/<name> out of the scikit-image wheel (pip download, no install)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                tmp,
                requirement,
            ],
            check=True,
        )
        wheel = next(Path(tmp).glob("scikit_image-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in names:
                (dest / name).write_bytes(zf.read(f"skimage/data/{name}"))


def _video_frame(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read frame {index} of {video}")
    return frame


def fetch(out_dir: Path = OUT_DIR, manifest: dict | None = None, check_sha: bool = True) -> Path:
    """Assemble every image of the manifest in out_dir (idempotent); returns out_dir."""
    manifest = manifest or load_manifest()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ".gitignore").write_text("*\n")
    items = {it["id"]: it for it in manifest["images"]}
    originals = [it for it in manifest["images"] if "derived_from" not in it]

    pypi = [it for it in originals if it["source"]["kind"] == "pypi"]
    missing = [it for it in pypi if not (out_dir / it["file"]).exists()]
    if missing:
        _skimage_files([it["file"] for it in missing], out_dir, missing[0]["source"]["package"])
    for it in originals:
        src, dest = it["source"], out_dir / Path(it["file"]).name
        if src["kind"] == "github":
            shutil.copyfile(REPO_ROOT / it["file"], dest)
        elif src["kind"] == "debian" and "frame" in src:
            if not dest.exists():
                cv2.imwrite(str(dest), _video_frame(FOOTAGE / src["path"], int(src["frame"])))
        elif src["kind"] == "debian":
            if not (FOOTAGE / src["path"]).exists():
                raise FileNotFoundError(f"{FOOTAGE / src['path']}: run `make setup` (opencv-doc)")
            shutil.copyfile(FOOTAGE / src["path"], dest)
        if check_sha and "sha256" in it and sha256(dest) != it["sha256"]:
            raise RuntimeError(f"{it['id']}: sha256 of {dest} differs from the manifest")

    for it in manifest["images"]:
        if "derived_from" not in it:
            continue
        base = items[it["derived_from"]]
        image = cv2.imread(str(out_dir / Path(base["file"]).name), cv2.IMREAD_COLOR)
        if "rotate" in it:
            image = rotate_image(image, int(it["rotate"]))
        if "dark" in it:
            d = it["dark"]
            image = darken(image, d["gain"], d["gamma"], d["noise_sigma"], d["seed"])
        cv2.imwrite(str(out_dir / f"{it['id']}.png"), image)
    return out_dir


def images(out_dir: Path = OUT_DIR, manifest: dict | None = None) -> list[PostureImage]:
    """Every image of the set, with keypoints transformed like derived images."""
    manifest = manifest or load_manifest()
    items = {it["id"]: it for it in manifest["images"]}
    out: list[PostureImage] = []
    for it in manifest["images"]:
        base = items.get(it.get("derived_from", ""), it)
        path = out_dir / (f"{it['id']}.png" if "derived_from" in it else Path(it["file"]).name)
        kp = base.get("keypoints_coco17")
        keypoints = None if kp is None else np.asarray(kp, dtype=np.float64).reshape(-1, 17, 3)
        areas = _areas(base, keypoints)
        boxes = None if "boxes" not in base else np.asarray(base["boxes"], dtype=np.float64)
        if "rotate" in it and (keypoints is not None or boxes is not None):
            h, w = cv2.imread(str(out_dir / Path(base["file"]).name)).shape[:2]
            if keypoints is not None:
                keypoints[..., :2] = rotate_points(keypoints[..., :2], int(it["rotate"]), w, h)
            if boxes is not None:
                boxes = rotate_boxes(boxes, int(it["rotate"]), w, h)
        people = int(it.get("people", base["people"]))
        out.append(PostureImage(it["id"], it["category"], people, path, keypoints, areas, boxes))
    return out


def _areas(item: dict, keypoints: np.ndarray | None) -> np.ndarray | None:
    """Object areas: the source's where given, else the labelled keypoints' box area."""
    if keypoints is None:
        return None
    if "area" in item:
        return np.asarray(item["area"], dtype=np.float64)
    areas = []
    for person in keypoints:
        seen = person[person[:, 2] > 0, :2]
        span = seen.max(0) - seen.min(0)
        areas.append(float(span[0] * span[1]))
    return np.asarray(areas)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", choices=("fetch", "list"))
    ap.add_argument("--out", default=str(OUT_DIR))
    args = ap.parse_args()
    out = Path(args.out)
    if args.command == "fetch":
        fetch(out)
    for im in images(out):
        kp = "" if im.keypoints is None else f" keypoints x{len(im.keypoints)}"
        print(f"{im.category:<12} {im.id:<32} people {im.people}{kp}  {im.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
