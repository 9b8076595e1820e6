"""Issue 10: runs killed outright are marked KILLED, the resume refusal says what works, bad names make no run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import one_problem, run_cli, save_config, tiny_config
from mlflow.tracking import MlflowClient

from eoengine.tracking.lifecycle import mark_interrupted, running


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'out' / 'mlflow.db').resolve()}"


def _runs(tmp_path: Path) -> list:  # type: ignore[type-arg]
    client = MlflowClient(tracking_uri=_uri(tmp_path))
    exp = client.get_experiment_by_name("tiny")
    return [] if exp is None else client.search_runs([exp.experiment_id])


def _start_and_kill(cfg: Path, runs_dir: Path) -> str:
    """Start 'train' in its own process and SIGKILL it as soon as its run folder exists (before any checkpoint)."""
    before = set(runs_dir.iterdir()) if runs_dir.exists() else set()
    proc = subprocess.Popen([sys.executable, "-m", "eoengine", "train", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (runs_dir.exists() and set(runs_dir.iterdir()) - before and
               any((d / "running.lock").exists() for d in set(runs_dir.iterdir()) - before)):
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (new,) = set(runs_dir.iterdir()) - before
    assert not (new / "checkpoints" / "last.ckpt").exists()
    return new.name


def test_killed_runs_are_marked_and_cannot_be_resumed_but_started_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slow = save_config(tmp_path, tiny_config(tmp_path, **{"training.epochs": 50, "training.batch_size": 1}), "slow.yaml")
    quick = save_config(tmp_path, tiny_config(tmp_path, **{"training.epochs": 1}))
    assert run_cli(["dataset", "build", str(quick)], capsys)[0] == 0
    runs_dir = tmp_path / "out" / "runs"

    first = _start_and_kill(slow, runs_dir)
    assert {r.info.run_id: r.info.status for r in _runs(tmp_path)} == {first: "RUNNING"}  # what MLflow alone leaves
    code, _, err = run_cli(["train", str(quick), "--resume", first], capsys)
    assert code == 2 and "stopped before its first epoch ended" in err
    assert "start again with 'eoengine train CONFIG'" in err and "--resume" not in err.split("—")[1]
    assert MlflowClient(tracking_uri=_uri(tmp_path)).get_run(first).info.status == "KILLED"

    second = _start_and_kill(slow, runs_dir)
    code, _, err = run_cli(["train", str(quick)], capsys)  # the next start marks the dead run
    assert code == 0, err
    status = {r.info.run_id: r.info.status for r in _runs(tmp_path)}
    assert status[second] == "KILLED" and list(status.values()).count("FINISHED") == 1


def test_a_run_whose_process_holds_its_lock_is_left_running(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("e")
    alive, dead = client.create_run(exp).info.run_id, client.create_run(exp).info.run_id
    for rid in (alive, dead):
        (tmp_path / "runs" / rid).mkdir(parents=True)
    with running(tmp_path / "runs" / dead):
        pass  # its process ended: the lock file stays, unheld
    with running(tmp_path / "runs" / alive):
        assert mark_interrupted(uri, exp, tmp_path / "runs") == [dead]
    assert client.get_run(alive).info.status == "RUNNING" and client.get_run(dead).info.status == "KILLED"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset

    tmp = tmp_path_factory.mktemp("built")
    return build_dataset(load_config(save_config(tmp, tiny_config(tmp)))).path


@pytest.mark.parametrize(("key", "value", "message"), [
    ("training.optimizer", {"name": "Adamm"}, "unknown optimizer 'Adamm' (did you mean 'Adam'?)"),
    ("training.optimizer", {"name": "Adam", "kwargs": {"momentum": 0.9}}, "optimizer Adam: bad arguments"),
    ("training.scheduler", {"name": "StepLR"}, "scheduler StepLR: bad arguments"),
])
def test_wrong_optimizer_or_scheduler_makes_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], built: Path,
                                                   key: str, value: dict[str, object], message: str) -> None:
    bad = save_config(tmp_path, tiny_config(tmp_path, **{key: value}))
    code, _, err = run_cli(["train", str(bad), "--dataset", str(built)], capsys)
    assert code == 2 and message in err and one_problem(err)
    assert not (tmp_path / "out" / "runs").exists() and _runs(tmp_path) == []
