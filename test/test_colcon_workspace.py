"""Both packages build, install and test with plain colcon, as on a robot with ROS 2 from apt.

One workspace (the two packages copied into src/, a normal, non-symlink install) is built once
for the module; then the installed package must run on its own: `pose3d run` from the install
space finds the shipped lifters in share/pose3d_ros/lifters and the 2D models (built on a PC)
through POSE3D_MODEL_DIR or a copy in the user data folder, never through this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = REPO / "data" / "models"
FOOTAGE = REPO / "data" / "footage"
PACKAGES = ("pose3d_msgs", "pose3d_ros")

pytestmark = pytest.mark.slow


def base_env(home: Path) -> dict[str, str]:
    """This venv as the ROS underlay (AMENT_PREFIX_PATH), a clean HOME, nothing of the repo."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POSE3D_", "COLCON", "XDG_DATA_HOME", "PYTHONPATH"))}
    env.update(AMENT_PREFIX_PATH=sys.prefix, PATH=f"{BIN}:{os.environ['PATH']}",
               HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"))
    return env


def sourced(ws: Path, command: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """``command`` in bash after ``source install/setup.bash`` (as a robot user would)."""
    return subprocess.run(["bash", "-c", f"source {ws}/install/setup.bash && {command}"],
                          cwd=kwargs.pop("cwd", ws), env=env, capture_output=True, text=True,
                          **kwargs)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, ws / "src" / pkg,
                        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    env = base_env(ws / "home")
    listed = subprocess.run([BIN / "colcon", "list", "--names-only"], cwd=ws, env=env,
                            capture_output=True, text=True)
    assert sorted(listed.stdout.split()) == sorted(PACKAGES), listed.stderr
    build = subprocess.run([BIN / "colcon", "build", "--event-handlers", "console_direct-"],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return ws


def test_install_space_is_complete_and_not_a_symlink_install(workspace):
    install = workspace / "install" / "pose3d_ros"
    for exe in ("pose3d_node", "video_source_node", "skeleton_markers_node", "pose3d"):
        assert (install / "lib" / "pose3d_ros" / exe).is_file(), exe
    share = install / "share" / "pose3d_ros"
    assert (share / "package.xml").is_file()
    assert (install / "share/ament_index/resource_index/packages/pose3d_ros").is_file()
    # the files the README and launch files point at
    assert (share / "config" / "fastdds_shm.xml").is_file()
    assert (share / "config" / "pose3d.yaml").is_file()
    assert (share / "config" / "pose3d.rviz").is_file()
    assert sorted(p.name for p in (share / "launch").glob("*.launch.py")) == sorted(
        p.name for p in (REPO / "pose3d_ros" / "launch").glob("*.launch.py"))
    shipped = sorted(p.name for p in (REPO / "pose3d_ros" / "lifters").glob("*.onnx"))
    assert shipped and sorted(p.name for p in (share / "lifters").glob("*.onnx")) == shipped
    # a real install: the package's modules are copies, not links back into the source tree
    modules = list(install.glob("lib/python3*/site-packages/pose3d_ros/assets.py"))
    assert len(modules) == 1 and not modules[0].is_symlink(), modules


def test_messages_importable_from_the_workspace(workspace):
    probe = sourced(workspace, f"{sys.executable} -c "
                    "'import pose3d_msgs.msg as m; print(m.__file__)'", base_env(workspace))
    assert probe.returncode == 0, probe.stderr
    assert str(workspace / "install") in probe.stdout


@pytest.mark.parametrize("models_via", ["POSE3D_MODEL_DIR", "user data dir"])
def test_pose3d_run_from_the_install_space(workspace, tmp_path, models_via):
    if not (MODELS / "manifest.json").is_file() or not (FOOTAGE / "messi5.jpg").is_file():
        pytest.fail("data/models or data/footage missing: run `make setup`")
    home = tmp_path / "home"
    env = base_env(home)
    if models_via == "POSE3D_MODEL_DIR":
        env["POSE3D_MODEL_DIR"] = str(MODELS)
        expected_models = MODELS
    else:  # as the README tells robot users: copy the folder built on a PC
        expected_models = home / ".local" / "share" / "pose3d_ros" / "models"
        shutil.copytree(MODELS, expected_models)
    # Where the installed package looks, asked from the install space.
    where = sourced(workspace, f"{sys.executable} -c '"
                    "import json, pose3d_ros, pose3d_ros.assets as a; print(json.dumps(["
                    "pose3d_ros.__file__, str(a.lifter_path(\"htnet_small\")), "
                    "str(a.find_model_dir()), str(a.source_tree()), "
                    "str(a.config_file(\"fastdds_shm.xml\"))]))'", env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    module, lifter, model_dir, source_tree, shm = json.loads(where.stdout.splitlines()[-1])
    install = workspace / "install" / "pose3d_ros"
    share = install / "share" / "pose3d_ros"
    assert module.startswith(str(install)), module
    assert Path(lifter) == share / "lifters" / "htnet_small.onnx"
    assert Path(shm) == share / "config" / "fastdds_shm.xml"
    assert Path(model_dir) == expected_models
    assert source_tree == "None"
    # The offline pipeline on a still image, from the installed console script (what
    # `ros2 run pose3d_ros pose3d` starts).
    out = tmp_path / "out"
    exe = install / "lib" / "pose3d_ros" / "pose3d"
    run = sourced(workspace, f"{exe} run --input {FOOTAGE / 'messi5.jpg'} --out {out}", env,
                  cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1 and summary["people_detections"] >= 1, summary
    people = json.loads((out / "skeletons.jsonl").read_text().splitlines()[0])["people"]
    assert people, "no person found on messi5.jpg"


def test_colcon_test_passes_in_the_workspace(workspace):
    # Footage and models come from the environment (conftest's POSE3D_FOOTAGE_DIR and the
    # asset locator's POSE3D_MODEL_DIR), never from paths relative to this checkout. The tests
    # that start ROS graphs over DDS (marker `ros`) already run once in `make test` and take
    # two more minutes here; `colcon test` without the -m runs them too.
    env = base_env(workspace / "home")
    env.update(POSE3D_FOOTAGE_DIR=str(FOOTAGE), POSE3D_MODEL_DIR=str(MODELS))
    test = subprocess.run(
        [BIN / "colcon", "test", "--event-handlers", "console_direct-", "--pytest-args",
         "-m", "not ros", "-p", "no:cacheprovider"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=900,
    )
    assert test.returncode == 0, test.stdout[-4000:] + test.stderr[-2000:]
    result = subprocess.run([BIN / "colcon", "test-result", "--all", "--verbose"],
                            cwd=workspace, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
    # it really ran the package's tests (a result file with many passed tests)
    totals = result.stdout.strip().splitlines()[-1]
    assert "errors" in totals and " 0 failures" in totals, totals
    tests = int(totals.split()[1]) if totals.startswith("Summary:") else 0
    assert tests >= 100, totals
