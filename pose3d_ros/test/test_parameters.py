"""Settings dataclasses: validation by build_settings / check_value, and the Markdown table."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pytest

from pose3d_ros.core.parameters import (
    SettingError,
    build_settings,
    field_type,
    setting,
    settings_of,
    settings_table,
)
from pose3d_ros.ros.skeleton_markers_node import SkeletonMarkersSettings
from pose3d_ros.ros.video_source_node import VideoSourceSettings


@dataclass(frozen=True)
class Demo:
    count: int = setting(3, "How many", range=(1, 10))
    gain: float = setting(0.5, "Gain", range=(0.0, 1.0), unit="dB")
    mode: str = setting("fast", "Mode", choices=("fast", "slow"))
    enabled: bool = setting(True, "Switch", read_only=True)
    note: str = "not a setting"  # a plain field: neither settable nor listed


def test_defaults():
    assert build_settings(Demo) == Demo()
    assert build_settings(VideoSourceSettings, {}) == VideoSourceSettings()
    assert [f.name for f, _ in settings_of(Demo)] == ["count", "gain", "mode", "enabled"]


def test_valid_values_are_taken():
    s = build_settings(Demo, {"count": 10, "gain": 0.0, "mode": "slow", "enabled": False})
    assert s == Demo(count=10, gain=0.0, mode="slow", enabled=False)
    s = build_settings(VideoSourceSettings, {"input": "/dev/video0", "rate": 1000.0})
    assert (s.input, s.rate, s.encoding) == ("/dev/video0", 1000.0, "bgr8")


def test_ints_are_accepted_for_floats():
    s = build_settings(VideoSourceSettings, {"rate": 30, "horizontal_fov_deg": 90})
    assert s.rate == 30.0 and type(s.rate) is float
    assert s.horizontal_fov_deg == 90.0 and type(s.horizontal_fov_deg) is float


def test_unknown_keys_are_named():
    with pytest.raises(SettingError) as err:
        build_settings(VideoSourceSettings, {"inptu": "a.mp4", "fps": 3.0, "rate": 1.0})
    message = str(err.value)
    assert "unknown setting(s) ['fps', 'inptu'] for VideoSourceSettings" in message
    assert "'input'" in message and "'rate'" in message  # the known ones, to spot the typo
    with pytest.raises(SettingError, match=r"unknown setting\(s\) \['note'\] for Demo"):
        build_settings(Demo, {"note": "x"})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_frames": True}, "max_frames: expected an integer, got True"),
        ({"max_frames": 2.0}, "max_frames: expected an integer, got 2.0"),
        ({"max_frames": "5"}, "max_frames: expected an integer, got '5'"),
        ({"rate": "30"}, "rate: expected a number, got '30'"),
        ({"rate": False}, "rate: expected a number, got False"),
        ({"rate": None}, "rate: expected a number, got None"),
        ({"loop": 1}, "loop: expected true/false, got 1"),
        ({"loop": "true"}, "loop: expected true/false, got 'true'"),
        ({"input": 0}, "input: expected a string, got 0"),
    ],
)
def test_wrong_types_are_refused(values, message):
    with pytest.raises(SettingError) as err:
        build_settings(VideoSourceSettings, values)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate": -0.5}, "rate: -0.5 is outside the allowed range [0.0, 1000.0]"),
        ({"rate": 1000.5}, "rate: 1000.5 is outside the allowed range [0.0, 1000.0]"),
        ({"horizontal_fov_deg": 5}, "horizontal_fov_deg: 5.0 is outside the allowed range"),
        ({"max_frames": -1}, "max_frames: -1 is outside the allowed range [0, 2147483647]"),
        ({"wait_for_subscribers": 101}, "wait_for_subscribers: 101 is outside"),
    ],
)
def test_out_of_range_values_are_refused_with_the_range(values, message):
    with pytest.raises(SettingError) as err:
        build_settings(VideoSourceSettings, values)
    assert str(err.value).startswith(message)


def test_range_ends_are_allowed():
    lo = build_settings(Demo, {"count": 1, "gain": 0})
    hi = build_settings(Demo, {"count": 10, "gain": 1})
    assert (lo.count, lo.gain, hi.count, hi.gain) == (1, 0.0, 10, 1.0)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(value):
    with pytest.raises(SettingError, match=r"^rate: must be finite, got (nan|inf|-inf)$"):
        build_settings(VideoSourceSettings, {"rate": value})
    with pytest.raises(SettingError, match="gain: must be finite"):
        build_settings(Demo, {"gain": value})


def test_bad_choices_list_the_choices():
    with pytest.raises(SettingError) as err:
        build_settings(VideoSourceSettings, {"encoding": "yuv422"})
    assert str(err.value) == "encoding: 'yuv422' is not one of bgr8, rgb8, mono8"
    with pytest.raises(SettingError, match="mode: 'Fast' is not one of fast, slow"):
        build_settings(Demo, {"mode": "Fast"})


def test_setting_error_is_a_value_error():
    assert issubclass(SettingError, ValueError)


def _table_rows(cls: type) -> dict[str, dict[str, str]]:
    """settings_table parsed back: field name -> {column: cell}."""
    lines = settings_table(cls).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(header), line
        row = dict(zip(header, cells, strict=True))
        rows[row["name"].strip("`")] = row
    assert len(rows) == len(lines) - 2  # one row per field, no duplicates
    return rows


def test_settings_table_renders_every_field():
    rows = _table_rows(Demo)
    assert list(rows) == ["count", "gain", "mode", "enabled"]  # not the plain field
    assert [r["type"] for r in rows.values()] == ["int", "float", "str", "bool"]
    assert rows["count"]["allowed"] == "1 .. 10"
    assert rows["gain"]["allowed"] == "0.0 .. 1.0"
    assert rows["mode"]["allowed"] == "`fast`, `slow`"
    assert rows["enabled"]["allowed"] == ""
    assert "dB" in (rows["gain"].get("unit", "") + rows["gain"]["description"])
    assert "read-only" in rows["enabled"]["description"].lower()
    assert not any("read-only" in rows[n]["description"].lower() for n in ("count", "gain"))
    assert rows["mode"]["description"].startswith("Mode")
    assert rows["count"]["default"] == "`3`" and rows["gain"]["default"] == "`0.5`"
    assert "fast" in rows["mode"]["default"]


@pytest.mark.parametrize("cls", [VideoSourceSettings, SkeletonMarkersSettings])
def test_settings_table_of_the_nodes(cls):
    rows = _table_rows(cls)
    fields = settings_of(cls)
    assert list(rows) == [f.name for f, _ in fields] == [f.name for f in dataclasses.fields(cls)]
    for f, spec in fields:
        row = rows[f.name]
        assert row["type"] == field_type(f).__name__
        assert spec.description in row["description"]
        assert ("read-only" in row["description"].lower()) == spec.read_only
        if spec.choices:
            assert all(f"`{c}`" in row["allowed"] for c in spec.choices)
        if spec.range:
            assert row["allowed"].count("..") == 1


@pytest.mark.parametrize("cls", [Demo, VideoSourceSettings, SkeletonMarkersSettings])
def test_default_types_match_the_annotations(cls):
    """The ROS parameter type comes from the default: `rate: float = setting(0, ...)` would be
    declared as an integer parameter, so the default must have the annotated type."""
    for f, _ in settings_of(cls):
        assert field_type(f).__name__ == f.type, f.name
