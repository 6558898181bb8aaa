"""The `ros_graph` fixture: a test's own DDS domain and real node processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import domain_coordinator
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ros_graph


@pytest.fixture
def ros_graph(tmp_path):
    from ros_graph import RosGraph

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    with domain_coordinator.domain_id() as domain_id:
        graph = RosGraph(domain_id, tmp_path)
        try:
            yield graph
        finally:
            graph.close()
