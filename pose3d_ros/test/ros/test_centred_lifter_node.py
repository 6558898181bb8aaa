"""pose3d_node and the lifter's latency, as a real process over DDS with hand-built lifters
(toy_lifters.py): a causal seq2frame lifter (the shape of HoT's node export) is run and its pose
published; a centred lifter is refused at start-up, as it would describe a frame (T-1)/2 frames
older than the image it is published with: one line naming the fix, exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
from known_poses import SKELETON_H36M17
from test_pose3d_node import STARTUP_S, Peer, _finite, _image
from toy_lifters import centre_echo_lifter, constant_pose_lifter

from pose3d_ros.core.camera import CameraModel

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("shared_memory_for_images")]


def test_centred_lifter_is_refused_at_start_up_with_the_fix(ros_graph, tmp_path):
    lifter = centre_echo_lifter(tmp_path / "centred_t9.onnx", 9)
    proc = ros_graph.start("pose3d_node", "-p", f"pipeline.lifter.model:={lifter}")
    assert proc.wait(STARTUP_S) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "cannot start" in lines[0]
    assert "is a centred lifter (latency 4 frames" in lines[0]
    assert "use a causal lifter" in lines[0] and "`pose3d run`" in lines[0]


def test_causal_seq2frame_lifter_is_run_and_its_pose_published(ros_graph, messi, tmp_path):
    lifter = constant_pose_lifter(tmp_path / "causal_t27_seq2frame.onnx", 27, SKELETON_H36M17)
    proc = ros_graph.start("pose3d_node", "-p", f"pipeline.lifter.model:={lifter}")
    peer = Peer(ros_graph)
    peer.wait_connected()
    h, w = messi.shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)
    answer = peer.expect_answer(lambda: peer.send(_image(messi), camera=camera), "skeletons")
    assert len(answer.skeletons) == 1
    sk = answer.skeletons[0]
    assert sk.placement == "size_prior" and _finite(sk.root)
    root = np.array([sk.root.x, sk.root.y, sk.root.z])
    rel = np.array([[k.position.x, k.position.y, k.position.z] for k in sk.keypoints]) - root
    # The lifter's pose, scaled by placement only: the runtime read the one output row. (At the
    # joints the 2D stage saw: joint refinement may replace the others.)
    seen = np.array([k.valid for k in sk.keypoints])
    assert seen.sum() >= 8
    rel, pose = rel[seen], SKELETON_H36M17[seen]
    scale = float(np.sum(rel * pose) / np.sum(pose**2))
    np.testing.assert_allclose(rel, scale * pose, atol=1e-3)
    assert 0.5 < scale < 2.0
    assert "lifter toy_constant_pose (27 frames, latency 0 frames)" in proc.log()
