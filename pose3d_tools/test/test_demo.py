"""`pose3d-tools demo` on a few frames of vtest.avi: the real graph, then its bag read back.

The bag must hold the input images as JPEG (`/image/compressed`, CompressedImage with the
image's own header) next to the skeletons, so Foxglove can draw one over the other.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from pose3d_ros.ros.demo_graph import (
    CAMERA_INFO_TOPIC,
    COMPRESSED_IMAGE_TOPIC,
    MARKERS_TOPIC,
    SKELETONS_TOPIC,
)
from pose3d_ros.ros.rep155 import TRACKED_TOPIC
from pose3d_tools import FOOTAGE_DIR
from pose3d_tools.bag_recorder import project_typestore
from pose3d_tools.demo import run_demo

pytestmark = pytest.mark.ros

FRAMES = 6
# JPEG at the demo's quality on natural footage: mean absolute error of a few grey levels.
MAX_MEAN_JPEG_ERROR = 4.0


def test_demo_bag_holds_the_input_as_jpeg_beside_the_skeletons(tmp_path):
    video = FOOTAGE_DIR / "vtest.avi"
    if not video.exists():
        pytest.fail(f"{video} missing: run `make setup`")
    args = argparse.Namespace(
        input=str(video), out=str(tmp_path), fov=60.0, rate=4.0, max_frames=FRAMES, video_fps=10.0
    )
    summary = run_demo(args)
    assert summary["frames_in"] == FRAMES, summary
    # vtest's assumed floor reaches pose3d_node: people walking on the square stand on it.
    assert summary["floor"].startswith("ASSUMED plane"), summary
    assert summary["placements"].get("floor", 0) > 0, summary
    assert json.loads((tmp_path / "summary.json").read_text()) == summary

    with AnyReader([tmp_path / "bag"], default_typestore=project_typestore()) as reader:
        by_topic: dict[str, list] = {}
        for conn, _, raw in reader.messages():
            by_topic.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
        types = {c.topic: c.msgtype for c in reader.connections}
    assert types[COMPRESSED_IMAGE_TOPIC] == "sensor_msgs/msg/CompressedImage"
    images = by_topic[COMPRESSED_IMAGE_TOPIC]
    assert len(images) == FRAMES
    written = {topic: n for topic, n in summary["bag_messages"].items() if n}
    assert written == {topic: len(msgs) for topic, msgs in by_topic.items()}
    assert by_topic[SKELETONS_TOPIC] and MARKERS_TOPIC in types

    # Each image carries its camera's header: the same stamps as the recorded camera_info.
    def stamp(msg) -> tuple[int, int]:
        return (msg.header.stamp.sec, msg.header.stamp.nanosec)

    info_stamps = {stamp(m) for m in by_topic[CAMERA_INFO_TOPIC]}
    assert {stamp(m) for m in images} <= info_stamps
    assert all(m.header.frame_id == by_topic[CAMERA_INFO_TOPIC][0].header.frame_id for m in images)
    # Skeletons refer to recorded images (their header is the input image's).
    assert {stamp(m) for m in by_topic[SKELETONS_TOPIC]} <= {stamp(m) for m in images}

    # REP-155: every listed body has its body_<id> frame at its skeleton's mid-hip point.
    skeletons = {stamp(m): m for m in by_topic[SKELETONS_TOPIC]}
    bodies = {
        (stamp(t), t.child_frame_id): t
        for m in by_topic.get("/tf", [])
        for t in m.transforms
        if t.child_frame_id.startswith("body_")
    }
    checked = 0
    for tracked in by_topic[TRACKED_TOPIC]:
        for body_id in tracked.ids:
            frame = bodies[(stamp(tracked), f"body_{body_id}")]
            sk = next(s for s in skeletons[stamp(tracked)].skeletons if str(s.id) == body_id)
            joints = {k.name: k.position for k in sk.keypoints}
            for axis in "xyz":
                mid_hip = (getattr(joints["l_hip"], axis) + getattr(joints["r_hip"], axis)) / 2
                assert getattr(frame.transform.translation, axis) == pytest.approx(mid_hip)
            checked += 1
    assert checked > 0

    # The pixels are the clip's, frame by frame, up to JPEG loss.
    capture = cv2.VideoCapture(str(video))
    for msg in images:
        ok, expected = capture.read()
        assert ok
        assert "jpeg" in msg.format
        decoded = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.shape == expected.shape
        error = np.abs(decoded.astype(np.int16) - expected.astype(np.int16)).mean()
        assert error < MAX_MEAN_JPEG_ERROR, error
    capture.release()
