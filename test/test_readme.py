"""The README's promises that code can check: parameter tables, commands, CI entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_parameter_tables_match_the_code():
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "readme_tables.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_every_node_has_a_table():
    from pose3d_ros.ros import NODE_SETTINGS

    readme = (REPO / "README.md").read_text()
    for executable in NODE_SETTINGS:
        assert f"<!-- params:{executable} -->" in readme, executable


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    commands = [
        line.strip() for line in ci.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert commands[-1] == "make test"
    assert "make test" in (REPO / "README.md").read_text()
    assert "make demo" in (REPO / "README.md").read_text()
