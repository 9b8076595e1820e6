"""After a failed pipeline, Beam's worker-handler thread must not print a traceback after the one error line."""

from __future__ import annotations

import threading

import pytest

from eoengine.cli import main as cli


def _raise_in(name: str) -> None:
    def boom() -> None:
        raise RuntimeError("Worker subprocess exited with return code -6")

    t = threading.Thread(target=boom, name=name)
    t.start()
    t.join()


def test_beam_worker_thread_reports_are_dropped_others_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # restored after the test
    reported: list[str] = []
    monkeypatch.setattr(cli, "_default_thread_hook", lambda args: reported.append(args.thread.name))
    cli._setup_logging()
    _raise_in("run_worker")  # Beam's local job service thread, once the driver has raised the real error
    _raise_in("some-other-thread")
    assert reported == ["some-other-thread"]
