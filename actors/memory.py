"""Giving freed memory back to the system.

glibc's allocator keeps what a process freed for its next allocations; after a burst (a
backlog of messages for a stalled desk, thousands of desks that connected and left) the
process stays as large as at its peak. `malloc_trim(0)` returns the free pages at the top
of the heap and the wholly free ones inside it. A no-op where there is no glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_libc = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
    _trim.restype = ctypes.c_int
except (OSError, AttributeError):
    _trim = None


M_MMAP_THRESHOLD = -3


def map_large_blocks(threshold: int) -> None:
    """Blocks of `threshold` bytes or more come from pages of their own (mmap), which go
    back to the system the moment they are freed, rather than from the heap, where a block
    freed among live ones stays with the process (glibc's default threshold, 128 KB at
    first, grows with the blocks freed; fixing it keeps it where it is set)."""
    if _libc is not None:
        try:
            _libc.mallopt(M_MMAP_THRESHOLD, threshold)
        except AttributeError:
            pass


def trim_memory() -> bool:
    """Return free heap memory to the system; whether there was any to return."""
    return bool(_trim(0)) if _trim is not None else False


def rss_bytes() -> int:
    """This process's resident set, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096
    except (OSError, ValueError, IndexError):
        return 0
