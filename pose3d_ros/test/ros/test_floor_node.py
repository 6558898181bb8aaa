"""The floor constraint through pose3d_node over real DDS (two processes): the static
``pipeline.placement.floor.*`` parameters reach the placement and the skeleton says which
constraint placed the person.

Known answer without ground truth of the photo: messi5 is first placed with the size prior
(the lifter's average body). A floor plane is then built *for a person 10 % larger*: every ray
through the camera centre keeps its direction, so that person is the size-prior skeleton scaled
by 1.1 about the camera centre, and the plane goes below its supporting ankles at the ankle
height of a 10 % taller body (0.039 x stature). With that plane (floor alone, no size prior in
the fit) the node must publish the person 1.1 x as far, ``placement == "floor"``; with the
camera put 10 m above the floor the implied stature is impossible and the node falls back to
the size prior, saying so.
"""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from test_pose3d_node import (
    DELIVERY_S,
    NODE,
    STARTUP_S,
    Peer,
    _image,
)

from pose3d_msgs.msg import Skeleton
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.stages.placement import ANKLE_HEIGHT_FRAC, skeleton_stature

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("shared_memory_for_images")]

SCALE = 1.10
UP = np.array([0.0, -0.96, -0.28])  # a camera pitched down by about 16 deg (unit: 0.96^2+0.28^2)
ANKLES = (3, 6)


def _joints(skeleton) -> np.ndarray:
    return np.array([[k.position.x, k.position.y, k.position.z] for k in skeleton.keypoints])


def _root(skeleton) -> np.ndarray:
    return np.array([skeleton.root.x, skeleton.root.y, skeleton.root.z])


def test_static_floor_parameters_place_messi_on_the_floor(ros_graph, messi):
    # Detector on every frame: the same picture then gives the same 2D and the same lifted pose
    # every time (tracked crops would move the keypoints, and the ankles' height, a little).
    proc = ros_graph.start("pose3d_node", "-p", "pipeline.detect_every:=1")
    peer = Peer(ros_graph)
    client = AsyncParameterClient(ros_graph.node, NODE)
    ros_graph.spin_until(client.services_are_ready, STARTUP_S, "parameter services")
    h, w = messi.shape[:2]
    camera = CameraModel.from_fov(w, h, 60.0)

    def answer(what: str) -> Skeleton:
        msg = peer.expect_answer(lambda: peer.send(_image(messi), camera=camera), what)
        assert len(msg.skeletons) == 1, [s.id for s in msg.skeletons]
        return msg.skeletons[0]

    def set_parameters(**values) -> None:
        params = [Parameter(f"pipeline.placement.floor.{k}", value=v) for k, v in values.items()]
        future = client.set_parameters(params)
        ros_graph.spin_until(future.done, DELIVERY_S, f"set {sorted(values)}")
        for result in future.result().results:
            assert result.successful, result.reason

    prior = answer("a frame placed with the size prior")
    assert prior.placement == Skeleton.PLACEMENT_SIZE_PRIOR
    joints = _joints(prior)
    heights = joints @ UP
    assert int(np.argmin(heights)) in ANKLES, "messi's lowest joint must be an ankle"
    # The placement's supporting joints: ankles within 2 cm (its support margin) of the lowest.
    support = [j for j in ANKLES if heights[j] <= heights.min() + 0.02]
    stature = SCALE * skeleton_stature(joints)  # bone lengths: the root does not matter
    # Plane below the scaled ankles: height(X) = UP @ X + d, zero at ankle height under them.
    distance = ANKLE_HEIGHT_FRAC * stature - SCALE * heights[support].mean()
    assert 0.3 < distance < 5.0, distance  # a plausible camera height for this picture
    set_parameters(
        normal_x=float(UP[0]),
        normal_y=float(UP[1]),
        normal_z=float(UP[2]),
        distance_m=float(distance),
        with_size_prior=False,
        enabled=True,
    )
    floor = answer("a frame placed on the floor")
    assert floor.placement == Skeleton.PLACEMENT_FLOOR, proc.log()
    root_prior, root_floor = _root(prior), _root(floor)
    # 1.1 x as far along the same ray (published as float64; the fits converge to ~1e-6).
    np.testing.assert_allclose(root_floor, SCALE * root_prior, rtol=1e-4)
    # The published body is 10 % larger, and its supporting ankles stand at their height.
    placed = _joints(floor)
    assert skeleton_stature(placed) == pytest.approx(stature, rel=1e-4)
    ankle_height = placed[support] @ UP + distance
    assert ankle_height.mean() == pytest.approx(ANKLE_HEIGHT_FRAC * stature, abs=1e-4)
    # The covariance says the floor fixed the depth: tighter along the ray than the prior's.
    ray = root_floor / np.linalg.norm(root_floor)
    var_floor = ray @ np.reshape(floor.root_covariance, (3, 3)) @ ray
    var_prior = ray @ np.reshape(prior.root_covariance, (3, 3)) @ ray
    assert var_floor < var_prior

    # Camera 10 m above the floor: messi would have to be a giant -> size prior, said in place.
    set_parameters(distance_m=10.0)
    fallback = answer("a frame off the floor")
    assert fallback.placement == Skeleton.PLACEMENT_SIZE_PRIOR
    np.testing.assert_allclose(_root(fallback), root_prior, rtol=1e-6)
    assert proc.running() and "Traceback" not in proc.log()


def test_a_zero_floor_normal_at_start_up_exits_with_code_2(ros_graph):
    proc = ros_graph.start(
        "pose3d_node",
        "-p",
        "pipeline.placement.floor.enabled:=true",
        "-p",
        "pipeline.placement.floor.normal_y:=0.0",
    )
    assert proc.wait(STARTUP_S) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot start" in lines[0], lines
    assert "placement.floor" in lines[0] and "normal" in lines[0], lines
