"""Fuzzing sensor_msgs/Image conversion (core.image_encoding, as pose3d_node's image path uses it).

Every supported encoding with random sizes, row padding, byte order and truncated or oversized
buffers: the result must equal an independent numpy reading of the bytes, or the failure must be
ImageEncodingError with the reason; nothing else may escape (the node only catches that one).
"""

from __future__ import annotations

import array

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pose3d_ros.core.image_encoding import (
    ENCODINGS,
    SUPPORTED_ENCODINGS,
    ImageEncodingError,
    array_to_image_fields,
    image_to_array,
    to_bgr8,
)

pytestmark = pytest.mark.timeout(120)

MAX_PIXELS = 64 * 64


@st.composite
def raw_images(draw):
    """(fields, data) of an Image message: random bytes, maybe truncated or with extra bytes."""
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    height = draw(st.integers(1, 24))
    width = draw(st.integers(1, 24))
    bpp = ENCODINGS[encoding].bytes_per_pixel
    step = width * bpp + draw(st.integers(0, 9))
    size = height * step + draw(st.sampled_from([0, 0, 1, 7, -1, -step, -height * step]))
    data = draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)))
    container = draw(st.sampled_from(["bytes", "bytearray", "array", "list"]))
    wrapped = {
        "bytes": data,
        "bytearray": bytearray(data),
        "array": array.array("B", data),  # what rclpy gives for uint8[]
        "list": list(data),
    }[container]
    return encoding, height, width, step, data, wrapped, draw(st.booleans())


def _reference(encoding, height, width, step, data, big) -> np.ndarray:
    """The pixels read row by row with plain numpy, independently of image_to_array."""
    info = ENCODINGS[encoding]
    dtype = info.dtype.newbyteorder(">" if big else "<")
    rows = [
        np.frombuffer(data[r * step : r * step + width * info.bytes_per_pixel], dtype=dtype)
        for r in range(height)
    ]
    out = np.stack(rows).astype(info.dtype)
    return out.reshape(height, width, info.channels) if info.channels > 1 else out


@settings(max_examples=300)
@given(raw_images())
@example(("32FC1", 2, 3, 12, bytes(24), bytes(24), True))
@example(("yuyv", 2, 3, 6, bytes(12), bytes(12), False))  # odd width for a 4:2:2 encoding
def test_random_raw_images_decode_exactly_or_fail_with_the_reason(case) -> None:
    encoding, height, width, step, data, wrapped, big = case
    try:
        arr = image_to_array(height, width, encoding, step, wrapped, big, max_pixels=MAX_PIXELS)
    except ImageEncodingError as e:
        assert len(data) < height * step, e
        assert "image data too short" in str(e) and f"{len(data)} bytes" in str(e)
        return
    assert len(data) >= height * step
    np.testing.assert_array_equal(arr, _reference(encoding, height, width, step, data, big))
    assert arr.dtype == ENCODINGS[encoding].dtype and arr.dtype.isnative
    try:
        bgr = to_bgr8(arr, encoding)
    except ImageEncodingError as e:
        assert encoding in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv") and width % 2, e
        assert "is odd" in str(e)
        return
    assert bgr.shape == (height, width, 3) and bgr.dtype == np.uint8


@st.composite
def arrays_for_encodings(draw):
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    info = ENCODINGS[encoding]
    height = draw(st.integers(1, 16))
    width = draw(st.integers(1, 8)) * (2 if info.channels == 2 else 1)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    raw = draw(st.binary(min_size=height * width * info.bytes_per_pixel,
                         max_size=height * width * info.bytes_per_pixel))
    arr = np.frombuffer(raw, dtype=info.dtype).reshape(shape)
    return encoding, arr, draw(st.integers(0, 12)), draw(st.booleans())


@settings(max_examples=150)
@given(arrays_for_encodings())
def test_serialised_arrays_round_trip_with_any_padding_and_byte_order(case) -> None:
    encoding, arr, padding, big = case
    fields = array_to_image_fields(arr, encoding, row_padding=padding, is_bigendian=big)
    assert fields.step == arr.shape[1] * ENCODINGS[encoding].bytes_per_pixel + padding
    back = image_to_array(
        fields.height, fields.width, encoding, fields.step, fields.data, fields.is_bigendian
    )
    # Bytes compare NaN payloads exactly (32FC1 random bytes are often NaN).
    assert back.tobytes() == np.ascontiguousarray(arr).tobytes()
    assert to_bgr8(back, encoding).shape == (*arr.shape[:2], 3)


@settings(max_examples=200)
@given(
    encoding=st.one_of(st.sampled_from(SUPPORTED_ENCODINGS), st.text(max_size=12)),
    height=st.integers(-(2**33), 2**33),
    width=st.integers(-(2**33), 2**33),
    step=st.integers(-(2**40), 2**40),
    data=st.binary(max_size=64),
)
@example(encoding="bgr8", height=2**32 - 1, width=2**32 - 1, step=2**32 - 1, data=b"")
@example(encoding="mono8", height=0, width=5, step=5, data=b"")
@example(encoding="rgb8", height=2, width=2, step=5, data=bytes(12))
def test_adversarial_headers_are_refused_with_their_reason(encoding, height, width, step, data):
    """Headers that lie (unknown encoding, empty or huge sizes, short steps) never allocate or
    crash: the error names what is wrong."""
    try:
        arr = image_to_array(height, width, encoding, step, data, max_pixels=MAX_PIXELS)
    except ImageEncodingError as e:
        msg = str(e)
        if encoding not in ENCODINGS:
            assert "unsupported image encoding" in msg
        elif height <= 0 or width <= 0:
            assert "empty image" in msg
        elif height * width > MAX_PIXELS:
            assert "exceeds max_pixels" in msg
        elif step < width * ENCODINGS[encoding].bytes_per_pixel:
            assert f"step {step} is smaller" in msg
        else:
            assert "image data too short" in msg
        return
    assert arr.shape[:2] == (height, width) and len(data) >= height * step


@settings(max_examples=150)
@given(
    st.lists(
        st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=2, max_size=40
    )
)
@example([-3.0e38, 3.0e38])  # found by this test: v - lo overflowed float32, max came out black
def test_float_images_map_their_finite_range_onto_black_to_white(values) -> None:
    """32FC1 (depth, disparity): the smallest finite value is black, the largest white, NaN/inf
    black, whatever the magnitudes."""
    arr = np.array(values, dtype=np.float32).reshape(1, -1)
    grey = to_bgr8(arr, "32FC1")[0, :, 0]
    finite = np.isfinite(arr[0])
    assert (grey[~finite] == 0).all()
    if finite.sum() and arr[0][finite].min() < arr[0][finite].max():
        assert grey[finite][np.argmin(arr[0][finite])] == 0
        assert grey[finite][np.argmax(arr[0][finite])] == 255
