"""The `ros_graph` fixture: a test's own DDS domain and real node processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import domain_coordinator
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ros_graph

# The Fast DDS profile `make test` and `make demo` load (shared memory for large messages).
SHM_PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_shm.xml"


@pytest.fixture
def shared_memory_for_images(monkeypatch):
    """Run a test's nodes with SHM_PROFILE (unless the caller chose a profile): best-effort
    images are then not lost when the test file is run by plain pytest rather than `make`."""
    if "FASTRTPS_DEFAULT_PROFILES_FILE" not in os.environ:
        monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", str(SHM_PROFILE))


@pytest.fixture(scope="module")
def messi(footage):
    """messi5.jpg (548x342 BGR, one player)."""
    import cv2

    image = cv2.imread(str(footage / "messi5.jpg"))
    assert image is not None
    return image


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
