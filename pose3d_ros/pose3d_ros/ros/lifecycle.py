"""Start, spin and stop a node cleanly: Ctrl-C, SIGTERM and end of input all exit with code 0."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from pose3d_ros.assets import AssetError
from pose3d_ros.backends.base import BackendError
from pose3d_ros.core.parameters import SettingError


class NodeFinished(Exception):  # noqa: N818 - a normal end, not an error
    """Raised inside a callback when the node has done its job (e.g. end of a video)."""


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Run a node until shutdown; returns the process exit code.

    Bad parameters at start-up are reported in one line (exit code 2) instead of a traceback.
    """
    rclpy.init(args=args if args is not None else sys.argv)
    # SIGTERM (systemd, launch) is treated like Ctrl-C so the node is destroyed cleanly.
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = None
    code = 0
    try:
        try:
            node = factory()
        except (
            SettingError, AssetError, BackendError, ParameterException, FileNotFoundError,
            ValueError,
        ) as e:
            # A configuration problem: one clear line, not a traceback.
            print(f"[{getattr(factory, '__name__', 'node')}] cannot start: {e}", file=sys.stderr)
            return 2
        rclpy.spin(node)
    except (NodeFinished, KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        # Ctrl-C shut the context down in the middle of an executor iteration (its
        # KeyboardInterrupt can land in a Future's __del__, where Python ignores it, and spin
        # then meets the dead context): a normal end. Any other RCL error is real.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code
