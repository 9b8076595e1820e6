"""The allocator tuning keeps large tensor buffers on the heap instead of page-faulting them in anew."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import ctypes, json, resource
from eoengine.runtime import tune_allocator
tuned = tune_allocator()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 * 2**20  # a U-Net activation's size on a batch of 256 px tiles

def use_once():
    buf = libc.malloc(size)
    ctypes.memset(buf, 1, size)  # touch every page, as a tensor kernel would
    libc.free(buf)

use_once()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    use_once()
print(json.dumps({"tuned": tuned, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def probe(env: dict[str, str]) -> dict[str, int]:
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env=os.environ | env)
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_large_buffers_are_reused_not_faulted_in_again() -> None:
    tuned = probe({})
    plain = probe({"EOENGINE_MALLOC_TUNING": "0"})
    assert tuned["tuned"] and not plain["tuned"]
    pages = 5 * 64 * 2**20 // 4096
    assert plain["faults"] > 0.9 * pages  # glibc maps and unmaps every 64 MB buffer
    assert tuned["faults"] < 0.1 * pages  # the heap keeps it for the next one
