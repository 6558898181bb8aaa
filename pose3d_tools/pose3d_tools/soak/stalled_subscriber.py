"""A subscriber that never reads: subscribes (reliable, depth 100) and never spins.

Started by the soak as its own process (`python -m pose3d_tools.soak.stalled_subscriber TOPIC...`)
so that its memory, and that of the publishers it stalls, are sampled like any other process.
"""

from __future__ import annotations

import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from pose3d_msgs.msg import SkeletonArray

DEPTH = 100  # what a careless consumer might ask for: 100 full images held by DDS


def main(argv: list[str]) -> int:
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # SIGINT/SIGTERM end it
    node = Node("soak_stalled_subscriber")
    qos = QoSProfile(depth=DEPTH, reliability=ReliabilityPolicy.RELIABLE)
    subs = [
        node.create_subscription(
            SkeletonArray if topic.endswith("skeletons") else Image, topic, lambda _m: None, qos
        )
        for topic in argv
    ]
    print(f"stalled subscriber on {argv} ({len(subs)} subscriptions), never reading", flush=True)
    try:
        while True:
            time.sleep(1.0)  # never spins: DDS keeps at most DEPTH samples per subscription
    except KeyboardInterrupt:
        pass
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
