"""A model raising on one frame in a running pose3d_node (backends/fault_injection.py, enabled
only by POSE3D_TEST_FAULT_INJECTION): the node logs it once, counts it in /diagnostics
frames_failed, and keeps answering."""

from __future__ import annotations

import time

import pytest
from test_pose3d_node import (
    WARNING_S,
    Peer,
    _image,
)

from pose3d_ros.backends.fault_injection import ENV_VAR
from pose3d_ros.core.camera import CameraModel

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("shared_memory_for_images")]

FAIL_AT = 3  # the lifter's third inference raises


def test_model_raising_on_one_frame(ros_graph, messi):
    ros_graph.env[ENV_VAR] = f"htnet:{FAIL_AT}"
    proc = ros_graph.start("pose3d_node")
    peer = Peer(ros_graph)
    peer.wait_connected()
    h, w = messi.shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)

    def failed() -> int:
        return max((int(st["frames_failed"]) for _, st in peer.statuses), default=0)

    def send():
        return peer.send(_image(messi), camera=camera)

    for _ in range(FAIL_AT - 1):  # the frames before the fault are answered
        peer.expect_answer(send, "a frame before the injected fault")
    peer.send_until(send, lambda: failed() >= 1, "the injected failure", WARNING_S * 2)
    assert proc.running(), proc.log()
    after = peer.expect_answer(send, "a frame after the injected fault")
    assert len(after.skeletons) >= 1
    status = peer.status_after(time.monotonic(), lambda s: True, "diagnostics")
    assert int(status["frames_failed"]) == 1  # one call raised, later ones pass
    assert int(status["frames_processed"]) >= FAIL_AT
    errors = [line for line in proc.log().splitlines() if "[ERROR]" in line]
    assert len(errors) == 1, errors
    assert "InjectedFaultError" in errors[0] and f"call {FAIL_AT}" in errors[0]
    assert "Traceback" not in proc.log()
