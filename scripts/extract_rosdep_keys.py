"""Write rosdep/keys.yaml: the rosdep keys our package.xml files use, resolved for the two
platforms we support, from a copy of ros/rosdistro.

No registry package carries the rosdep database (rosdep and rosdistro on PyPI only know how to
download it), and set-up has no network beyond the registries, so the test suite checks our
keys against this small committed extract. Regenerate it after changing a package.xml:

    python scripts/extract_rosdep_keys.py --rosdistro <rosdistro checkout or bare git dir>

Keys come from two places in rosdistro: ``rosdep/{base,python}.yaml`` (system keys, resolved
here for Ubuntu noble = Jazzy and jammy = Humble) and ``<distro>/distribution.yaml`` (ROS
packages, recorded with their released version per distro).
"""

from __future__ import annotations

import argparse
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_XMLS = [ROOT / "pose3d_ros" / "package.xml", ROOT / "pose3d_msgs" / "package.xml"]
OUTPUT = ROOT / "rosdep" / "keys.yaml"
RULE_FILES = ("rosdep/base.yaml", "rosdep/python.yaml")
# ROS distribution -> the Ubuntu release its binaries are built for (REP 2000).
PLATFORMS = {"jazzy": "noble", "humble": "jammy"}
DEPEND_TAGS = (
    "depend", "build_depend", "build_export_depend", "buildtool_depend",
    "buildtool_export_depend", "exec_depend", "test_depend",
)
INSTALLERS = ("apt", "pip", "source")
# Keys kept beside ours because the README names them as alternatives (GPU/Jetson) or a
# reviewer will ask about them; they are checked like ours.
NEIGHBOURS = (
    "python3-onnxruntime-gpu-pip", "python3-onnxruntime-openvino-pip", "python3-pytest-timeout",
    "python3-matplotlib", "python3-mcap-pip", "python3-onnx", "cv_bridge", "rosbag2_py",
    "ros2launch", "domain_coordinator",
)


def package_keys(paths: list[Path]) -> set[str]:
    """Every dependency key of the given package.xml files (workspace packages included)."""
    keys = set()
    for path in paths:
        root = ET.parse(path).getroot()
        for tag in DEPEND_TAGS:
            keys.update(e.text.strip() for e in root.iter(tag) if e.text)
    return keys


class Rosdistro:
    """Files of a rosdistro checkout, or of a bare git directory at one commit."""

    def __init__(self, path: Path, commit: str = "HEAD") -> None:
        self.path = path
        self.bare = (path / "objects").is_dir() and (path / "HEAD").is_file()
        git = ["git", "--git-dir", str(path if self.bare else path / ".git")]
        self.commit = subprocess.run(
            [*git, "rev-parse", commit], check=True, capture_output=True, text=True
        ).stdout.strip()
        stamp = subprocess.run(
            [*git, "show", "-s", "--format=%cI", self.commit],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        self.date = datetime.fromisoformat(stamp).astimezone(timezone.utc).date().isoformat()
        self._git = git

    def load(self, name: str) -> Any:
        text = subprocess.run(
            [*self._git, "show", f"{self.commit}:{name}"], check=True, capture_output=True,
            text=True,
        ).stdout
        return yaml.safe_load(text)


def resolve(entry: Any, codename: str) -> dict[str, list[str]] | None:
    """An ``ubuntu:`` rule for one release -> {installer: packages}, None if not available."""
    if entry is None:
        return None
    if isinstance(entry, list):
        return {"apt": list(entry)}
    if isinstance(entry, dict):
        if any(k in entry for k in INSTALLERS):
            out = {}
            for inst in INSTALLERS:
                if inst in entry:
                    spec = entry[inst]
                    out[inst] = list(spec.get("packages", [])) if isinstance(spec, dict) else []
            return out
        if codename in entry:
            return resolve(entry[codename], codename)
        if "*" in entry:
            return resolve(entry["*"], codename)
    return None


def released_packages(distribution: dict[str, Any]) -> dict[str, str]:
    """ROS package name -> released version in one distribution.yaml."""
    out = {}
    for repo_name, repo in distribution.get("repositories", {}).items():
        release = repo.get("release")
        if not release or not release.get("version"):
            continue
        for pkg in release.get("packages", [repo_name]):
            out[pkg] = release["version"]
    return out


def extract(rosdistro: Rosdistro, keys: set[str]) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for name in RULE_FILES:
        rules.update(rosdistro.load(name))
    released = {d: released_packages(rosdistro.load(f"{d}/distribution.yaml")) for d in PLATFORMS}
    system, ros, unknown = {}, {}, []
    for key in sorted(keys):
        if key in rules:
            ubuntu = rules[key].get("ubuntu")
            system[key] = {cn: resolve(ubuntu, cn) for cn in PLATFORMS.values()}
        elif any(key in released[d] for d in PLATFORMS):
            ros[key] = {d: released[d].get(key) for d in PLATFORMS}
        else:
            unknown.append(key)
    return {"system": system, "ros_packages": ros, "not_in_rosdistro": unknown}


def render(rosdistro: Rosdistro, data: dict[str, Any]) -> str:
    header = f"""\
# rosdep keys used by pose3d_ros/package.xml and pose3d_msgs/package.xml (plus a few neighbours),
# extracted from the rosdep database so the tests can check them without network access
# (test/test_rosdep_keys.py). Generated by scripts/extract_rosdep_keys.py: do not edit by hand.
#
# Source: repository ros/rosdistro (GitHub), commit {rosdistro.commit} ({rosdistro.date}),
#   files {", ".join(RULE_FILES)} (system keys) and
#   {", ".join(f"{d}/distribution.yaml" for d in PLATFORMS)} (ROS packages).
# system:        key -> Ubuntu release -> {{installer: [packages]}}; null = no rule for that
#                release (rosdep cannot install it there).
# ros_packages:  key -> ROS distribution -> released version; null = not released there.
# not_in_rosdistro: keys looked up but absent: workspace packages (pose3d_msgs) and neighbours
#                checked for and not found (so python3-onnx, say, is known to have no key).
"""
    body = {
        "source": {
            "repository": "ros/rosdistro",
            "commit": rosdistro.commit,
            "date": rosdistro.date,
            "files": [*RULE_FILES, *(f"{d}/distribution.yaml" for d in PLATFORMS)],
        },
        "platforms": {d: f"ubuntu:{cn}" for d, cn in PLATFORMS.items()},
        **data,
    }
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rosdistro", type=Path, required=True,
                        help="a ros/rosdistro checkout or bare git directory")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    rosdistro = Rosdistro(args.rosdistro, args.commit)
    keys = package_keys(PACKAGE_XMLS) | set(NEIGHBOURS)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(rosdistro, extract(rosdistro, keys)))
    print(f"wrote {args.output} ({len(keys)} keys, rosdistro {rosdistro.commit[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
