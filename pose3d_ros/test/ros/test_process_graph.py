"""Node specs as command lines: what `pose3d-tools demo` and the tests start (no processes here;
the demo test and the node tests start real ones)."""

from __future__ import annotations

import yaml

from pose3d_ros.ros.demo_graph import NodeSpec, demo_graph
from pose3d_ros.ros.process_graph import parameter_arg, spec_ros_args


def _as_ros_reads_it(arg: str) -> tuple[str, object]:
    """`-p name:=value` as rcl parses it: the value is YAML."""
    name, _, text = arg.partition(":=")
    return name, yaml.safe_load(text)


def test_parameter_values_keep_their_type():
    cases = {
        "input": "0",  # a camera index given as a string must stay a string
        "flag": "true",
        "path": "/data/vtest.avi",
        "empty": "",
        "on": True,
        "count": 2,
        "fov": 60.0,
    }
    for name, value in cases.items():
        parsed_name, parsed = _as_ros_reads_it(parameter_arg(name, value))
        assert parsed_name == name
        assert parsed == value and type(parsed) is type(value), (name, parsed)


def test_spec_becomes_name_params_file_overrides_and_remaps():
    spec = NodeSpec(
        executable="video_source_node",
        name="camera_1",
        params_file="camera_markers.yaml",
        parameters={"input": "0", "loop": True},
        remappings=(("image", "/cam/image"),),
    )
    args = spec_ros_args(spec, "/cfg/camera_markers.yaml")
    pairs = list(zip(args[::2], args[1::2], strict=True))
    assert ("-r", "__node:=camera_1") in pairs
    assert ("--params-file", "/cfg/camera_markers.yaml") in pairs
    assert ("-r", "image:=/cam/image") in pairs
    params = dict(_as_ros_reads_it(v) for k, v in pairs if k == "-p")
    assert params == {"input": "0", "loop": True}
    # Overrides come after the file: rcl applies the last value given.
    assert pairs.index(("--params-file", "/cfg/camera_markers.yaml")) < min(
        i for i, (k, _) in enumerate(pairs) if k == "-p"
    )


def test_demo_graph_wires_every_topic_from_one_node_to_another():
    specs = {s.name: s for s in demo_graph({"input": "clip.avi"})}
    assert set(specs) == {"video_source", "pose3d", "skeleton_markers"}
    remaps = {name: dict(s.remappings) for name, s in specs.items()}
    # The camera's outputs are pose3d's inputs; pose3d's skeletons are the markers node's input.
    assert remaps["video_source"]["image"] == remaps["pose3d"]["image"]
    assert remaps["video_source"]["camera_info"] == remaps["pose3d"]["camera_info"]
    assert remaps["pose3d"]["skeletons"] == remaps["skeleton_markers"]["skeletons"]
    assert specs["video_source"].parameters["input"] == "clip.avi"
    assert [s.name for s in specs.values() if s.lifecycle] == ["pose3d"]
