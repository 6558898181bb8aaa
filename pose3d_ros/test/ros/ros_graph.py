"""Real ROS 2 processes on an isolated DDS domain, for tests.

Each RosGraph gets its own ROS_DOMAIN_ID (from domain_coordinator, so parallel test processes do
not collide) and localhost-only discovery. Nodes run as their console scripts in child processes,
exactly as a user starts them; the test talks to them through an rclpy node of its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from pose3d_ros.ros.process_graph import NodeProcess, ProcessGraph


class RosGraph(ProcessGraph):
    def __init__(self, domain_id: int, workdir: Path) -> None:
        super().__init__(domain_id, workdir)
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(f"test_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._clients: dict = {}

    def spin_until(self, done: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}\n{self.logs()}"
                )
            self.executor.spin_once(timeout_sec=0.05)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def lifecycle_state(self, node: str, timeout: float = 30.0) -> str:
        """The label of a managed node's current state, asked through `<node>/get_state`."""
        client = self._client(GetState, f"{node}/get_state", timeout)
        future = client.call_async(GetState.Request())
        self.spin_until(future.done, timeout, f"{node}/get_state")
        return future.result().current_state.label

    def change_state(self, node: str, transition: str, timeout: float = 120.0) -> bool:
        """Request a transition ('configure', 'activate', ...) through `<node>/change_state`;
        True if the node made it."""
        client = self._client(ChangeState, f"{node}/change_state", timeout)
        request = ChangeState.Request(transition=Transition(label=transition))
        future = client.call_async(request)
        self.spin_until(future.done, timeout, f"{node}/change_state {transition}")
        return future.result().success

    def _client(self, srv_type, name: str, timeout: float):
        key = (srv_type, name)
        if key not in self._clients:
            self._clients[key] = self.node.create_client(srv_type, name)
        client = self._clients[key]
        self.spin_until(client.service_is_ready, timeout, f"the service {name}")
        return client

    def close(self) -> None:
        """Stop the nodes (a node that exits uncleanly fails the test) and the test's rclpy."""
        problems = self.stop_all()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        if problems:
            raise AssertionError("\n".join(problems))


__all__ = ["NodeProcess", "RosGraph"]
