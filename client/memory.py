"""Large buffers: let the C allocator reuse freed ones instead of mapping fresh pages for each.

Every request of a run moves a few MiB several times: the block read from the file, the request
bytes, the response bytes (and on the server the same in reverse). glibc's malloc serves blocks
above its mmap threshold (128 KiB at start; it adapts upward only in the arena that frees a block,
and gRPC frees in other threads' arenas) with a fresh ``mmap`` each, so every page of every
buffer is zero-filled by the kernel on first touch. Measured on a 256 MiB file through the
client: about 130,000 minor page faults (twice the file's size in fresh pages) and half the
client's CPU time in the kernel. With the threshold at glibc's maximum (32 MiB) and freed memory
kept up to 128 MiB, blocks come from the heap and are reused: about 40,000 faults, half the
system time, and more throughput on both sides of the connection (``make bench``, goal 9).

This changes process-wide allocator settings, so only the command-line programs call it at
start (``client.predict``, ``client.bench``, ``serving.local``); a library never changes them
behind its caller's back. Where the C library is not glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's upper limit on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024  # free memory kept at the heap's top before returning it


def reuse_freed_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; whether they were set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 for a value it refuses; musl has no mallopt at all
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
