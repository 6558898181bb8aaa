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


def _subcommands(parser) -> dict[str, object]:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_the_readme_shows_exists():
    """`pose3d X Y` and `pose3d-tools X Y` in the README name real (sub)commands, and every
    `make X` is a Makefile target: the README cannot advertise a command that is gone."""
    import re

    from pose3d_ros.cli import build_parser as runtime_parser
    from pose3d_tools.cli import build_parser as tools_parser

    readme = (REPO / "README.md").read_text()
    parsers = {"pose3d": runtime_parser(), "pose3d-tools": tools_parser()}
    seen = 0
    for prog, first, second in re.findall(r"(pose3d-tools|pose3d) ([a-z]+)(?:[ \\|]+([a-z]+))?",
                                          readme):
        commands = _subcommands(parsers[prog])
        if first not in commands:
            if prog == "pose3d" and first in {"models", "engine", "run"}:
                raise AssertionError(f"README shows `{prog} {first}`, which does not exist")
            continue  # prose such as "pose3d node"
        seen += 1
        nested = _subcommands(commands[first])
        if nested and second:
            assert second in nested, f"README shows `{prog} {first} {second}`: no such action"
    assert seen >= 8
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (REPO / "Makefile").read_text(), re.M))
    for target in set(re.findall(r"`make ([a-z][a-z0-9-]*)", readme)):
        assert target in targets, f"README shows `make {target}`: no such Makefile target"
