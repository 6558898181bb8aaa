"""CUDA device memory, a stream and device properties for the TensorRT backend, through
cuda-python's runtime bindings only (``cuda.bindings.runtime``, older ``cuda.cudart``).

    cuda = CudaRuntime(device=0)          # BackendError naming cuda-python when it is missing
    ptr = cuda.malloc(nbytes); cuda.htod(ptr, host); ...; cuda.dtoh(host, ptr); cuda.sync()

The runtime never imports torch, so there is no torch fallback: a robot without cuda-python
gets a one-line error saying how to install it. Nothing here touches CUDA at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose3d_ros.backends.base import BackendError
from pose3d_ros.backends.tensorrt.probe import NO_CUDA_PYTHON_HINT


@dataclass(frozen=True)
class GpuInfo:
    """Properties of one CUDA device (memory in MiB)."""

    index: int
    name: str
    compute_capability: str  # "8.7" (Orin), "8.6" (RTX 30xx), ...
    sm_count: int
    memory_mb: int

    @property
    def key_name(self) -> str:
        """GPU name as used in the engine key: Orin Nano and AGX Orin both call themselves
        'Orin' (compute capability 8.7) but differ in SMs, so the SM count is part of it."""
        return f"{self.name} ({self.sm_count} SMs)"


def import_cudart():
    """cuda-python's runtime bindings module, or BackendError with the install hint."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as e:
            raise BackendError(
                f"backend 'tensorrt' needs cuda-python for its device buffers ({e}); "
                f"{NO_CUDA_PYTHON_HINT}"
            ) from e
    return cudart


class CudaRuntime:
    """Device buffers (raw pointers as ints), host<->device copies and one stream."""

    api = "cuda-python"

    def __init__(self, device: int = 0, cudart=None) -> None:
        self.rt = cudart if cudart is not None else import_cudart()
        self.device = device
        count = self._check(self.rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if device >= count:
            raise BackendError(f"CUDA device {device} requested, {count} present")
        self._check(self.rt.cudaSetDevice(device), "cudaSetDevice")
        self.stream = self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def _check(self, result, what: str):
        """cuda-python returns (error, *values): raise on error, return the value(s)."""
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != int(self.rt.cudaError_t.cudaSuccess):
            _, msg = self.rt.cudaGetErrorString(err)
            raise BackendError(
                f"CUDA {what} failed: {msg.decode() if isinstance(msg, bytes) else msg}"
            )
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    def info(self) -> GpuInfo:
        p = self._check(self.rt.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        name = p.name.decode(errors="replace") if isinstance(p.name, bytes) else str(p.name)
        return GpuInfo(
            self.device,
            name.strip("\x00").strip(),
            f"{p.major}.{p.minor}",
            int(p.multiProcessorCount),
            int(p.totalGlobalMem) >> 20,
        )

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self.rt.cudaFree(ptr)

    def htod(self, ptr: int, host: np.ndarray) -> None:
        """Queue a copy of the C-contiguous ``host`` array to device memory at ``ptr``."""
        self._check(
            self.rt.cudaMemcpyAsync(
                ptr,
                host.ctypes.data,
                host.nbytes,
                self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                self.stream,
            ),
            "cudaMemcpyAsync H2D",
        )

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        """Queue a copy of ``host.nbytes`` bytes at ``ptr`` into ``host`` (valid after sync)."""
        self._check(
            self.rt.cudaMemcpyAsync(
                host.ctypes.data,
                ptr,
                host.nbytes,
                self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                self.stream,
            ),
            "cudaMemcpyAsync D2H",
        )

    def sync(self) -> None:
        self._check(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def close(self) -> None:
        self.rt.cudaStreamDestroy(self.stream)
