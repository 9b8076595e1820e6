"""Issue 10: optimizer and scheduler values torch refuses (or cannot run) stop 'train' with one line and no run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import one_problem, run_cli, save_config, tiny_config
from mlflow.tracking import MlflowClient


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset

    tmp = tmp_path_factory.mktemp("built")
    return build_dataset(load_config(save_config(tmp, tiny_config(tmp)))).path


@pytest.mark.parametrize(("key", "value", "message"), [
    ("training.optimizer", {"name": "Adam", "kwargs": {"lr": -1.0}}, "Invalid learning rate: -1.0"),
    ("training.scheduler", {"name": "OneCycleLR", "kwargs": {"max_lr": 0.1, "pct_start": 2}}, "pct_start, but got 2"),
    ("training.scheduler", {"name": "StepLR", "kwargs": {"step_size": -1}}, "step_size must be at least 1, got -1"),
    ("training.scheduler", {"name": "CosineAnnealingLR", "kwargs": {"T_max": 0}}, "T_max must be at least 1, got 0"),
])
def test_refused_values_stop_train_before_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], built: Path,
                                                key: str, value: dict[str, object], message: str) -> None:
    bad = save_config(tmp_path, tiny_config(tmp_path, **{key: value}))
    code, _, err = run_cli(["train", str(bad), "--dataset", str(built)], capsys)
    assert code == 2 and one_problem(err), err
    assert message in err and f"fix {key}.kwargs" in err
    assert not (tmp_path / "out" / "runs").exists()
    client = MlflowClient(f"sqlite:///{(tmp_path / 'out' / 'mlflow.db').resolve()}")
    exp = client.get_experiment_by_name("tiny")
    assert exp is None or not client.search_runs([exp.experiment_id])
