"""SHA-256 of files: how built models, engines and optimised graphs are recognised.

(`hashlib.file_digest` would do, but it needs Python 3.11 and ROS 2 Humble robots run 3.10.)
"""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
