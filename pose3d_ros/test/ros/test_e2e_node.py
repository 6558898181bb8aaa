"""pose3d_node with ``pipeline.estimator: e2e`` as a real process over DDS, on a hand-built E2E
model (test/e2e_models.py) that answers one fixed pose in crop axes: the published skeleton is
that pose, turned only by the angle of the person's crop, placed in front of the camera; a model
off the E2E contract stops the node at start-up with one line and exit code 2."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from e2e_models import constant_pose_model
from known_poses import SKELETON_H36M17
from test_e2e_pipeline import turn_about_optical_axis
from test_pose3d_node import STARTUP_S, Peer, _finite, _image

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.skeletons import H36M17

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("shared_memory_for_images")]


def test_pose3d_node_publishes_the_image_models_pose(ros_graph, messi, tmp_path):
    model = constant_pose_model(tmp_path / "e2e_node_test.onnx", SKELETON_H36M17)
    proc = ros_graph.start(
        "pose3d_node", "-p", "pipeline.estimator:=e2e", "-p", f"pipeline.e2e.model:={model}"
    )
    peer = Peer(ros_graph)
    peer.wait_connected()
    h, w = messi.shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)
    answer = peer.expect_answer(lambda: peer.send(_image(messi), camera=camera), "skeletons")
    assert len(answer.skeletons) == 1, [s.id for s in answer.skeletons]
    sk = answer.skeletons[0]
    assert sk.joint_set == "h36m17" and [k.name for k in sk.keypoints] == list(H36M17.joints)
    assert sk.placement == "size_prior" and _finite(sk.root) and sk.root.z > 0.5
    root = np.array([sk.root.x, sk.root.y, sk.root.z])
    rel = np.array([[k.position.x, k.position.y, k.position.z] for k in sk.keypoints]) - root
    valid = np.array([k.valid for k in sk.keypoints])
    angle = turn_about_optical_axis(rel, valid)  # the model's pose, turned about the z axis only
    assert abs(math.degrees(angle)) < 30, math.degrees(angle)  # the player leans, upright crop
    # valid and confidence are the 2D stage's (the model's own confidence is not in the message)
    assert any(k.valid for k in sk.keypoints)
    assert all((k.confidence > 0) == k.valid for k in sk.keypoints)
    status = peer.status_after(time.monotonic(), lambda s: True, "diagnostics")
    assert "e2e e2e_constant_test" in status["backend"] and "lifter" not in status["backend"]
    assert int(status["frames_failed"]) == 0
    assert "Traceback" not in proc.log() and "[ERROR]" not in proc.log()


def test_an_off_contract_e2e_model_stops_the_node_with_code_2(ros_graph, tmp_path):
    model = constant_pose_model(
        tmp_path / "bgr_model.onnx", SKELETON_H36M17, metadata={"mean": "0.406,0.456,0.485"}
    )
    proc = ros_graph.start(
        "pose3d_node", "-p", "pipeline.estimator:=e2e", "-p", f"pipeline.e2e.model:={model}"
    )
    assert proc.wait(STARTUP_S) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot start" in lines[0], lines
    assert str(model) in lines[0] and "metadata mean is '0.406,0.456,0.485'" in lines[0], lines
