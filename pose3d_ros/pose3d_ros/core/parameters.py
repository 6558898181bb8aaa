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
import typing
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


def group(cls: type) -> Any:
    """A field holding a nested settings dataclass; its settings are named `field.setting`."""
    return dataclasses.field(default_factory=cls, metadata={"group": cls})


@dataclass(frozen=True)
class FlatSetting:
    name: str  # dotted for nested groups, e.g. "tracker.grace_s"
    field: dataclasses.Field
    spec: Setting


def flat_settings(cls: type, prefix: str = "") -> list[FlatSetting]:
    """Every setting of a dataclass, nested groups flattened into dotted names."""
    out = []
    for f in dataclasses.fields(cls):
        if "setting" in f.metadata:
            out.append(FlatSetting(prefix + f.name, f, f.metadata["setting"]))
        elif "group" in f.metadata:
            out.extend(flat_settings(f.metadata["group"], f"{prefix}{f.name}."))
    return out


def flat_values(settings: Any) -> dict[str, Any]:
    """{dotted name: value} of a settings object."""
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if "group" in f.metadata:
            out.update({f"{f.name}.{k}": v for k, v in flat_values(value).items()})
        elif "setting" in f.metadata:
            out[f.name] = value
    return out


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
        try:
            value = float(value)
        except OverflowError:  # an int beyond float's range (YAML has no size limit)
            value = math.inf if value > 0 else -math.inf
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


def _nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys to nested dicts ({"a.b": 1} -> {"a": {"b": 1}}); nested dicts pass through."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise SettingError(f"setting names must be strings, got {key!r}")
        head, _, rest = key.partition(".")
        if rest:
            out.setdefault(head, {})[rest] = value
        else:
            out[head] = value
    return out


def dataclass_from_dict(
    cls: type[T], values: Mapping[str, Any] | T | None = None, _prefix: str = ""
) -> T:
    """A dataclass from a plain nested mapping (YAML, JSON, a checkpoint's config), checked.

    The one dict -> dataclass conversion of the project (node settings, training configs, lifter
    configs). None gives the defaults and an instance passes through. Nested dataclass fields
    take nested mappings or dotted keys. Values of `setting(...)` fields are coerced and
    validated (:func:`check_value`); a list for a tuple-typed field becomes a tuple (YAML has no
    tuples). Unknown keys raise :class:`SettingError` naming them (a typo in a YAML file must not
    be silently ignored). A class with `setting`/`group` fields takes only those (its plain
    fields are internal); any other dataclass takes all its init fields.
    """
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    values = _nest(dict(values))
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    settable = {n for n, f in fields.items() if "setting" in f.metadata or "group" in f.metadata}
    known = settable or set(fields)
    unknown = sorted(set(values) - known)
    if unknown:
        names = [_prefix + u for u in unknown]
        raise SettingError(f"unknown setting(s) {names} for {cls.__name__}; known: {sorted(known)}")
    hints: dict[str, Any] | None = None
    checked = {}
    for key, value in values.items():
        f = fields[key]
        if "setting" in f.metadata:
            try:
                checked[key] = check_value(f, f.metadata["setting"], value)
            except SettingError as e:
                raise SettingError(f"{_prefix}{e}") from None
            continue
        if "group" in f.metadata:
            hint = f.metadata["group"]
        else:  # a plain field: its annotation (maybe a string) says if it nests or is a tuple
            hints = typing.get_type_hints(cls) if hints is None else hints
            hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping | hint):
                raise SettingError(f"{_prefix}{key}: expected a mapping of settings, got {value!r}")
            checked[key] = dataclass_from_dict(hint, value, f"{_prefix}{key}.")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            checked[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            checked[key] = value
    return cls(**checked)


def build_settings(cls: type[T], values: Mapping[str, Any] | None = None) -> T:
    """Instantiate a settings dataclass from a mapping, validating every value
    (:func:`dataclass_from_dict`)."""
    return dataclass_from_dict(cls, values)


def with_values(settings: T, updates: Mapping[str, Any]) -> T:
    """A copy of `settings` with dotted-name updates applied and validated."""
    merged = {**flat_values(settings), **updates}
    return build_settings(type(settings), merged)


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
    for flat in flat_settings(cls):
        f, spec = flat.field, flat.spec
        allowed = ""
        if spec.range is not None:
            allowed = f"{format_value(spec.range[0])} .. {format_value(spec.range[1])}"
        if spec.choices is not None:
            allowed = ", ".join(f"`{c}`" for c in spec.choices)
        desc = spec.description + (" *(read-only at run time)*" if spec.read_only else "")
        rows.append(
            f"| `{flat.name}` | {field_type(f).__name__} | `{format_value(f.default)}` "
            f"| {spec.unit} | {allowed} | {desc} |"
        )
    return "\n".join(rows)
