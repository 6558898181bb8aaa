"""Fuzzing settings validation (core.parameters: check_value, with_values, build_settings), the
checks behind every node parameter update (ros.ros_parameters.NodeSettings), params YAML file
and `pose3d run --config`.

Random values of random types for every pipeline setting: each is accepted with the setting's
own type inside its range/choices (predicted here independently), or refused with SettingError
naming the setting and the reason; never another exception. The running node's answer to such
updates over DDS is tested in ros/test_fuzz_node_parameters.py.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pose3d_ros.core.parameters import (
    SettingError,
    build_settings,
    check_value,
    field_type,
    flat_settings,
    flat_values,
    with_values,
)
from pose3d_ros.pipeline import PipelineSettings

pytestmark = pytest.mark.timeout(120)

SETTINGS = flat_settings(PipelineSettings)
NAMES = [s.name for s in SETTINGS]

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 1, 2**63 - 1, -(2**63), 10**400]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _value_for(spec_setting) -> st.SearchStrategy:
    """Values near the setting's range and choices as well as anything at all."""
    spec = spec_setting.spec
    near = [ANY_VALUE]
    if spec.range is not None:
        lo, hi = spec.range
        near.append(st.floats(lo - 1, hi + 1, allow_nan=False))
        near.append(st.integers(int(lo) - 2, int(min(hi, 2**62)) + 2))
    if spec.choices is not None:
        near.append(st.sampled_from(spec.choices))
    return st.one_of(*near)


@st.composite
def updates(draw) -> tuple:
    s = draw(st.sampled_from(SETTINGS))
    return s, draw(_value_for(s))


def _expected_error(s, value) -> str | None:
    kind, spec = field_type(s.field), s.spec
    if kind is bool:
        if not isinstance(value, bool):
            return "expected true/false"
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected an integer"
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "expected a number"
        if isinstance(value, int) and value.bit_length() > 1024:  # beyond float's range
            return "must be finite"
        value = float(value)
        if not math.isfinite(value):
            return "must be finite"
    elif not isinstance(value, str):
        return "expected a string"
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        return "outside the allowed range"
    if spec.choices is not None and value not in spec.choices:
        return "is not one of"
    return None


@settings(max_examples=300)
@given(updates())
@example((next(s for s in SETTINGS if field_type(s.field) is float), 10**400))  # found here:
# float(10**400) raised OverflowError out of check_value
def test_each_setting_accepts_its_own_type_in_range_or_says_why_not(case) -> None:
    s, value = case
    expected = _expected_error(s, value)
    try:
        checked = check_value(s.field, s.spec, value)
    except SettingError as e:
        assert expected is not None and expected in str(e), (expected, str(e))
        assert str(e).startswith(s.field.name + ":")
        return
    assert expected is None, f"{s.name}={value!r} accepted, expected {expected!r}"
    assert type(checked) is field_type(s.field)


@settings(max_examples=100)
@given(st.lists(updates(), min_size=1, max_size=4))
def test_updates_of_several_settings_apply_all_or_name_a_bad_one(batch) -> None:
    """with_values (a parameter update at run time): all applied, or SettingError naming one of
    the bad settings with its dotted name; the old settings object is untouched."""
    base = PipelineSettings()
    before = flat_values(base)
    values = {s.name: v for s, v in batch}
    by_name = {s.name: s for s, _ in batch}
    bad = {n for n, v in values.items() if _expected_error(by_name[n], v) is not None}
    try:
        new = with_values(base, values)
    except SettingError as e:
        assert bad, str(e)
        assert any(n in str(e) for n in bad), (bad, str(e))
        return
    finally:
        assert flat_values(base) == before
    assert not bad
    after = flat_values(new)
    for n, v in values.items():
        assert after[n] == v


@settings(max_examples=100)
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(NAMES), st.text(max_size=12), st.integers(), st.none()),
        ANY_VALUE,
        max_size=4,
    )
)
@example({1: 2})  # found here: a YAML file with a non-string key raised AttributeError
@example({"tracker": 5})
@example({"tracker.no_such": 1.0})
def test_settings_files_with_unknown_keys_or_wrong_shapes_are_refused(values) -> None:
    """build_settings (a params YAML file): unknown or non-string keys and scalars where a group
    belongs are SettingError naming the key."""
    try:
        build_settings(PipelineSettings, values)
    except SettingError as e:
        assert str(e)
        return
    assert all(isinstance(k, str) and k in NAMES for k in values)
