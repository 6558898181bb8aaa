"""Tests for pose3d_ros.core.camera: projection against independent formulas, round trips,
CameraInfo validation and the camera_calibration YAML format."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import yaml
from known_poses import SKELETON_H36M17

from pose3d_ros.core.camera import (
    CameraInfoError,
    CameraModel,
    load_camera_yaml,
    save_camera_yaml,
)

W, H = 640, 480
K_PINHOLE = [[505.0, 0.0, 318.5], [0.0, 498.0, 241.25], [0.0, 0.0, 1.0]]
K_FISHEYE = [[290.0, 0.0, 321.0], [0.0, 291.5, 238.0], [0.0, 0.0, 1.0]]
# Moderate, realistic lenses (the distortion stays monotonic well beyond the image corners).
D_BY_MODEL = {
    "plumb_bob": [-0.25, 0.08, 1e-3, -5e-4, -0.01],
    "rational_polynomial": [0.3, -0.1, 1e-3, -5e-4, 0.01, 0.6, -0.05, 0.02],
    "equidistant": [-0.02, 0.005, -0.001, 2e-4],
}
MODELS = list(D_BY_MODEL)

SKELETON = SKELETON_H36M17
# Two people: one in the middle, one near the right edge and closer (large image radius).
POINTS = np.stack([SKELETON + np.array([0.0, 0.0, 3.5]), SKELETON + np.array([0.75, 0.1, 2.2])])


def make_camera(model: str) -> CameraModel:
    K = K_FISHEYE if model == "equidistant" else K_PINHOLE
    return CameraModel(W, H, K=np.array(K), D=np.array(D_BY_MODEL[model]), distortion_model=model)


def info_fields(**overrides):
    fields = dict(
        width=W,
        height=H,
        k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1],
        d=[-0.2, 0.05, 0.0, 0.0, 0.0],
        r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
        p=[500.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0],
        distortion_model="plumb_bob",
    )
    fields.update(overrides)
    return fields


def reference_distort(model: str, xy: np.ndarray, d: list[float]) -> np.ndarray:
    """The lens models written out from their definitions, independent of OpenCV."""
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    if model == "equidistant":
        r = np.sqrt(r2)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + d[0] * t2 + d[1] * t2**2 + d[2] * t2**3 + d[3] * t2**4)
        scale = np.where(r > 0, theta_d / np.where(r > 0, r, 1.0), 1.0)
        return np.stack([x * scale, y * scale], axis=-1)
    k1, k2, p1, p2, k3 = d[:5]
    k4, k5, k6 = d[5:8] if len(d) == 8 else (0.0, 0.0, 0.0)
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def image_grid(step: float = 20.0) -> np.ndarray:
    """Pixels covering the whole image, border pixels' outer edges and corners included."""
    u = np.append(np.arange(-0.5, W, step), W - 0.5)
    v = np.append(np.arange(-0.5, H, step), H - 0.5)
    return np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)


# ---------------------------------------------------------------------- known answers


def test_pinhole_known_answer():
    cam = CameraModel(W, H, K=np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))
    np.testing.assert_allclose(cam.project([0.5, -0.25, 2.0]), [445.0, 177.5], atol=1e-12)
    np.testing.assert_allclose(cam.undistort_pixels([445.0, 177.5]), [0.25, -0.125], atol=1e-12)
    np.testing.assert_allclose(cam.back_project([445.0, 177.5], 2.0), [0.5, -0.25, 2.0], atol=1e-12)


def test_pinhole_matches_formula_for_skeleton():
    cam = CameraModel(W, H, K=np.array(K_PINHOLE))
    fx, fy, cx, cy = 505.0, 498.0, 318.5, 241.25
    expected = np.stack(
        [fx * POINTS[..., 0] / POINTS[..., 2] + cx, fy * POINTS[..., 1] / POINTS[..., 2] + cy],
        axis=-1,
    )
    np.testing.assert_allclose(cam.project(POINTS), expected, atol=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_project_matches_opencv(model):
    cam = make_camera(model)
    obj = POINTS.reshape(-1, 1, 3)
    K, D = np.array(cam.K), np.array(D_BY_MODEL[model])
    if model == "equidistant":
        ref, _ = cv2.fisheye.projectPoints(obj, np.zeros(3), np.zeros(3), K, D)
    else:
        ref, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), K, D)
    pixels = cam.project(POINTS)
    assert pixels.shape == (2, 17, 2)
    np.testing.assert_allclose(pixels, ref.reshape(2, 17, 2), atol=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_project_matches_written_out_lens_model(model):
    cam = make_camera(model)
    xy = POINTS[..., :2] / POINTS[..., 2:]
    distorted = reference_distort(model, xy, D_BY_MODEL[model])
    expected = distorted * (cam.fx, cam.fy) + (cam.cx, cam.cy)
    np.testing.assert_allclose(cam.project(POINTS), expected, atol=1e-9)
    # The distortion is not negligible, so this comparison can tell the models apart.
    assert np.abs(cam.project(POINTS) - (xy * (cam.fx, cam.fy) + (cam.cx, cam.cy))).max() > 2.0


def test_all_zero_polynomial_distortion_is_pinhole():
    plain = CameraModel(W, H, K=np.array(K_PINHOLE))
    zeros = CameraModel(W, H, K=np.array(K_PINHOLE), D=np.zeros(5), distortion_model="plumb_bob")
    np.testing.assert_allclose(zeros.project(POINTS), plain.project(POINTS), atol=1e-9)
    assert not zeros.has_distortion


def test_project_behind_camera_and_nan_is_nan():
    cam = make_camera("plumb_bob")
    pts = np.array([[0.1, 0.2, 2.0], [0.1, 0.2, 0.0], [0.1, 0.2, -1.0], [np.nan, 0, 1], [0, 0, 1]])
    px = cam.project(pts)
    assert np.isnan(px[1:4]).all()
    assert np.isfinite(px[[0, 4]]).all()
    np.testing.assert_allclose(px[4], [cam.cx, cam.cy], atol=1e-12)


def test_project_beyond_distortion_fold_is_nan():
    # With k1 < 0 the plumb_bob polynomial folds back near r ~ 1.9: a ray at r = 2.5 would land
    # back inside the image if projected blindly.
    cam = make_camera("plumb_bob")
    xy = np.array([[0.3, 0.1], [2.5, 0.0], [0.0, -3.0]])
    px = cam.normalised_to_pixels(xy)
    assert np.isfinite(px[0]).all()
    assert np.isnan(px[1:]).all()
    # ... and a pixel that no ray reaches cannot be undistorted.
    out = cam.undistort_pixels([[cam.cx + 2.0 * cam.fx, cam.cy], [cam.cx, cam.cy]])
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[1], [0.0, 0.0], atol=1e-12)


# ---------------------------------------------------------------------- round trips


@pytest.mark.parametrize("model", MODELS)
def test_project_then_undistort_round_trip(model):
    cam = make_camera(model)
    xy = cam.undistort_pixels(cam.project(POINTS))
    np.testing.assert_allclose(xy, POINTS[..., :2] / POINTS[..., 2:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("model", MODELS)
def test_back_project_round_trip(model):
    cam = make_camera(model)
    points = cam.back_project(cam.project(POINTS), POINTS[..., 2])
    assert points.shape == POINTS.shape
    np.testing.assert_allclose(points, POINTS, atol=1e-6, rtol=0)


@pytest.mark.parametrize("model", MODELS)
def test_undistort_accurate_over_whole_image(model):
    # OpenCV's default 5 iterations are off by up to ~1e-4 normalised units near the corners.
    cam = make_camera(model)
    pixels = image_grid()
    xy = cam.undistort_pixels(pixels)
    assert np.isfinite(xy).all()
    np.testing.assert_allclose(cam.normalised_to_pixels(xy), pixels, atol=1e-6, rtol=0)
    # Check against the written-out model too, so a wrong K or D cannot cancel out.
    ref = reference_distort(model, xy, D_BY_MODEL[model]) * (cam.fx, cam.fy) + (cam.cx, cam.cy)
    np.testing.assert_allclose(ref, pixels, atol=1e-6, rtol=0)


def test_fisheye_undistort_works_with_opencv_4_5(monkeypatch):
    # OpenCV 4.5.4 (Humble, JetPack) has no `criteria` keyword in cv2.fisheye.undistortPoints:
    # emulate that function so the test fails wherever the camera model relies on it.
    def undistort_points_4_5(distorted, K, D, R=None, P=None, **kwargs):
        if kwargs:
            raise cv2.error(f"{sorted(kwargs)} is an invalid keyword argument")
        return np.asarray(distorted, dtype=np.float64)

    monkeypatch.setattr(cv2.fisheye, "undistortPoints", undistort_points_4_5)
    cam = make_camera("equidistant")
    pixels = image_grid(step=40.0)
    xy = cam.undistort_pixels(pixels)
    ref = reference_distort("equidistant", xy, D_BY_MODEL["equidistant"])
    np.testing.assert_allclose(ref * (cam.fx, cam.fy) + (cam.cx, cam.cy), pixels, atol=1e-6)


def test_fisheye_undistort_strong_lens_and_skew():
    # A 180-degree-class fisheye (f = 200 px on 640 px: corners ~75 degrees off axis) with skew
    # in K: pixels made from known rays by the written-out model must give those rays back.
    d = [0.05, -0.01, 0.002, -1e-4]
    K = np.array([[200.0, 1.5, 322.0], [0.0, 201.0, 236.0], [0.0, 0.0, 1.0]])
    cam = CameraModel(W, H, K=K, D=np.array(d), distortion_model="equidistant")
    angles = np.radians(np.array([0.0, 5.0, 30.0, 60.0, 75.0]))
    azimuths = np.radians(np.array([0.0, 40.0, 135.0, 200.0, 300.0]))
    rays = np.tan(angles)[:, None] * np.stack([np.cos(azimuths), np.sin(azimuths)], axis=1)
    distorted = reference_distort("equidistant", rays, d)
    # K's skew is ignored both ways, as OpenCV's projection does (CameraModel.warnings says so).
    pixels = distorted * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])
    np.testing.assert_allclose(cam.undistort_pixels(pixels), rays, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cam.normalised_to_pixels(rays), pixels, atol=1e-9)


def test_undistort_nan_does_not_poison_others():
    cam = make_camera("rational_polynomial")
    pixels = np.array([[100.0, 50.0], [np.nan, 3.0], [600.0, 400.0], [np.inf, np.inf]])
    out = cam.undistort_pixels(pixels)
    assert np.isnan(out[[1, 3]]).all()
    np.testing.assert_allclose(out[0], cam.undistort_pixels(pixels[0]), atol=1e-15)
    np.testing.assert_allclose(out[2], cam.undistort_pixels(pixels[2:3])[0], atol=1e-15)
    points = cam.back_project(pixels, np.array([2.0, 2.0, np.nan, 2.0]))
    assert np.isfinite(points[0]).all() and np.isnan(points[1:]).all()


def test_shapes_and_broadcasting():
    cam = make_camera("equidistant")
    assert cam.project(np.zeros((0, 3))).shape == (0, 2)
    assert cam.undistort_pixels(np.zeros((0, 2))).shape == (0, 2)
    assert cam.project([0.0, 0.0, 1.0]).shape == (2,)
    pixels = cam.project(POINTS)
    points = cam.back_project(pixels, 3.0)
    assert points.shape == (2, 17, 3)
    np.testing.assert_allclose(points[..., 2], 3.0)
    with pytest.raises(ValueError, match="points_cam"):
        cam.project(np.zeros((4, 2)))


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "substrings"),
    [
        ({"k": [0.0] * 9}, ["K", "all zeros", "not calibrated"]),
        ({"k": [-500.0, 0, 320, 0, 500, 240, 0, 0, 1]}, ["fx=-500"]),
        ({"k": [500.0, 0, 320, 0, 0, 240, 0, 0, 1]}, ["fy=0"]),
        ({"k": [500.0, 0, 320, 0, 500, 240, 0, 0, 0]}, ["K[2,2]"]),
        ({"k": [500.0, 0, 320, 0, 500, float("nan"), 0, 0, 1]}, ["K", "NaN", "5"]),
        ({"d": [-0.2, float("inf"), 0, 0, 0]}, ["D", "inf"]),
        ({"p": [500.0, 0, 320, 0, 0, 500, float("nan"), 0, 0, 0, 1, 0]}, ["P", "NaN"]),
        ({"k": [500.0, 0, 320, 0, 500, 240, 0, 0]}, ["CameraInfo.k", "9", "got 8"]),
        ({"r": [1.0, 0, 0, 0, 1, 0, 0, 0, 1, 0]}, ["CameraInfo.r", "9", "got 10"]),
        ({"p": [500.0, 0, 320, 0, 500, 240, 0, 0, 1]}, ["CameraInfo.p", "12", "got 9"]),
        (
            {"distortion_model": "kannala_brandt"},
            ["'kannala_brandt'", "'plumb_bob'", "'rational_polynomial'", "'equidistant'"],
        ),
        ({"d": [-0.2, 0.05, 0, 0]}, ["D has 4", "'plumb_bob' needs 5"]),
        (
            {"distortion_model": "rational_polynomial"},
            ["D has 5", "'rational_polynomial' needs 8"],
        ),
        ({"distortion_model": "equidistant"}, ["D has 5", "'equidistant' needs 4"]),
        ({"distortion_model": ""}, ["D has 5 non-zero", "no distortion_model", "'plumb_bob'"]),
        ({"width": 0}, ["width", "positive", "got 0"]),
        ({"height": -480}, ["height", "positive", "got -480"]),
        ({"width": 640.5}, ["width", "integer"]),
    ],
)
def test_bad_camera_info_raises(overrides, substrings):
    with pytest.raises(CameraInfoError) as info:
        CameraModel.from_camera_info_fields(**info_fields(**overrides))
    for s in substrings:
        assert s in str(info.value)
    assert isinstance(info.value, ValueError)


def test_good_camera_info_and_lenient_cases():
    cam = CameraModel.from_camera_info_fields(**info_fields(frame_id="cam_optical"))
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (500.0, 500.0, 320.0, 240.0)
    assert cam.frame_id == "cam_optical" and cam.warnings() == []
    # An empty D means no distortion, whatever the model says.
    for model in MODELS:
        cam = CameraModel.from_camera_info_fields(**info_fields(d=[], distortion_model=model))
        assert not cam.has_distortion
    assert any("equidistant" in w for w in cam.warnings())
    # Zeros without a model are harmless.
    cam = CameraModel.from_camera_info_fields(**info_fields(d=[0.0] * 5, distortion_model=""))
    assert cam.D.size == 0


def test_arrays_are_read_only_and_equality_is_by_value():
    cam = make_camera("plumb_bob")
    with pytest.raises(ValueError):
        cam.K[0, 0] = 1.0
    same = CameraModel.from_camera_info_fields(
        W, H, cam.K.ravel().tolist(), list(cam.D), [0.0] * 9, [0.0] * 12, "plumb_bob"
    )
    assert same == cam and hash(same) == hash(cam) and len({same, cam}) == 1
    assert cam.resized(320, 240) != cam
    assert make_camera("rational_polynomial") != make_camera("plumb_bob")


def test_principal_point_outside_image_warns():
    cam = CameraModel.from_camera_info_fields(
        **info_fields(k=[500.0, 0, 900, 0, 500, -30, 0, 0, 1])
    )
    text = " | ".join(cam.warnings())
    assert "cx=900" in text and "[0, 640]" in text
    assert "cy=-30" in text and "[0, 480]" in text


def test_p_and_r_zeros_fall_back():
    cam = CameraModel.from_camera_info_fields(**info_fields(p=[0.0] * 12, r=[0.0] * 9))
    np.testing.assert_array_equal(cam.P, np.hstack([cam.K, np.zeros((3, 1))]))
    np.testing.assert_array_equal(cam.R, np.eye(3))
    explicit = info_fields(p=[400.0, 0, 310, 0, 0, 410, 250, 0, 0, 0, 1, 0])
    cam = CameraModel.from_camera_info_fields(**explicit)
    assert cam.P[0, 0] == 400.0 and cam.K[0, 0] == 500.0


# ---------------------------------------------------------------------- fov and resizing


@pytest.mark.parametrize("fov", [30.0, 60.0, 90.0, 120.0])
def test_from_fov(fov):
    cam = CameraModel.from_fov(W, H, fov)
    assert cam.horizontal_fov_deg == pytest.approx(fov, abs=1e-9)
    assert cam.fx == cam.fy
    assert (cam.cx, cam.cy) == ((W - 1) / 2, (H - 1) / 2)
    half_v = math.atan(math.tan(math.radians(fov) / 2) * H / W)
    assert cam.vertical_fov_deg == pytest.approx(2 * math.degrees(half_v), abs=1e-9)
    assert not cam.has_distortion


def test_from_fov_90_deg_known_focal():
    assert CameraModel.from_fov(640, 480, 90.0).fx == pytest.approx(320.0)
    with pytest.raises(CameraInfoError, match="horizontal_fov_deg"):
        CameraModel.from_fov(640, 480, 180.0)


@pytest.mark.parametrize("model", MODELS)
def test_resized_matches_cv2_resize_pixel_mapping(model):
    cam = make_camera(model)
    small = cam.resized(320, 240)
    assert (small.width, small.height) == (320, 240)
    assert small.fx == pytest.approx(cam.fx / 2) and small.fy == pytest.approx(cam.fy / 2)
    assert small.cx == pytest.approx((cam.cx + 0.5) / 2 - 0.5)
    np.testing.assert_array_equal(small.D, cam.D)
    # The same 3D point lands on the corresponding pixel of the resized image.
    expected = (cam.project(POINTS) + 0.5) * 0.5 - 0.5
    np.testing.assert_allclose(small.project(POINTS), expected, atol=1e-9)


def test_scaled_scales_projection_matrix():
    fields = info_fields(p=[500.0, 0, 320, -30.0, 0, 500, 240, 0, 0, 0, 1, 0])
    cam = CameraModel.from_camera_info_fields(**fields)
    big = cam.scaled(2.0, 1.5)
    assert (big.width, big.height) == (1280, 720)
    np.testing.assert_allclose(
        big.P,
        [[1000.0, 0, 640.5, -60.0], [0, 750.0, 360.25, 0], [0, 0, 1, 0]],
    )
    np.testing.assert_allclose(big.K, [[1000.0, 0, 640.5], [0, 750.0, 360.25], [0, 0, 1]])
    assert cam.scaled(0.5).width == 320


# ---------------------------------------------------------------------- YAML

CALIBRATION_YAML = """\
image_width: 1280
image_height: 720
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [912.4, 0.0, 641.2, 0.0, 910.8, 355.9, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.1234, 0.0567, 0.0008, -0.0011, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [880.1, 0.0, 640.3, 0.0, 0.0, 899.5, 356.1, 0.0, 0.0, 0.0, 1.0, 0.0]
"""

FLOW_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix: {rows: 3, cols: 3, data: [500, 0, 320, 0, 500, 240, 0, 0, 1]}
distortion_model: rational_polynomial
distortion_coefficients: {rows: 1, cols: 8, data: [0.1, -0.2, 1e-05, 0, 0, 0.5, 0, 0]}
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [500, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0]}
"""


def test_load_camera_calibration_yaml(tmp_path):
    path = tmp_path / "narrow_stereo.yaml"
    path.write_text(CALIBRATION_YAML)
    cam = load_camera_yaml(path, frame_id="cam")
    assert (cam.width, cam.height, cam.frame_id) == (1280, 720, "cam")
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (912.4, 910.8, 641.2, 355.9)
    assert cam.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(cam.D, [-0.1234, 0.0567, 0.0008, -0.0011, 0.0])
    assert cam.P[0, 0] == 880.1 and cam.P[1, 2] == 356.1


def test_load_flow_style_yaml_with_integers_and_exponents(tmp_path):
    # yaml-cpp writes 1e-05, which YAML 1.1 parsers read as a string.
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW_YAML)
    cam = load_camera_yaml(str(path))
    assert cam.distortion_model == "rational_polynomial"
    assert cam.D[2] == 1e-05 and cam.K.dtype == np.float64


@pytest.mark.parametrize("model", [*MODELS, ""])
def test_yaml_round_trip(tmp_path, model):
    if model:
        d = list(D_BY_MODEL[model])
        d[-1] = 3.0e-7  # exponent notation must still be written as a float
        cam = CameraModel(W, H, K=np.array(K_PINHOLE), D=np.array(d), distortion_model=model)
    else:
        cam = CameraModel.from_fov(W, H, 70.0)
    path = tmp_path / "cam.yaml"
    save_camera_yaml(cam, path, camera_name="front camera: left")
    doc = yaml.safe_load(path.read_text())
    assert doc["camera_name"] == "front camera: left"
    assert all(isinstance(v, float) for v in doc["distortion_coefficients"]["data"])
    assert doc["distortion_coefficients"]["cols"] == len(cam.D)
    loaded = load_camera_yaml(path)
    assert (loaded.width, loaded.height, loaded.distortion_model) == (W, H, model)
    for name in ("K", "D", "R", "P"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(cam, name))


def test_save_writes_camera_calibration_layout(tmp_path):
    src = tmp_path / "in.yaml"
    src.write_text(CALIBRATION_YAML)
    out = tmp_path / "out.yaml"
    save_camera_yaml(load_camera_yaml(src), out, camera_name="narrow_stereo")
    assert out.read_text() == CALIBRATION_YAML


@pytest.mark.parametrize(
    "key",
    ["image_width", "image_height", "camera_matrix", "distortion_model", "distortion_coefficients"],
)
def test_yaml_missing_key_names_key_and_file(tmp_path, key):
    doc = yaml.safe_load(CALIBRATION_YAML)
    del doc[key]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CameraInfoError) as info:
        load_camera_yaml(path)
    assert repr(key) in str(info.value) and "broken.yaml" in str(info.value)


def test_yaml_optional_matrices_default(tmp_path):
    doc = yaml.safe_load(CALIBRATION_YAML)
    del doc["rectification_matrix"], doc["projection_matrix"]
    path = tmp_path / "minimal.yaml"
    path.write_text(yaml.safe_dump(doc))
    cam = load_camera_yaml(path)
    np.testing.assert_array_equal(cam.R, np.eye(3))
    np.testing.assert_array_equal(cam.P[:, :3], cam.K)


@pytest.mark.parametrize(
    ("edit", "substrings"),
    [
        (lambda d: d["camera_matrix"]["data"].pop(), ["'camera_matrix'", "rows*cols", "8 values"]),
        (lambda d: d["projection_matrix"].update(rows=4, cols=3), ["'projection_matrix'", "3x4"]),
        (lambda d: d["distortion_coefficients"].pop("data"), ["'distortion_coefficients'", "data"]),
        (lambda d: d["camera_matrix"]["data"].__setitem__(0, "abc"), ["'camera_matrix'", "abc"]),
        (lambda d: d.update(image_width="wide"), ["'image_width'", "integer"]),
        (lambda d: d.update(distortion_model="fisheye"), ["'fisheye'", "supported"]),
        (lambda d: d["camera_matrix"]["data"].__setitem__(0, 0.0), ["fx=0"]),
    ],
)
def test_yaml_bad_values(tmp_path, edit, substrings):
    doc = yaml.safe_load(CALIBRATION_YAML)
    edit(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CameraInfoError) as info:
        load_camera_yaml(path)
    message = str(info.value)
    assert "bad.yaml" in message
    for s in substrings:
        assert s in message


def test_yaml_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(CameraInfoError, match=r"list\.yaml"):
        load_camera_yaml(path)
    path.write_text("image_width: [unclosed\n")
    with pytest.raises(CameraInfoError, match="not valid YAML"):
        load_camera_yaml(path)
