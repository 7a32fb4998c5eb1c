"""Runtime tuning of the process for training: glibc's memory thresholds.

A CPU training step allocates and frees the same activation buffers every time; with glibc's
default thresholds each of them is a fresh mmap and page faults (see :func:`keep_freed_memory`).
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["MALLOC_THRESHOLD", "keep_freed_memory"]

# glibc's thresholds (bytes) above which freed memory goes back to the OS; see keep_freed_memory.
MALLOC_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
_malloc_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks of up to MALLOC_THRESHOLD (1 GiB) in the heap for reuse.

    By default glibc serves every block above 32 MiB with a fresh mmap and returns it at free, and
    trims the heap top above 128 KiB, so a CPU training step, which allocates and frees the same
    activation buffers every time, pays page faults for all of them: All-CNN-96 at batch 128 and a
    quarter of the filters took 0.97 s per step, of which 0.77 s system time (340,000 minor page
    faults per step); with the thresholds raised, 0.48 s. The price: up to 1 GiB of freed memory
    stays with the process. Called by :func:`fit` (once per process); a no-op that returns False
    off glibc, or when the environment sets ``INFODROP_MALLOC=default``.
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if os.environ.get("INFODROP_MALLOC", "") == "default" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Both: in that measurement the mmap threshold alone gave 0.68 s per step, the trim threshold
    # alone 1.43 s (slower than glibc's defaults).
    _malloc_tuned = bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, MALLOC_THRESHOLD))
    return _malloc_tuned
