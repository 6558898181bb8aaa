"""Both packages build with plain colcon, as they will on a robot with ROS 2 from apt."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_colcon_discovers_and_builds_both_packages(tmp_path):
    ws = tmp_path / "ws"
    for pkg in ("pose3d_msgs", "pose3d_ros"):
        shutil.copytree(
            REPO / pkg,
            ws / "src" / pkg,
            ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"),
        )
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, PATH=f"{BIN}:{os.environ['PATH']}")
    listed = subprocess.run(
        [BIN / "colcon", "list", "--names-only"], cwd=ws, env=env, capture_output=True, text=True
    )
    assert sorted(listed.stdout.split()) == ["pose3d_msgs", "pose3d_ros"], listed.stderr
    build = subprocess.run(
        [BIN / "colcon", "build", "--event-handlers", "console_direct-"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    install = ws / "install"
    for exe in ("video_source_node", "skeleton_markers_node", "pose3d"):
        assert (install / "pose3d_ros" / "lib" / "pose3d_ros" / exe).exists(), exe
    share = install / "pose3d_ros" / "share" / "pose3d_ros"
    assert (share / "package.xml").exists()
    assert (install / "pose3d_ros/share/ament_index/resource_index/packages/pose3d_ros").exists()
    # The workspace's own messages are importable once its setup script is sourced.
    probe = subprocess.run(
        [
            "bash",
            "-c",
            f"source {install}/setup.bash && {sys.executable} -c "
            "'import pose3d_msgs.msg as m; print(m.__file__)'",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert str(install) in probe.stdout
