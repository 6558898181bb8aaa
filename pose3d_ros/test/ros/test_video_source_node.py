"""video_source_node as a real process over DDS."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
from bag_files import FRAME_ID as BAG_FRAME_ID
from bag_files import K as BAG_K
from bag_files import data_file, write_camera_bag
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from pose3d_ros.core.camera import CameraModel, save_camera_yaml

pytestmark = pytest.mark.ros

N_FRAMES = 8
W, H = 96, 64


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    for i in range(N_FRAMES):
        frame = np.full((H, W, 3), 20 + 25 * i, np.uint8)
        frame[:, : W // 2, 2] = 200  # red left half, to check the channel order
        writer.write(frame)
    writer.release()
    return path


def _collect(ros_graph, topic_type, topic):
    got = []
    ros_graph.node.create_subscription(topic_type, topic, got.append, QoSProfile(depth=100))
    return got


def test_publishes_every_frame_with_the_yaml_intrinsics(ros_graph, video, tmp_path):
    camera = CameraModel.from_camera_info_fields(
        W, H, [80.0, 0, 47.5, 0, 82.0, 31.0, 0, 0, 1], [0.1, -0.05, 0.001, 0.002, 0.0],
        [1, 0, 0, 0, 1, 0, 0, 0, 1], [80.0, 0, 47.5, 0, 0, 82.0, 31.0, 0, 0, 0, 1, 0],
        "plumb_bob",
    )
    yaml_path = tmp_path / "cam.yaml"
    save_camera_yaml(camera, yaml_path, "test_cam")
    images = _collect(ros_graph, Image, "/cam/image")
    infos = _collect(ros_graph, CameraInfo, "/cam/camera_info")
    proc = ros_graph.start(
        "video_source_node",
        "-p", f"input:={video}",
        "-p", f"camera_info_file:={yaml_path}",
        "-p", "frame_id:=test_cam_optical",
        "-p", "rate:=40.0",
        "-p", "wait_for_subscribers:=1",
        "-r", "image:=/cam/image",
        "-r", "camera_info:=/cam/camera_info",
    )
    assert proc.wait(30) == 0, proc.log()  # stops by itself, cleanly, at the end of the clip
    ros_graph.spin_until(lambda: len(images) >= N_FRAMES and len(infos) >= N_FRAMES, 60, "frames")
    ros_graph.spin_for(0.3)
    assert len(images) == N_FRAMES
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    for img, info in zip(images, infos, strict=True):
        assert (img.width, img.height, img.encoding, img.step) == (W, H, "bgr8", W * 3)
        assert img.header.frame_id == "test_cam_optical"
        assert info.header == img.header  # same stamp and frame: synchronised pairs
        np.testing.assert_allclose(info.k, np.ravel(camera.K))
        np.testing.assert_allclose(info.d, np.ravel(camera.D))
        assert info.distortion_model == "plumb_bob"
    # Frame order and channel order survive: brightness increases, left half is red.
    pixels = [np.frombuffer(bytes(m.data), np.uint8).reshape(H, W, 3) for m in images]
    right_blue = [int(p[:, W // 2 :, 0].mean()) for p in pixels]
    assert right_blue == sorted(right_blue) and right_blue[-1] - right_blue[0] > 100
    assert pixels[0][:, : W // 4, 2].mean() > 180


def test_field_of_view_assumption_and_loop(ros_graph, video):
    infos = _collect(ros_graph, CameraInfo, "camera_info")
    images = _collect(ros_graph, Image, "image")
    proc = ros_graph.start(
        "video_source_node",
        "-p", f"input:={video}",
        "-p", "loop:=true",
        "-p", "max_frames:=20",
        "-p", "rate:=100.0",
        "-p", "horizontal_fov_deg:=90.0",
        "-p", "wait_for_subscribers:=1",
    )
    assert proc.wait(30) == 0, proc.log()
    ros_graph.spin_until(lambda: len(images) >= 20 and len(infos) >= 20, 60, "20 looped frames")
    # After the loop restarts, frame 8 is frame 0 again.
    np.testing.assert_array_equal(images[N_FRAMES].data, images[0].data)
    assert "ASSUMING a 90 deg horizontal field of view" in proc.log()
    fx = infos[0].k[0]
    assert fx == pytest.approx((W / 2) / math.tan(math.radians(45)))
    assert (infos[0].k[2], infos[0].k[5]) == pytest.approx(((W - 1) / 2, (H - 1) / 2), abs=0.51)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["-p", "input:=/nonexistent/clip.avi"], "/nonexistent/clip.avi"),
        ([], "'input' is required"),
        (["-p", "input:=x.avi", "-p", "rate:=-1.0"], "rate"),
        (["-p", "input:=x.avi", "-p", "encoding:=yuv9"], "encoding"),
    ],
)
def test_bad_parameters_fail_with_the_reason(ros_graph, params, message):
    proc = ros_graph.start("video_source_node", *params)
    assert proc.wait(20) == 2
    log = proc.log()
    assert message in log and "Traceback" not in log, log


# --- rosbag2 replay -------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("topic", ["/cam/image_raw", "/cam/image_raw/compressed"])
def test_replays_a_bag_topic_with_its_headers_and_camera_info(ros_graph, tmp_path, storage, topic):
    """A recorded camera replayed into another process: every frame, its pixels, its recorded
    header (stamp and frame_id, for use_sim_time) and the bag's intrinsics; /clock follows the
    recorded stamps."""
    bag = tmp_path / "bag"
    recorded = write_camera_bag(bag, storage)
    images = _collect(ros_graph, Image, "image")
    infos = _collect(ros_graph, CameraInfo, "camera_info")
    clock: list[Clock] = []
    ros_graph.node.create_subscription(Clock, "/clock", clock.append, QoSProfile(depth=100))
    proc = ros_graph.start(
        "video_source_node",
        "-p", f"input:={bag}",
        "-p", f"bag_topic:={topic}",
        "-p", "publish_clock:=true",
        "-p", "wait_for_subscribers:=1",
    )  # fmt: skip
    assert proc.wait(30) == 0, proc.log()  # ends by itself at the end of the recording
    n = len(recorded)
    ros_graph.spin_until(lambda: len(images) >= n and len(infos) >= n, 60, "the replayed frames")
    assert len(images) == n
    assert "the recorded timing" in proc.log()
    for img, info, rec in zip(images, infos, recorded, strict=True):
        stamp_ns = img.header.stamp.sec * 1_000_000_000 + img.header.stamp.nanosec
        assert stamp_ns == rec.stamp_ns
        assert img.header.frame_id == BAG_FRAME_ID
        assert info.header == img.header
        pixels = np.frombuffer(bytes(img.data), np.uint8).reshape(img.height, img.width, 3)
        np.testing.assert_array_equal(pixels, rec.image)  # raw and PNG are lossless
        np.testing.assert_allclose(info.k, BAG_K)
        assert info.distortion_model == "plumb_bob"
    ros_graph.spin_until(lambda: len(clock) >= n, 60, "/clock")
    assert [c.clock for c in clock[:n]] == [m.header.stamp for m in images]
    assert "ASSUMING" not in proc.log()  # the bag's camera_info, no field-of-view guess


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_corrupt_bag_exits_2_in_one_line(ros_graph, tmp_path, storage):
    bag = tmp_path / "bag"
    write_camera_bag(bag, storage)
    data_file(bag).write_bytes(b"\x00not a bag" * 100)
    proc = ros_graph.start(
        "video_source_node", "-p", f"input:={bag}", "-p", "bag_topic:=/cam/image_raw"
    )
    assert proc.wait(30) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot start" in lines[0] and str(bag) in lines[0], lines
