"""The optional `depth` input of pose3d_node: aligned depth images matched to colour frames.

Why: a depth camera publishes its depth and colour streams separately, each with its own stamp
(the same one on most drivers, a few milliseconds apart on others), and not always at the same
rate. Each colour frame is processed with the depth image whose stamp is nearest to its own,
if that one is within ``slop_s`` (approximate time synchronisation); a frame without one is
processed monocularly and the node says why. The buffer is bounded (the newest ``buffer``
depth images), so a colour stream that stops cannot make memory grow.

Depth messages are checked when they arrive (encoding, size, units: stages/depth_fusion.py), so
a bad depth stream gives one specific warning per problem (throttled by the node) and never
reaches the pipeline. No rclpy here: the node passes message fields, so this is tested without
DDS as well as through it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from pose3d_ros.core.image_encoding import image_to_array
from pose3d_ros.core.parameters import setting
from pose3d_ros.stages.depth_fusion import DepthImage, DepthImageError, depth_image


@dataclass(frozen=True)
class DepthInputSettings:
    """The `depth` topic of pose3d_node (``depth_input.*``)."""

    enabled: bool = setting(
        False,
        "Subscribe an aligned depth image on `depth` (sensor_msgs/Image 16UC1 millimetres or "
        "32FC1 metres, registered to the colour camera, same field of view) and let it fix "
        "people's distance (pipeline.depth.*)",
        read_only=True,
    )
    slop_s: float = setting(
        0.03,
        "Largest stamp difference between a colour frame and the depth image used with it; a "
        "frame whose depth has not arrived yet waits up to this long for it",
        range=(0.0, 1.0),
        unit="s",
    )
    buffer: int = setting(
        8, "Depth images kept for matching (the newest)", range=(1, 100), read_only=True
    )


def depth_from_fields(
    height: int,
    width: int,
    encoding: str,
    step: int,
    data: Any,
    is_bigendian: bool | int = False,
    max_pixels: int | None = None,
) -> DepthImage:
    """A sensor_msgs/Image's fields -> DepthImage (raises ImageEncodingError / DepthImageError
    with the reason: unsupported encoding, bad sizes, wrong units)."""
    if encoding not in ("16UC1", "32FC1"):
        raise DepthImageError(
            f"depth encoding {encoding!r} is not supported; use 16UC1 (mm) or 32FC1 (m)"
        )
    kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
    array = image_to_array(height, width, encoding, step, data, is_bigendian, **kwargs)
    return depth_image(array, encoding)


class DepthSync:
    """Bounded buffer of (stamp, depth image) and nearest-stamp matching (thread-safe: the
    executor pushes, the node's worker matches)."""

    def __init__(self, settings: DepthInputSettings) -> None:
        self.settings = settings
        self._buffer: deque[tuple[float, DepthImage]] = deque(maxlen=settings.buffer)
        self._cond = threading.Condition()
        self.received = 0
        self.refused = 0
        self.matched = 0
        self.unmatched = 0

    def push(self, stamp: float, depth: DepthImage) -> None:
        """Add a depth image (stamp in seconds); the oldest falls out of the full buffer."""
        with self._cond:
            self.received += 1
            self._buffer.append((stamp, depth))
            self._cond.notify_all()

    def refuse(self) -> None:
        """Count a depth message that could not be used (the caller warns with the reason)."""
        with self._cond:
            self.received += 1
            self.refused += 1

    def match(self, stamp: float, width: int, height: int) -> tuple[DepthImage | None, str]:
        """The depth image for the colour frame at ``stamp`` (s) of ``width`` x ``height``
        pixels, or None and why not. Waits up to ``slop_s`` for a depth image that may still
        come (none yet as new as the frame)."""
        slop = self.settings.slop_s
        deadline = time.monotonic() + slop
        with self._cond:
            while not self._buffer or self._buffer[-1][0] < stamp:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if not self._buffer:
                self.unmatched += 1
                return None, "no depth image received on `depth` yet"
            gap, depth = min(((abs(t - stamp), d) for t, d in self._buffer), key=lambda x: x[0])
            if gap > slop:
                self.unmatched += 1
                newest = self._buffer[-1][0] - stamp
                return None, (
                    f"no depth image within slop_s={slop:g} s of the colour frame (nearest "
                    f"{gap:.3f} s away, newest {newest:+.3f} s): the depth stream is stale or "
                    "its stamps are not the colour camera's"
                )
        try:
            depth.pixel_scale(width, height)
        except DepthImageError as e:
            self.unmatched += 1
            return None, str(e)
        self.matched += 1
        return depth, ""

    def counts(self) -> dict[str, str]:
        """For /diagnostics."""
        return {
            "depth_received": str(self.received),
            "depth_refused": str(self.refused),
            "depth_matched": str(self.matched),
            "depth_unmatched": str(self.unmatched),
        }
