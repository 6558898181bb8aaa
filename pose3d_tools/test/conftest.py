"""The tools' tests need torch and the tools package: on a robot-like install (runtime only)
they are skipped as a whole, with the reason."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pose3d_ros" / "test"))  # known_poses

_missing = [m for m in ("torch", "pose3d_tools") if importlib.util.find_spec(m) is None]
if _missing:
    collect_ignore_glob = ["test_*.py"]
    print(f"pose3d_tools tests skipped: {', '.join(_missing)} not importable (robot-like install)")
