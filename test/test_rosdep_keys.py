"""`rosdep install --from-paths src` on a robot must install everything the packages need.

Checked offline against rosdep/keys.yaml, an extract of ros/rosdistro's rosdep database and
distribution files (scripts/extract_rosdep_keys.py): every dependency key of both package.xml
files must resolve on Ubuntu noble (Jazzy) and jammy (Humble), and every third-party module the
runtime (or its tests) imports must come from a declared key.
"""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
KEYS_FILE = REPO / "rosdep" / "keys.yaml"
PACKAGE_XMLS = {"pose3d_ros": REPO / "pose3d_ros" / "package.xml",
                "pose3d_msgs": REPO / "pose3d_msgs" / "package.xml"}
RUNTIME_SOURCES = [REPO / "pose3d_ros" / "pose3d_ros", REPO / "pose3d_ros" / "launch"]
TEST_SOURCES = [REPO / "pose3d_ros" / "test"]
RUN_TAGS = ("depend", "exec_depend")
TEST_TAGS = (*RUN_TAGS, "test_depend")
ALL_TAGS = (*TEST_TAGS, "build_depend", "build_export_depend", "buildtool_depend",
            "buildtool_export_depend")

# Python module -> the rosdep key that installs it. A ROS package's modules are named after
# the package (rclpy, sensor_msgs, launch_ros, ...) and need no entry here.
MODULE_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "onnxruntime": "python3-onnxruntime-pip",
    "rosbags": "python3-rosbags-pip",
    "pytest": "python3-pytest",
    "hypothesis": "python3-hypothesis",
    "tf2_ros": "tf2_ros_py",  # the Python tf2_ros module is the tf2_ros_py package
}
# Imported only inside functions of the TensorRT path, never needed on a CPU robot; none has a
# rosdep key (python3-onnx was looked up: see not_in_rosdistro in rosdep/keys.yaml).
OPTIONAL_MODULES = {
    "tensorrt": "JetPack's python3-libnvinfer (docs/jetson.md)",
    "cuda": "cuda-python from pip, TensorRT backend only",
    "onnx": "pip install onnx, TensorRT engine build / backend selection only",
}
FIRST_PARTY = {
    "pose3d_ros", "pose3d_msgs", "known_poses", "ros_graph", "bag_files", "conftest",
    "toy_lifters", "e2e_models",  # hand-built ONNX models of the runtime tests
    "test_pose3d_node",  # its Peer helper, shared by the node tests of other inputs
    "test_pipeline", "test_e2e_pipeline",  # fixtures shared by the E2E tests
}


@pytest.fixture(scope="module")
def keys() -> dict:
    return yaml.safe_load(KEYS_FILE.read_text())


def declared(package: str, tags: tuple[str, ...]) -> set[str]:
    root = ET.parse(PACKAGE_XMLS[package]).getroot()
    return {e.text.strip() for tag in tags for e in root.iter(tag) if e.text}


def key_problem(key: str, keys: dict) -> str:
    """Why rosdep could not install ``key`` on Jazzy/noble and Humble/jammy ('' if it can)."""
    if key in PACKAGE_XMLS:
        return ""  # built from the same workspace
    platforms = keys["platforms"]
    if key in keys["system"]:
        rule = keys["system"][key]
        missing = [p.split(":")[1] for p in platforms.values() if not rule.get(p.split(":")[1])]
        return f"{key}: no rule for ubuntu {', '.join(missing)}" if missing else ""
    if key in keys["ros_packages"]:
        rel = keys["ros_packages"][key]
        missing = [d for d in platforms if not rel.get(d)]
        return f"{key}: not released for {', '.join(missing)}" if missing else ""
    if key in keys["not_in_rosdistro"]:
        return f"{key}: not a rosdep key nor a released ROS package"
    return (f"{key}: not in {KEYS_FILE.relative_to(REPO)}; regenerate it with "
            "scripts/extract_rosdep_keys.py --rosdistro <ros/rosdistro checkout>")


def imports(roots: list[Path], base: Path = REPO) -> dict[str, dict[str, list[str]]]:
    """Top-level module -> {"top": [files importing it at module level], "lazy": [...]}."""
    found: dict[str, dict[str, list[str]]] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            lazy_nodes = {
                id(n)
                for f in ast.walk(tree)
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                for n in ast.walk(f)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                where = "lazy" if id(node) in lazy_nodes else "top"
                for name in names:
                    top = name.split(".")[0]
                    entry = found.setdefault(top, {"top": [], "lazy": []})
                    entry[where].append(str(path.relative_to(base)))
    return found


def third_party(found: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
    return {m: w for m, w in found.items()
            if m not in sys.stdlib_module_names and m not in FIRST_PARTY and m != "__future__"}


def undeclared(found: dict, declared_keys: set[str], keys: dict) -> list[str]:
    problems = []
    for module, where in sorted(third_party(found).items()):
        files = sorted(set(where["top"] + where["lazy"]))
        if module in OPTIONAL_MODULES:
            if where["top"]:
                problems.append(f"{module} (optional: {OPTIONAL_MODULES[module]}) is imported at "
                                f"module level in {where['top']}: import it where it is used")
            continue
        key = MODULE_KEYS.get(module)
        if key is None and (module in keys["ros_packages"] or module in PACKAGE_XMLS):
            key = module
        if key is None:
            problems.append(f"{module} (imported by {files}) has no known rosdep key: a ROS "
                            f"package? declare <exec_depend>{module}</exec_depend> and "
                            "regenerate rosdep/keys.yaml (scripts/extract_rosdep_keys.py); "
                            "else add its key to MODULE_KEYS here and declare that")
        elif key not in declared_keys:
            problems.append(f"{module} (imported by {files}) needs <exec_depend>{key}"
                            "</exec_depend> (or test_depend) in pose3d_ros/package.xml")
    return problems


@pytest.mark.parametrize("package", sorted(PACKAGE_XMLS))
def test_every_dependency_key_resolves_on_jazzy_and_humble(package, keys):
    problems = [key_problem(k, keys) for k in sorted(declared(package, ALL_TAGS))]
    assert not [p for p in problems if p], problems


def test_key_file_states_its_source(keys):
    assert keys["source"]["repository"] == "ros/rosdistro"
    assert len(keys["source"]["commit"]) == 40
    assert {"rosdep/base.yaml", "rosdep/python.yaml"} <= set(keys["source"]["files"])
    assert keys["platforms"] == {"jazzy": "ubuntu:noble", "humble": "ubuntu:jammy"}


def test_runtime_imports_are_declared(keys):
    problems = undeclared(imports(RUNTIME_SOURCES), declared("pose3d_ros", RUN_TAGS), keys)
    assert not problems, "\n".join(problems)


def test_test_imports_are_declared(keys):
    problems = undeclared(imports(TEST_SOURCES), declared("pose3d_ros", TEST_TAGS), keys)
    # onnx in the tests: see OPTIONAL_MODULES; a test needing it must skip without it.
    assert not problems, "\n".join(problems)


def launched_packages(launch_dir: Path) -> dict[str, list[str]]:
    """ROS packages whose executables the launch files start (``package="..."`` literals)."""
    found: dict[str, list[str]] = {}
    for path in sorted(launch_dir.glob("*.launch.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "package":
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    found.setdefault(node.value.value, []).append(path.name)
    return found


def test_launched_executables_are_declared():
    # e.g. rviz2, started by demo.launch.py and camera_markers.launch.py
    launched = launched_packages(REPO / "pose3d_ros" / "launch")
    assert "rviz2" in launched  # the scan sees what it is for
    run = declared("pose3d_ros", RUN_TAGS) | {"pose3d_ros"}
    missing = {pkg: files for pkg, files in launched.items() if pkg not in run}
    assert not missing, f"launch files start packages not in <exec_depend>: {missing}"


def test_the_checks_catch_what_they_are_for(keys, tmp_path):
    # A key rosdep does not know, a key without a jammy rule, and an undeclared import.
    assert "not in" in key_problem("python3-no-such-package", keys)
    fake = dict(keys, system={**keys["system"], "python3-x": {"noble": {"apt": ["x"]},
                                                              "jammy": None}})
    assert "jammy" in key_problem("python3-x", fake)
    (tmp_path / "mod.py").write_text(
        "import numpy\nimport tensorrt\nfrom rclpy.node import Node\n\n"
        "def f():\n    import onnx\n"
    )
    problems = undeclared(imports([tmp_path], tmp_path), {"rclpy"}, keys)
    assert any(p.startswith("numpy") and "python3-numpy" in p for p in problems), problems
    assert any(p.startswith("tensorrt") and "module level" in p for p in problems), problems
    assert len(problems) == 2, problems  # rclpy is declared; onnx is optional and lazy
