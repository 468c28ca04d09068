"""Finds out whether a CUDA GPU is usable, without importing torch."""

from __future__ import annotations

import ctypes
import functools
import logging

_LOGGER = logging.getLogger(__name__)


@functools.cache
def cuda_device_count() -> int:
    """Number of CUDA devices the driver reports; 0 without a driver or a GPU.

    Asks ``libcuda`` directly (``cuInit`` then ``cuDeviceGetCount``) because onnxruntime-gpu
    lists the CUDA provider as available even on machines without a GPU.
    """
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if libcuda.cuInit(0) != 0 or libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        _LOGGER.info("a CUDA driver is installed but reports no usable device")
        return 0
    return count.value


def wants_cuda(device: str) -> bool:
    """Whether a runtime should try CUDA for ``device`` (``auto``, ``cpu`` or ``cuda``)."""
    return device == "cuda" or (device == "auto" and cuda_device_count() > 0)
