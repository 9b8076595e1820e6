"""Model-assisted labelling with a real model, server and worker: window prediction, polygons, suggestions, rank.

One module-scoped server with the tiny project's model trained for one epoch and registered
(``landcover@champion``, see :mod:`assist_support`). The library part is checked against an
independent whole-scene prediction (its probabilities COG) and numpy; the API part over real HTTP
with the jobs run by a real worker process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from assist_support import ANN, ITEM, SLUG, Assist, assign, assisted, features_of, make_set, prelabel, tasks_of
from browse_support import error_of
from conftest import OGT
from jobs_support import wait_job
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rasterio.windows import Window
from scipy import ndimage
from sqlalchemy import select

from eoengine.inference.predict import Predictor
from eoengine.inference.prelabel import predict_window, window_entropy, window_features
from eoengine.inference.sources import sources_for_package
from eoengine.jobs.specs import parse_spec
from eoengine.models.package import load_package
from eoengine.platform.annotation.grid import item_grid
from eoengine.platform.annotation.suggestions import ingest_prelabel
from eoengine.platform.db.models import Job
from eoengine.raster.scene import SceneReader

STACK = OGT / "LE70220491999322EDC01_stack.gtif"
SCENE = [f"{b}={STACK}:{i}" for i, b in enumerate(["blue", "green", "red", "nir"], start=1)]
BLOCK = 64


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assist]:
    with assisted(tmp_path_factory.mktemp("assist")) as made:
        yield made


@pytest.fixture(scope="module")
def whole(team: Assist, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole scene predicted at once (class map and probabilities COGs), as ``eoengine predict`` does."""
    pkg = load_package(team.run.model_path)
    out = tmp_path_factory.mktemp("whole")
    with SceneReader(sources_for_package(pkg.meta, SCENE), pkg.meta.resampling) as reader:
        Predictor(pkg, engine="torch").predict(reader, out / "map.tif", out / "probs.tif")
    with rasterio.open(out / "map.tif") as m, rasterio.open(out / "probs.tif") as p:
        return {"pkg": pkg, "classes": m.read(1), "nodata": m.nodata, "probs": p.read(), "crs": m.crs}


def _entropy(probs: np.ndarray) -> float:
    """Mean Shannon entropy (nats) over pixels with data (NaN probabilities: no data), plain numpy."""
    valid = ~np.isnan(probs).any(axis=0)
    p = probs[:, valid].astype(np.float64)
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return float(-terms.sum(axis=0).mean())


def _rasterised(features: list[dict[str, Any]], crs: Any, transform: Any, shape: tuple[int, int]) -> np.ndarray:
    """The features (lon/lat) rasterised on the window's grid by pixel centres (0 where none)."""
    shapes = [(transform_geom("EPSG:4326", crs, f["geometry"]), f["properties"]["label"]) for f in features]
    return rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32") if shapes else np.zeros(shape, "int32")


def test_a_window_is_predicted_as_the_whole_scene_and_its_polygons_rasterise_back(whole: dict[str, Any]) -> None:
    pkg = whole["pkg"]
    window = Window(BLOCK, BLOCK, BLOCK, BLOCK)  # cell (1, 1): tiles of 64 px with 16 px overlap reach into it
    with SceneReader(sources_for_package(pkg.meta, SCENE), pkg.meta.resampling) as reader:
        pred = predict_window(Predictor(pkg, engine="torch"), reader, window)
        crs = reader.grid.crs_wkt
    cut = (slice(BLOCK, 2 * BLOCK), slice(BLOCK, 2 * BLOCK))
    assert np.array_equal(pred.classes, whole["classes"][cut])
    assert np.allclose(pred.probabilities, whole["probs"][(slice(None), *cut)], atol=1e-5)
    assert window_entropy(pred.probabilities, pred.nodata) == pytest.approx(_entropy(whole["probs"][(slice(None), *cut)]),
                                                                             rel=1e-5)
    valid = ~pred.nodata
    exact = window_features(pred, crs, tolerance=0, min_pixels=0)
    back = _rasterised(exact, whole["crs"], pred.transform, pred.classes.shape)
    assert np.array_equal(back[valid], pred.classes[valid]), "unsimplified polygons are the class map"
    assert all(-180 <= x <= 180 and -90 <= y <= 90 for f in exact for x, y in f["geometry"]["coordinates"][0])

    simple = window_features(pred, crs)  # half a pixel, 4 pixels at least
    back = _rasterised(simple, whole["crs"], pred.transform, pred.classes.shape)
    edge = np.zeros_like(valid)  # pixels with another class among their 8 neighbours
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.pad(pred.classes, 1, mode="edge")[1 + dy : 1 + dy + BLOCK, 1 + dx : 1 + dx + BLOCK]
            edge |= shifted != pred.classes
    small = np.zeros_like(valid)  # pixels of 4-connected runs of one class under 4 pixels
    for code in np.unique(pred.classes):
        runs, _ = ndimage.label(pred.classes == code)
        sizes = np.bincount(runs.ravel())
        small |= (runs > 0) & (sizes[runs] < 4)
    wrong = valid & (back != pred.classes)
    assert not (wrong & ~edge & ~small).any(), "a pixel away from every boundary changed class"
    assert wrong.mean() < 0.1 and len(simple) <= len(exact)
    assert sum(len(f["geometry"]["coordinates"][0]) for f in simple) < sum(len(f["geometry"]["coordinates"][0]) for f in exact)
    for f in simple:
        inside = back == f["properties"]["label"]
        assert 0 < f["properties"]["score"] <= 1 and f["properties"]["pixels"] >= 4 and inside.any()


def _draw(team: Assist, who: str, task_id: int) -> dict[str, Any]:
    """A polygon drawn in the middle half of a task's cell (class 2)."""
    with team.client(who) as c:
        ring = np.asarray(c.get(f"{ANN}/tasks/{task_id}").json()["geometry"]["coordinates"][0])
        inner = (ring - ring.mean(axis=0)) * 0.5 + ring.mean(axis=0)
        r = c.post(f"{ANN}/tasks/{task_id}/features", json={
            "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [inner.tolist()]}, "properties": {"label": 2}})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _job(team: Assist, job_id: int) -> Job:
    with team.live.platform.db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
        return job


def _result(team: Assist, job: dict[str, Any]) -> dict[str, Any]:
    import json

    return dict(json.loads(Path(job["result"]["output"]).read_text()))


def test_prelabel_end_to_end(team: Assist) -> None:
    made = make_set(team, "assist")
    task = tasks_of(team, made["id"])[(1, 1)]["id"]
    assign(team, task, "ann")
    drawn = _draw(team, "ann", task)  # a drawn feature, which no pre-labelling touches
    job = prelabel(team, "ann", task)
    assert job["kind"] == "prelabel" and job["spec"]["model"] == "models:/landcover/1"
    with team.client("vera") as c:
        assert job["id"] in [j["id"] for j in c.get(f"/projects/{SLUG}/jobs").json()]
    result = _result(team, job)
    cell = result["cells"][0]
    expected = [f for f in cell["features"] if f["properties"]["label"] != 1]  # background (1) is left out
    found = [f for f in features_of(team, task) if f["id"] != drawn["id"]]
    assert len(found) == len(expected) >= 2
    for f, e in zip(found, expected, strict=True):
        p = f["properties"]
        assert p["suggestion"] is True and p["source"] == "model" and p["model"] == "landcover/1"
        assert p["label"] == e["properties"]["label"] and p["score"] == e["properties"]["score"] and p["version"] == 1
        assert p["item"] == ITEM and p["created_by"] == "ann"
    assert tasks_of(team, made["id"])[(1, 1)]["priority"] == pytest.approx(cell["entropy"])

    with team.client("ann") as c:
        refused = error_of(c.post(f"{ANN}/tasks/{task}/submit"), 409)
        assert refused["error"].startswith(f"{len(found)} model suggestions are pending") and "accept or delete" in refused["fix"]
        first, second = found[0], found[1]
        ok = c.post(f"{ANN}/features/{first['id']}/accept", json={"version": 1})
        assert ok.status_code == 200, ok.text
        assert ok.json()["properties"]["version"] == 2 and "suggestion" not in ok.json()["properties"]
        stale = c.post(f"{ANN}/features/{first['id']}/accept", json={"version": 1})
        assert stale.status_code == 409 and stale.json()["current"]["properties"]["version"] == 2
        edited = c.put(f"{ANN}/features/{second['id']}", json=second | {"properties": {"label": 3, "version": 1}})
        assert edited.status_code == 200, edited.text
        assert "suggestion" not in edited.json()["properties"] and edited.json()["properties"]["label"] == 3
        events = [e["action"] for e in c.get(f"{ANN}/tasks/{task}/history").json()["events"]]
        assert {"task.prelabel", "feature.accept", "feature.update"} <= set(events)
        not_one = error_of(c.post(f"{ANN}/features/{first['id']}/accept", json={"version": 2}), 409)
        assert "no pending model suggestion" in not_one["error"]

    pending = {f["id"] for f in found[2:]}
    again = prelabel(team, "ann", task)
    now = features_of(team, task)
    ids = {f["id"] for f in now}
    assert {first["id"], second["id"], drawn["id"]} <= ids and not (pending & ids), "only pending suggestions are replaced"
    fresh = [f for f in now if f["properties"].get("suggestion")]
    assert len(fresh) == len([f for f in _result(team, again)["cells"][0]["features"] if f["properties"]["label"] != 1])

    row = _job(team, again["id"])  # the ingest run once more (a retried job): nothing is stored twice
    grids = {ITEM: item_grid(next(r.item for r in _catalog(team) if r.item["id"] == ITEM))}
    ingest_prelabel(team.live.platform.db, row, parse_spec(row.spec), team.folder, grids)  # type: ignore[arg-type]
    assert [f["id"] for f in features_of(team, task)] == [f["id"] for f in now]

    with team.client("ann") as c:
        for f in fresh:
            assert c.delete(f"{ANN}/features/{f['id']}", params={"version": 1}).status_code == 200
        assert c.post(f"{ANN}/tasks/{task}/submit").status_code == 200


def _catalog(team: Assist) -> list[Any]:
    from eoengine.platform.runner import refresh_catalog

    with team.live.platform.db.read() as s:
        from eoengine.platform.db.models import Project

        project_id = s.scalar(select(Project.id).where(Project.slug == SLUG))
    return list(refresh_catalog(team.live.platform.db, int(project_id or 0), team.folder).records)


def test_rank_sets_the_mean_entropy_of_every_open_task_and_next_serves_the_highest(team: Assist,
                                                                                   whole: dict[str, Any]) -> None:
    made = make_set(team, "rank")
    cells = tasks_of(team, made["id"])
    assign(team, cells[(0, 0)]["id"], "ann")
    _draw(team, "ann", cells[(0, 0)]["id"])  # an in-progress task is not ranked
    with team.client("rita") as c:
        r = c.post(f"{ANN}/sets/{made['id']}/rank", json={"model": "landcover/1"})
        assert r.status_code == 201, r.text
        assert wait_job(c, r.json()["id"])["state"] == "succeeded"
    ranked = tasks_of(team, made["id"])
    assert ranked[(0, 0)]["priority"] is None and ranked[(0, 0)]["features"] == 1
    for (row, col), props in ranked.items():
        if (row, col) == (0, 0):
            continue
        window = whole["probs"][:, row * BLOCK : (row + 1) * BLOCK, col * BLOCK : (col + 1) * BLOCK]
        assert props["priority"] == pytest.approx(_entropy(window), rel=1e-5), (row, col)
    best = max((p for k, p in ranked.items() if k != (0, 0)), key=lambda p: p["priority"])
    with team.client("bob") as c:
        served = c.post(f"{ANN}/sets/{made['id']}/next").json()
    assert served["id"] == best["id"] and served["priority"] == best["priority"]


def _three_bands(folder: Path) -> Path:
    with rasterio.open(STACK) as ds:
        profile = ds.profile | {"count": 3}
        data = ds.read([1, 2, 3])
    path = folder / "rgb.tif"
    with rasterio.open(path, "w", **profile) as out:
        out.write(data)
    return path


def test_bad_input_is_refused_with_its_fix(team: Assist, tmp_path: Path) -> None:
    made = make_set(team, "bad")
    cells = tasks_of(team, made["id"])
    task, frozen = cells[(2, 2)]["id"], cells[(3, 3)]["id"]
    assign(team, task, "ann")
    with team.client("ann") as c:
        unknown = error_of(c.post(f"{ANN}/tasks/{task}/prelabel", json={"model": "nothing@champion"}), 404)
        assert "nothing@champion" in unknown["error"] and "GET /api/v1/projects/SLUG/models" in unknown["fix"]
        assert error_of(c.post(f"{ANN}/tasks/{task}/prelabel", json={"model": "landcover@nope"}), 404)
        bad = error_of(c.post(f"{ANN}/tasks/{task}/prelabel", json={"model": "landcover"}), 422)
        assert "NAME@ALIAS" in bad["fix"]
        other = error_of(c.post(f"{ANN}/tasks/{task}/prelabel", json={"model": "landcover/1", "item": "nope"}), 422)
        assert "nope" in other["error"]
    with team.client("bob") as c:
        denied = error_of(c.post(f"{ANN}/tasks/{task}/prelabel", json={"model": "landcover/1"}), 403)
        assert "not assigned to you" in denied["error"]
    with team.client("vera") as c:
        error_of(c.post(f"{ANN}/tasks/{task}/prelabel", json={"model": "landcover/1"}), 403)
    assign(team, frozen, "ann")
    with team.client("ann") as c:
        assert c.post(f"{ANN}/tasks/{frozen}/submit").status_code == 200
    with team.client("rita") as c:
        assert c.post(f"{ANN}/tasks/{frozen}/review", json={"decision": "accept"}).status_code == 200
        shut = error_of(c.post(f"{ANN}/tasks/{frozen}/prelabel", json={"model": "landcover/1"}), 409)
        assert "accepted" in shut["error"]
        with _three_bands(tmp_path).open("rb") as f:
            r = c.post(f"/projects/{SLUG}/uploads", files={"file": ("rgb.tif", f)}, data={"kind": "imagery"})
        assert r.status_code == 201, r.text
        both = c.post(f"{ANN}/sets", json={"name": "two", "items": [ITEM, "rgb"]})
        assert both.status_code == 201, both.text
        first = c.get(f"{ANN}/sets/{both.json()['id']}/tasks").json()["features"][0]["id"]
        lacking = error_of(c.post(f"{ANN}/tasks/{first}/prelabel", json={"model": "landcover/1", "item": "rgb"}), 422)
        assert lacking["error"] == "item 'rgb' has no band blue, green, red, nir that models:/landcover/1 needs"


def test_the_client_prelabels_ranks_and_accepts(team: Assist) -> None:
    from eoengine.client import Client
    from eoengine.errors import Invalid

    made = make_set(team, "client")
    task = tasks_of(team, made["id"])[(2, 1)]["id"]
    assign(team, task, "ann")
    with Client(team.live.url, team.tokens["ann"]) as ann:
        assert ann.prelabel_task(SLUG, task, "landcover@champion").wait(timeout=120).state == "succeeded"
        pending = [f for f in ann.task_features(SLUG, task)["features"] if f["properties"].get("suggestion")]
        accepted = ann.accept_feature(SLUG, pending[0]["id"], 1)
        assert accepted["properties"]["version"] == 2 and "suggestion" not in accepted["properties"]
        with pytest.raises(Invalid, match="is not one of set"):
            ann.prelabel_task(SLUG, task, "landcover/1", item="rgb")
    with Client(team.live.url, team.tokens["rita"]) as rita:
        assert rita.rank_tasks(SLUG, made["id"], "landcover/1").wait(timeout=120).state == "succeeded"
    assert all(p["priority"] is not None for k, p in tasks_of(team, made["id"]).items() if p["state"] == "open")
