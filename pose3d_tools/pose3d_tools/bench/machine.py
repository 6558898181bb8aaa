"""What every benchmark report says about the machine it ran on (numbers from a shared 2-core
CPU only mean something beside its load)."""

from __future__ import annotations

import os
import platform
import time
from typing import Any


def machine_facts(load_start: tuple[float, float, float], started: float | None = None,
                  **extra: Any) -> dict[str, Any]:
    """CPU count, platform, Python and ONNX Runtime versions, the load average (1/5/15 min) at
    the start (``load_start``, from ``os.getloadavg()``) and now, the run's seconds since
    ``started`` (``time.time()``) when given, and any ``extra`` fields."""
    import onnxruntime

    facts: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    if started is not None:
        facts["seconds"] = round(time.time() - started, 1)
    return {**facts, **extra}
