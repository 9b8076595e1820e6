"""Beam from the user's side: a worker's bad input is one line, workers die with the build, Beam keeps quiet.

Every build here runs as a real ``eoengine`` process with the DirectRunner's worker
processes (``multi_processing``), as users run it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_cli, save_config, tiny_config, truncated_stack

BEAM_NOISE = ("apitools not found", "Discarding unparseable args", "No semi_persistent_directory",
              "Logging handler created", "Worker: severity", "Traceback")


def _config(tmp: Path, **overrides: object) -> Path:
    return save_config(tmp, tiny_config(tmp, **{"dataset.running_mode": "multi_processing",
                                                "dataset.num_workers": 2, **overrides}))


def _build(config: Path, output: int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "eoengine", "dataset", "build", str(config)],
                            stdout=output, stderr=output, text=True, cwd=REPO)


def _datasets_left(tmp: Path) -> list[str]:
    folder = tmp / "out" / "datasets"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_validate_reads_a_sample_of_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = [{"id": "s", "stack": str(truncated_stack(tmp_path)), "stack_indexes": [1, 2, 3, 4]}]
    code, _, err = run_cli(["validate", str(_config(tmp_path, **{"imagery.scenes": scene}))], capsys)
    assert code == 2 and "cannot read band(s) blue, green, red, nir from" in err and "truncated.tif" in err
    assert "IReadBlock failed" in err and "corrupt or truncated" in err


def test_a_worker_s_bad_input_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    scene = [{"id": "s", "stack": str(truncated_stack(tmp_path)), "stack_indexes": [1, 2, 3, 4]}]
    proc = _build(_config(tmp_path, **{"imagery.scenes": scene}))
    _, err = proc.communicate(timeout=300)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, err
    assert "cannot read band(s) blue, green, red, nir from" in errors[0] and "corrupt or truncated" in errors[0]
    assert not any(noise in err for noise in BEAM_NOISE), err
    assert _datasets_left(tmp_path) == []


def test_a_worker_s_bad_input_in_process_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = [{"id": "s", "stack": str(truncated_stack(tmp_path)), "stack_indexes": [1, 2, 3, 4]}]
    config = save_config(tmp_path, tiny_config(tmp_path, **{"imagery.scenes": scene}))  # in_memory runner
    code, _, err = run_cli(["dataset", "build", str(config)], capsys)
    assert code == 2 and "cannot read band(s)" in err and "eoengine-error" not in err
    assert _datasets_left(tmp_path) == []


def test_a_build_prints_none_of_beam_s_chatter(tmp_path: Path) -> None:
    proc = _build(_config(tmp_path))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "dataset built" in out, err
    found = [noise for noise in BEAM_NOISE if noise in err]
    assert found == [], err


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_build(tmp_path: Path) -> None:
    proc = _build(_config(tmp_path), subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        workers = {p for p in _descendants(proc.pid) if b"worker" in Path(f"/proc/{p}/cmdline").read_bytes()}
        time.sleep(0.1)
    assert len(workers) >= 2, "the build started no worker processes"
    time.sleep(1)  # the workers are running bundles
    everything = _descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(10)
    survivors = [p for p in everything if _alive(p)]
    for p in survivors:  # do not leave them to the next test
        os.kill(p, signal.SIGKILL)
    assert survivors == []


def test_worker_main_checks_its_parent() -> None:
    """A worker whose driver is already gone (the race PR_SET_PDEATHSIG cannot cover) exits at once."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = subprocess.run([sys.executable, "-m", "eoengine.datasets.worker_main", str(gone.pid)],
                         capture_output=True, timeout=60)
    assert run.returncode == 1 and run.stderr == b""
