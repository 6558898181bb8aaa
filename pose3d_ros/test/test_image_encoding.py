"""Tests for pose3d_ros.core.image_encoding (no ROS needed)."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from pose3d_ros.core.image_encoding import (
    DEFAULT_MAX_PIXELS,
    ENCODINGS,
    SUPPORTED_ENCODINGS,
    ImageEncodingError,
    array_to_image_fields,
    decode_compressed,
    encode_compressed,
    encoding_info,
    image_to_array,
    to_bgr8,
)

REQUIRED = (
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "mono8",
    "mono16",
    "16UC1",
    "32FC1",
    "8UC1",
    "8UC3",
    "yuv422",
    "yuv422_yuy2",
    "yuyv",
)


def sample(encoding: str, height: int = 5, width: int = 6, seed: int = 0) -> np.ndarray:
    info = encoding_info(encoding)
    rng = np.random.default_rng(seed)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    if info.dtype == np.float32:
        return rng.normal(size=shape).astype(np.float32) * 3.5
    return rng.integers(0, np.iinfo(info.dtype).max, size=shape, endpoint=True).astype(info.dtype)


def roundtrip(arr: np.ndarray, encoding: str, **kwargs) -> tuple[np.ndarray, object]:
    f = array_to_image_fields(arr, encoding, **kwargs)
    back = image_to_array(f.height, f.width, f.encoding, f.step, f.data, f.is_bigendian)
    return back, f


def test_required_encodings_supported():
    assert set(REQUIRED) <= set(SUPPORTED_ENCODINGS)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
@pytest.mark.parametrize("padding", [0, 3, 8])
def test_roundtrip(encoding, padding):
    arr = sample(encoding)
    back, f = roundtrip(arr, encoding, row_padding=padding)
    info = ENCODINGS[encoding]
    assert f.step == arr.shape[1] * info.bytes_per_pixel + padding
    assert len(f.data) == f.height * f.step
    assert back.dtype == info.dtype and back.dtype.isnative
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1"])
@pytest.mark.parametrize("padding", [0, 1, 4])
def test_roundtrip_bigendian(encoding, padding):
    arr = sample(encoding, seed=1)
    back, f = roundtrip(arr, encoding, row_padding=padding, is_bigendian=True)
    assert f.is_bigendian
    np.testing.assert_array_equal(back, arr)
    assert back.dtype.isnative


def test_bigendian_known_bytes():
    data = bytes([0x01, 0x02, 0x03, 0x04])
    be = image_to_array(1, 2, "mono16", 4, data, is_bigendian=1)
    le = image_to_array(1, 2, "16UC1", 4, data, is_bigendian=0)
    assert be.tolist() == [[0x0102, 0x0304]]
    assert le.tolist() == [[0x0201, 0x0403]]
    f = image_to_array(1, 1, "32FC1", 4, np.array([1.5], ">f4").tobytes(), is_bigendian=True)
    assert f[0, 0] == 1.5


def test_is_bigendian_ignored_for_8bit():
    data = bytes(range(6))
    a = image_to_array(1, 2, "rgb8", 6, data, is_bigendian=True)
    assert a.tolist() == [[[0, 1, 2], [3, 4, 5]]]


def test_array_is_view_without_copy():
    buf = bytearray(array_to_image_fields(sample("mono16"), "mono16", row_padding=2).data)
    a = image_to_array(5, 6, "mono16", 14, buf)
    assert np.shares_memory(a, np.frombuffer(buf, np.uint8))
    buf[0] ^= 0xFF  # writes through: it really is a view
    assert a[0, 0] == np.frombuffer(bytes(buf[:2]), "<u2")[0]


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(12)),
        bytearray(range(12)),
        memoryview(bytes(range(12))),
        array.array("B", range(12)),
        list(range(12)),
        np.arange(12, dtype=np.uint8),
    ],
)
def test_accepts_buffer_types(data):
    a = image_to_array(2, 2, "rgb8", 6, data)
    assert a.tolist() == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]


def test_trailing_bytes_ignored():
    a = image_to_array(1, 2, "mono8", 2, bytes([7, 8, 9, 10]))
    assert a.tolist() == [[7, 8]]


def test_single_channel_accepts_hxwx1():
    arr = sample("mono8")[:, :, None]
    back, _ = roundtrip(arr, "mono8")
    np.testing.assert_array_equal(back, arr[:, :, 0])


# --- to_bgr8 -------------------------------------------------------------------------------


def test_rgb8_red_is_bgr_red():
    red = image_to_array(1, 1, "rgb8", 3, bytes([255, 0, 0]))
    assert to_bgr8(red, "rgb8").tolist() == [[[0, 0, 255]]]


def test_alpha_dropped():
    rgba = np.array([[[255, 0, 0, 7], [0, 255, 0, 200]]], np.uint8)
    bgra = np.array([[[255, 0, 0, 7], [0, 255, 0, 200]]], np.uint8)
    assert to_bgr8(rgba, "rgba8").tolist() == [[[0, 0, 255], [0, 255, 0]]]
    assert to_bgr8(bgra, "bgra8").tolist() == [[[255, 0, 0], [0, 255, 0]]]


def test_bgr_passthrough_is_same_array():
    arr = sample("bgr8")
    assert to_bgr8(arr, "bgr8") is arr
    assert to_bgr8(arr, "8UC3") is arr


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_to_bgr8_shape_and_dtype(encoding):
    arr = sample(encoding, height=4, width=6)
    out = to_bgr8(arr, encoding)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8


def test_mono_replicated():
    m = np.array([[0, 128, 255]], np.uint8)
    for enc in ("mono8", "8UC1"):
        out = to_bgr8(m, enc)
        assert out.tolist() == [[[0] * 3, [128] * 3, [255] * 3]]


def test_mono16_scaling():
    m = np.array([[0, 0x8000, 0xFFFF]], np.uint16)
    for enc in ("mono16", "16UC1"):
        assert to_bgr8(m, enc)[0, :, 0].tolist() == [0, 128, 255]
    # A 12-bit sensor: let the caller state its range.
    twelve = np.array([[0, 2048, 4095]], np.uint16)
    assert to_bgr8(twelve, "mono16", value_range=(0, 4095))[0, :, 0].tolist() == [0, 128, 255]


def test_32fc1_autoscale_and_invalid():
    depth = np.array([[1.0, 2.0, 3.0, np.nan, np.inf]], np.float32)
    out = to_bgr8(depth, "32FC1")
    assert out[0, :, 0].tolist() == [0, 128, 255, 0, 0]
    assert (out[..., 0] == out[..., 2]).all()
    out = to_bgr8(depth, "32FC1", value_range=(0.0, 4.0))
    assert out[0, :3, 0].tolist() == [64, 128, 191]
    # Constant or all-invalid frames do not divide by zero.
    assert to_bgr8(np.full((2, 2), 5.0, np.float32), "32FC1").shape == (2, 2, 3)
    assert to_bgr8(np.full((2, 2), np.nan, np.float32), "32FC1").max() == 0


# BT.601 limited-range YCbCr of pure colours, as OpenCV's YUV 4:2:2 conversions expect.
YUV_COLOURS = {
    (0, 0, 255): (81, 90, 240),  # red: Y, U(Cb), V(Cr)
    (0, 255, 0): (145, 54, 34),  # green
    (255, 0, 0): (41, 240, 110),  # blue
    (255, 255, 255): (235, 128, 128),
    (0, 0, 0): (16, 128, 128),
}


@pytest.mark.parametrize("bgr,yuv", list(YUV_COLOURS.items()))
def test_uyvy_known_answer(bgr, yuv):
    y, u, v = yuv
    data = bytes([u, y, v, y] * 2)  # 4x1 pixels, two UYVY macropixels
    for enc in ("yuv422", "uyvy"):
        arr = image_to_array(1, 4, enc, 8, data)
        out = to_bgr8(arr, enc)
        assert out.shape == (1, 4, 3)
        np.testing.assert_allclose(out[0].astype(int), [bgr] * 4, atol=4)


@pytest.mark.parametrize("bgr,yuv", list(YUV_COLOURS.items()))
def test_yuyv_known_answer(bgr, yuv):
    y, u, v = yuv
    data = bytes([y, u, y, v] * 2)
    for enc in ("yuv422_yuy2", "yuyv"):
        arr = image_to_array(1, 4, enc, 8, data)
        np.testing.assert_allclose(to_bgr8(arr, enc)[0].astype(int), [bgr] * 4, atol=4)


def test_yuv_with_row_padding():
    y, u, v = YUV_COLOURS[(0, 0, 255)]
    row = bytes([u, y, v, y]) + b"\xee" * 4  # 2 pixels + 4 padding bytes
    arr = image_to_array(3, 2, "yuv422", 8, row * 3)
    out = to_bgr8(arr, "yuv422")
    np.testing.assert_allclose(out.reshape(-1, 3).astype(int), [[0, 0, 255]] * 6, atol=4)


def test_yuv_odd_width_rejected():
    with pytest.raises(ImageEncodingError, match="odd"):
        to_bgr8(np.zeros((2, 3, 2), np.uint8), "yuyv")
    with pytest.raises(ImageEncodingError, match="odd"):
        array_to_image_fields(np.zeros((2, 3, 2), np.uint8), "yuv422")


# --- compressed ----------------------------------------------------------------------------


def gradient_bgr(h: int = 24, w: int = 32) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[..., 2] = 90
    return img


def test_png_roundtrip_lossless():
    img = gradient_bgr()
    c = encode_compressed(img, "png")
    assert c.format == "bgr8; png compressed bgr8"
    assert c.data[:4] == b"\x89PNG"
    np.testing.assert_array_equal(decode_compressed(c.format, c.data), img)


def test_jpeg_roundtrip_close():
    img = gradient_bgr()
    c = encode_compressed(img, "jpeg", quality=95)
    assert c.format == "bgr8; jpeg compressed bgr8"
    out = decode_compressed("jpeg", array.array("B", c.data))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() < 4


def test_compress_rgb_and_mono():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    c = encode_compressed(rgb, "png", encoding="rgb8")
    assert c.format == "rgb8; png compressed bgr8"
    assert decode_compressed(c.format, c.data)[0, 0].tolist() == [0, 0, 255]
    mono = np.full((8, 8), 77, np.uint8)
    c = encode_compressed(mono, "png", encoding="mono8")
    assert c.format == "mono8; png compressed mono8"
    assert decode_compressed("png", c.data)[0, 0].tolist() == [77, 77, 77]
    c = encode_compressed(np.full((4, 4), 1000, np.uint16), "png", encoding="16UC1")
    assert c.format == "bgr8; png compressed bgr8"


def test_decode_garbage_raises():
    with pytest.raises(ImageEncodingError, match=r"cannot decode compressed image.*'jpeg'"):
        decode_compressed("jpeg", b"this is not a jpeg at all")
    with pytest.raises(ImageEncodingError, match="no data"):
        decode_compressed("png", b"")
    truncated = encode_compressed(gradient_bgr(), "png").data[:40]
    with pytest.raises(ImageEncodingError, match="cannot decode"):
        decode_compressed("png", truncated)


def test_decode_compressed_depth_rejected():
    with pytest.raises(ImageEncodingError, match="compressedDepth"):
        decode_compressed("16UC1; compressedDepth png", b"\x00" * 32)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_decode_refuses_large_before_decoding(fmt):
    data = encode_compressed(gradient_bgr(24, 32), fmt).data
    with pytest.raises(ImageEncodingError, match=r"32x24 = 768 pixels exceeds max_pixels=500"):
        decode_compressed(fmt, data, max_pixels=500)
    assert decode_compressed(fmt, data, max_pixels=768).shape == (24, 32, 3)


def test_decode_refuses_forged_png_header():
    # A header claiming 100000x100000 must be refused without trying to allocate it.
    png = bytearray(encode_compressed(gradient_bgr(), "png").data)
    png[16:24] = (100000).to_bytes(4, "big") * 2
    with pytest.raises(ImageEncodingError, match="exceeds max_pixels"):
        decode_compressed("png", bytes(png))


def test_encode_unsupported_format():
    with pytest.raises(ImageEncodingError, match=r"'webp'.*jpeg, png"):
        encode_compressed(gradient_bgr(), "webp")


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["bayer_rggb8", "RGB8", "", "nv12"])
def test_unsupported_encoding_message(bad):
    with pytest.raises(ImageEncodingError) as e:
        image_to_array(2, 2, bad, 6, bytes(12))
    msg = str(e.value)
    assert repr(bad) in msg
    for name in REQUIRED:
        assert name in msg
    with pytest.raises(ImageEncodingError, match=repr(bad)):
        to_bgr8(np.zeros((2, 2, 3), np.uint8), bad)
    with pytest.raises(ImageEncodingError, match=repr(bad)):
        array_to_image_fields(np.zeros((2, 2, 3), np.uint8), bad)


def test_error_is_value_error():
    assert issubclass(ImageEncodingError, ValueError)


def test_data_too_short():
    msg = r"too short: 11 bytes for height\*step = 2\*6 = 12"
    with pytest.raises(ImageEncodingError, match=msg):
        image_to_array(2, 2, "rgb8", 6, bytes(11))
    with pytest.raises(ImageEncodingError, match="too short"):
        image_to_array(2, 2, "mono16", 6, bytes(11))  # padding counts for the last row too


def test_step_too_small():
    with pytest.raises(ImageEncodingError, match=r"step 5 is smaller than .* = 6 .*'rgb8'"):
        image_to_array(2, 2, "rgb8", 5, bytes(100))
    msg = r"step 7 is smaller than width\*bytes_per_pixel = 4\*2 = 8"
    with pytest.raises(ImageEncodingError, match=msg):
        image_to_array(1, 4, "16UC1", 7, bytes(100))


@pytest.mark.parametrize("h,w", [(0, 4), (4, 0), (0, 0), (-1, 4)])
def test_empty_image(h, w):
    with pytest.raises(ImageEncodingError, match="empty image"):
        image_to_array(h, w, "mono8", max(w, 0), b"")
    with pytest.raises(ImageEncodingError, match="empty image"):
        array_to_image_fields(np.zeros((max(h, 0), max(w, 0)), np.uint8), "mono8")


def test_max_pixels():
    with pytest.raises(ImageEncodingError, match=r"4x3 = 12 pixels exceeds max_pixels=11"):
        image_to_array(3, 4, "mono8", 4, bytes(12), max_pixels=11)
    assert image_to_array(3, 4, "mono8", 4, bytes(12), max_pixels=12).shape == (3, 4)
    # The default refuses absurd headers before touching (or allocating for) the data.
    with pytest.raises(ImageEncodingError, match=f"max_pixels={DEFAULT_MAX_PIXELS}"):
        image_to_array(100_000, 100_000, "bgr8", 300_000, b"")


def test_array_to_fields_checks_dtype_and_shape():
    with pytest.raises(ImageEncodingError, match=r"'mono16' needs dtype uint16, got uint8"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "mono16")
    with pytest.raises(ImageEncodingError, match=r"'rgb8' needs a HxWx3 array, got shape \(2, 2\)"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "rgb8")
    # Either byte order is accepted on the way in.
    be = np.array([[1, 2]], ">u2")
    back, _ = roundtrip(be, "mono16")
    assert back.tolist() == [[1, 2]]
    assert to_bgr8(np.array([[0xFF00]], ">u2"), "mono16")[0, 0].tolist() == [255] * 3
    with pytest.raises(ImageEncodingError, match="row_padding"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "mono8", row_padding=-1)


def test_to_bgr8_checks_dtype_and_shape():
    with pytest.raises(ImageEncodingError, match="needs dtype float32"):
        to_bgr8(np.zeros((2, 2), np.float64), "32FC1")
    with pytest.raises(
        ImageEncodingError, match=r"'mono8' needs a HxW array, got shape \(2, 2, 3\)"
    ):
        to_bgr8(np.zeros((2, 2, 3), np.uint8), "mono8")


def test_cv2_interop_on_padded_view():
    # Padded rows give a non-contiguous view; OpenCV must still accept it.
    img = gradient_bgr(6, 10)
    f = array_to_image_fields(img, "rgb8", row_padding=5)
    view = image_to_array(f.height, f.width, "rgb8", f.step, f.data)
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(to_bgr8(view, "rgb8"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
