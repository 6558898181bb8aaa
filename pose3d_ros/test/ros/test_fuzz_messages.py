"""Fuzzing the node's message entry points with real sensor_msgs objects (in process, no DDS):
ros.messages.image_msg_to_bgr, compressed_msg_to_bgr, camera_info_to_model and
ros.depth_sync.depth_from_fields, exactly as pose3d_node's callbacks call them. The cores are
fuzzed in depth by ../test_fuzz_image_encoding.py, ../test_fuzz_compressed_image.py and
../test_fuzz_camera_info.py; this checks that whatever the message types carry (array.array
data, uint8 flags, uint32 sizes, fixed-size arrays) reaches them and fails only with the error
types the node catches.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from pose3d_ros.core.camera import DISTORTION_COEFFICIENTS, CameraInfoError
from pose3d_ros.core.image_encoding import SUPPORTED_ENCODINGS, ImageEncodingError
from pose3d_ros.ros.depth_sync import depth_from_fields
from pose3d_ros.ros.messages import camera_info_to_model, compressed_msg_to_bgr, image_msg_to_bgr

pytestmark = pytest.mark.timeout(120)

MAX_PIXELS = 64 * 64
UINT32 = st.one_of(st.integers(0, 40), st.sampled_from([2**31, 2**32 - 1]))


@settings(max_examples=150)
@given(
    height=UINT32,
    width=UINT32,
    step=UINT32,
    encoding=st.one_of(st.sampled_from(SUPPORTED_ENCODINGS), st.text(max_size=8)),
    is_bigendian=st.integers(0, 255),
    data=st.binary(max_size=2000),
)
def test_image_messages_convert_or_fail_with_image_encoding_error(
    height, width, step, encoding, is_bigendian, data
) -> None:
    msg = Image(height=height, width=width, step=step, encoding=encoding,
                is_bigendian=is_bigendian, data=data)  # fmt: skip
    try:
        bgr = image_msg_to_bgr(msg, max_pixels=MAX_PIXELS)
    except ImageEncodingError:
        return
    assert bgr.shape == (height, width, 3) and bgr.dtype == np.uint8


@settings(max_examples=100)
@given(fmt=st.text(max_size=20), data=st.binary(max_size=600))
def test_compressed_messages_decode_or_fail_with_image_encoding_error(fmt, data) -> None:
    try:
        bgr = compressed_msg_to_bgr(CompressedImage(format=fmt, data=data), max_pixels=MAX_PIXELS)
    except ImageEncodingError:
        return
    assert bgr.ndim == 3 and bgr.shape[2] == 3


@settings(max_examples=150)
@given(
    width=UINT32,
    height=UINT32,
    k=st.lists(st.floats(), min_size=9, max_size=9),
    r=st.lists(st.floats(), min_size=9, max_size=9),
    p=st.lists(st.floats(), min_size=12, max_size=12),
    d=st.lists(st.floats(), max_size=10),
    model=st.one_of(st.sampled_from(sorted(DISTORTION_COEFFICIENTS)), st.text(max_size=8)),
)
def test_camera_info_messages_give_a_model_or_camera_info_error(width, height, k, r, p, d, model):
    msg = CameraInfo(width=width, height=height, k=k, r=r, p=p, d=d, distortion_model=model)
    try:
        camera = camera_info_to_model(msg)
    except CameraInfoError:
        return
    assert (camera.width, camera.height) == (width, height)
    camera.warnings()


@settings(max_examples=100)
@given(
    height=st.integers(0, 12),
    width=st.integers(0, 12),
    padding=st.integers(0, 5),
    encoding=st.sampled_from(["16UC1", "32FC1", "mono16", "bgr8", "16SC1"]),
    is_bigendian=st.integers(0, 1),
    data=st.binary(max_size=1200),
)
def test_depth_messages_give_a_depth_image_or_image_encoding_error(
    height, width, padding, encoding, is_bigendian, data
) -> None:
    """pose3d_node's depth callback: anything but ImageEncodingError (DepthImageError is one)
    would escape it."""
    bpp = 2 if encoding in ("16UC1", "mono16", "16SC1") else 4
    msg = Image(height=height, width=width, step=width * bpp + padding, encoding=encoding,
                is_bigendian=is_bigendian, data=data)  # fmt: skip
    try:
        depth_from_fields(msg.height, msg.width, msg.encoding, msg.step, msg.data,
                          msg.is_bigendian, max_pixels=MAX_PIXELS)  # fmt: skip
    except ImageEncodingError:
        return
    assert encoding in ("16UC1", "32FC1") and len(data) >= height * msg.step
