"""third_party_msgs/: upstream message subsets built into the venv, never by colcon on a robot.

The folder must stay invisible to colcon (robots get the complete packages from apt), every file
must say where it came from and under which licence, and what set-up built must interoperate
with the real packages: the same rosidl type hash as Jazzy's tf2_msgs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "third_party_msgs"
BIN = Path(sys.executable).parent
PACKAGES = ("tf2_msgs", "hri_msgs")
# Jazzy's tf2_msgs/msg/TFMessage type hash, as `ros2 topic info --verbose` and rosbag2
# metadata show it on Jazzy systems (public output, not computed here).
JAZZY_TFMESSAGE_HASH = "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"


def test_colcon_does_not_see_the_folder():
    assert (FOLDER / "COLCON_IGNORE").is_file()
    listed = subprocess.run(
        [BIN / "colcon", "list", "--names-only", "--base-paths", str(FOLDER)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert listed.stdout.split() == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_file_has_its_source_and_licence(package):
    readme = (FOLDER / "README.md").read_text()
    pkg = FOLDER / package
    assert (pkg / "LICENSE").is_file()
    assert "Redistribution and use in source and binary forms" in (pkg / "LICENSE").read_text()
    assert ET.parse(pkg / "package.xml").getroot().findtext("license") == "BSD-3-Clause"
    msgs = sorted(p.name for p in (pkg / "msg").glob("*.msg"))
    assert msgs
    for name in msgs:
        row = next((line for line in readme.splitlines() if f"{package}/msg/{name}" in line), "")
        assert "commit" in row and "BSD-3-Clause" in row, f"{package}/msg/{name}: no source row"
        assert f'"msg/{name}"' in (pkg / "CMakeLists.txt").read_text()


@pytest.mark.parametrize("package", PACKAGES)
def test_the_venv_has_what_the_folder_defines(package):
    """set-up built these files (not some other version) into the venv."""
    installed = Path(sys.prefix) / "share" / package / "msg"
    for msg in (FOLDER / package / "msg").glob("*.msg"):
        assert (installed / msg.name).read_text() == msg.read_text(), msg.name


def test_tfmessage_has_jazzys_type_hash():
    description = json.loads((Path(sys.prefix) / "share/tf2_msgs/msg/TFMessage.json").read_text())
    hashes = {h["type_name"]: h["hash_string"] for h in description["type_hashes"]}
    assert hashes["tf2_msgs/msg/TFMessage"] == JAZZY_TFMESSAGE_HASH
    from hri_msgs.msg import IdsList
    from tf2_msgs.msg import TFMessage

    assert IdsList(ids=["3"]).ids == ["3"] and TFMessage().transforms == []
