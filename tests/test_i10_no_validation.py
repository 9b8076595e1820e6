"""Issue 10: training never scores training chips as validation; without val chips it refuses, leaving nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import one_problem, run_cli, save_config, tiny_config


def test_dataset_without_val_chips_is_refused_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = save_config(tmp_path, tiny_config(tmp_path, **{"dataset.split.ratios": {"train": 0.8, "test": 0.2}}))
    code, _, err = run_cli(["dataset", "build", str(cfg)], capsys)
    assert code == 0, err
    code, out, err = run_cli(["train", str(cfg)], capsys)
    assert code == 2 and "has no validation chips" in err and "dataset.split.ratios.val above 0" in err
    assert one_problem(err) and "val" not in out
    assert not (tmp_path / "out" / "runs").exists() and not (tmp_path / "out" / "mlflow.db").exists()
