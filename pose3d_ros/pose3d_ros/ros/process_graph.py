"""Start pose3d_ros nodes as child processes on one DDS domain, and stop them cleanly.

`ros2 launch` is what a robot uses; this is for the places that cannot have it: the tests and
`make demo` on a machine with ROS from PyPI wheels. Children inherit the wheels' bootstrap
environment (LD_LIBRARY_PATH together with its marker), so rclpy imports in them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pose3d_ros.ros.demo_graph import NodeSpec

BIN = Path(sys.executable).parent


def parameter_arg(name: str, value: Any) -> str:
    """`name:=value` as `--ros-args -p` reads it (YAML): strings that YAML would read as
    something else (a camera index "0", "true") are quoted so they stay strings."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value if isinstance(yaml.safe_load(value), str) else json.dumps(value)
    else:
        text = repr(value)
    return f"{name}:={text}"


def spec_ros_args(spec: NodeSpec, params_file: str | Path | None) -> list[str]:
    """The `--ros-args` of a node spec: its params file, then its overrides and remappings."""
    args = ["-r", f"__node:={spec.name}"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    for name, value in spec.parameters.items():
        args += ["-p", parameter_arg(name, value)]
    for source, target in spec.remappings:
        args += ["-r", f"{source}:={target}"]
    return args


class NodeProcess:
    """One node process; its stdout and stderr go to a log file."""

    def __init__(self, name: str, popen: subprocess.Popen, log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT like Ctrl-C; raises if the node does not exit in time."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
                raise RuntimeError(
                    f"{self.name} ignored SIGINT for {timeout} s:\n{self.log()}"
                ) from None
        return self.popen.returncode

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"{self.name} still running after {timeout} s:\n{self.log()}"
            ) from None


class ProcessGraph:
    """A set of node processes sharing one ROS domain, discovery limited to this machine."""

    def __init__(self, domain_id: int, log_dir: Path) -> None:
        self.domain_id = domain_id
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(
            ROS_DOMAIN_ID=str(domain_id),
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            PYTHONUNBUFFERED="1",
            RCUTILS_LOGGING_BUFFERED_STREAM="0",
        )
        self.processes: list[NodeProcess] = []

    def start(self, executable: str, *ros_args: str, args: tuple[str, ...] = ()) -> NodeProcess:
        """Start a console script of this package with `--ros-args ros_args...`."""
        exe = BIN / executable
        if not exe.exists():
            raise FileNotFoundError(f"console script {exe} is not installed (run `make setup`)")
        log = self.log_dir / f"{executable}-{len(self.processes)}.log"
        cmd = [str(exe), *args]
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        with open(log, "wb") as fh:
            popen = subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        proc = NodeProcess(executable, popen, log)
        self.processes.append(proc)
        return proc

    def start_spec(
        self, spec: NodeSpec, params_file: str | Path | None, *extra_ros_args: str
    ) -> NodeProcess:
        """Start a node as its spec describes (the same spec a launch file turns into an action);
        a managed node keeps its `autostart` default and so configures and activates itself."""
        return self.start(spec.executable, *spec_ros_args(spec, params_file), *extra_ros_args)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()}" for p in self.processes)

    def stop_all(self) -> list[str]:
        """Stop the processes still running; returns the problems (empty when all stopped cleanly).

        A process that already exited on its own is its caller's business (it has the code).
        """
        problems = []
        for p in reversed(self.processes):
            if not p.running():
                continue
            try:
                code = p.stop()
                if code != 0:
                    problems.append(f"{p.name} exited with code {code} on SIGINT:\n{p.log()}")
            except RuntimeError as e:
                problems.append(str(e))
        return problems
