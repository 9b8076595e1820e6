"""Registering a run's model and moving its aliases over real HTTP; the lineage map → model version → run → dataset.

One real training run of the tiny project (1 epoch) through the job runner's core function,
indexed as the runner indexes a job's outputs (dataset version, run); the model is registered
through the API, an alias is moved and removed, and a prediction with ``models:/NAME@ALIAS``
is indexed with the version that alias named (resolved at index time).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browse_support import error_of
from conftest import OGT
from models_support import index_outputs, trained_project
from platform_server import EXAMPLES, LiveServer, live_platform
from sqlalchemy import select

from eoengine.jobs.run import run_spec
from eoengine.jobs.specs import PredictSpec
from eoengine.platform.db.models import Artifact, Event


def _events(live: LiveServer, action: str) -> list[Event]:
    with live.platform.db.write() as s:
        return list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


def _models(live: LiveServer) -> dict[str, Artifact]:
    with live.platform.db.write() as s:
        return {a.ref: a for a in s.scalars(select(Artifact).where(Artifact.kind == "model"))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    with live_platform(tmp_path_factory.mktemp("models") / "home", data_roots=(EXAMPLES,)) as live:
        made = trained_project(live)
        with live.client() as c:
            assert c.post("/projects", json={"name": "untrained", "template": "nc-landsat"}).status_code == 201
        yield live, made | {"viewer": live.user("vera-models")}


def test_register_a_run_and_move_its_alias(trained: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = trained
    run_id = t["run"].run_id
    with live.client() as c:
        first = c.post("/projects/tiny/models", json={"run_id": run_id, "name": "landcover", "alias": "champion"})
        assert first.status_code == 201, first.text
        second = c.post("/projects/tiny/models", json={"run_id": run_id, "name": "landcover"})
        assert second.status_code == 201, second.text
        assert first.json() == {"name": "landcover", "version": "1", "ref": "models:/landcover/1", "run_id": run_id,
                                "aliases": ["champion"]}
        assert second.json()["version"] == "2" and second.json()["aliases"] == []
        moved = c.put("/projects/tiny/models/landcover/aliases/champion", json={"version": 2})
        assert moved.status_code == 200, moved.text
        assert moved.json() == {"name": "landcover", "alias": "champion", "version": "2", "previous": "1"}
        model = c.get("/projects/tiny/models/landcover").json()
        assert model["aliases"] == {"champion": "2"} and [v["version"] for v in model["versions"]] == ["2", "1"]
        assert model["versions"][0]["package"]["classes"][0]["name"] == "forest" and set(model["runs"]) == {run_id}
        assert c.put("/projects/tiny/models/landcover/aliases/old", json={"version": 1}).json()["previous"] is None
        gone = c.delete("/projects/tiny/models/landcover/aliases/old")
        assert gone.json() == {"name": "landcover", "alias": "old", "version": None, "previous": "1"}
        assert c.get("/projects/tiny/models/landcover").json()["aliases"] == {"champion": "2"}
    registered = _events(live, "model.register")
    assert [(e.object_id, e.data["inputs"]) for e in registered] == [("landcover/1", [f"run:{run_id}"]),
                                                                     ("landcover/2", [f"run:{run_id}"])]
    assert registered[0].actor_id is not None
    moves = [(e.data["alias"], e.data["from"], e.data["to"]) for e in _events(live, "model.alias")]
    assert moves == [("champion", None, "1"), ("champion", "1", "2"), ("old", None, "1"), ("old", "1", None)]
    rows = _models(live)
    assert rows["models:/landcover/1"].meta["aliases"] == [] and rows["models:/landcover/2"].meta["aliases"] == ["champion"]
    assert rows["models:/landcover/2"].name == "landcover" and rows["models:/landcover/2"].version == "2"


def test_a_map_of_an_alias_has_the_version_in_its_lineage(trained: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = trained
    folder, run_id = t["folder"], t["run"].run_id
    with live.client() as c:
        made = c.post("/projects/tiny/models", json={"run_id": run_id, "name": "mapper", "alias": "live"}).json()
        spec = PredictSpec(model="models:/mapper@live", scene=[str(OGT / "LE70220491999322EDC01_stack.gtif")],
                           output=folder / "out" / "maps" / "lc.tif", tracking_uri=t["run"].tracking_uri)
        index_outputs(live, "tiny", run_spec(spec), spec, folder)
        assert c.put("/projects/tiny/models/mapper/aliases/live", json={"version": 1}).status_code == 200
        graph = c.get("/projects/tiny/lineage", params={"object": "map:out/maps/lc.tif"}).json()
        from_model = c.get("/projects/tiny/lineage", params={"object": f"model:mapper/{made['version']}"}).json()
    dataset = f"dataset:tiny@{t['built'].version}"
    assert {(e["source"], e["target"]) for e in graph["edges"]} >= {
        (dataset, f"run:{run_id}"), (f"run:{run_id}", f"model:mapper/{made['version']}"),
        (f"model:mapper/{made['version']}", "map:out/maps/lc.tif")}
    assert "scene:s1999" in {f"{n['type']}:{n['id']}" for n in graph["nodes"]}
    assert {f"{n['type']}:{n['id']}" for n in from_model["nodes"]} >= {dataset, "map:out/maps/lc.tif"}
    (row,) = [a for a in _models_maps(live) if a.path == "out/maps/lc.tif"]
    assert row.meta["run_id"] == run_id


def _models_maps(live: LiveServer) -> list[Artifact]:
    with live.platform.db.write() as s:
        return list(s.scalars(select(Artifact).where(Artifact.kind == "map")))


def test_bad_registrations_and_aliases(trained: tuple[LiveServer, dict[str, Any]]) -> None:
    live, t = trained
    run_id = t["run"].run_id
    with live.client() as c:
        body = error_of(c.post("/projects/tiny/models", json={"run_id": "f" * 32, "name": "landcover"}), 404)
        assert str(live.platform.settings.home) not in body["error"]
        error_of(c.post("/projects/untrained/models", json={"run_id": run_id, "name": "landcover"}), 404)
        error_of(c.post("/projects/tiny/models", json={"run_id": "nope", "name": "landcover"}), 422)
        error_of(c.post("/projects/tiny/models", json={"run_id": run_id, "name": "bad name!"}), 422)
        error_of(c.post("/projects/tiny/models", json={"run_id": run_id, "name": "x", "alias": "1st"}), 422)
        error_of(c.post("/projects/tiny/models", json={"run_id": run_id, "name": "x", "alias": "latest"}), 422)
        error_of(c.put("/projects/tiny/models/landcover/aliases/v3", json={"version": 1}), 422)
        error_of(c.put("/projects/tiny/models/landcover/aliases/champion", json={"version": 99}), 404)
        error_of(c.put("/projects/tiny/models/landcover/aliases/champion", json={"version": 0}), 422)
        error_of(c.put("/projects/tiny/models/nope/aliases/champion", json={"version": 1}), 404)
        error_of(c.delete("/projects/tiny/models/landcover/aliases/never-set"), 404)
        error_of(c.delete("/projects/untrained/models/landcover/aliases/champion"), 404)
    with live.client(t["viewer"]) as v:
        error_of(v.post("/projects/tiny/models", json={"run_id": run_id, "name": "landcover"}), 404)  # not a member


def test_a_run_without_a_model_package(trained: tuple[LiveServer, dict[str, Any]]) -> None:
    from mlflow.tracking import MlflowClient

    live, t = trained
    client = MlflowClient(tracking_uri=t["run"].tracking_uri)
    exp = client.get_experiment_by_name("tiny")
    assert exp is not None
    bare = client.create_run(exp.experiment_id, run_name="no-model").info.run_id
    client.set_terminated(bare)
    with live.client() as c:
        body = error_of(c.post("/projects/tiny/models", json={"run_id": bare, "name": "landcover"}), 422)
    assert "no model package" in body["error"]


def test_the_client_registers_and_moves_aliases(trained: tuple[LiveServer, dict[str, Any]]) -> None:
    from eoengine.client import Client
    from eoengine.errors import Invalid, NotFound

    live, t = trained
    run_id = t["run"].run_id
    with Client(live.url, live.admin.token) as c:
        made = c.register_model("tiny", run_id, "by-client", alias="candidate")
        again = c.register_model("tiny", run_id, "by-client")
        moved = c.set_alias("tiny", "by-client", "candidate", again.version)
        removed = c.delete_alias("tiny", "by-client", "candidate")
        model = c.model("tiny", "by-client")
        with pytest.raises(NotFound):
            c.register_model("tiny", "0" * 32, "by-client")
        with pytest.raises(NotFound):
            c.set_alias("tiny", "by-client", "candidate", 42)
        with pytest.raises(NotFound):
            c.delete_alias("tiny", "by-client", "candidate")  # removed already
        with pytest.raises(Invalid):
            c.set_alias("tiny", "by-client", "latest", 1)
    assert (made.version, made.aliases, made.ref) == ("1", ["candidate"], "models:/by-client/1")
    assert (moved.previous, moved.version) == ("1", "2") and (removed.previous, removed.version) == ("2", None)
    assert model.aliases == {} and [v.version for v in model.versions] == ["2", "1"]
