"""Process-wide malloc settings for moving large buffers (glibc only).

Every chunk the store sends or receives passes through buffers of 128 KiB to a few MiB
that live for a moment: the bytes of a FUSE write, the batch nats-py hands to the socket,
a read's reply. glibc serves allocations above its mmap threshold (128 KiB at start, raised
only after such a block is freed) with a fresh ``mmap``: every one of them then costs page
faults and zeroing by the kernel, and ``munmap`` again when freed. Measured on the put
path, that made each copy of a chunk about four times slower and uploads 20-30 % slower.

:func:`tune` raises the threshold to ``MMAP_THRESHOLD`` and keeps up to ``TRIM_THRESHOLD``
of freed memory at the top of the heap, so these buffers are recycled by the allocator.
It is idempotent and does nothing where ``mallopt`` is missing (not glibc).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

#: Allocations up to this size come from the heap, not from ``mmap``.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Freed memory kept at the top of the heap before it is given back to the system.
TRIM_THRESHOLD = 64 * 1024 * 1024

_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3

_tuned: bool | None = None


def tune() -> bool:
    """Apply the settings once per process; True if they are in force."""
    global _tuned
    if _tuned is None:
        _tuned = _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        if not _tuned:
            log.debug("mallopt is not available: glibc's default malloc thresholds stay")
    return _tuned


def _mallopt(param: int, value: int) -> bool:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(param, value) == 1
