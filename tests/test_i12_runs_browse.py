"""Issue 12: tracked runs and registered models as JSON records for the server (eoengine.tracking.browse).

One real MLflow store: two short real training runs of the tiny config (2 epochs, then 1 epoch
at another learning rate), an evaluation of the first logged to its run, and two versions of a
registered model made as ``eoengine register`` makes them, with an alias on each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from conftest import run_cli, save_config, tiny_config

from eoengine.errors import Invalid, NotFound
from eoengine.tracking import browse
from eoengine.tracking.runs import is_final

CLASSES = ["forest", "water", "herbaceous", "barren", "urban"]
COLOURS = ["#1b7837", "#1f78b4", "#b2df8a", "#a6761d", "#e31a1c"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.deploy.registry import load_model_ref, register
    from eoengine.grading.evaluate import evaluate
    from eoengine.models.package import load_package
    from eoengine.training.train import train

    tmp = tmp_path_factory.mktemp("browse")
    cfg = load_config(save_config(tmp, tiny_config(tmp)))
    root = build_dataset(cfg).path
    first = train(cfg)
    evaluate(load_package(first.model_path))  # logs report/scores.json and eval_test_* to the first run
    other = tiny_config(tmp, **{"training.epochs": 1, "training.optimizer": {"name": "Adam", "kwargs": {"lr": 0.02}}})
    second = train(load_config(save_config(tmp, other, "faster.yaml")))
    uri = first.tracking_uri
    for result, alias in ((first, "champion"), (second, "candidate")):  # what 'eoengine register' does
        register(load_model_ref(str(result.model_path), uri), "landcover", uri, [alias])
    return {"tmp": tmp, "uri": uri, "root": root, "runs": [first, second]}


def _labelled_pixels(root: Path, split: str) -> int:
    """Pixels with a class label in a split's chips, read from the dataset's arrays."""
    import pandas as pd

    from eoengine.datasets.store import INDEX, open_arrays
    from eoengine.labels import IGNORE

    index = pd.read_parquet(root / INDEX, columns=["chip_id", "split"])
    rows = np.sort(index.loc[index["split"] == split, "chip_id"].to_numpy())
    labels = open_arrays(root)[1].oindex[rows.tolist()]
    return int((labels != IGNORE).sum())


def _plain_json(record: browse.Browsed) -> dict[str, Any]:
    data = record.to_json()
    json.dumps(data, allow_nan=False)  # raises for anything JSON cannot hold
    return data


def test_list_runs_summarises_each_run(store: dict[str, Any]) -> None:
    first, second = store["runs"]
    runs = browse.list_runs(store["uri"], "tiny")
    assert [r.run_id for r in runs] == [second.run_id, first.run_id]  # newest first
    a = runs[1]
    assert a.status == "FINISHED" and a.model == "cnn" and a.task == "segmentation" and a.dataset_name == "tiny"
    assert a.dataset_version == json.loads((store["root"] / "manifest.json").read_text())["version"]
    assert a.started_at and a.ended_at and a.started_at <= a.ended_at and a.started_at.endswith("+00:00")
    assert a.params["training.epochs"] == "2" and runs[0].params["training.epochs"] == "1"
    assert a.params["training.optimizer.kwargs.lr"] == "0.01" and set(a.params) <= set(browse.MAIN_PARAMS)
    assert a.metrics["test_miou"] == pytest.approx(first.test["miou"]) and all(is_final(k) for k in a.metrics)
    assert a.metrics["eval_test_miou"] == pytest.approx(first.test["miou"], abs=1e-6)  # the evaluation: same model, split
    assert a.model_ref == f"runs:/{first.run_id}/model"
    assert a.registered == ["models:/landcover/1"] and runs[0].registered == ["models:/landcover/2"]
    _plain_json(a)
    by_score = browse.list_runs(store["uri"], "tiny", sort="test_miou")
    scores = [r.metrics["test_miou"] for r in by_score]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert len(browse.list_runs(store["uri"], "tiny", limit=1)) == 1
    with pytest.raises(NotFound, match="no experiment 'nope'") as err:
        browse.list_runs(store["uri"], "nope")
    assert "tiny" in str(err.value.fix)


def test_run_detail_has_history_confusion_and_artifacts(store: dict[str, Any]) -> None:
    first, second = store["runs"]
    d = browse.run_detail(store["uri"], first.run_id)
    assert [p.step for p in d.history["val_loss"]] == [0, 1] and [p.step for p in d.history["train_loss"]] == [0, 1]
    assert {len(points) for points in d.history.values()} == {2} and not any(is_final(k) for k in d.history)
    client = mlflow.MlflowClient(tracking_uri=store["uri"])
    logged = [m.value for m in sorted(client.get_metric_history(first.run_id, "val_miou"), key=lambda m: m.step)]
    assert [p.value for p in d.history["val_miou"]] == logged
    assert {len(points) for points in browse.run_detail(store["uri"], second.run_id).history.values()} == {1}
    assert d.params["training.optimizer.name"] == "Adam" and len(d.params) > len(browse.MAIN_PARAMS)
    assert d.tags["dataset.version"] == d.dataset_version and not any(k.startswith("mlflow.") for k in d.tags)
    assert d.best_epoch == first.best_epoch
    matrices = {(m.source, m.split): m for m in d.confusion_matrices}
    assert set(matrices) == {("training", "val"), ("training", "test"), ("evaluation", "test")}
    for (_, split), m in matrices.items():
        assert m.classes == CLASSES and m.head is None and len(m.matrix) == 5 and all(len(r) == 5 for r in m.matrix)
        assert sum(map(sum, m.matrix)) == _labelled_pixels(store["root"], split) > 0
    assert matrices[("training", "test")].matrix == first.test["confusion_matrix"]
    sizes = {a.path: a.size for a in d.artifacts if not a.is_dir}
    for name in ("scores.json", "model/eoengine-model.json", "report/scores.json", "checkpoints/best.ckpt"):
        assert name in sizes, name
    assert sizes["scores.json"] == (first.run_dir / "scores.json").stat().st_size
    assert {a.path for a in d.artifacts if a.is_dir} >= {"model", "report", "checkpoints"}
    _plain_json(d)


def test_run_detail_hides_secret_looking_tags(store: dict[str, Any]) -> None:
    second = store["runs"][1]
    client = mlflow.MlflowClient(tracking_uri=store["uri"])
    client.set_tag(second.run_id, "storage.AWS_SECRET_ACCESS_KEY", "abc123")
    client.set_tag(second.run_id, "note", "kept")
    tags = browse.run_detail(store["uri"], second.run_id).tags
    assert tags["storage.AWS_SECRET_ACCESS_KEY"] == "***" and tags["note"] == "kept"


def test_compare_runs_shows_differing_params_and_metrics_side_by_side(store: dict[str, Any]) -> None:
    first, second = store["runs"]
    c = browse.compare_runs(store["uri"], [first.run_id, second.run_id, first.run_id])
    assert [r.run_id for r in c.runs] == [first.run_id, second.run_id]
    assert c.params == {"training.epochs": ["2", "1"], "training.optimizer.kwargs.lr": ["0.01", "0.02"]}
    assert c.metrics["test_miou"] == pytest.approx([first.test["miou"], second.test["miou"]])
    assert c.metrics["eval_test_miou"][1] is None  # only the first run was evaluated
    assert all(is_final(k) for k in c.metrics)
    _plain_json(c)
    with pytest.raises(Invalid, match="2 to 20 different runs, got 1"):
        browse.compare_runs(store["uri"], [first.run_id, first.run_id])
    with pytest.raises(Invalid, match="got 21"):
        browse.compare_runs(store["uri"], [f"{i:032x}" for i in range(21)])
    with pytest.raises(NotFound, match="no run '0{32}'"):
        browse.compare_runs(store["uri"], [first.run_id, "0" * 32])


def test_models_list_versions_aliases_and_packages(store: dict[str, Any]) -> None:
    first, second = store["runs"]
    [model] = browse.list_models(store["uri"])
    assert model.name == "landcover" and model.aliases == {"champion": "1", "candidate": "2"}
    assert [v.version for v in model.versions] == ["2", "1"]  # newest first
    client = mlflow.MlflowClient(tracking_uri=store["uri"])
    for alias, version in model.aliases.items():  # the aliases resolve to the versions they name
        assert str(client.get_model_version_by_alias("landcover", alias).version) == version
        assert [v.aliases for v in model.versions if v.version == version] == [[alias]]
    v2, v1 = model.versions
    assert (v1.run_id, v2.run_id) == (first.run_id, second.run_id) and v1.ref == "models:/landcover/1"
    assert v1.status == "READY" and v1.created_at and v1.tags["eoengine.run_id"] == first.run_id
    pkg = v1.package
    assert pkg is not None and pkg.task == "segmentation" and pkg.model == "cnn" and pkg.run_id == first.run_id
    assert pkg.bands == ["blue", "green", "red", "nir"] and pkg.channels[-1] == "NDVI" and pkg.patch_size == 16
    assert [(c.name, c.color) for c in pkg.classes] == list(zip(CLASSES, COLOURS, strict=True))
    assert pkg.resolution == 30.0 and pkg.onnx and pkg.dataset.path == str(store["root"])
    detail = browse.model_detail(store["uri"], "landcover")
    assert detail.versions == model.versions and set(detail.runs) == {first.run_id, second.run_id}
    assert detail.runs[first.run_id].metrics["test_miou"] == pytest.approx(first.test["miou"])
    _plain_json(detail)


def test_a_version_whose_files_are_not_here_has_no_package(store: dict[str, Any], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from eoengine.deploy.registry import load_model_ref, register

    monkeypatch.chdir(tmp_path)  # a run the new store does not know goes to an experiment made here
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    register(load_model_ref(str(store["runs"][0].model_path), uri), "moved", uri)
    [version] = browse.list_models(uri)[0].versions
    assert version.package is not None
    source = mlflow.MlflowClient(tracking_uri=uri).get_model_version("moved", "1").source
    folder = mlflow.MlflowClient(tracking_uri=uri).get_logged_model(source.removeprefix("models:/")).artifact_location
    shutil.rmtree(folder.removeprefix("file://"))
    [version] = browse.list_models(uri)[0].versions
    assert version.package is None and version.tags["eoengine.model"] == "cnn"  # the tags still describe it


def test_unknown_run_and_model_are_not_found(store: dict[str, Any]) -> None:
    with pytest.raises(NotFound, match="no run '0{32}'") as err:
        browse.run_detail(store["uri"], "0" * 32)
    assert err.value.fix
    with pytest.raises(NotFound, match="no run 'not-a-run'"):
        browse.run_detail(store["uri"], "not-a-run")
    with pytest.raises(NotFound, match="no registered model 'nope'") as err:
        browse.model_detail(store["uri"], "nope")
    assert "eoengine register" in str(err.value.fix)
    with pytest.raises(NotFound, match="no registered model"):
        browse.model_detail(store["uri"], "it's")


@pytest.mark.parametrize("kind", ["sqlite", "folder"])
def test_a_tracking_uri_with_no_store_is_not_found_and_not_created(tmp_path: Path, kind: str) -> None:
    missing = tmp_path / "nowhere" / ("mlflow.db" if kind == "sqlite" else "mlruns")
    uri = f"sqlite:///{missing}" if kind == "sqlite" else str(missing)
    calls = [lambda: browse.list_runs(uri, "tiny"), lambda: browse.run_detail(uri, "0" * 32),
             lambda: browse.compare_runs(uri, ["0" * 32, "1" * 32]), lambda: browse.list_models(uri),
             lambda: browse.model_detail(uri, "landcover")]
    for call in calls:
        with pytest.raises(NotFound, match="no MLflow store at") as err:
            call()
        assert "eoengine train" in str(err.value.fix)
    assert not missing.exists() and not missing.parent.exists()


def test_cli_runs_list_on_a_missing_store_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.db"
    code, _, err = run_cli(["runs", "list", "--tracking-uri", f"sqlite:///{missing}"], capsys)
    assert code == 2 and "no MLflow store at" in err and "eoengine train" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()
