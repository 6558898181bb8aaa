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

    def close(self) -> None:
        """Stop the nodes (a node that exits uncleanly fails the test) and the test's rclpy."""
        problems = self.stop_all()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        if problems:
            raise AssertionError("\n".join(problems))


__all__ = ["NodeProcess", "RosGraph"]
