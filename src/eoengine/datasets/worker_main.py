"""The start of every local Beam worker process: dies with the driver, keeps stderr quiet.

The DirectRunner's ``multi_processing`` mode starts each worker as its own Python process,
which Beam leaves running when the driver is killed with SIGKILL (nothing tells it), and
which prints Beam's start-up warnings and every failed bundle's traceback straight to the
terminal. The runner in :mod:`eoengine.datasets.pipeline` starts its workers here instead:
the kernel is asked to kill the worker when its parent dies (``PR_SET_PDEATHSIG``); log
records and failures go only to the driver (Beam relays both), whose logging and error
handling decide what is shown; then Beam's own worker main runs. This module imports no
Beam before that, so its import-time warnings are caught too. Only a worker that cannot
start at all prints its traceback.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import traceback

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies (Linux; elsewhere nothing).

    Args:
        parent: Process id of the driver that started this worker.

    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the driver died before the call above took effect
        os._exit(1)


def main() -> None:
    """Worker entry point: ``python -m eoengine.datasets.worker_main DRIVER_PID``."""
    die_with_parent(int(sys.argv[1]))
    logging.getLogger().addHandler(logging.NullHandler())  # so no stderr handler is ever added
    real = os.fdopen(os.dup(2), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # native code too (gRPC's abort messages at tear-down)
    sys.stderr = open(os.devnull, "w")
    try:
        from apache_beam.runners.worker import sdk_worker_main

        sdk_worker_main.main(sys.argv)
    except Exception:  # noqa: BLE001 - any failure to start: its traceback, on the real stderr
        traceback.print_exc(file=real)
        real.flush()
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
