"""Small rosbag2 recordings for tests, written with `rosbags` alone (no rclpy).

One camera `/cam`: `/cam/image_raw` (Image, bgr8), `/cam/image_raw/compressed` (CompressedImage,
PNG: lossless, so pixels can be compared exactly) and `/cam/camera_info` before every image, all
with one header per frame, as a camera driver records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

W, H = 40, 30
FRAME_ID = "bag_cam_optical"
START_NS = 1_700_000_000_250_000_000  # header stamps: a recorded wall time, not "now"
PERIOD_NS = 50_000_000  # 20 Hz
RECORD_DELAY_NS = 3_000_000  # messages are written a little after their stamp
K = (50.0, 0.0, 19.5, 0.0, 52.0, 14.5, 0.0, 0.0, 1.0)
D = (0.05, -0.01, 0.0, 0.0, 0.0)

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


@dataclass(frozen=True)
class RecordedFrame:
    image: np.ndarray  # BGR
    stamp_ns: int
    recorded_ns: int


def frame_image(i: int) -> np.ndarray:
    """Frame i: brightness grows with i; left half red, a white dot at column i (order and
    channel checks)."""
    image = np.full((H, W, 3), 10 + 30 * i, np.uint8)
    image[:, : W // 2, 2] = 220
    image[H // 2, i, :] = 255
    return image


def write_camera_bag(path: Path, storage: str, frames: int = 6) -> list[RecordedFrame]:
    store = get_typestore(Stores.ROS2_JAZZY)
    t = store.types
    writer = Writer(path, version=8, storage_plugin=STORAGES[storage])
    writer.open()
    img_c = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=store)
    png_c = writer.add_connection(
        "/cam/image_raw/compressed", "sensor_msgs/msg/CompressedImage", typestore=store
    )
    info_c = writer.add_connection(
        "/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
    )
    recorded = []
    for i in range(frames):
        stamp_ns = START_NS + i * PERIOD_NS
        sec, nanosec = divmod(stamp_ns, 1_000_000_000)
        header = t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=FRAME_ID
        )
        image = frame_image(i)
        info = t["sensor_msgs/msg/CameraInfo"](
            header=header, height=H, width=W, distortion_model="plumb_bob",
            d=np.array(D), k=np.array(K), r=np.eye(3).ravel(),
            p=np.array([K[0], 0, K[2], 0, 0, K[4], K[5], 0, 0, 0, 1, 0], float),
            binning_x=0, binning_y=0,
            roi=t["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        )  # fmt: skip
        raw = t["sensor_msgs/msg/Image"](
            header=header, height=H, width=W, encoding="bgr8", is_bigendian=0, step=W * 3,
            data=image.reshape(-1).copy(),
        )  # fmt: skip
        ok, png = cv2.imencode(".png", image)
        assert ok
        compressed = t["sensor_msgs/msg/CompressedImage"](
            header=header, format="png", data=png.reshape(-1)
        )
        at = stamp_ns + RECORD_DELAY_NS
        writer.write(info_c, at, store.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
        writer.write(img_c, at + 1, store.serialize_cdr(raw, "sensor_msgs/msg/Image"))
        writer.write(
            png_c, at + 2, store.serialize_cdr(compressed, "sensor_msgs/msg/CompressedImage")
        )
        recorded.append(RecordedFrame(image, stamp_ns, at))
    writer.close()
    return recorded


def data_file(bag: Path) -> Path:
    """The storage file of a bag folder (.mcap or .db3)."""
    (file,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    return file
