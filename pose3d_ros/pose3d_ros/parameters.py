"""Typed, documented, range-checked settings shared by the nodes, the YAML files and the CLI.

Each component keeps its settings in one dataclass whose fields carry a `setting(...)`
description; the ROS layer declares node parameters from those fields (with descriptors and
ranges), and the same validation rejects bad values from YAML, the command line or a running
parameter update, so the README, config/*.yaml and the code cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar


class SettingError(ValueError):
    """A setting has a value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Setting:
    description: str
    range: tuple[float, float] | None = None  # inclusive
    choices: tuple[str, ...] | None = None
    read_only: bool = False  # fixed once the component started
    unit: str = ""


def setting(
    default: Any,
    description: str,
    *,
    range: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
    read_only: bool = False,
    unit: str = "",
) -> Any:
    """A dataclass field with its documentation and constraints attached."""
    meta = {"setting": Setting(description, range, choices, read_only, unit)}
    return dataclasses.field(default=default, metadata=meta)


T = TypeVar("T")


def settings_of(cls: type) -> list[tuple[dataclasses.Field, Setting]]:
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(cls) if "setting" in f.metadata]


def field_type(f: dataclasses.Field) -> type:
    """The Python type of a setting (bool, int, float or str), from its default."""
    return type(f.default)


def check_value(f: dataclasses.Field, spec: Setting, value: Any) -> Any:
    """Coerce and validate one value; raises SettingError naming the setting."""
    kind = field_type(f)
    name = f.name
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingError(f"{name}: expected true/false, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(f"{name}: expected an integer, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingError(f"{name}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise SettingError(f"{name}: must be finite, got {value!r}")
    elif kind is str:
        if not isinstance(value, str):
            raise SettingError(f"{name}: expected a string, got {value!r}")
    if spec.range is not None:
        lo, hi = spec.range
        if not lo <= value <= hi:
            raise SettingError(f"{name}: {value!r} is outside the allowed range [{lo}, {hi}]")
    if spec.choices is not None and value not in spec.choices:
        raise SettingError(f"{name}: {value!r} is not one of {', '.join(spec.choices)}")
    return value


def build_settings(cls: type[T], values: Mapping[str, Any] | None = None) -> T:
    """Instantiate a settings dataclass from a mapping, validating every value.

    Unknown keys are an error (a typo in a YAML file must not be silently ignored).
    """
    values = dict(values or {})
    known = {f.name: (f, spec) for f, spec in settings_of(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingError(
            f"unknown setting(s) {unknown} for {cls.__name__}; known: {sorted(known)}"
        )
    checked = {k: check_value(*known[k], v) for k, v in values.items()}
    return cls(**checked)


def format_value(value: Any) -> str:
    """A value as it is written in a ROS params YAML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def settings_table(cls: type) -> str:
    """A Markdown table of a settings dataclass (for the README's parameter reference)."""
    rows = [
        "| name | type | default | unit | allowed | description |",
        "|---|---|---|---|---|---|",
    ]
    for f, spec in settings_of(cls):
        allowed = ""
        if spec.range is not None:
            allowed = f"{format_value(spec.range[0])} .. {format_value(spec.range[1])}"
        if spec.choices is not None:
            allowed = ", ".join(f"`{c}`" for c in spec.choices)
        desc = spec.description + (" *(read-only at run time)*" if spec.read_only else "")
        rows.append(
            f"| `{f.name}` | {field_type(f).__name__} | `{format_value(f.default)}` "
            f"| {spec.unit} | {allowed} | {desc} |"
        )
    return "\n".join(rows)
