"""The robot runtime works without the training stack: torch, TensorFlow and tf2onnx are for
pose3d_tools only (training, export, the 2D-model build), and a robot install does not have them.

Two checks. Dynamic: in a subprocess where those packages cannot be imported (a sitecustomize on
PYTHONPATH puts an import blocker first on ``sys.meta_path``), the node's PosePipeline and the
`pose3d run` console script process a real photo and produce a skeleton. Static: no module of
the runtime package imports the tools package or those frameworks, even in a branch the photo
does not reach.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "pose3d_ros" / "pose3d_ros"
VENV_BIN = Path(sys.executable).parent
FORBIDDEN = ("torch", "tensorflow", "tf2onnx")  # top-level names the blocker refuses
NOT_FOR_THE_RUNTIME = (*FORBIDDEN, "pose3d_tools")

# Installed as sitecustomize.py: Python imports it at start-up, before any user code. It writes
# one line to $POSE3D_BLOCK_LOG when installed and one per refused import, so the test can see
# that the blocker was in force and whether anything even tried a forbidden import.
SITECUSTOMIZE = textwrap.dedent(
    """
    import os
    import sys

    BLOCKED = {blocked!r}
    LOG = os.environ["POSE3D_BLOCK_LOG"]


    def _log(line):
        with open(LOG, "a") as fh:
            fh.write(line + "\\n")


    class BlockForbidden:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                _log("refused " + name)
                raise ImportError(f"{{name}} is blocked: the runtime must not need it")
            return None


    sys.meta_path.insert(0, BlockForbidden())
    _log("installed")
    """
).format(blocked=set(FORBIDDEN))

PIPELINE_SCRIPT = """
import json, sys
import cv2
import numpy as np

try:
    import torch  # noqa: F401
except ImportError as e:
    torch_blocked = "blocked" in str(e)
else:
    torch_blocked = False

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.pipeline import PipelineSettings, PosePipeline

image = cv2.imread(sys.argv[1])
h, w = image.shape[:2]
pipeline = PosePipeline(PipelineSettings())  # the node's defaults
result = pipeline.process(image, CameraModel.from_fov(w, h, 60.0), 0.0)
people = [p for p in result.poses if p.observed.any()]
print(json.dumps({
    "torch_blocked": torch_blocked,
    "people": len(people),
    "joints_3d_finite": [int(np.isfinite(p.joints_3d).all(1).sum()) for p in people],
    "loaded": sorted(m for m in sys.modules if m.partition(".")[0] in sys.argv[2:]),
}))
"""


@pytest.fixture
def blocked_env(tmp_path) -> tuple[dict[str, str], Path]:
    """Environment for a subprocess in which the forbidden packages cannot be imported."""
    site = tmp_path / "blocker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "blocker.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    env["POSE3D_BLOCK_LOG"] = str(log)
    return env, log


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _blocker_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_blocker_refuses_torch(blocked_env):
    """The blocker itself works: without it this test would prove nothing."""
    env, log = blocked_env
    proc = subprocess.run(
        [sys.executable, "-c", "import torch"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode != 0 and "torch is blocked" in proc.stderr, proc.stderr[-2000:]
    assert _blocker_lines(log) == ["installed", "refused torch"]


def test_pipeline_runs_without_torch(blocked_env, model_dir, footage):
    env, log = blocked_env
    image = str(footage / "messi5.jpg")
    proc = _run([sys.executable, "-c", PIPELINE_SCRIPT, image, *NOT_FOR_THE_RUNTIME], env)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch_blocked"], "the import blocker was not active"
    assert out["people"] == 1, out  # the one player of messi5.jpg
    assert out["joints_3d_finite"][0] >= 14, out  # a whole skeleton, not a stub
    assert out["loaded"] == [], out
    # Nothing but the script's own probe asked for a forbidden package.
    assert _blocker_lines(log) == ["installed", "refused torch"]


def test_pose3d_run_without_torch(blocked_env, model_dir, footage, tmp_path):
    env, log = blocked_env
    out = tmp_path / "run"
    _run([str(VENV_BIN / "pose3d"), "run", "--input", str(footage / "messi5.jpg"),
          "--out", str(out)], env)
    assert _blocker_lines(log) == ["installed"], "blocker inactive, or something tried an import"
    records = [json.loads(line) for line in (out / "skeletons.jsonl").read_text().splitlines()]
    assert len(records) == 1
    people = [p for p in records[0]["people"] if any(p["observed"])]
    assert len(people) == 1
    joints = people[0]["joints_3d_m"]
    assert sum(all(v is not None for v in j) for j in joints) >= 14


def test_tensorrt_op_check_runs_without_torch(blocked_env, tmp_path):
    """The TensorRT pre-flight (op allow-list + interface checks) needs only onnx: on a Jetson
    without torch it must run, not be skipped. A graph with a DFT op must be refused there."""
    pytest.importorskip("onnx", reason="the pre-flight needs onnx")
    from onnx import TensorProto, helper, save

    env, log = blocked_env
    lifter = REPO / "pose3d_ros" / "lifters" / "htnet_small.onnx"
    proc = _run([str(VENV_BIN / "pose3d"), "engine", "check", "--onnx", str(lifter)], env)
    assert "no known TensorRT problem" in proc.stdout
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("DFT", ["x"], ["y"])], "dft", [x], [y])
    dft = tmp_path / "dft.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(dft))
    bad = subprocess.run([str(VENV_BIN / "pose3d"), "engine", "check", "--onnx", str(dft)],
                         capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert bad.returncode == 1 and "DFT" in bad.stdout, bad.stdout + bad.stderr
    # two processes, each with the blocker installed, neither asking for a blocked package
    assert _blocker_lines(log) == ["installed", "installed"], _blocker_lines(log)


def _imported_names(tree: ast.AST) -> set[str]:
    """Top-level names of absolute imports, and of importlib.import_module / __import__ calls
    with a literal name."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if called in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                names.add(str(arg.value).partition(".")[0])
    return names


def test_import_finder_sees_every_kind_of_import():
    code = (
        "import torch.nn\nfrom tensorflow import keras\nimportlib.import_module('tf2onnx.x')\n"
        "def f():\n    from pose3d_tools import cli\nfrom . import sibling\n"
    )
    assert _imported_names(ast.parse(code)) == set(NOT_FOR_THE_RUNTIME)


def test_no_runtime_module_imports_the_tools_or_training_frameworks():
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) > 20, files  # the package was found
    offenders = {}
    for path in files:
        bad = _imported_names(ast.parse(path.read_text(), str(path))) & set(NOT_FOR_THE_RUNTIME)
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}
