"""Regenerate (or check) the parameter tables in README.md from the nodes' settings dataclasses.

The README's tables sit between `<!-- params:NAME -->` and `<!-- /params -->` markers; the
tables are rendered from the same dataclasses the nodes declare their parameters from, so the
documentation cannot drift from the code. `--check` exits 1 when the README is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from pose3d_ros.core.parameters import settings_table
from pose3d_ros.ros import settings_class

README = Path(__file__).resolve().parents[1] / "README.md"


def render(text: str) -> str:
    def table(match: re.Match) -> str:
        name = match.group(1)
        return f"<!-- params:{name} -->\n{settings_table(settings_class(name))}\n<!-- /params -->"

    return re.sub(r"<!-- params:(\w+) -->.*?<!-- /params -->", table, text, flags=re.S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    args = parser.parse_args()
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(
                "README.md parameter tables are stale: run scripts/readme_tables.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
