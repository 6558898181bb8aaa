"""Inference backends behind one interface (see base.py)."""

from __future__ import annotations

from pathlib import Path

from pose3d_ros.backends.base import Backend, BackendError, TensorSpec, Timing

BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt", "torch")


def load_backend(model_path: str | Path, kind: str = "auto", **options) -> Backend:
    """Load an exported model with the requested backend."""
    if kind not in BACKEND_CHOICES:
        raise BackendError(f"unknown backend {kind!r}; one of {', '.join(BACKEND_CHOICES)}")
    if kind in ("auto", "onnxruntime"):
        from pose3d_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_path, **options)
    raise BackendError(f"backend {kind!r} is not available in this build yet")


__all__ = ["BACKEND_CHOICES", "Backend", "BackendError", "TensorSpec", "Timing", "load_backend"]
