"""Shared fixtures. `ros_graph` gives a test its own DDS domain and real node processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import domain_coordinator
import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[2]
FOOTAGE = REPO / "data" / "footage"


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


@pytest.fixture(scope="session")
def footage() -> Path:
    """Real footage fetched by `make setup` from Debian's opencv-doc package."""
    if not (FOOTAGE / "vtest.avi").exists():
        pytest.fail(f"demo footage missing in {FOOTAGE}: run `make setup`")
    return FOOTAGE
