"""Runs and registered models over real HTTP, read from the project's own MLflow store.

One real training run of the tiny project (1 epoch) through the job runner's core function,
registered as a model with an alias, and a second run logged to the same experiment with
MLflow's client (another learning rate and scores), so there are two runs to compare.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browse_support import error_of, keep_outputs, reuse_outputs, tiny_project
from platform_server import EXAMPLES, LiveServer, live_platform

from eoengine.jobs.run import run_spec
from eoengine.jobs.specs import TrainSpec


def _logged_run(uri: str, experiment: str) -> str:
    """A second run in the project's experiment, logged as a training run logs its params and final scores."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    run = client.create_run(exp.experiment_id, run_name="by-hand")
    client.log_param(run.info.run_id, "training.optimizer.kwargs.lr", "0.02")
    client.log_param(run.info.run_id, "model.name", "unet")
    for step, loss in enumerate((0.9, 0.7)):
        client.log_metric(run.info.run_id, "train_loss", loss, step=step)
    client.log_metric(run.info.run_id, "test_miou", 0.25)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


_TRAINED: dict[str, Any] = {}
"""The training of the first server's project, whose outputs the second server's project gets a copy of."""


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, module_db: str) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    from eoengine.deploy.registry import load_model_ref, register

    with live_platform(tmp_path_factory.mktemp("runs") / "home", db_url=module_db, data_roots=(EXAMPLES,)) as live:
        folder, built = tiny_project(live, **{"training.epochs": 1,
                                              "model": {"name": "unet", "kwargs": {"depth": 2, "base_channels": 8}}})
        if not reuse_outputs(folder, "browse-runs"):  # trained once, for the servers of both databases
            trained = run_spec(TrainSpec(config=folder / "eoengine.yaml"))
            assert trained.tracking_uri == f"sqlite:///{folder.resolve() / 'out' / 'mlflow.db'}"  # the CLI's store
            register(load_model_ref(str(trained.model_path), trained.tracking_uri), "landcover", trained.tracking_uri,
                     ["champion"])
            _TRAINED.update(trained=trained, other=_logged_run(trained.tracking_uri, "tiny"))
            keep_outputs(folder, "browse-runs")
        trained, other = _TRAINED["trained"], _TRAINED["other"]
        with live.client() as c:
            assert c.post("/projects", json={"name": "untrained", "template": "nc-landsat"}).status_code == 201
        yield live, {"trained": trained, "other": other, "built": built, "folder": folder}


def test_runs_are_listed_from_the_project_store(tracked: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = tracked
    with live.client() as c:
        runs = c.get("/projects/tiny/runs").json()
        best = c.get("/projects/tiny/runs", params={"sort": "test_miou", "limit": 1}).json()
    assert [r["run_id"] for r in runs] == [t["other"], t["trained"].run_id]  # newest first
    trained = runs[1]
    assert trained["dataset_version"] == t["built"].version and trained["registered"] == ["models:/landcover/1"]
    assert trained["model_ref"] == f"runs:/{t['trained'].run_id}/model" and trained["status"] == "FINISHED"
    assert trained["metrics"]["test_miou"] == pytest.approx(t["trained"].scores["test"]["miou"])
    assert len(best) == 1


def test_run_detail_has_history_and_confusion(tracked: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = tracked
    with live.client() as c:
        run = c.get(f"/projects/tiny/runs/{t['trained'].run_id}").json()
        other = c.get(f"/projects/tiny/runs/{t['other']}").json()
    assert run["params"]["training.epochs"] == "1" and run["best_epoch"] == 0
    assert {len(points) for points in run["history"].values()} == {1}  # one epoch: one point per metric
    [val, test] = [m for m in run["confusion_matrices"] if m["source"] == "training"]
    assert val["split"] == "val" and test["split"] == "test"
    assert val["classes"] == ["forest", "water", "herbaceous", "barren", "urban"] and len(val["matrix"]) == 5
    assert [p["value"] for p in other["history"]["train_loss"]] == [0.9, 0.7]


def test_runs_compare_side_by_side(tracked: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = tracked
    ids = f"{t['trained'].run_id},{t['other']}"
    with live.client() as c:
        both = c.get("/projects/tiny/runs/compare", params={"ids": ids}).json()
        error_of(c.get("/projects/tiny/runs/compare", params={"ids": t["other"]}), 422)
        body = error_of(c.get("/projects/tiny/runs/compare", params={"ids": f"{t['other']},{'0' * 32}"}), 404)
    assert [r["run_id"] for r in both["runs"]] == [t["trained"].run_id, t["other"]]
    assert both["params"]["training.optimizer.kwargs.lr"] == ["0.01", "0.02"]
    assert both["metrics"]["test_miou"][1] == 0.25
    assert str(live.platform.settings.home) not in body["error"]  # no server paths in messages


def test_models_with_versions_and_aliases(tracked: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = tracked
    with live.client() as c:
        [listed] = c.get("/projects/tiny/models").json()
        model = c.get("/projects/tiny/models/landcover").json()
        error_of(c.get("/projects/tiny/models/nope"), 404)
    assert listed["name"] == "landcover" and listed["aliases"] == {"champion": "1"}
    [version] = model["versions"]
    assert version["run_id"] == t["trained"].run_id and version["package"]["classes"][0]["name"] == "forest"
    assert set(model["runs"]) == {t["trained"].run_id}


def test_unknown_runs_and_untrained_projects(tracked: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = tracked
    with live.client() as c:
        body = error_of(c.get(f"/projects/tiny/runs/{'f' * 32}"), 404)
        assert "tiny" in body["error"] and str(live.platform.settings.home) not in body["error"]
        assert c.get("/projects/untrained/runs").json() == [] and c.get("/projects/untrained/models").json() == []
        error_of(c.get(f"/projects/untrained/runs/{t['other']}"), 404)  # another project's run is not here
        error_of(c.get("/projects/untrained/models/landcover"), 404)
        error_of(c.get("/projects/untrained/runs/compare", params={"ids": t["other"]}), 422)  # one run: nothing to compare
        error_of(c.get("/projects/untrained/runs/compare", params={"ids": f"{t['other']},{'0' * 32}"}), 404)
    assert not (live.platform.settings.projects_dir / "untrained/out/mlflow.db").exists()  # no store made by reading
    outsider = live.user("ola-runs")
    with live.client(outsider) as o:
        error_of(o.get("/projects/tiny/runs"), 404)
        error_of(o.get("/projects/tiny/models/landcover"), 404)
