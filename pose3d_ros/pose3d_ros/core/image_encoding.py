"""sensor_msgs/Image and CompressedImage payloads <-> numpy arrays, without ROS or cv_bridge.

The ROS layer hands over plain message fields and builds messages from plain values, so this
module stays importable (and testable) without a ROS install. Raw images are viewed in place
whenever the byte order allows it: a 1080p frame arrives 30 times a second and copying it only
to look at it is wasted bandwidth. Everything the pose pipeline consumes goes through
:func:`to_bgr8`, so the rest of the code base only ever sees HxWx3 uint8 BGR.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

DEFAULT_MAX_PIXELS = 8192 * 8192
"""Refuse larger images: a corrupt or hostile header must not make us allocate gigabytes."""


class ImageEncodingError(ValueError):
    """An image payload that cannot be interpreted (unsupported encoding, bad sizes, bad data)."""


@dataclass(frozen=True)
class EncodingInfo:
    """Memory layout of one ROS encoding: element type and channels per pixel."""

    name: str
    dtype: np.dtype
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


def _info(name: str, dtype: Any, channels: int) -> EncodingInfo:
    return EncodingInfo(name, np.dtype(dtype), channels)


# The names are the strings of sensor_msgs/image_encodings.hpp. "yuv422" is ROS's historic name
# for UYVY (U0 Y0 V0 Y1); "yuv422_yuy2" and "yuyv" are YUYV (Y0 U0 Y1 V0); "uyvy" is the newer
# explicit alias. Packed 4:2:2 is held as HxWx2 uint8, the way cv_bridge exposes it.
ENCODINGS: dict[str, EncodingInfo] = {
    e.name: e
    for e in (
        _info("rgb8", np.uint8, 3),
        _info("bgr8", np.uint8, 3),
        _info("rgba8", np.uint8, 4),
        _info("bgra8", np.uint8, 4),
        _info("mono8", np.uint8, 1),
        _info("mono16", np.uint16, 1),
        _info("8UC1", np.uint8, 1),
        _info("8UC3", np.uint8, 3),
        _info("16UC1", np.uint16, 1),
        _info("32FC1", np.float32, 1),
        _info("yuv422", np.uint8, 2),
        _info("uyvy", np.uint8, 2),
        _info("yuv422_yuy2", np.uint8, 2),
        _info("yuyv", np.uint8, 2),
    )
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(ENCODINGS)

_UYVY = frozenset({"yuv422", "uyvy"})
_YUYV = frozenset({"yuv422_yuy2", "yuyv"})


@dataclass(frozen=True)
class ImageFields:
    """The values to put into a sensor_msgs/Image (``is_bigendian`` as bool; the msg wants 0/1)."""

    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: bytes


@dataclass(frozen=True)
class CompressedFields:
    """The values to put into a sensor_msgs/CompressedImage."""

    format: str
    data: bytes


def encoding_info(encoding: str) -> EncodingInfo:
    """Look an encoding up, failing with a message that says what would have been accepted."""
    try:
        return ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise ImageEncodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        ) from None


def _check_dims(height: int, width: int, max_pixels: int, what: str = "image") -> None:
    if height <= 0 or width <= 0:
        raise ImageEncodingError(f"empty {what}: {width}x{height} (width x height)")
    if height * width > max_pixels:
        raise ImageEncodingError(
            f"{what} of {width}x{height} = {height * width} pixels exceeds max_pixels={max_pixels}"
        )


def _as_byte_array(data: Any) -> np.ndarray:
    """Flat uint8 view of any buffer (bytes, bytearray, memoryview, array.array, ndarray)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        # A plain sequence of ints (e.g. a list built in a test or by a Python publisher).
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_array(
    height: int,
    width: int,
    encoding: str,
    step: int,
    data: Any,
    is_bigendian: bool | int = False,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Interpret sensor_msgs/Image fields as an array of shape HxW (one channel) or HxWxC.

    The result shares memory with ``data`` (and is read-only if ``data`` is immutable, e.g.
    ``bytes``) unless a byte swap is needed: multi-byte data in the other byte order is copied
    into native order so callers never have to think about endianness. Row padding (``step``
    larger than a packed row) is skipped by striding, not copying. Trailing bytes beyond
    ``height * step`` are ignored.
    """
    info = encoding_info(encoding)
    height, width, step = int(height), int(width), int(step)
    _check_dims(height, width, max_pixels)
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageEncodingError(
            f"step {step} is smaller than width*bytes_per_pixel = {width}*{info.bytes_per_pixel}"
            f" = {row_bytes} for encoding {encoding!r}"
        )
    buf = _as_byte_array(data)
    if buf.size < height * step:
        raise ImageEncodingError(
            f"image data too short: {buf.size} bytes for height*step = {height}*{step}"
            f" = {height * step} (encoding {encoding!r})"
        )
    rows = buf[: height * step].reshape(height, step)[:, :row_bytes]
    big = bool(is_bigendian) and info.dtype.itemsize > 1
    dtype = info.dtype.newbyteorder(">" if big else "<") if info.dtype.itemsize > 1 else info.dtype
    arr = rows.view(dtype)
    arr = arr.reshape(height, width, info.channels) if info.channels > 1 else arr
    if not arr.dtype.isnative:
        arr = arr.astype(info.dtype)  # a byte swap needs a copy; native data stays a view
    return arr


def _checked_array(array: np.ndarray, info: EncodingInfo) -> np.ndarray:
    """The array as HxW / HxWxC with the encoding's element type (either byte order)."""
    arr = np.asarray(array)
    if info.channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype.newbyteorder("=") != info.dtype:
        raise ImageEncodingError(
            f"encoding {info.name!r} needs dtype {info.dtype}, got {arr.dtype}"
        )
    expected = "HxW" if info.channels == 1 else f"HxWx{info.channels}"
    if (info.channels == 1 and arr.ndim != 2) or (
        info.channels > 1 and (arr.ndim != 3 or arr.shape[2] != info.channels)
    ):
        raise ImageEncodingError(
            f"encoding {info.name!r} needs a {expected} array, got shape {arr.shape}"
        )
    return arr


def array_to_image_fields(
    array: np.ndarray,
    encoding: str,
    *,
    row_padding: int = 0,
    is_bigendian: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageFields:
    """Serialise an array for a sensor_msgs/Image.

    The dtype must match the encoding exactly (no silent casts: a float depth map published as
    mono16 would be garbage). ``row_padding`` extra zero bytes per row exist so tests and odd
    consumers can exercise ``step > width * bytes_per_pixel``.
    """
    info = encoding_info(encoding)
    arr = _checked_array(array, info)
    if row_padding < 0:
        raise ImageEncodingError(f"row_padding must be >= 0, got {row_padding}")
    height, width = arr.shape[:2]
    _check_dims(height, width, max_pixels)
    if encoding in _UYVY | _YUYV and width % 2:
        raise ImageEncodingError(f"encoding {encoding!r} packs pixel pairs; width {width} is odd")

    want_big = bool(is_bigendian) and info.dtype.itemsize > 1
    order = ">" if want_big else "<"
    out_dtype = info.dtype.newbyteorder(order) if info.dtype.itemsize > 1 else info.dtype
    packed = np.ascontiguousarray(arr, dtype=out_dtype).reshape(height, -1).view(np.uint8)
    row_bytes = width * info.bytes_per_pixel
    step = row_bytes + int(row_padding)
    if row_padding:
        padded = np.zeros((height, step), dtype=np.uint8)
        padded[:, :row_bytes] = packed
        packed = padded
    return ImageFields(height, width, encoding, want_big, step, packed.tobytes())


def _scale_to_u8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly to [0, 255]; NaN/inf (invalid depth) become 0."""
    # float64: float32 depth maps may span +-3e38, whose difference overflows float32.
    with np.errstate(invalid="ignore"):  # signalling NaNs (invalid depth) warn when cast
        v = values.astype(np.float64)
    span = float(hi) - float(lo)
    if not np.isfinite(span) or span <= 0:
        out = np.where(np.isfinite(v) & (v > lo), 255.0, 0.0)
    else:
        out = (v - float(lo)) * (255.0 / span)
    out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def to_bgr8(
    array: np.ndarray,
    encoding: str,
    *,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Bring any supported image to the HxWx3 uint8 BGR the pose pipeline is written for.

    Single-channel images are replicated to grey BGR, so IR and depth cameras still give the
    2D detector something to look at. 16-bit data is mapped from ``value_range`` (default the
    full 0..65535, which keeps brightness stable from frame to frame); 32FC1 uses
    ``value_range`` or, if None, each frame's finite min..max, because float images (depth in
    metres, disparities) have no natural full scale. 8UC3 is taken to be BGR, the OpenCV
    convention. A bgr8 input is returned as is (no copy).
    """
    info = encoding_info(encoding)
    arr = _checked_array(array, info)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageEncodingError(f"empty image: shape {arr.shape}")
    if not arr.dtype.isnative:
        arr = arr.astype(info.dtype)

    if encoding in ("bgr8", "8UC3"):
        return arr
    if encoding == "rgb8":
        return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if encoding == "rgba8":
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2BGR)
    if encoding == "bgra8":
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
    if encoding in _UYVY or encoding in _YUYV:
        if arr.shape[1] % 2:
            raise ImageEncodingError(
                f"encoding {encoding!r} packs pixel pairs; width {arr.shape[1]} is odd"
            )
        code = cv2.COLOR_YUV2BGR_UYVY if encoding in _UYVY else cv2.COLOR_YUV2BGR_YUY2
        return cv2.cvtColor(np.ascontiguousarray(arr), code)

    # Single channel from here on.
    if info.dtype == np.uint8:
        grey = arr
    elif info.dtype == np.uint16:
        lo, hi = value_range if value_range is not None else (0.0, 65535.0)
        if value_range is None:
            grey = (arr >> 8).astype(np.uint8)  # exact and cheaper than the float path
        else:
            grey = _scale_to_u8(arr, lo, hi)
    else:
        if value_range is None:
            finite = arr[np.isfinite(arr)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        else:
            lo, hi = value_range
        grey = _scale_to_u8(arr, lo, hi)
    return cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_GRAY2BGR)


def _peek_compressed_size(buf: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, so absurd sizes are refused before decoding."""
    if buf[:8] == b"\x89PNG\r\n\x1a\n" and len(buf) >= 24 and buf[12:16] == b"IHDR":
        width, height = struct.unpack(">II", buf[16:24])
        return width, height
    if buf[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(buf):
            if buf[i] != 0xFF:
                return None
            marker = buf[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
                i += 2
                continue
            (length,) = struct.unpack(">H", buf[i + 2 : i + 4])
            # SOFn frames carry the size; C4 (DHT), C8 (JPG), CC (DAC) share the range.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if i + 9 > len(buf):
                    return None
                height, width = struct.unpack(">HH", buf[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


def decode_compressed(
    format: str,  # named like the sensor_msgs/CompressedImage field
    data: Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage payload to HxWx3 uint8 BGR.

    The codec is sniffed from the data (image_transport's ``format`` strings vary: "jpeg",
    "png", "rgb8; jpeg compressed bgr8"), so ``format`` only serves to reject
    compressedDepth payloads, which carry a private header imdecode cannot read.
    """
    if "compresseddepth" in str(format).lower():
        raise ImageEncodingError(
            f"compressed format {format!r} (compressedDepth) is not supported; "
            "subscribe to the raw depth topic instead"
        )
    buf = _as_byte_array(data)
    if buf.size == 0:
        raise ImageEncodingError(f"cannot decode compressed image (format {format!r}): no data")
    size = _peek_compressed_size(buf[:65536].tobytes())
    if size is not None:
        _check_dims(size[1], size[0], max_pixels, what="compressed image")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageEncodingError(
            f"cannot decode compressed image (format {format!r}, {buf.size} bytes): {exc}"
        ) from exc
    if img is None or img.size == 0:
        raise ImageEncodingError(
            f"cannot decode compressed image (format {format!r}, {buf.size} bytes):"
            " not a readable JPEG/PNG/... stream"
        )
    _check_dims(img.shape[0], img.shape[1], max_pixels, what="compressed image")
    return img


def encode_compressed(
    array: np.ndarray,
    fmt: str = "jpeg",
    *,
    encoding: str = "bgr8",
    quality: int = 90,
) -> CompressedFields:
    """Compress an image for a sensor_msgs/CompressedImage.

    The format string follows compressed_image_transport ("bgr8; jpeg compressed bgr8") so
    rqt and image_transport republishers recognise the payload. mono8/8UC1 stay single
    channel; every other encoding is converted with :func:`to_bgr8` first. ``quality`` is the
    JPEG quality (0-100); PNG is lossless and ignores it.
    """
    kind = fmt.lower()
    if kind in ("jpg", "jpeg"):
        ext, kind, params = ".jpg", "jpeg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif kind == "png":
        ext, params = ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]
    else:
        raise ImageEncodingError(f"unsupported compressed format {fmt!r}; supported: jpeg, png")
    encoding_info(encoding)
    if encoding in ("mono8", "8UC1"):
        img, out_enc = np.asarray(array), "mono8"
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
    else:
        img, out_enc = to_bgr8(array, encoding), "bgr8"
    if img.ndim < 2 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageEncodingError(f"cannot compress an empty image of shape {img.shape}")
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(img), params)
    if not ok:
        raise ImageEncodingError(f"OpenCV could not encode a {img.shape} image as {kind}")
    # Keep the source name only where the bgr8/mono8 payload still means that encoding;
    # scaled 16-bit/float or YUV sources are plain bgr8 pictures once compressed.
    src = encoding if encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8") else out_enc
    return CompressedFields(f"{src}; {kind} compressed {out_enc}", encoded.tobytes())
