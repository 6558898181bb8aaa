"""BagImageSource: an image topic of a rosbag2 (MCAP and SQLite3) as frames, without ROS."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import numpy as np
import pytest
from bag_files import FRAME_ID, PERIOD_NS, K, data_file, write_camera_bag

from pose3d_ros.core.bag_source import BagImageSource, is_rosbag2

TOPICS = ("/cam/image_raw", "/cam/image_raw/compressed")


@pytest.fixture(params=["mcap", "sqlite3"])
def bag(request, tmp_path):
    path = tmp_path / "bag"
    return path, write_camera_bag(path, request.param)


@pytest.mark.parametrize("topic", TOPICS)
def test_frames_keep_pixels_headers_and_the_bags_intrinsics(bag, topic):
    path, recorded = bag
    assert is_rosbag2(path) and not is_rosbag2(path.parent)
    with BagImageSource(path, topic) as source:
        assert source.size == (recorded[0].image.shape[1], recorded[0].image.shape[0])
        assert source.camera_info_topic == "/cam/camera_info"  # beside /cam/image_raw
        frames = list(source)
    assert len(frames) == len(recorded)
    for frame, rec in zip(frames, recorded, strict=True):
        np.testing.assert_array_equal(frame.image, rec.image)  # raw and PNG are lossless
        assert frame.stamp_ns == rec.stamp_ns
        assert frame.recorded_ns > rec.recorded_ns - 1  # written after its camera_info
        assert frame.frame_id == FRAME_ID
        np.testing.assert_allclose(frame.camera.K.ravel(), K)
    assert [f.index for f in frames] == list(range(len(recorded)))


def test_loop_continues_the_timeline(bag):
    path, recorded = bag
    n = len(recorded)
    with BagImageSource(path, TOPICS[0], loop=True) as source:
        frames = [source.read() for _ in range(2 * n)]
    np.testing.assert_array_equal(frames[n].image, frames[0].image)
    assert frames[n].cycle == 1 and frames[n].index == 0
    stamps = [f.stamp_ns for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps)), stamps
    # The second pass follows the first one period after its last frame.
    assert stamps[n] - stamps[n - 1] == PERIOD_NS


def test_topic_errors_name_what_the_bag_has(bag):
    path, _ = bag
    both = re.escape("2 image topics (/cam/image_raw, /cam/image_raw/compressed)")
    with pytest.raises(ValueError, match=both):
        BagImageSource(path)
    with pytest.raises(ValueError, match="no Image/CompressedImage topic '/cam/camera_info'"):
        BagImageSource(path, "/cam/camera_info")
    with pytest.raises(ValueError, match="no CameraInfo topic '/other/camera_info'"):
        BagImageSource(path, TOPICS[0], camera_info_topic="/other/camera_info")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_bag_is_one_line_naming_it(bag, damage):
    path, _ = bag
    file = data_file(path)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 64)
    with pytest.raises(ValueError) as error:
        BagImageSource(path, TOPICS[0])
    text = str(error.value)
    assert "\n" not in text and str(path) in text


def test_reading_a_bag_needs_no_rclpy(tmp_path):
    path = tmp_path / "bag"
    write_camera_bag(path, "mcap", frames=2)
    code = (
        "import sys; from pose3d_ros.core.bag_source import BagImageSource; "
        f"assert len(list(BagImageSource({str(path)!r}, {TOPICS[1]!r}))) == 2; "
        "assert 'rclpy' not in sys.modules, 'rclpy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
