"""An interrupted training run resumes from its last checkpoint to the uninterrupted result."""

import signal
from pathlib import Path

import mlflow
import pytest
import torch
from conftest import save_config, tiny_config

from eoengine.config.load import load_config
from eoengine.datasets.build import build_dataset
from eoengine.errors import EOError
from eoengine.training import train as train_mod
from eoengine.training.callbacks import EpochLogger


class _StopAtEpoch2(EpochLogger):
    def on_train_epoch_start(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        if trainer.current_epoch == 2:
            raise KeyboardInterrupt


def test_resume_gives_the_uninterrupted_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path, **{"training.epochs": 4, "model.dropout": 0.2})))
    build_dataset(cfg)
    straight = train_mod.train(cfg)

    monkeypatch.setattr(train_mod, "EpochLogger", _StopAtEpoch2)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            train_mod.train(cfg)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT while it shuts down
    assert "resume with: eoengine train CONFIG --resume" in capsys.readouterr().err
    runs = mlflow.search_runs(experiment_names=["tiny"], order_by=["start_time DESC"], output_format="list")
    interrupted = runs[0].info.run_id
    assert runs[0].info.status == "FAILED"
    monkeypatch.setattr(train_mod, "EpochLogger", EpochLogger)

    resumed = train_mod.train(cfg, resume=interrupted)
    assert resumed.run_id == interrupted and resumed.best_epoch == straight.best_epoch
    assert resumed.val["confusion_matrix"] == straight.val["confusion_matrix"]
    a = torch.load(straight.model_path / "weights.pt")
    b = torch.load(resumed.model_path / "weights.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = mlflow.tracking.MlflowClient().get_metric_history(interrupted, "val_accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    assert mlflow.get_run(interrupted).info.status == "FINISHED"


def test_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path)))
    with pytest.raises(EOError, match="has no checkpoint to resume from"):
        train_mod.train(cfg, resume="f" * 32)
