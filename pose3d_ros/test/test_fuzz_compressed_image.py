"""Fuzzing sensor_msgs/CompressedImage decoding (core.image_encoding.decode_compressed, the
path of pose3d_node with `compressed_input` and of rosbag2 replay).

Random bytes, real PNG/JPEG streams with flipped bytes or cut short, and headers claiming huge
sizes: the result is an HxWx3 uint8 image within max_pixels, or ImageEncodingError with the
reason; never another exception, and a lying header is refused before anything is decoded.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pose3d_ros.core.image_encoding import ImageEncodingError, decode_compressed

pytestmark = pytest.mark.timeout(120)

MAX_PIXELS = 256 * 256
FORMATS = st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "", "bgr8; png"])


def _encoded(ext: str) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


JPEG = _encoded(".jpg")
PNG = _encoded(".png")


def _check(fmt: str, data: bytes) -> None:
    """The contract the node relies on."""
    try:
        image = decode_compressed(fmt, data, max_pixels=MAX_PIXELS)
    except ImageEncodingError as e:
        assert "compressed image" in str(e), e
        return
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert 0 < image.shape[0] * image.shape[1] <= MAX_PIXELS


@settings(max_examples=200)
@given(fmt=FORMATS, data=st.binary(max_size=512))
@example(fmt="jpeg", data=b"")
@example(fmt="jpeg", data=b"\xff\xd8\xff\xc0\x00\x01")  # a SOF marker cut before its size
@example(fmt="jpeg", data=b"\xff\xd8" + b"\xff\x01" * 100)  # markers without a length
def test_random_bytes_decode_or_fail_with_the_reason(fmt, data) -> None:
    _check(fmt, data)


@settings(max_examples=150)
@given(
    base=st.sampled_from([JPEG, PNG]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_damaged_jpeg_and_png_streams_decode_or_fail_with_the_reason(base, flips, cut) -> None:
    data = bytearray(base)
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _check("jpeg", bytes(data))


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def _jpeg_header(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof


@settings(max_examples=100)
@given(
    header=st.sampled_from([_png_header, _jpeg_header]),
    width=st.integers(1, 65535),
    height=st.integers(1, 65535),
    tail=st.binary(max_size=64),
)
@example(header=_png_header, width=65535, height=65535, tail=b"")
def test_headers_claiming_huge_images_are_refused_before_decoding(header, width, height, tail):
    data = header(width, height) + tail
    if width * height <= MAX_PIXELS:
        _check("png", data)
        return
    with pytest.raises(ImageEncodingError, match="exceeds max_pixels"):
        decode_compressed("png", data, max_pixels=MAX_PIXELS)


@settings(max_examples=30)
@given(fmt=st.sampled_from(["compressedDepth", "16UC1; compressedDepth png"]), data=st.binary())
def test_compressed_depth_is_refused_by_name(fmt, data) -> None:
    with pytest.raises(ImageEncodingError, match="compressedDepth"):
        decode_compressed(fmt, data)
