"""Real ROS 2 processes on an isolated DDS domain, for tests.

Each RosGraph gets its own ROS_DOMAIN_ID (from domain_coordinator, so parallel test processes do
not collide) and localhost-only discovery. Nodes run as their console scripts in child processes,
exactly as a user starts them; the test talks to them through an rclpy node of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

BIN = Path(sys.executable).parent


class NodeProcess:
    def __init__(self, name: str, popen: subprocess.Popen, log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT like Ctrl-C; the exit code tells whether shutdown was clean."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
                raise AssertionError(f"{self.name} ignored SIGINT for {timeout} s:\n{self.log()}")
        return self.popen.returncode

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout} s:\n{self.log()}") from None


class RosGraph:
    def __init__(self, domain_id: int, workdir: Path) -> None:
        self.domain_id = domain_id
        self.workdir = workdir
        self.env = dict(os.environ)
        self.env.update(
            ROS_DOMAIN_ID=str(domain_id),
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            PYTHONUNBUFFERED="1",
            RCUTILS_LOGGING_BUFFERED_STREAM="0",
        )
        self.processes: list[NodeProcess] = []
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(f"test_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def start(self, executable: str, *ros_args: str, args: tuple[str, ...] = ()) -> NodeProcess:
        """Start a console script with `--ros-args ros_args...`."""
        exe = BIN / executable
        if not exe.exists():
            raise FileNotFoundError(f"console script {exe} is not installed")
        log = self.workdir / f"{executable}-{len(self.processes)}.log"
        cmd = [str(exe), *args]
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        with open(log, "wb") as fh:
            popen = subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        proc = NodeProcess(executable, popen, log)
        self.processes.append(proc)
        return proc

    def spin_until(self, done: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name} ---\n{p.log()}" for p in self.processes)
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
            self.executor.spin_once(timeout_sec=0.05)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        errors = []
        for p in self.processes:
            try:
                p.stop()
            except AssertionError as e:
                errors.append(str(e))
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        if errors:
            raise AssertionError("\n".join(errors))
