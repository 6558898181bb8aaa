"""The TensorRT backend, split by job: probe (can it run here?), memory (cuda-python device
buffers), build (profiles, INT8 calibration, the builder, layer summary), cache (engine keys,
sidecars, reuse-or-rebuild) and backend (TensorRTBackend and its settings).

Importing this package imports nothing heavy: tensorrt and CUDA are loaded only when a backend
is created.
"""
