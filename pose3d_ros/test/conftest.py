"""Shared fixtures of the runtime's tests (the ROS layer's are in ros/conftest.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # known_poses

FOOTAGE_ENV = "POSE3D_FOOTAGE_DIR"

# The fuzz tests (test_fuzz_*.py): the same examples on every run (derandomize, no example
# database), so CI is reproducible; no per-example deadline (two shared cores make timings
# noisy), hangs are caught by each module's pytest timeout; each test sets its max_examples.
# Without hypothesis (a robot's `colcon test` with only the package.xml test dependencies) the
# fuzz modules are not collected, and the report header says so.
try:
    from hypothesis import HealthCheck, settings
except ImportError:
    collect_ignore_glob = ["test_fuzz_*.py", "ros/test_fuzz_*.py"]
else:
    settings.register_profile(
        "pose3d-fuzz",
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.load_profile("pose3d-fuzz")


def pytest_report_header() -> list[str]:
    if "collect_ignore_glob" in globals():
        return ["fuzz tests (test_fuzz_*.py) not collected: hypothesis is not installed"]
    return []


def footage_dir() -> Path:
    """``$POSE3D_FOOTAGE_DIR``, else ``<checkout>/data/footage`` (fetched by `make setup`)."""
    env = os.environ.get(FOOTAGE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "data" / "footage"


@pytest.fixture(scope="session")
def footage() -> Path:
    """Real footage from Debian's opencv-doc package (vtest.avi, messi5.jpg, basketball*.png)."""
    d = footage_dir()
    if not (d / "vtest.avi").exists():
        pytest.fail(f"footage missing in {d}: run `make setup`, or set {FOOTAGE_ENV} to a folder "
                    "with opencv-doc's vtest.avi, messi5.jpg and basketball1/2.png")
    return d


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The built 2D models and the shipped lifters, verified (`make setup` builds them)."""
    from pose3d_ros.assets import find_model_dir, lifter_path, verify_models

    d = find_model_dir()
    try:
        verify_models(d, ("person_detector", "blazepose_full"))
        for lifter in ("htnet_small", "nanohtnet_t27_causal", "temporal_htnet_t9"):
            lifter_path(lifter, d)  # the shipped exports; raises if missing
    except Exception as e:
        pytest.fail(f"models not built in {d} ({e}): run `make setup`")
    return d
