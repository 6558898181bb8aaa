"""Declare a settings dataclass as ROS parameters, with descriptors, ranges and validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from pose3d_ros.core.parameters import (
    SettingError,
    build_settings,
    check_value,
    field_type,
    flat_settings,
    with_values,
)

T = TypeVar("T")

_PARAM_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


def _descriptor(
    name: str, f: dataclasses.Field, spec: Any, conditional: bool = False
) -> ParameterDescriptor:
    """`conditional`: read-only is enforced by NodeSettings (only in some states), not by ROS."""
    kind = field_type(f)
    d = ParameterDescriptor(
        name=name,
        type=_PARAM_TYPES[kind],
        description=spec.description + (f" [{spec.unit}]" if spec.unit else ""),
        read_only=spec.read_only and not conditional,
    )
    if spec.range is not None and kind is float:
        d.floating_point_range = [
            FloatingPointRange(from_value=float(spec.range[0]), to_value=float(spec.range[1]))
        ]
    elif spec.range is not None and kind is int:
        d.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]))]
    if spec.choices is not None:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    return d


class NodeSettings:
    """Node parameters backed by a settings dataclass.

    `current` is always a valid settings object. A parameter change at run time is validated by
    the same rules as at start-up; it is applied through `on_change` (which may itself refuse by
    raising SettingError) or rejected with the reason.
    """

    def __init__(
        self,
        node: Node,
        cls: type[T],
        on_change: Callable[[T, T], None] | None = None,
        read_only_when: Callable[[], bool] | None = None,
    ) -> None:
        """`read_only_when`: settings marked read-only refuse changes only while it returns True
        (a lifecycle node: while configured); None = always, from start-up on."""
        self._node = node
        self._read_only_when = read_only_when
        self._cls = cls
        self._on_change = on_change
        self._fields = {s.name: (s.field, s.spec) for s in flat_settings(cls)}
        values = {}
        for name, (f, spec) in self._fields.items():
            # Integers given as floats in YAML are still an error; ROS enforces the type.
            descriptor = _descriptor(name, f, spec, conditional=read_only_when is not None)
            p = node.declare_parameter(name, f.default, descriptor)
            values[name] = p.value
        try:
            self.current: T = build_settings(cls, values)
        except SettingError as e:
            raise SettingError(f"invalid parameter: {e}") from e
        node.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        updates = {}
        for p in params:
            if p.name not in self._fields:
                continue  # e.g. use_sim_time: not ours to judge
            f, spec = self._fields[p.name]
            if spec.read_only and self._read_only_when is None:
                return SetParametersResult(
                    successful=False, reason=f"{p.name} is read-only after start-up"
                )
            if spec.read_only and self._read_only_when():
                return SetParametersResult(
                    successful=False,
                    reason=f"{p.name} is read-only while the node is configured (cleanup first)",
                )
            try:
                updates[p.name] = check_value(f, spec, p.value)
            except SettingError as e:
                return SetParametersResult(successful=False, reason=str(e))
        if not updates:
            return SetParametersResult(successful=True)
        try:
            new = with_values(self.current, updates)
        except SettingError as e:
            return SetParametersResult(successful=False, reason=str(e))
        if self._on_change is not None:
            try:
                self._on_change(self.current, new)
            except SettingError as e:
                return SetParametersResult(successful=False, reason=str(e))
        self.current = new
        self._node.get_logger().info(
            "parameters updated: " + ", ".join(f"{k}={v!r}" for k, v in updates.items())
        )
        return SetParametersResult(successful=True)
