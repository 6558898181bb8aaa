"""Fuzzing the rosbag2 reader (core.bag_source.BagImageSource, video_source_node's bag input).

A small recording (MCAP and SQLite3, bag_files.py) with its storage file or metadata.yaml cut
short or with bytes flipped: opening and reading every frame either works (frames of the
recorded size, or fewer of them) or raises ValueError naming the bag, in one line; never another
exception type and never a hang (the module's timeout).
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from bag_files import STORAGES, H, W, data_file, frame_image, write_camera_bag
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from pose3d_ros.core.bag_source import CAMERA_INFO_TYPE, COMPRESSED_TYPE, IMAGE_TYPE, BagImageSource

pytestmark = pytest.mark.timeout(180)

TOPICS = ["/cam/image_raw", "/cam/image_raw/compressed"]
FRAMES = 3


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict:
    out = {}
    for storage in ("mcap", "sqlite3"):
        path = tmp_path_factory.mktemp("bags") / storage
        write_camera_bag(path, storage, frames=FRAMES)
        out[storage] = path
    return out


def _read_all(path, topic: str) -> None:
    """Open and read to the end as video_source_node does; check the contract on the way."""
    try:
        source = BagImageSource(path, topic)
        try:
            count = 0
            while (frame := source.read()) is not None:
                assert frame.image.shape == (H, W, 3)
                count += 1
            assert count <= FRAMES
            event(f"read {count} frames")
        finally:
            source.close()
    except ValueError as e:
        msg = str(e)
        assert str(path) in msg and "\n" not in msg, msg
        event(f"ValueError: {msg.split(': ', 1)[-1][:30]}")


def _damaged_copy(src, dst, target: str, cut, flips) -> None:
    shutil.copytree(src, dst)
    file = dst / "metadata.yaml" if target == "metadata" else data_file(dst)
    data = bytearray(file.read_bytes())
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    file.write_bytes(bytes(data))


@settings(max_examples=60)
@given(
    storage=st.sampled_from(["mcap", "sqlite3"]),
    target=st.sampled_from(["data", "data", "metadata"]),
    topic=st.sampled_from(TOPICS),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=6),
)
@example(storage="mcap", target="data", topic=TOPICS[0], cut=None, flips=[])
@example(storage="sqlite3", target="metadata", topic=TOPICS[1], cut=10, flips=[])
def test_damaged_bags_read_or_fail_naming_the_bag(
    bags, tmp_path_factory, storage, target, topic, cut, flips
) -> None:
    dst = tmp_path_factory.mktemp("fuzz") / "bag"
    _damaged_copy(bags[storage], dst, target, cut, flips)
    _read_all(dst, topic)


def _messages() -> dict[str, bytes]:
    """One valid serialised Image, CompressedImage and CameraInfo of the test camera."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    t = store.types
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="cam"
    )
    image = frame_image(0)
    ok, png = cv2.imencode(".png", image)
    assert ok
    msgs = {
        IMAGE_TYPE: t[IMAGE_TYPE](
            header=header, height=H, width=W, encoding="bgr8", is_bigendian=0, step=W * 3,
            data=image.reshape(-1).copy(),
        ),
        COMPRESSED_TYPE: t[COMPRESSED_TYPE](header=header, format="png", data=png.reshape(-1)),
        CAMERA_INFO_TYPE: t[CAMERA_INFO_TYPE](
            header=header, height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5),
            k=np.array([50.0, 0, 19.5, 0, 50, 14.5, 0, 0, 1]), r=np.eye(3).ravel(),
            p=np.zeros(12), binning_x=0, binning_y=0,
            roi=t["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        ),
    }  # fmt: skip
    return {k: bytes(store.serialize_cdr(m, k)) for k, m in msgs.items()}


MESSAGES = _messages()
DAMAGE = st.tuples(
    st.lists(st.tuples(st.integers(0, 10**5), st.integers(1, 255)), max_size=4),
    st.one_of(st.none(), st.integers(0, 10**5)),
)


def _damaged(raw: bytes, damage) -> bytes:
    flips, cut = damage
    data = bytearray(raw)
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    return bytes(data[: cut % (len(data) + 1)] if cut is not None else data)


@settings(max_examples=40)
@given(
    storage=st.sampled_from(["mcap", "sqlite3"]),
    msgtype=st.sampled_from([IMAGE_TYPE, COMPRESSED_TYPE]),
    image_damage=DAMAGE,
    info_damage=DAMAGE,
)
@example(storage="mcap", msgtype=IMAGE_TYPE, image_damage=([(0, 0)], None),
         info_damage=([], None))  # fmt: skip
def test_damaged_messages_in_an_intact_bag_read_or_fail_naming_the_bag(
    tmp_path_factory, storage, msgtype, image_damage, info_damage
) -> None:
    """Garbage inside valid containers: the CDR (lying lengths and sizes) reaches the decoder."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    path = tmp_path_factory.mktemp("fuzz") / "bag"
    writer = Writer(path, version=8, storage_plugin=STORAGES[storage])
    writer.open()
    topic = "/cam/image_raw" + ("/compressed" if msgtype == COMPRESSED_TYPE else "")
    image_c = writer.add_connection(topic, msgtype, typestore=store)
    info_c = writer.add_connection("/cam/camera_info", CAMERA_INFO_TYPE, typestore=store)
    for i in range(2):
        writer.write(info_c, 10 * i, _damaged(MESSAGES[CAMERA_INFO_TYPE], info_damage))
        writer.write(image_c, 10 * i + 1, _damaged(MESSAGES[msgtype], image_damage))
    writer.close()
    _read_all(path, topic)
