"""Fuzzing CameraInfo validation (CameraModel.from_camera_info_fields, which pose3d_node's
camera_info callback calls through ros.messages.camera_info_to_model and catches
CameraInfoError from).

Random and adversarial fields (NaN, inf, zero/negative/huge focal lengths, huge sizes, unknown
distortion models, wrong coefficient counts): the model is refused with CameraInfoError naming
the first bad field (predicted here independently), or it is accepted and everything the node
then does with it (warnings, undistorting, back-projecting, projecting) works without raising.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pose3d_ros.core.camera import DISTORTION_COEFFICIENTS, CameraInfoError, CameraModel

pytestmark = pytest.mark.timeout(120)

ADVERSARIAL = st.sampled_from(
    [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e308, -1e308, 5e-324, 1e-300, 1e12]
)
MODELS = st.one_of(
    st.sampled_from(sorted(DISTORTION_COEFFICIENTS)),
    st.sampled_from(["fisheye", "Plumb_Bob", "plumb_bob ", "kannala_brandt"]),
    st.text(max_size=8),
)


def _maybe_bad(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly plausible values, sometimes adversarial ones, sometimes any float."""
    return st.one_of(good, good, good, ADVERSARIAL, st.floats())


@st.composite
def camera_infos(draw) -> dict:
    w = draw(st.one_of(st.integers(1, 4096), st.sampled_from([0, 1, 2**31, 2**32 - 1])))
    h = draw(st.one_of(st.integers(1, 4096), st.sampled_from([0, 1, 2**31, 2**32 - 1])))
    fx = draw(_maybe_bad(st.floats(1.0, 1e4)))
    fy = draw(_maybe_bad(st.floats(1.0, 1e4)))
    cx = draw(_maybe_bad(st.floats(-10.0, 5000.0)))
    cy = draw(_maybe_bad(st.floats(-10.0, 5000.0)))
    skew = draw(st.one_of(st.just(0.0), _maybe_bad(st.floats(-5.0, 5.0))))
    bad_row = st.lists(_maybe_bad(st.just(0.0)), min_size=3, max_size=3)
    bottom = draw(st.one_of(st.just([0.0, 0.0, 1.0]), bad_row))
    k = [fx, skew, cx, 0.0, fy, cy, *bottom]
    if draw(st.integers(0, 9)) == 0:  # a K of another length
        k = draw(st.lists(st.floats(), max_size=12))
    model = draw(MODELS)
    n_d = DISTORTION_COEFFICIENTS.get(model, 5)
    d_len = draw(st.one_of(st.just(n_d), st.just(0), st.integers(0, 14)))
    d = draw(st.lists(_maybe_bad(st.floats(-0.3, 0.3)), min_size=d_len, max_size=d_len))
    r = draw(st.one_of(st.just([0.0] * 9), st.just(list(np.eye(3).ravel())),
                       st.lists(_maybe_bad(st.floats(-1, 1)), min_size=8, max_size=10)))
    any_p = st.lists(_maybe_bad(st.floats(-1e3, 1e3)), min_size=11, max_size=13)
    p = draw(st.one_of(st.just([0.0] * 12), any_p))
    return dict(width=w, height=h, k=k, d=d, r=r, p=p, distortion_model=model)


def _expected_error(f: dict) -> str | None:
    """The message fragment of the first check that must fail, or None for a usable camera."""
    for name, size in (("k", 9), ("r", 9), ("p", 12)):
        if len(f[name]) != size:
            return f"CameraInfo.{name} must have {size} elements"
    for name in ("width", "height"):
        if f[name] <= 0:
            return f"image {name} must be positive"
    k = np.array(f["k"], dtype=float).reshape(3, 3)
    if not np.isfinite(k).all():
        return "K contains NaN or inf"
    if not k.any():
        return "K is all zeros"
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        return "K focal lengths must be positive"
    if k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
        return "K must be upper triangular"
    model = f["distortion_model"]
    if model not in DISTORTION_COEFFICIENTS:
        return "unsupported distortion_model"
    d = np.array(f["d"], dtype=float)
    if not np.isfinite(d).all():
        return "D contains NaN or inf"
    if model == "" and d.any():
        return "no distortion_model is set"
    if d.size not in (0, DISTORTION_COEFFICIENTS[model]) and not (model == "" and not d.any()):
        return f"D has {d.size} coefficients but"
    for name in ("r", "p"):
        if not np.isfinite(f[name]).all():
            return f"{name.upper()} contains NaN or inf"
    return None


def _use_like_the_node(camera: CameraModel) -> None:
    """What pose3d_node and the pipeline do with an accepted camera: nothing may raise."""
    camera.warnings()
    corners = np.array(
        [[0, 0], [camera.width - 1, camera.height - 1], [camera.cx, camera.cy]], dtype=float
    )
    xy = camera.undistort_pixels(corners)
    assert xy.shape == (3, 2)
    rays = camera.back_project(corners, np.array([1.0, 2.0, 3.0]))
    assert rays.shape == (3, 3)
    uv = camera.project(np.array([[0.1, -0.2, 2.0], [0.0, 0.0, 1.0]]))
    assert uv.shape == (2, 2)
    assert camera == CameraModel.from_camera_info_fields(
        camera.width, camera.height, camera.K.ravel(), camera.D, camera.R.ravel(),
        camera.P.ravel(), camera.distortion_model,
    )  # fmt: skip


@settings(max_examples=200)
@given(camera_infos())
@example(dict(width=640, height=480, k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1], d=[0.0] * 5,
              r=[0.0] * 9, p=[0.0] * 12, distortion_model=""))  # zeros, no model: no distortion
@example(dict(width=2**32 - 1, height=2**32 - 1, k=[1e308, 0, 0, 0, 1e308, 0, 0, 0, 1],
              d=[0.3, -0.3, 0.3, -0.3], r=[0.0] * 9, p=[0.0] * 12,
              distortion_model="equidistant"))  # fmt: skip
def test_camera_info_is_refused_with_the_first_bad_field_or_usable(fields) -> None:
    expected = _expected_error(fields)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in huge-value arithmetic
        try:
            camera = CameraModel.from_camera_info_fields(**fields)
        except CameraInfoError as e:
            assert expected is not None and expected in str(e), (expected, str(e))
            return
        assert expected is None, f"accepted, but expected {expected!r}"
        assert np.isfinite(camera.K).all() and camera.fx > 0 and camera.fy > 0
        _use_like_the_node(camera)


@settings(max_examples=60)
@given(
    value=st.one_of(
        st.none(), st.text(max_size=4), st.lists(st.text(max_size=2), min_size=9, max_size=9),
        st.lists(st.lists(st.floats(), min_size=3, max_size=3), min_size=3, max_size=3),
    ),
    field=st.sampled_from(["k", "d", "r", "p"]),
)
def test_fields_of_the_wrong_type_are_refused_by_name(value, field) -> None:
    """Python publishers can put anything in a field rclpy does not type-check."""
    fields = dict(width=64, height=48, k=[50.0, 0, 32, 0, 50, 24, 0, 0, 1], d=[], r=[0.0] * 9,
                  p=[0.0] * 12, distortion_model="")  # fmt: skip
    fields[field] = value
    try:
        CameraModel.from_camera_info_fields(**fields)
    except CameraInfoError as e:
        assert f"CameraInfo.{field}" in str(e) or field.upper() in str(e), e
        return
    # Only values that numpy reads as the right numbers may pass.
    assert value is not None and not isinstance(value, str)
