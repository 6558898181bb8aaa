"""Fuzzing the camera calibration YAML reader (core.camera.load_camera_yaml, used by
video_source_node's `camera_info_url` and `pose3d run --camera`).

A file written by save_camera_yaml, then cut short, with bytes flipped, or with a key's value
replaced by a YAML value of another type: the reader returns a valid camera or raises
CameraInfoError whose message starts with the file's path; never another exception.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pose3d_ros.core.camera import CameraInfoError, CameraModel, load_camera_yaml, save_camera_yaml

pytestmark = pytest.mark.timeout(120)

KEYS = [
    "image_width", "image_height", "camera_name", "camera_matrix", "distortion_model",
    "distortion_coefficients", "rectification_matrix", "projection_matrix",
]  # fmt: skip
SUBKEYS = ["rows", "cols", "data"]

YAML_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
        st.sampled_from([math.nan, math.inf, 10**400, "1e-05", ".nan", "-.inf", "", "[", "{"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=12), st.dictionaries(st.sampled_from(SUBKEYS), inner, max_size=3)
    ),
    max_leaves=14,
)


@pytest.fixture(scope="module")
def good_yaml(tmp_path_factory) -> bytes:
    camera = CameraModel(
        640, 480, K=[[500.0, 0, 319.5], [0, 505.0, 239.5], [0, 0, 1]],
        D=[0.1, -0.05, 0.001, 0.002, 0.01], distortion_model="plumb_bob",
    )  # fmt: skip
    path = tmp_path_factory.mktemp("cam") / "camera.yaml"
    save_camera_yaml(camera, path)
    assert load_camera_yaml(path) == camera
    return path.read_bytes()


@pytest.fixture(scope="module")
def work_file(tmp_path_factory):
    """One file rewritten by every example (a fresh folder per example costs more than the
    check)."""
    return tmp_path_factory.mktemp("fuzz") / "camera.yaml"


def _check(path) -> None:
    try:
        camera = load_camera_yaml(path)
    except CameraInfoError as e:
        assert str(e).startswith(str(path) + ": "), e
        return
    assert camera.width > 0 and camera.height > 0 and np.isfinite(camera.K).all()


@settings(max_examples=150)
@given(
    cut=st.one_of(st.none(), st.integers(0, 10**5)),
    flips=st.lists(st.tuples(st.integers(0, 10**5), st.integers(1, 255)), max_size=5),
)
@example(cut=None, flips=[(0, 0x80)])  # found here: invalid UTF-8 raised UnicodeDecodeError
@example(cut=0, flips=[])
def test_damaged_files_give_a_camera_or_an_error_naming_the_file(
    good_yaml, work_file, cut, flips
) -> None:
    data = bytearray(good_yaml)
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    work_file.write_bytes(bytes(data))
    _check(work_file)


@settings(max_examples=100)
@given(
    key=st.sampled_from(KEYS),
    sub=st.one_of(st.none(), st.sampled_from(SUBKEYS)),
    value=YAML_VALUES,
    drop=st.booleans(),
)
@example(key="image_width", sub=None, value=10**400, drop=False)
@example(key="camera_matrix", sub="data", value=[1e400] * 9, drop=False)
def test_keys_of_the_wrong_type_give_an_error_naming_the_file(
    good_yaml, work_file, key, sub, value, drop
) -> None:
    doc = yaml.safe_load(good_yaml)
    target = doc if sub is None or not isinstance(doc.get(key), dict) else doc[key]
    name = key if target is doc else sub
    if drop:
        target.pop(name, None)
    else:
        target[name] = value
    work_file.write_text(yaml.safe_dump(doc))
    _check(work_file)
