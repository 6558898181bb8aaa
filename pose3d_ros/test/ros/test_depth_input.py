"""pose3d_node's optional `depth` input over real DDS, and its matching of depth to colour.

The DDS test runs the node's console script on its own domain and publishes from the test's
process what an RGB-D driver would: camera_info, the colour image and an aligned depth image
with the same stamp. The scene is messi5.jpg with a flat depth image 15 % beyond where the
body size alone puts the player, so the placed root has to follow the depth; then bad depth
messages (wrong encoding, units, aspect ratio, stale stamps) each give their own warning while
the node keeps answering with monocular placement.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from test_pose3d_node import (  # the node tests' DDS helpers
    WARNING_S,
    Peer,
    _image,
    _warnings,
)

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.ros.depth_sync import DepthInputSettings, DepthSync, depth_from_fields
from pose3d_ros.ros.messages import array_to_image_msg, camera_model_to_msg
from pose3d_ros.stages.depth_fusion import DepthImageError, DepthSettings, depth_image

# --- matching, without DDS ------------------------------------------------------------------


def _flat(value: float, shape=(48, 64)) -> object:
    return depth_image(np.full(shape, value, np.float32), "32FC1")


def test_the_nearest_depth_within_the_slop_is_used():
    sync = DepthSync(DepthInputSettings(slop_s=0.02, buffer=3))
    for k, stamp in enumerate((10.00, 10.033, 10.066)):
        sync.push(stamp, _flat(1.0 + k))
    depth, why = sync.match(10.04, 64, 48)
    assert why == "" and depth.values[0, 0] == 2.0  # 10.033 is 7 ms away, 10.066 26 ms
    depth, why = sync.match(10.10, 64, 48)  # 34 ms after the newest, which is too far
    assert depth is None and "no depth image within slop_s=0.02 s" in why and "stale" in why


def test_the_buffer_is_bounded():
    sync = DepthSync(DepthInputSettings(slop_s=0.01, buffer=2))
    for stamp in (1.0, 2.0, 3.0):
        sync.push(stamp, _flat(stamp))
    depth, why = sync.match(1.0, 64, 48)
    assert depth is None and "nearest 1.000 s away" in why  # 1.0 fell out
    assert sync.match(2.0, 64, 48)[0] is not None


def test_a_frame_waits_up_to_the_slop_for_its_depth():
    """Depth often arrives just after its colour frame: matching waits (at most slop_s) while
    no depth as new as the frame has come, and takes one the moment it arrives."""
    sync = DepthSync(DepthInputSettings(slop_s=0.3))
    sync.push(0.9, _flat(1.0))
    start = time.monotonic()
    depth, why = sync.match(1.0, 64, 48)  # 0.1 s old: usable, but a nearer one may come
    assert why == "" and depth.values[0, 0] == 1.0
    assert time.monotonic() - start >= 0.29
    threading.Timer(0.05, lambda: sync.push(1.0, _flat(2.0))).start()
    start = time.monotonic()
    depth, why = sync.match(1.0, 64, 48)
    assert depth.values[0, 0] == 2.0 and time.monotonic() - start < 0.25
    empty = DepthSync(DepthInputSettings(slop_s=0.0))
    assert empty.match(1.0, 64, 48) == (None, "no depth image received on `depth` yet")


def test_another_aspect_ratio_is_not_matched():
    sync = DepthSync(DepthInputSettings(slop_s=0.0))
    sync.push(1.0, _flat(1.0, (48, 64)))
    assert sync.match(1.0, 128, 96)[0] is not None  # the same view at twice the resolution
    depth, why = sync.match(1.0, 160, 90)
    assert depth is None and "different aspect ratios" in why


def test_depth_message_fields_are_checked():
    mm = np.full((4, 6), 2500, np.uint16)
    depth = depth_from_fields(4, 6, "16UC1", 12, mm.tobytes())
    assert depth.metres(slice(0, 1), slice(0, 1))[0, 0] == pytest.approx(2.5)
    big_endian = mm.astype(">u2").tobytes()
    assert depth_from_fields(4, 6, "16UC1", 12, big_endian, True).values[0, 0] == 2500
    with pytest.raises(DepthImageError, match="depth encoding 'bgr8' is not supported"):
        depth_from_fields(4, 6, "bgr8", 18, bytes(72))
    with pytest.raises(DepthImageError, match="look like metres"):
        depth_from_fields(4, 6, "16UC1", 12, np.full((4, 6), 3, np.uint16).tobytes())
    with pytest.raises(ValueError, match="too short"):
        depth_from_fields(4, 6, "32FC1", 24, bytes(10))


# --- through pose3d_node over DDS -------------------------------------------------------------


@pytest.mark.ros
@pytest.mark.usefixtures("shared_memory_for_images")
def test_depth_topic_places_the_player_and_bad_depth_is_survived(ros_graph, messi):
    proc = ros_graph.start(
        "pose3d_node", "-p", "depth_input.enabled:=true", "-p", "depth_input.slop_s:=0.05"
    )
    peer = Peer(ros_graph)
    depth_pub = ros_graph.node.create_publisher(Image, "depth", QoSProfile(depth=10))
    peer.wait_connected()
    ros_graph.spin_until(
        lambda: depth_pub.get_subscription_count() > 0, WARNING_S, "the `depth` subscription"
    )
    h, w = messi.shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)
    colour = _image(messi)

    def send(depth: Image | None, lag_s: float = 0.0):
        """camera_info, depth (stamp lag_s earlier) and colour, as an RGB-D driver sends."""
        header = peer.header()
        if depth is not None:
            t = header.stamp.sec + header.stamp.nanosec * 1e-9 - lag_s
            depth.header = Header(frame_id=header.frame_id)
            depth.header.stamp.sec, depth.header.stamp.nanosec = int(t), int(t % 1 * 1e9)
            depth_pub.publish(depth)
        peer.info_pub.publish(camera_model_to_msg(camera, header))
        colour.header = header
        peer.image_pub.publish(colour)
        return header

    def root_z(depth: Image | None, what: str, lag_s: float = 0.0) -> float:
        answer = peer.expect_answer(lambda: send(depth, lag_s), what)
        assert len(answer.skeletons) == 1, [s.id for s in answer.skeletons]
        return answer.skeletons[0].root.z

    def warned(text: str, depth: Image, lag_s: float = 0.0) -> None:
        """Send until the node warns `text`; the frames are still answered (monocularly)."""
        before = _warnings(proc, text)
        peer.send_until(
            lambda: send(depth, lag_s), lambda: _warnings(proc, text) > before, text, WARNING_S
        )
        assert proc.running(), proc.log()
        peer.expect_answer(lambda: send(None), f"an answer after {text!r}")

    # No depth yet: monocular placement, and the node says why.
    mono_z = root_z(None, "a frame without depth")
    assert _warnings(proc, "no depth image received on `depth` yet") >= 1
    plane_m = 1.15 * mono_z
    expected = plane_m + DepthSettings().surface_offset_m
    assert abs(mono_z - expected) > 0.25

    # Aligned 32FC1 metres: the root moves to the depth (flat scene: every torso joint's
    # surface at plane_m; the lifted torso's own depth spreads the joints by up to 0.15 m).
    metres = array_to_image_msg(np.full((h, w), plane_m, np.float32), "32FC1", Header())
    z = root_z(metres, "a frame with 32FC1 depth")
    assert abs(z - expected) < 0.15, (z, expected, mono_z)
    # 16UC1 millimetres at half the resolution (same field of view): the same place.
    half = np.full((h // 2, w // 2), round(plane_m * 1000), np.uint16)
    z16 = root_z(array_to_image_msg(half, "16UC1", Header()), "a frame with 16UC1 depth")
    # (Not identical: later frames' 2D comes from tracked crops, a few pixels from the first.)
    assert abs(z16 - z) < 0.05, (z16, z)

    # Bad depth: a specific warning each, the node keeps running and answering.
    warned(
        "cannot use depth image: depth encoding 'bgr8' is not supported",
        _image(messi),
    )
    metres_as_mm = np.full((h, w), round(plane_m), np.uint16)
    warned(
        "cannot use depth image: 16UC1 depth values look like metres",
        array_to_image_msg(metres_as_mm, "16UC1", Header()),
    )
    wide = np.full((h, 2 * w), plane_m, np.float32)
    warned("different aspect ratios", array_to_image_msg(wide, "32FC1", Header()))
    warned("no depth image within slop_s=0.05 s", metres, lag_s=1.0)

    # And depth still works afterwards; a wider slop set at run time accepts the lagging depth.
    assert abs(root_z(metres, "a frame with depth again") - expected) < 0.15
    client = AsyncParameterClient(ros_graph.node, "pose3d")
    future = client.set_parameters([Parameter("depth_input.slop_s", value=1.0)])
    ros_graph.spin_until(future.done, WARNING_S, "set depth_input.slop_s")
    assert future.result().results[0].successful, future.result().results[0].reason
    ros_graph.spin_for(1.5)  # the depth sent so far is now older than any slop allows
    assert abs(root_z(metres, "a frame with 0.8 s old depth", lag_s=0.8) - expected) < 0.15

    # /diagnostics counts what happened to the depth stream.
    status = peer.status_after(time.monotonic(), lambda s: True, "diagnostics")
    assert int(status["depth_refused"]) >= 2  # the bgr8 and the metres-as-16UC1 messages
    assert int(status["depth_matched"]) >= 4
    assert int(status["depth_unmatched"]) >= 3  # none yet, other aspect ratio, stale
    assert "Traceback" not in proc.log()
