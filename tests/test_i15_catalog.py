"""The model catalog over real HTTP: cards of registered versions, their filters, grades and permissions.

The tiny project is really built and trained (1 epoch) and its model registered twice through the
API; one version then carries the registry tags that ``eoengine grade`` writes
(:func:`eoengine.grading.record.version_tags`), the other stays ungraded. The training footprint is
checked against the dataset's own chip index reprojected to lon/lat.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import pytest
from browse_support import error_of
from models_support import trained_project
from platform_server import EXAMPLES, LiveServer, live_platform
from shapely.geometry import shape

from eoengine.datasets.store import INDEX


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    from mlflow.tracking import MlflowClient

    with live_platform(tmp_path_factory.mktemp("catalog") / "home", data_roots=(EXAMPLES,)) as live:
        made = trained_project(live)
        run_id = made["run"].run_id
        with live.client() as c:
            for alias in ("champion", None):
                body = {"run_id": run_id, "name": "landcover"} | ({"alias": alias} if alias else {})
                assert c.post("/projects/tiny/models", json=body).status_code == 201
        client = MlflowClient(tracking_uri=made["run"].tracking_uri, registry_uri=made["run"].tracking_uri)
        for key, value in {"eoengine.grade": "B", "eoengine.grade.robustness_haze": "fail",
                           "eoengine.grade.accuracy": "pass"}.items():
            client.set_model_version_tag("landcover", "1", key, value)
        yield live, made | {"viewer": live.user("vic-catalog")}


def _cards(live: LiveServer, token: str | None = None, **query: str) -> list[dict[str, Any]]:
    with live.client(token) as c:
        r = c.get("/projects/tiny/catalog", params=query)
    assert r.status_code == 200, r.text
    return list(r.json())


def test_a_card_per_version_with_classes_bands_footprint_and_grades(catalog: tuple[LiveServer, dict[str, Any]]) -> None:
    live, made = catalog
    cards = _cards(live)
    assert [(c["name"], c["version"], c["aliases"]) for c in cards] == [("landcover", "2", []),
                                                                        ("landcover", "1", ["champion"])]
    newest, graded = cards
    assert newest["task"] == "segmentation" and newest["ref"] == "models:/landcover/2"
    assert [k["name"] for k in newest["classes"]][:1] == ["forest"]
    assert all(k["color"].startswith("#") and len(k["color"]) == 7 for k in newest["classes"])
    assert newest["bands"] and all(b["name"] for b in newest["bands"])
    assert newest["resolution"] and newest["resolution"] > 0
    assert newest["grade"] is None and newest["capabilities"] == {}
    assert graded["grade"] == "B" and graded["capabilities"] == {"accuracy": "pass", "robustness_haze": "fail"}
    chips = gpd.read_parquet(made["built"].path / INDEX).to_crs(4326).geometry.union_all()
    footprint = shape(newest["footprint"])
    assert -180 <= footprint.bounds[0] <= footprint.bounds[2] <= 180
    assert footprint.symmetric_difference(chips).area < 0.01 * chips.area


def test_filters_by_task_class_and_area(catalog: tuple[LiveServer, dict[str, Any]]) -> None:
    live, _ = catalog
    w, s, e, n = shape(_cards(live)[0]["footprint"]).bounds
    inside = f"{w},{s},{(w + e) / 2},{(s + n) / 2}"
    assert len(_cards(live, task="segmentation", **{"class": "forest"}, bbox=inside)) == 2
    assert _cards(live, task="regression") == []
    assert _cards(live, **{"class": "glacier"}) == []
    assert _cards(live, bbox=f"{e + 1},{s},{e + 2},{n}") == []


def test_bad_filters_and_who_may_read(catalog: tuple[LiveServer, dict[str, Any]]) -> None:
    live, made = catalog
    with live.client() as c:
        assert "bbox" in error_of(c.get("/projects/tiny/catalog", params={"bbox": "1,2,3"}), 422)["error"]
        error_of(c.get("/projects/tiny/catalog", params={"bbox": "10,80,20,70"}), 422)
        error_of(c.get("/projects/nope/catalog"), 404)
    with live.client(made["viewer"]) as v:
        error_of(v.get("/projects/tiny/catalog"), 404)  # not a member
    with live.client() as c:
        assert c.post("/projects/tiny/members", json={"username": "vic-catalog", "role": "viewer"}).status_code == 201
    assert len(_cards(live, made["viewer"])) == 2
