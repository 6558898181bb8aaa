"""Record topics to a rosbag2 (MCAP) directory that ROS tools and Foxglove open.

rosbag2_py is not installable from PyPI, so the bag is written with `rosbags`: raw CDR bytes
straight from rclpy (no decode/re-encode), with type definitions registered for our own
pose3d_msgs so readers can decode them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

# Message packages the Jazzy typestore lacks: ours, and hri_msgs (REP-155, built into the venv).
OWN_PACKAGES = ("pose3d_msgs", "hri_msgs")


def ros_type_name(msg_type: type) -> str:
    """ "pkg/msg/Name" of a generated message class (its module is pkg.msg._name)."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def _share_dirs() -> list[Path]:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [Path(p) / "share" for p in [*prefixes, sys.prefix]]


def project_typestore():
    """The Jazzy typestore plus OWN_PACKAGES, read from the installed .msg files."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for package in OWN_PACKAGES:
        for share in _share_dirs():
            msg_dir = share / package / "msg"
            if msg_dir.is_dir():
                for path in sorted(msg_dir.glob("*.msg")):
                    types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
                break
        else:
            raise FileNotFoundError(
                f"cannot find the .msg files of {package} under {_share_dirs()}"
            )
    store.register(types)
    return store


class BagRecorder:
    """Subscribes to topics (raw) and writes every message with its receive time; `written`
    topics are not subscribed: the caller writes their messages with `write` (e.g. images it
    compressed itself)."""

    def __init__(
        self,
        node: Node,
        path: str | Path,
        topics: dict[str, type],
        written: dict[str, type] | None = None,
    ) -> None:
        self.path = Path(path)
        self._store = project_typestore()
        self._writer = Writer(self.path, version=8, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._clock = node.get_clock()
        self.counts: dict[str, int] = {}
        self._subs = []
        for topic, msg_type in topics.items():
            name = ros_type_name(msg_type)
            conn = self._writer.add_connection(topic, name, typestore=self._store)
            self.counts[topic] = 0
            self._subs.append(
                node.create_subscription(
                    msg_type, topic, self._callback(topic, conn), QoSProfile(depth=100), raw=True
                )
            )
        self._written = {}
        for topic, msg_type in (written or {}).items():
            self._written[topic] = self._writer.add_connection(
                topic, ros_type_name(msg_type), typestore=self._store
            )
            self.counts[topic] = 0

    def _callback(self, topic: str, conn):
        def write(raw: bytes) -> None:
            self._writer.write(conn, self._clock.now().nanoseconds, raw)
            self.counts[topic] += 1

        return write

    def write(self, topic: str, msg: Any) -> None:
        """Write one message of a `written` topic, stamped with the node's clock now (like the
        subscribed topics: the bag's time is the time of recording)."""
        raw = serialize_message(msg)
        self._writer.write(self._written[topic], self._clock.now().nanoseconds, raw)
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()
