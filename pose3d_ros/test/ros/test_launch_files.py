"""Static checks of every launch file, ROS params file and RViz config of the package.

launch and launch_ros are not installable here (see /work/shared/research/ros2-wheels.md), so
each `launch/*.launch.py` is imported with recording stand-ins for them in `sys.modules` and its
`generate_launch_description()` is inspected: executables must be console scripts, parameter
names must exist in the node's settings dataclass, defaults must equal the dataclass defaults,
launch arguments must be declared, referenced files must exist and be installed. The stand-ins
are used even where the real packages exist, so the checks are the same on every machine.

A new node is covered once its console script is in pose3d_ros.ros.NODE_SETTINGS; new launch,
params and RViz files are picked up automatically.
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import importlib
import importlib.util
import inspect
import itertools
import math
import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pose3d_ros.core.parameters import SettingError, field_type, flat_settings
from pose3d_ros.ros import NODE_SETTINGS

PACKAGE = "pose3d_ros"
# The source package mirrors its install space: share/pose3d_ros/{launch,config}/...
PKG_DIR = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((PKG_DIR / "launch").glob("*.launch.py"))
RVIZ_FILES = sorted((PKG_DIR / "config").glob("*.rviz"))


@dataclass(frozen=True)
class NodeSpec:
    """What a console-script node declares: its default name and its settings dataclass."""

    node_name: str
    settings: str  # "module:Class", imported lazily

    def settings_class(self) -> type:
        module, cls = self.settings.split(":")
        return getattr(importlib.import_module(module), cls)

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.field.default for s in flat_settings(self.settings_class())}


# Node names that do not follow the "<name>_node" console-script convention.
NODE_NAME_EXCEPTIONS: dict[str, str] = {}
# console script -> node, from the package's own registry (a new node is added there).
NODES: dict[str, NodeSpec] = {
    exe: NodeSpec(NODE_NAME_EXCEPTIONS.get(exe, exe.removesuffix("_node")), settings)
    for exe, settings in NODE_SETTINGS.items()
}
# Parameters every rclpy node has besides its own settings.
ROS_BUILTIN_PARAMETERS = {"use_sim_time"}


def _is_params_file(path: Path) -> bool:
    data = yaml.safe_load(path.read_text())
    return isinstance(data, dict) and any(
        isinstance(v, dict) and "ros__parameters" in v for v in data.values()
    )


PARAMS_FILES = sorted(p for p in (PKG_DIR / "config").rglob("*.yaml") if _is_params_file(p))


# --- stand-ins for launch, launch_ros and ament_index_python ---------------------------------


class Recorded:
    """Stand-in for any launch class: remembers how it was constructed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    @property
    def kind(self) -> str:
        return type(self).__name__

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """A constructor argument given by position or by keyword."""
        if len(self.args) > index:
            return self.args[index]
        return self.kwargs.get(name, default)

    def __repr__(self) -> str:
        inner = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.kind}({', '.join(inner)})"


STAND_IN_MODULES = (
    "launch",
    "launch.actions",
    "launch.conditions",
    "launch.event_handlers",
    "launch.events",
    "launch.launch_description_sources",
    "launch.substitutions",
    "launch_ros",
    "launch_ros.actions",
    "launch_ros.event_handlers",
    "launch_ros.events",
    "launch_ros.events.lifecycle",
    "launch_ros.descriptions",
    "launch_ros.parameter_descriptions",
    "launch_ros.substitutions",
)


def _stand_in_module(name: str) -> types.ModuleType:
    """A package whose every attribute is a Recorded subclass of that name."""
    module = types.ModuleType(name)
    module.__path__ = []
    classes: dict[str, type] = {}

    def __getattr__(attr: str) -> type:  # noqa: N807 - module-level __getattr__ (PEP 562)
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr not in classes:
            classes[attr] = type(attr, (Recorded,), {"__module__": name})
        return classes[attr]

    module.__getattr__ = __getattr__
    return module


def share_directory(package: str) -> str:
    if package == PACKAGE:
        return str(PKG_DIR)
    return f"/opt/ros/jazzy/share/{package}"  # other packages: not checked, only named


def install_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = {name: _stand_in_module(name) for name in STAND_IN_MODULES}
    ament = types.ModuleType("ament_index_python")
    ament.__path__ = []
    packages = types.ModuleType("ament_index_python.packages")
    packages.get_package_share_directory = share_directory
    packages.get_package_prefix = lambda package: str(Path(share_directory(package)).parents[1])
    modules.update({"ament_index_python": ament, "ament_index_python.packages": packages})
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)


# --- a loaded launch file ---------------------------------------------------------------------


def _walk(value: Any) -> Iterator[Recorded]:
    if isinstance(value, Recorded):
        yield value
        yield from _walk(list(value.args) + list(value.kwargs.values()))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from _walk(v)


@dataclass
class LaunchFile:
    path: Path
    description: Recorded
    entities: list[Recorded]  # everything reachable from the LaunchDescription

    def of_kind(self, *kinds: str) -> list[Recorded]:
        return [e for e in self.entities if e.kind in kinds]

    @property
    def arguments(self) -> dict[str, Recorded]:
        return {a.arg(0, "name"): a for a in self.of_kind("DeclareLaunchArgument")}

    @property
    def nodes(self) -> list[Recorded]:
        return self.of_kind("Node", "LifecycleNode")

    def default(self, argument: str) -> str | None:
        declared = self.arguments.get(argument)
        return None if declared is None else declared.arg(1, "default_value")

    def resolve(self, value: Any) -> str | None:
        """A substitution as a string, with launch arguments at their defaults (None: unknown)."""
        if isinstance(value, str):
            return value
        if isinstance(value, list | tuple):
            parts = [self.resolve(v) for v in value]
            return None if None in parts else "".join(parts)
        if not isinstance(value, Recorded):
            return None
        if value.kind == "LaunchConfiguration":
            default = self.default(value.arg(0, "variable_name"))
            return self.resolve(default if default is not None else value.arg(1, "default"))
        if value.kind == "TextSubstitution":
            return value.arg(0, "text")
        if value.kind == "FindPackageShare":
            return share_directory(self.resolve(value.arg(0, "package")))
        if value.kind == "PathJoinSubstitution":
            parts = [self.resolve(v) for v in value.arg(0, "substitutions")]
            return None if None in parts else os.path.join(*parts)
        if value.kind == "ParameterValue":
            return self.resolve(value.arg(0, "value"))
        return None


def load_launch_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> LaunchFile:
    install_stand_ins(monkeypatch)
    name = "launch_file_" + re.sub(r"\W", "_", path.name)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, Recorded), description
    assert description.kind == "LaunchDescription", description
    description = _run_opaque_functions(LaunchFile(path, description, list(_walk(description))))
    # An action is reachable several times (e.g. a LifecycleNode and the events naming it).
    entities = list({id(e): e for e in _walk(description)}.values())
    return LaunchFile(path, description, entities)


class DefaultsContext:
    """Stand-in LaunchContext: substitutions resolve with the launch arguments' defaults."""

    def __init__(self, lf: LaunchFile) -> None:
        self._lf = lf

    def perform_substitution(self, substitution: Any) -> str:
        text = self._lf.resolve(substitution)
        assert text is not None, f"{substitution!r} has no default to check with"
        return text


def _run_opaque_functions(lf: LaunchFile) -> Recorded:
    """The description with each top-level OpaqueFunction followed by the actions it returns
    at the launch arguments' defaults (e.g. one node per camera), so they are checked too."""
    entities = []
    for e in lf.description.arg(0, "initial_entities") or []:
        entities.append(e)
        if e.kind != "OpaqueFunction":
            continue
        function = e.arg(0, "function")
        args, kwargs = e.kwargs.get("args") or [], e.kwargs.get("kwargs") or {}
        entities.extend(function(DefaultsContext(lf), *args, **kwargs) or [])
    return type(lf.description)(entities)


@pytest.fixture(params=LAUNCH_FILES, ids=lambda p: p.name)
def launch_file(request, monkeypatch) -> LaunchFile:
    return load_launch_file(request.param, monkeypatch)


def console_scripts() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(PKG_DIR / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict((part.strip() for part in line.split("=", 1)) for line in lines if line.strip())


def installed_files() -> set[Path]:
    """Files setup.py's data_files install (the globs it lists, relative to the package)."""
    patterns = re.findall(r"glob\(\s*f?\"([^\"]+)\"\s*\)", (PKG_DIR / "setup.py").read_text())
    assert patterns, "no glob(...) data_files found in setup.py"
    return {p.resolve() for pattern in patterns for p in PKG_DIR.glob(pattern)}


def _node_name(node: Recorded, launch_file: LaunchFile) -> str:
    name = launch_file.resolve(node.kwargs.get("name"))
    return name or NODES[node.kwargs["executable"]].node_name


def _typed(text: str, value_type: type | None) -> Any:
    """A launch argument string as launch_ros passes it on to a node."""
    if value_type is None or value_type is bool:
        return yaml.safe_load(text)
    return value_type(text)


# --- the checks (each returns the problems it found, so they can be tested themselves) --------


def argument_problems(lf: LaunchFile) -> list[str]:
    problems = []
    used = {c.arg(0, "variable_name") for c in lf.of_kind("LaunchConfiguration")}
    declared = lf.arguments
    for name in sorted(used - set(declared)):
        problems.append(f"LaunchConfiguration({name!r}) is used but never declared")
    for name in sorted(set(declared) - used):
        problems.append(f"launch argument {name!r} is declared but never used")
    for name, arg in declared.items():
        if not arg.kwargs.get("description"):
            problems.append(f"launch argument {name!r} has no description")
    return problems


def executable_problems(lf: LaunchFile) -> list[str]:
    problems = []
    scripts = console_scripts()
    for node in lf.nodes:
        if node.kwargs.get("package") != PACKAGE:
            continue
        exe = node.kwargs.get("executable")
        if exe not in scripts:
            problems.append(f"{exe!r} is not a console script in setup.cfg ({sorted(scripts)})")
            continue
        if exe not in NODES:
            problems.append(f"{exe!r} is missing from pose3d_ros.ros.NODE_SETTINGS")
        module, func = scripts[exe].split(":")
        if not callable(getattr(importlib.import_module(module), func, None)):
            problems.append(f"{exe!r}: entry point {scripts[exe]} does not exist")
    return problems


def parameter_problems(lf: LaunchFile) -> list[str]:
    problems = []
    for node in lf.nodes:
        exe = node.kwargs.get("executable")
        if node.kwargs.get("package") != PACKAGE or exe not in NODES:
            continue
        defaults = NODES[exe].defaults()
        for entry in node.kwargs.get("parameters", []):
            if not isinstance(entry, dict):  # a params file: must have a section for the node
                path = lf.resolve(entry)
                if path is None or not Path(path).is_file():
                    problems.append(f"{exe}: parameters file {path!r} does not exist")
                elif _node_name(node, lf) not in _sections(Path(path)):
                    problems.append(f"{exe}: {path} has no section for {_node_name(node, lf)!r}")
                continue
            for name, value in entry.items():
                if name in ROS_BUILTIN_PARAMETERS:
                    continue
                if name not in defaults:
                    problems.append(f"{exe}: unknown parameter {name!r}; known: {sorted(defaults)}")
                    continue
                problems += _override_problems(lf, exe, name, value, defaults[name])
    return problems


def _override_problems(lf: LaunchFile, exe: str, name: str, value: Any, default: Any) -> list[str]:
    value_type = None
    if isinstance(value, Recorded) and value.kind == "ParameterValue":
        value_type = value.kwargs.get("value_type")
        if value_type is not None and value_type is not type(default):
            return [f"{exe}: {name} is passed as {value_type.__name__}, declared {type(default)}"]
        value = value.arg(0, "value")
    if not (isinstance(value, Recorded) and value.kind == "LaunchConfiguration"):
        return []  # a literal or an expression: a deliberate override
    text = lf.default(value.arg(0, "variable_name"))
    if text is None:
        return []  # a required argument
    typed = _typed(text, value_type)
    if type(typed) is not type(default) or typed != default:
        return [f"{exe}: {name} defaults to {typed!r} in the launch file, {default!r} in the node"]
    return []


def file_problems(lf: LaunchFile) -> list[str]:
    """Every file of this package the launch file names exists and is installed."""
    problems = []
    installed = installed_files()
    for text in dict.fromkeys(_strings(lf.description, lf)):
        if not text.startswith(str(PKG_DIR) + os.sep):
            continue
        path = Path(text)
        if not path.is_file():
            problems.append(f"{path} does not exist")
        elif path.resolve() not in installed:
            problems.append(f"{path} is not installed by setup.py's data_files")
    for node in lf.nodes:
        if node.kwargs.get("package") == "rviz2":
            args = [lf.resolve(a) for a in node.kwargs.get("arguments", [])]
            configs = [b for a, b in itertools.pairwise(args) if a in ("-d", "--display-config")]
            if not configs or not all(c and c.endswith(".rviz") for c in configs):
                problems.append(f"rviz2 is started without a -d <config>.rviz: {args}")
    return problems


def lifecycle_problems(lf: LaunchFile) -> list[str]:
    """Every managed node of the package is started with autostart off, configured once it is up
    and activated when it reaches inactive from configuring (not after any deactivate)."""
    from lifecycle_msgs.msg import Transition

    def requests(entities: Any, transition_id: int) -> list[Recorded]:
        """ChangeState events in `entities` for `transition_id`, by the node they match."""
        out = []
        for e in entities:
            if e.kind != "EmitEvent":
                continue
            event = e.kwargs.get("event")
            if getattr(event, "kind", "") != "ChangeState":
                continue
            if event.kwargs.get("transition_id") != transition_id:
                continue
            matcher = event.kwargs.get("lifecycle_node_matcher")
            if getattr(matcher, "kind", "") == "matches_action":
                out.append(matcher.arg(0, "action"))
        return out

    problems = []
    top_level = list(lf.description.arg(0, "initial_entities") or [])
    for node in lf.of_kind("LifecycleNode"):
        if node.kwargs.get("package") != PACKAGE:
            continue
        exe = node.kwargs.get("executable")
        overrides = [p for p in node.kwargs.get("parameters", []) if isinstance(p, dict)]
        if not any(p.get("autostart") is False for p in overrides):
            problems.append(f"{exe}: a LifecycleNode without autostart: False configures itself")
        if "namespace" not in node.kwargs or "name" not in node.kwargs:
            problems.append(f"{exe}: launch_ros' LifecycleNode needs name= and namespace=")
        if not any(n is node for n in requests(top_level, Transition.TRANSITION_CONFIGURE)):
            problems.append(f"{exe}: no configure request for it in the launch description")
        handlers = [
            h.arg(0, "event_handler")
            for h in top_level
            if h.kind == "RegisterEventHandler"
            and getattr(h.arg(0, "event_handler"), "kind", "") == "OnStateTransition"
        ]
        activates = [
            h
            for h in handlers
            if h.kwargs.get("target_lifecycle_node") is node
            and h.kwargs.get("start_state") == "configuring"
            and h.kwargs.get("goal_state") == "inactive"
            and any(
                n is node
                for n in requests(h.kwargs.get("entities", []), Transition.TRANSITION_ACTIVATE)
            )
        ]
        if len(activates) != 1:
            problems.append(
                f"{exe}: needs exactly one handler activating it on configuring -> inactive "
                f"(found {len(activates)})"
            )
    return problems


def _strings(value: Any, lf: LaunchFile) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Recorded) and value.kind != "LaunchConfiguration":
        text = lf.resolve(value)
        if text is not None:
            return [text]
        return [s for v in [*value.args, *value.kwargs.values()] for s in _strings(v, lf)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v, lf)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v, lf)]
    return []


# --- launch files -----------------------------------------------------------------------------


def test_there_is_something_to_check():
    assert [p.name for p in LAUNCH_FILES] == sorted(p.name for p in LAUNCH_FILES)
    assert "camera_markers.launch.py" in {p.name for p in LAUNCH_FILES}
    assert PKG_DIR / "config" / "camera_markers.yaml" in PARAMS_FILES
    assert PKG_DIR / "config" / "pose3d.rviz" in RVIZ_FILES


def test_every_launch_argument_is_declared_used_and_described(launch_file):
    assert argument_problems(launch_file) == []


def test_nodes_run_console_scripts_of_the_package(launch_file):
    assert [n for n in launch_file.nodes if n.kwargs.get("package") == PACKAGE]
    assert executable_problems(launch_file) == []


def test_parameter_overrides_exist_and_default_to_the_node_defaults(launch_file):
    assert parameter_problems(launch_file) == []


def test_referenced_files_exist_and_are_installed(launch_file):
    assert file_problems(launch_file) == []


def test_managed_nodes_are_configured_then_activated(launch_file):
    assert lifecycle_problems(launch_file) == []


@pytest.mark.parametrize("name", ["pose3d.launch.py", "demo.launch.py"])
def test_pose3d_node_is_launched_as_a_managed_node(name, monkeypatch):
    lf = load_launch_file(PKG_DIR / "launch" / name, monkeypatch)
    (pose3d,) = [n for n in lf.nodes if n.kwargs.get("executable") == "pose3d_node"]
    assert pose3d.kind == "LifecycleNode"


def test_lifecycle_check_finds_mistakes(tmp_path, monkeypatch):
    """A managed node that would configure itself and is never configured or activated, and one
    whose activation would also fire after every deactivate."""
    bad = tmp_path / "bad_lifecycle.launch.py"
    bad.write_text(
        "from launch import LaunchDescription\n"
        "from launch.actions import EmitEvent, RegisterEventHandler\n"
        "from launch.events import matches_action\n"
        "from launch_ros.actions import LifecycleNode\n"
        "from launch_ros.event_handlers import OnStateTransition\n"
        "from launch_ros.events.lifecycle import ChangeState\n"
        "from lifecycle_msgs.msg import Transition\n"
        "def generate_launch_description():\n"
        "    a = LifecycleNode(package='pose3d_ros', executable='pose3d_node', name='a',\n"
        "                      namespace='')\n"
        "    b = LifecycleNode(package='pose3d_ros', executable='pose3d_node', name='b',\n"
        "                      namespace='', parameters=[{'autostart': False}])\n"
        "    def change(node, t):\n"
        "        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),\n"
        "                                           transition_id=t))\n"
        "    return LaunchDescription([a, b, change(b, Transition.TRANSITION_CONFIGURE),\n"
        "        RegisterEventHandler(OnStateTransition(target_lifecycle_node=b,\n"
        "            goal_state='inactive',\n"
        "            entities=[change(b, Transition.TRANSITION_ACTIVATE)]))])\n"
    )
    problems = lifecycle_problems(load_launch_file(bad, monkeypatch))
    assert len(problems) == 4, problems
    assert "without autostart: False" in problems[0]
    assert "no configure request" in problems[1]
    assert "found 0" in problems[2]  # a: no handler at all
    assert "found 0" in problems[3]  # b: its handler lacks start_state='configuring'


def test_demo_launch_starts_the_shared_demo_graph(monkeypatch):
    """demo.launch.py's nodes are pose3d_ros.ros.demo_graph's specs: same executables, names,
    fixed parameters and remappings; the launch file only supplies the launch arguments."""
    from pose3d_ros.ros.demo_graph import demo_graph

    lf = load_launch_file(PKG_DIR / "launch" / "demo.launch.py", monkeypatch)
    ours = [n for n in lf.nodes if n.kwargs.get("package") == PACKAGE]
    specs = demo_graph({})
    assert [n.kwargs["executable"] for n in ours] == [s.executable for s in specs]
    for node, spec in zip(ours, specs, strict=True):
        assert node.kwargs["name"] == spec.name
        assert node.kind == ("LifecycleNode" if spec.lifecycle else "Node")
        remaps = [(lf.resolve(a), lf.resolve(b)) for a, b in node.kwargs["remappings"]]
        assert remaps == list(spec.remappings)
        params_file, overrides = node.kwargs["parameters"]
        assert Path(lf.resolve(params_file)).name == spec.params_file
        literal = {k: v for k, v in overrides.items() if not isinstance(v, Recorded)}
        expected = dict(spec.parameters)
        if spec.lifecycle:
            expected["autostart"] = False
        assert literal == expected
    # Every topic of the graph is published by one node and used by another.
    remapped = {b for n in ours for _, b in n.kwargs["remappings"]}
    assert {"/image", "/camera_info", "/skeletons", "/markers"} <= remapped


@pytest.mark.parametrize(
    "path",
    [PKG_DIR / "launch" / "demo.launch.py", PKG_DIR.parent / "pose3d_tools" / "pose3d_tools" /
     "demo.py"],
    ids=lambda p: p.name,
)
def test_demo_graph_is_described_once(path):
    """Both demo.launch.py and `pose3d-tools demo` take their nodes from demo_graph: they import
    it and name none of the package's node executables themselves."""
    if not path.exists():  # a colcon workspace holds pose3d_ros without pose3d_tools
        pytest.skip(f"{path.name}: pose3d_tools is not beside pose3d_ros here")
    source = path.read_text()
    tree = ast.parse(source)
    imported = {
        alias.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "pose3d_ros.ros.demo_graph"
        for alias in n.names
    }
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    called = {n.func.id for n in calls if isinstance(n.func, ast.Name)}
    assert "demo_graph" in imported and "demo_graph" in called
    named = [exe for exe in NODES if f'"{exe}"' in source or f"'{exe}'" in source]
    assert named == [], f"{path.name} lists nodes itself: {named}"


def test_camera_markers_launch_wiring(monkeypatch):
    lf = load_launch_file(PKG_DIR / "launch" / "camera_markers.launch.py", monkeypatch)
    by_exe = {n.kwargs["executable"]: n for n in lf.nodes}
    assert set(by_exe) == {"video_source_node", "skeleton_markers_node", "rviz2"}
    assert {n.kwargs["name"] for n in lf.nodes} == {"video_source", "skeleton_markers", "rviz2"}
    assert lf.arguments["input"].arg(1, "default_value") is None  # required
    params = lf.resolve(lf.arguments["params_file"].kwargs["default_value"])
    assert params == str(PKG_DIR / "config" / "camera_markers.yaml")
    for exe in ("video_source_node", "skeleton_markers_node"):
        node = by_exe[exe]
        assert lf.resolve(node.kwargs["parameters"][0]) == params
        assert lf.resolve(node.kwargs["namespace"]) == ""
    remaps = {
        lf.resolve(a): lf.resolve(b)
        for a, b in by_exe["skeleton_markers_node"].kwargs["remappings"]
    }
    # By default the node reads the topic it would read without the remap (its own name).
    assert remaps == {"skeletons": "skeletons"}
    rviz = by_exe["rviz2"]
    assert rviz.kwargs["condition"].kind == "IfCondition"
    assert lf.resolve(rviz.kwargs["condition"].arg(0, "predicate_expression")) == "true"
    args = [lf.resolve(a) for a in rviz.kwargs["arguments"]]
    # RViz's fixed frame is the frame the video source stamps its images with.
    frame_id = NODES["video_source_node"].defaults()["frame_id"]
    assert args == ["-d", str(PKG_DIR / "config" / "pose3d.rviz"), "-f", frame_id]


def test_multi_camera_launch_starts_one_managed_node_per_camera(monkeypatch):
    """cameras:=/front,/rear/cam gives two pose3d nodes in those namespaces reading
    <camera>/image_raw and <camera>/camera_info, each configured then activated; a bad
    namespace stops the launch with the reason."""
    from lifecycle_msgs.msg import Transition

    lf = load_launch_file(PKG_DIR / "launch" / "multi_camera.launch.py", monkeypatch)
    (opaque,) = lf.of_kind("OpaqueFunction")
    camera_nodes, kwargs = opaque.arg(0, "function"), opaque.kwargs["kwargs"]
    context = DefaultsContext(lf)
    actions = camera_nodes(context, **{**kwargs, "cameras": "/front, /rear/cam"})
    nodes = [a for a in actions if a.kind == "LifecycleNode"]
    assert [n.kwargs["namespace"] for n in nodes] == ["/front", "/rear/cam"]
    for node in nodes:
        assert node.kwargs["executable"] == "pose3d_node" and node.kwargs["name"] == "pose3d"
        # Relative names inside the camera's namespace: <camera>/image_raw, <camera>/camera_info.
        assert ("image", "image_raw") in node.kwargs["remappings"]
        assert not any(a == "camera_info" for a, _ in node.kwargs["remappings"])
        assert node.kwargs["parameters"][1]["autostart"] is False
    configures = [
        a.kwargs["event"].kwargs["lifecycle_node_matcher"].arg(0, "action")
        for a in actions
        if a.kind == "EmitEvent"
        and a.kwargs["event"].kwargs["transition_id"] == Transition.TRANSITION_CONFIGURE
    ]
    assert configures == nodes
    with pytest.raises(SettingError, match="not a ROS namespace"):
        camera_nodes(context, **{**kwargs, "cameras": "/front,/2nd"})
    with pytest.raises(ValueError, match="at least one camera"):
        camera_nodes(context, **{**kwargs, "cameras": " , "})


def test_the_checks_find_mistakes(tmp_path, monkeypatch):
    """A launch file with one of each mistake: every check must report it."""
    bad = tmp_path / "bad.launch.py"
    bad.write_text(
        "from launch import LaunchDescription\n"
        "from launch.actions import DeclareLaunchArgument\n"
        "from launch.substitutions import LaunchConfiguration\n"
        "from launch_ros.actions import Node\n"
        "from launch_ros.parameter_descriptions import ParameterValue\n"
        "def generate_launch_description():\n"
        "    return LaunchDescription([\n"
        "        DeclareLaunchArgument('rate', default_value='25.0', description='r'),\n"
        "        DeclareLaunchArgument('unused', default_value='x'),\n"
        "        Node(package='pose3d_ros', executable='video_source_nod'),\n"
        "        Node(package='pose3d_ros', executable='video_source_node', parameters=[\n"
        f"            '{PKG_DIR}/config/missing.yaml',\n"
        "            {'rate': LaunchConfiguration('rate'), 'frame': 'x',\n"
        "             'loop': ParameterValue(LaunchConfiguration('loop'), value_type=str)}]),\n"
        "        Node(package='rviz2', executable='rviz2', arguments=['-d', 'x.yaml']),\n"
        "    ])\n"
    )
    lf = load_launch_file(bad, monkeypatch)
    assert argument_problems(lf) == [
        "LaunchConfiguration('loop') is used but never declared",
        "launch argument 'unused' is declared but never used",
        "launch argument 'unused' has no description",
    ]
    assert len(executable_problems(lf)) == 1
    assert "'video_source_nod' is not a console script" in executable_problems(lf)[0]
    problems = parameter_problems(lf)
    assert len(problems) == 4, problems
    assert "missing.yaml' does not exist" in problems[0]
    assert "rate defaults to 25.0 in the launch file, 0.0 in the node" in problems[1]
    assert "unknown parameter 'frame'" in problems[2]
    assert "loop is passed as str" in problems[3]
    problems = file_problems(lf)
    assert len(problems) == 2, problems
    assert "missing.yaml does not exist" in problems[0]
    assert "rviz2 is started without a -d <config>.rviz" in problems[1]


# --- ROS params files -------------------------------------------------------------------------


def _sections(path: Path) -> dict[str, dict[str, Any]]:
    """Node name -> ros__parameters; '/**/name' and '/ns/name' keys match the node's name."""
    data = yaml.safe_load(path.read_text())
    out = {}
    for key, section in data.items():
        name = "/**" if key == "/**" else key.rsplit("/", 1)[-1]
        out[name] = _flatten((section or {}).get("ros__parameters", {}))
    return out


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mappings are dotted parameter names in ROS ({"a": {"b": 1}} -> "a.b")."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _specs_by_node_name() -> dict[str, NodeSpec]:
    return {spec.node_name: spec for spec in NODES.values()}


def params_file_problems(path: Path) -> list[str]:
    specs = _specs_by_node_name()
    problems = []
    for node_name, params in _sections(path).items():
        targets = list(specs.values()) if node_name == "/**" else [specs.get(node_name)]
        if None in targets:
            problems.append(f"section {node_name!r} is no known node ({sorted(specs)})")
            continue
        for spec in targets:
            defaults = spec.defaults()
            for name, value in params.items():
                if name in ROS_BUILTIN_PARAMETERS:
                    continue
                if name not in defaults:
                    problems.append(f"{node_name}: unknown parameter {name!r}")
                elif type(value) is not type(defaults[name]) or value != defaults[name]:
                    problems.append(
                        f"{node_name}: {name}: {value!r} in the file, {defaults[name]!r} in "
                        f"{spec.settings}"
                    )
            if node_name != "/**":
                missing = sorted(set(defaults) - set(params))
                if missing:
                    problems.append(f"{node_name}: parameters not listed: {missing}")
    return problems


@pytest.mark.parametrize("path", PARAMS_FILES, ids=lambda p: p.name)
def test_params_file_lists_every_parameter_at_its_default(path):
    assert params_file_problems(path) == []


@pytest.mark.parametrize("path", PARAMS_FILES, ids=lambda p: p.name)
def test_params_file_comments_every_parameter(path):
    lines = path.read_text().splitlines()
    uncommented = []
    in_params = False
    for i, line in enumerate(lines):
        if line.strip() == "ros__parameters:":
            in_params = True
            continue
        if not line.startswith(" "):
            in_params = False
        key = re.match(r"^\s{4,}(\w+): \S", line)  # a parameter (a group line ends with ':')
        if in_params and key and not lines[i - 1].strip().startswith("#"):
            uncommented.append(key.group(1))
    assert uncommented == []


def test_params_file_check_catches_drift(tmp_path):
    """A file with a wrong type, a changed value, an unknown name, missing names and an unknown
    section: each is reported, against the node's own defaults."""
    spec = NODES["skeleton_markers_node"]
    defaults = spec.defaults()
    alpha = round(defaults["alpha"] / 2, 3)  # any other valid value
    assert alpha != defaults["alpha"]
    drifted = tmp_path / "drift.yaml"
    drifted.write_text(
        "/**/skeleton_markers:\n  ros__parameters:\n    lifetime_s: 1\n"
        f"    alpha: {alpha}\n    colour: red\n"
        "camera:\n  ros__parameters:\n    rate: 1.0\n"
    )
    listed = {"lifetime_s", "alpha"}
    assert isinstance(defaults["lifetime_s"], float)
    assert params_file_problems(drifted) == [
        # an int for a float parameter: ROS would reject it at start-up
        f"skeleton_markers: lifetime_s: 1 in the file, {defaults['lifetime_s']!r} in "
        f"{spec.settings}",
        f"skeleton_markers: alpha: {alpha!r} in the file, {defaults['alpha']!r} in "
        f"{spec.settings}",
        "skeleton_markers: unknown parameter 'colour'",
        f"skeleton_markers: parameters not listed: {sorted(set(defaults) - listed)}",
        f"section 'camera' is no known node ({sorted(_specs_by_node_name())})",
    ]
    assert sorted(set(defaults) - listed), "the dataclass has more than the two listed"


def test_node_specs_name_real_nodes_and_settings_dataclasses():
    scripts = console_scripts()
    assert {"video_source_node", "skeleton_markers_node"} <= set(NODES)
    for exe, spec in NODES.items():
        assert exe in scripts, exe
        module = importlib.import_module(scripts[exe].split(":")[0])
        # the node names itself as NODES says (params file sections are keyed by it)
        assert f'super().__init__("{spec.node_name}"' in inspect.getsource(module), exe
        cls = spec.settings_class()
        assert dataclasses.is_dataclass(cls), exe
        fields = flat_settings(cls)
        assert fields, exe
        assert all(field_type(s.field) in (bool, int, float, str) for s in fields), exe


# --- RViz -------------------------------------------------------------------------------------


def _displays(config: dict) -> list[dict]:
    def walk(displays):
        for d in displays or []:
            yield d
            yield from walk(d.get("Displays"))

    return list(walk(config["Visualization Manager"]["Displays"]))


@pytest.mark.parametrize("path", RVIZ_FILES, ids=lambda p: p.name)
def test_rviz_config_is_valid(path):
    config = yaml.safe_load(path.read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"]
    for d in _displays(config):
        assert d["Class"].startswith(("rviz_default_plugins/", "rviz_common/")), d["Class"]
        assert d["Name"] and isinstance(d["Enabled"], bool)


def test_pose3d_rviz_shows_markers_and_image_in_the_camera_frame():
    config = yaml.safe_load((PKG_DIR / "config" / "pose3d.rviz").read_text())
    from pose3d_ros.ros.video_source_node import VideoSourceSettings

    frame = config["Visualization Manager"]["Global Options"]["Fixed Frame"]
    assert frame == VideoSourceSettings().frame_id == "camera_optical_frame"
    by_class: dict[str, list[dict]] = {}
    for d in _displays(config):
        by_class.setdefault(d["Class"].split("/")[-1], []).append(d)
    (markers,) = by_class["MarkerArray"]
    assert markers["Topic"]["Value"] == "markers" and markers["Enabled"] is True
    images = {d["Topic"]["Value"]: d["Enabled"] for d in by_class["Image"]}
    assert images == {"image": True, "debug_image": False}
    assert {"Grid", "TF"} <= set(by_class)
    view = config["Visualization Manager"]["Views"]["Current"]
    assert view["Class"] == "rviz_default_plugins/Orbit"
    # Eye on -z looking along +z (the optical axis): pitch -pi/2, which RViz's orbit view clamps
    # to -(pi/2 - 0.001) rad so the view never flips.
    assert view["Pitch"] == pytest.approx(-(math.pi / 2 - 0.001))
