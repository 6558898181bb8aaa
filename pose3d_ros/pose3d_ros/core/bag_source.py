"""Frames from an image topic of a rosbag2 recording (MCAP or SQLite3), without ROS.

`rosbags` reads and deserialises the bag in pure Python, so the same source serves the ROS node
(video_source_node replays a recording as a camera) and offline tools. Each frame keeps what the
camera driver recorded: the header stamp and frame_id, the time the message was recorded (for
replaying at the recorded rate) and the intrinsics of the newest CameraInfo recorded at or
before it, if the bag has one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pose3d_ros.core.camera import CameraInfoError, CameraModel
from pose3d_ros.core.frame_sources import Frame, FrameSource
from pose3d_ros.core.image_encoding import (
    ImageEncodingError,
    decode_compressed,
    image_to_array,
    to_bgr8,
)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)


def is_rosbag2(path: str | os.PathLike[str]) -> bool:
    """A rosbag2 recording is a folder with a metadata.yaml."""
    return (Path(path) / "metadata.yaml").is_file()


@dataclass(frozen=True)
class BagFrame(Frame):
    """A frame with its recorded header: `stamp_ns` is the header stamp (shifted by whole
    recording lengths on later loop cycles so it keeps increasing), `recorded_ns` the time the
    message was written to the bag, `camera` the bag's intrinsics (None: the bag has none)."""

    stamp_ns: int = 0
    recorded_ns: int = 0
    frame_id: str = ""
    camera: CameraModel | None = None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _camera_info_topic(image_topic: str, info_topics: list[str]) -> str | None:
    """The CameraInfo topic beside an image topic (`<ns>/image_raw[/compressed]` ->
    `<ns>/camera_info`, image_transport's convention), else the only one in the bag."""
    base = image_topic.removesuffix("/compressed")
    sibling = base.rsplit("/", 1)[0] + "/camera_info"
    if sibling in info_topics:
        return sibling
    return info_topics[0] if len(info_topics) == 1 else None


class BagImageSource(FrameSource):
    """The images of one topic of a rosbag2, in recording order, converted to BGR8.

    `topic` empty: the bag's only image topic. `camera_info_topic` empty: the CameraInfo beside
    the image topic, or the bag's only one. Raises ValueError (one line, naming the bag) for a
    bag that cannot be read or has no such topic.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        topic: str = "",
        *,
        camera_info_topic: str = "",
        loop: bool = False,
    ) -> None:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        super().__init__(f"rosbag2 {str(self.path)!r}", loop)
        store = get_typestore(Stores.ROS2_JAZZY)  # for SQLite3 bags without type definitions
        try:
            self._reader = AnyReader([self.path], default_typestore=store)
            self._reader.open()
        except Exception as e:  # rosbags raises its own types for every kind of damage
            raise ValueError(f"cannot read {self.description}: {_one_line(e)}") from e
        self._camera: CameraModel | None = None
        try:
            self._select(topic, camera_info_topic)
            self._messages = self._iterate()
            first = self._next_frame()
        except ValueError:
            self._reader.close()
            raise
        if first is None:
            self._reader.close()
            raise ValueError(f"{self.description}: topic {self.topic!r} holds no readable image")
        self._pending: tuple | None = first
        image = first[0]
        self._size = (int(image.shape[1]), int(image.shape[0]))
        self._first_stamp = first[1]
        self._last_stamp = first[1]
        self._cycle_offset = 0

    def _select(self, topic: str, camera_info_topic: str) -> None:
        by_topic: dict[str, Any] = {}
        for c in self._reader.connections:
            by_topic.setdefault(c.topic, c)
        images = sorted(t for t, c in by_topic.items() if c.msgtype in IMAGE_TYPES)
        infos = sorted(t for t, c in by_topic.items() if c.msgtype == CAMERA_INFO_TYPE)
        if not topic:
            if len(images) != 1:
                raise ValueError(
                    f"{self.description} has {len(images)} image topics "
                    f"({', '.join(images) or 'none'}): name one with bag_topic"
                )
            topic = images[0]
        if topic not in images:
            raise ValueError(
                f"{self.description} has no Image/CompressedImage topic {topic!r} "
                f"(image topics: {', '.join(images) or 'none'})"
            )
        self.topic = topic
        if camera_info_topic and camera_info_topic not in infos:
            raise ValueError(
                f"{self.description} has no CameraInfo topic {camera_info_topic!r} "
                f"(CameraInfo topics: {', '.join(infos) or 'none'})"
            )
        self.camera_info_topic = camera_info_topic or _camera_info_topic(topic, infos)
        self._connections = [c for c in self._reader.connections if c.topic == topic]
        self._connections += [
            c for c in self._reader.connections if c.topic == self.camera_info_topic
        ]
        self.message_count = sum(c.msgcount for c in self._connections if c.topic == topic)

    def _iterate(self) -> Iterator[tuple[Any, int, bytes]]:
        return iter(self._reader.messages(connections=self._connections))

    def _next_frame(self) -> tuple[np.ndarray, int, int, str, CameraModel | None] | None:
        """(image, stamp_ns, recorded_ns, frame_id, camera) of the next image message."""
        while True:
            try:
                item = next(self._messages, None)
                if item is None:
                    return None
                conn, recorded_ns, raw = item
                msg = self._reader.deserialize(raw, conn.msgtype)
            except Exception as e:
                raise ValueError(f"cannot read {self.description}: {_one_line(e)}") from e
            if conn.topic != self.topic:
                self._camera = self._camera_from(msg)
                continue
            stamp_ns = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            try:
                if conn.msgtype == COMPRESSED_TYPE:
                    image = decode_compressed(msg.format, msg.data)
                else:
                    array = image_to_array(
                        msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian
                    )
                    image = to_bgr8(array, msg.encoding)
            except ImageEncodingError as e:
                raise ValueError(
                    f"{self.description}: image at {stamp_ns} ns on {self.topic}: {e}"
                ) from e
            return image, stamp_ns, int(recorded_ns), msg.header.frame_id, self._camera

    def _camera_from(self, msg: Any) -> CameraModel | None:
        try:
            return CameraModel.from_camera_info_fields(
                int(msg.width), int(msg.height), list(msg.k), list(msg.d), list(msg.r),
                list(msg.p), msg.distortion_model,
            )  # fmt: skip
        except CameraInfoError:
            return self._camera  # an invalid one is ignored, like the node ignores it live

    @property
    def fps(self) -> float | None:
        """Mean recorded rate of the image topic (None for a single frame)."""
        span = self._reader.duration
        if self.message_count < 2 or not span:
            return None
        return (self.message_count - 1) / (span * 1e-9)

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def frame_count(self) -> int | None:
        return self.message_count

    def _next_image(self) -> np.ndarray | None:
        raise NotImplementedError  # read() is overridden: frames carry their header

    def read(self) -> BagFrame | None:
        """The next frame with its recorded header; None at the end (unless looping)."""
        if self._closed:
            return None
        item = self._take()
        if item is None and self.loop and self._index > 0:
            # Later cycles continue the timeline: stamps never go back (sim time, TF buffers).
            period = (self._last_stamp - self._first_stamp) / max(self._index - 1, 1)
            self._cycle_offset += self._last_stamp - self._first_stamp + int(period)
            self._rewind()
            self._index = 0
            self._cycle += 1
            item = self._take()
        if item is None:
            return None
        image, stamp_ns, recorded_ns, frame_id, camera = item
        size = (int(image.shape[1]), int(image.shape[0]))
        if size != self._size:
            raise ValueError(
                f"{self.description}: an image of {size[0]}x{size[1]} after "
                f"{self._size[0]}x{self._size[1]} ones on {self.topic}"
            )
        if self._cycle == 0:
            self._last_stamp = stamp_ns
        frame = BagFrame(
            image, self._index, self._cycle, stamp_ns + self._cycle_offset, recorded_ns, frame_id,
            camera,
        )  # fmt: skip
        self._index += 1
        return frame

    def _take(self):
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        return self._next_frame()

    def _rewind(self) -> bool:
        self._messages = self._iterate()
        self._camera = None
        return True

    def _release(self) -> None:
        self._reader.close()
