"""Point the rosidl Python-generator CMake exports of the ROS wheels at this venv.

The `ros-jazzy-*` message wheels were built against /opt/python/cp311-cp311; their exported
`*rosidl_generator_pyExport.cmake` files still name that interpreter's include directories, and
CMake refuses to configure an interface package until they name this venv's. Idempotent.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy


def main() -> int:
    prefix = Path(sys.prefix)
    py_include = sysconfig.get_paths()["include"]
    np_include = numpy.get_include()
    changed = 0
    for path in (prefix / "share").glob("*/cmake/*rosidl_generator_pyExport*.cmake"):
        text = path.read_text()
        new = re.sub(r"/opt/python/cp311-cp311/include/python3\.11", py_include, text)
        new = re.sub(r"[^\";]*/numpy/(?:_core|core)/include", np_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    print(f"fix_rosidl_exports: {changed} file(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
