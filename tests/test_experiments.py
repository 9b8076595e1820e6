"""Experiment management: runs list/show/compare, Optuna sweeps and the custom-project template."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import OGT, run_cli, save_config, tiny_config

from eoengine.config.load import load_config
from eoengine.datasets.build import build_dataset


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from eoengine.training.train import train

    tmp = tmp_path_factory.mktemp("runs")
    cfg = load_config(save_config(tmp, tiny_config(tmp)))
    build_dataset(cfg)
    first = train(cfg)
    other = tiny_config(tmp, **{"model": {"name": "unet", "kwargs": {"depth": 2, "base_channels": 4}}})
    second = train(load_config(save_config(tmp, other, "unet.yaml")))
    return {"tmp": tmp, "config": tmp / "eoengine.yaml", "runs": [first, second]}


def test_runs_list_show_compare(two_runs: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg, (a, b) = str(two_runs["config"]), two_runs["runs"]
    code, out, err = run_cli(["runs", "list", "--config", cfg, "--sort", "test_miou"], capsys)
    assert code == 0, err
    assert a.run_id[:12] in out and b.run_id[:12] in out and "unet" in out and "cnn" in out and "test_miou" in out
    rows = [line for line in out.splitlines() if a.run_id[:12] in line or b.run_id[:12] in line]
    best = a if a.test["miou"] >= b.test["miou"] else b
    assert best.run_id[:12] in rows[0]  # sorted best first
    code, out, err = run_cli(["runs", "show", a.run_id[:10], "--config", cfg], capsys)
    assert code == 0, err
    for text in ("model.name", "dataset.version", "git.commit", "env.torch", "test_miou", "model/eoengine-model.json"):
        assert text in out, text
    plot = two_runs["tmp"] / "cmp.png"
    code, out, err = run_cli(["runs", "compare", a.run_id, b.run_id, "--config", cfg, "--plot", str(plot)], capsys)
    assert code == 0, err
    assert "model.name" in out and "test_miou" in out and plot.stat().st_size > 5000
    assert "model.kwargs.width" in out  # a parameter that differs
    code, _, err = run_cli(["runs", "show", "0" * 32, "--config", cfg], capsys)
    assert code == 2 and "no run" in err
    code, _, err = run_cli(["runs", "list", "--config", cfg, "--experiment", "nope"], capsys)
    assert code == 2 and "experiments there: tiny" in err


def test_sweep_tracks_every_trial_and_marks_the_best(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_config(tmp_path, sweep={
        "trials": 3, "sampler": "random", "prune": False,
        "params": {"training.optimizer.kwargs.lr": {"type": "float", "low": 0.001, "high": 0.05, "log": True},
                   "model.kwargs.width": {"type": "categorical", "choices": [4, 8]}},
    })
    path = save_config(tmp_path, cfg)
    code, out, err = run_cli(["sweep", str(path)], capsys)
    assert code == 0, err
    assert "best: val_miou" in out
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert len(runs) == 3 and set(runs["tags.eoengine.sweep"]) == {"tiny-sweep"}
    best = runs[runs["tags.eoengine.sweep.best"] == "true"]
    assert len(best) == 1 and best["metrics.best_val_miou"].iloc[0] == runs["metrics.best_val_miou"].max()
    assert len(set(runs["params.training.optimizer.kwargs.lr"])) == 3  # each trial its own learning rate
    code, out, err = run_cli(["sweep", str(path), "--trials", "4"], capsys)  # continues the study: one more trial
    assert code == 0, err
    assert len(mlflow.search_runs(experiment_names=["tiny"])) == 4


def test_sweep_refuses_bad_spaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tiny_config(tmp_path, sweep={"params": {"dataset.patch_size": {"type": "int", "low": 8, "high": 32}}})
    code, _, err = run_cli(["sweep", str(save_config(tmp_path, bad))], capsys)
    assert code != 0 and "only model.*, training.* and task.*" in err
    typo = tiny_config(tmp_path, sweep={"params": {"training.optimiser.kwargs.lr": {"type": "float", "low": 0.001, "high": 0.01}}})
    code, _, err = run_cli(["sweep", str(save_config(tmp_path, typo, "t.yaml"))], capsys)
    assert code != 0 and "optimiser" in err and not (tmp_path / "out" / "datasets").exists()


def test_custom_template_trains_with_its_own_model_and_loss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "proj"
    code, _, err = run_cli(["init", str(project), "--template", "custom"], capsys)
    assert code == 0, err
    assert (project / "extensions" / "models.py").exists() and (project / "extensions" / "losses.py").exists()
    code, _, err = run_cli(["init", str(project), "--template", "custom"], capsys)
    assert code == 2 and "--force" in err
    code, _, err = run_cli(["init", str(tmp_path / "x"), "--template", "fancy"], capsys)
    assert code == 2 and "basic, custom" in err
    cfg = yaml.safe_load((project / "eoengine.yaml").read_text())
    sample = tiny_config(tmp_path)
    for key in ("imagery", "labels", "classes", "dataset"):
        cfg[key] = sample[key]
    cfg["features"] = {"indices": ["NDVI"]}
    cfg["training"].update({"epochs": 2, "batch_size": 8, "scheduler": None, "early_stopping": None})
    cfg["output_dir"] = str(tmp_path / "out")
    (project / "eoengine.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    code, _, err = run_cli(["validate", str(project / "eoengine.yaml")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["dataset", "build", str(project / "eoengine.yaml")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", str(project / "eoengine.yaml")], capsys)
    assert code == 0, err
    meta = next((tmp_path / "out" / "runs").glob("*/model/eoengine-model.json")).read_text()
    assert "extensions.models.SmallUNet" in meta
    assert OGT.exists()


def test_pruning_reports_each_epoch_and_stops_bad_trials() -> None:
    from types import SimpleNamespace

    import optuna
    import torch

    from eoengine.training.sweep import Pruning

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    for epoch, value in enumerate([0.5, 0.6, 0.7]):
        Pruning(good, "val_miou").on_validation_end(
            SimpleNamespace(callback_metrics={"val_miou": torch.tensor(value)}, current_epoch=epoch), None)
    study.tell(good, 0.7)
    bad = study.ask()
    cb = Pruning(bad, "val_miou")
    with pytest.raises(optuna.TrialPruned, match="epoch 0"):
        cb.on_validation_end(SimpleNamespace(callback_metrics={"val_miou": torch.tensor(0.1)}, current_epoch=0), None)
    assert bad.storage.get_trial(bad._trial_id).intermediate_values == {0: pytest.approx(0.1)}


def test_each_project_keeps_its_own_store_in_one_process(tmp_path: Path) -> None:
    from eoengine.training.train import train

    results = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        cfg = load_config(save_config(tmp_path / name, tiny_config(tmp_path / name, **{"training.epochs": 1})))
        build_dataset(cfg)
        results.append(train(cfg))
    for name, result in zip(("a", "b"), results, strict=True):
        assert result.tracking_uri.endswith(f"{name}/out/mlflow.db")  # not the store mlflow last exported
        assert len(mlflow.MlflowClient(result.tracking_uri).search_runs(["1"])) == 1
