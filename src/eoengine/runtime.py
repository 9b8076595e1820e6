"""Process-level settings: glibc's allocator thresholds, and whether custom code is imported.

glibc serves allocations above its mmap threshold (128 kB at start, raised dynamically only
up to 32 MB) with fresh ``mmap`` pages and returns them on free. A U-Net's activations on a
batch of 256² tiles are 30-70 MB each, so every forward pass page-faults hundreds of MB of
zeroed memory in again. Raising the threshold to 256 MB (and the trim threshold with it)
keeps those buffers on the heap for reuse: the forward pass ran about 1.5x faster on this
project's 2-core benchmark machine (``benchmarks/RESULTS.md``). Peak memory is unchanged;
freed memory is handed back to the system less eagerly.

Set ``EOENGINE_MALLOC_TUNING=0`` to leave the allocator alone. Other C libraries (musl,
macOS) are left as they are.

``EOENGINE_CUSTOM_CODE=0`` refuses custom code by dotted path (a config's own models and
losses): the team server and its workers set it unless started with ``--allow-custom-code``.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024 * 1024
_tuned: bool | None = None
CUSTOM_CODE_ENV = "EOENGINE_CUSTOM_CODE"
"""``0`` in a process's environment refuses custom code by dotted path; unset or ``1``, it is imported."""


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds once per process; whether they are raised."""
    global _tuned
    if _tuned is not None:
        return _tuned
    if os.environ.get("EOENGINE_MALLOC_TUNING", "1") == "0":
        _tuned = False
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _tuned = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, 2 * mmap_threshold))
    except (OSError, AttributeError):  # not glibc
        _tuned = False
    return _tuned
