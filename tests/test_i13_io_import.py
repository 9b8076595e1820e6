"""Import into an annotation set: vector files and label rasters, cut per cell, checked, all or nothing; round trips."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from annotation_io_support import BASE, CLASSES, add_copy, annotation_project, set_state, user_id
from browse_support import error_of
from conftest import write_raster
from platform_server import LiveServer, live_platform
from shapely.geometry import shape
from sqlalchemy import func, select

from eoengine.datasets.schema import ClassInfo
from eoengine.inference.output import ClassCoding, map_profile
from eoengine.platform.annotation.grid import grid_of
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, Event, LabelFeature


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def project(live: LiveServer) -> dict[str, Any]:
    """A project with a set of 64-pixel cells on the sample stack (no background class), every task the admin's."""
    made = annotation_project(live, background=None)
    set_state(live, list(made["tasks"].values()), "open", assignee=user_id(live, "admin"))
    return made


def _collection(*features: tuple[dict[str, Any], Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": g, "properties": {"label": label}} for g, label in features]}


def _import(live: LiveServer, set_id: int, name: str, content: bytes, token: str | None = None) -> Any:
    with live.client(token) as c:
        return c.post(f"{BASE}/sets/{set_id}/import", files={"file": (name, content)})


def _stored(live: LiveServer) -> int:
    with live.platform.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(LabelFeature)) or 0)


def test_geojson_import_then_export_gives_the_same_features(live: LiveServer, project: dict[str, Any]) -> None:
    grid = project["grid"]
    point = {"type": "Point", "coordinates": list(grid.lonlat(150.5, 140.5))}
    sent = _collection((grid.box(10, 20, 13, 25), 2), (grid.box(70, 70, 90, 100), 5), (point, 1))
    r = _import(live, project["set"], "labels.geojson", json.dumps(sent).encode())
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 3, "tasks": 3}
    with live.client() as c:
        back = c.get(f"{BASE}/sets/{project['set']}/export", params={"state": "all"}).json()["features"]
    assert [(f["geometry"], f["properties"]["label"]) for f in back] == [
        (f["geometry"], f["properties"]["label"]) for f in sent["features"]]
    assert {f["properties"]["source"] for f in back} == {"import"} and {f["properties"]["item"] for f in back} == {
        project["item"]}
    with live.platform.db.read() as s:
        assert len(s.scalars(select(Event).where(Event.action == "feature.create")).all()) == 3
        states = {(t.row, t.col): t.state for t in s.scalars(select(AnnotationTask))}
    assert states[(0, 0)] == states[(1, 1)] == states[(2, 2)] == "in_progress" and states[(0, 1)] == "open"


def test_a_feature_spanning_cells_is_cut_per_cell(live: LiveServer, project: dict[str, Any]) -> None:
    grid = project["grid"]
    whole = grid.box(50, 50, 80, 80)
    r = _import(live, project["set"], "span.geojson", json.dumps(_collection((whole, 4))).encode())
    assert r.json() == {"imported": 4, "tasks": 4}
    with live.platform.db.read() as s:
        parts = [(shape(f.geometry), f.task_id) for f in s.scalars(select(LabelFeature))]
    assert sorted(t for _, t in parts) == sorted(project["tasks"][k] for k in ((0, 0), (0, 1), (1, 0), (1, 1)))
    assert sum(p.area for p, _ in parts) == pytest.approx(shape(whole).area, rel=1e-6)


def test_a_bad_import_lists_every_bad_feature_and_stores_nothing(live: LiveServer, project: dict[str, Any]) -> None:
    grid = project["grid"]
    bowtie = {"type": "Polygon", "coordinates": [[list(grid.lonlat(5, 5)), list(grid.lonlat(15, 15)),
                                                  list(grid.lonlat(5, 15)), list(grid.lonlat(15, 5)),
                                                  list(grid.lonlat(5, 5))]]}
    far = {"type": "Point", "coordinates": [10.0, 10.0]}
    sent = _collection((grid.box(10, 20, 13, 25), 2), (grid.box(20, 20, 30, 30), 9), (far, 1), (bowtie, 3))
    body = error_of(_import(live, project["set"], "bad.geojson", json.dumps(sent).encode()), 422)
    reasons = {p["index"]: p["reason"] for p in body["problems"]}  # type: ignore[attr-defined]
    assert sorted(reasons) == [1, 2, 3]  # the bow-tie is refused as the file has it, not repaired (make_valid)
    assert "9" in reasons[1] and "no task" in reasons[2]
    assert reasons[3].startswith("the Polygon is not valid: Self-intersection[")
    assert _stored(live) == 0
    huge = {"type": "Polygon", "coordinates": [[list(grid.lonlat(10 + 5 * np.sin(t), 10 + 5 * np.cos(t)))
                                                for t in np.linspace(0, 2 * np.pi, 10_001)]]}
    huge["coordinates"][0][-1] = huge["coordinates"][0][0]
    body = error_of(_import(live, project["set"], "huge.geojson", json.dumps(_collection((huge, 1))).encode()), 422)
    assert "more than 10000" in body["problems"][0]["reason"]  # type: ignore[index]


def test_every_index_is_the_features_position_in_the_file(live: LiveServer, project: dict[str, Any]) -> None:
    grid = project["grid"]
    sent = _collection((grid.box(10, 20, 13, 25), 2), (grid.box(20, 20, 30, 30), 9))
    sent["features"].insert(0, {"type": "Feature", "geometry": None, "properties": {"label": 1}})
    empty = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}, "properties": {"label": 1}}
    sent["features"].insert(2, empty)
    body = error_of(_import(live, project["set"], "gaps.geojson", json.dumps(sent).encode()), 422)
    reasons = {p["index"]: p["reason"] for p in body["problems"]}  # type: ignore[attr-defined]
    assert sorted(reasons) == [0, 2, 3] and "no geometry" in reasons[0] and "no geometry" in reasons[2]
    assert "label 9" in reasons[3] and _stored(live) == 0


def test_a_reviewer_imports_into_any_primary_task_an_annotator_only_into_theirs(live: LiveServer) -> None:
    made = annotation_project(live, background=None)
    grid, tasks = made["grid"], made["tasks"]
    ann, rita = live.user("ann"), live.user("rita")
    with live.client() as c:
        for name, role in (("ann", "annotator"), ("rita", "reviewer")):
            assert c.post("/projects/tiny/members", json={"username": name, "role": role}).status_code == 201
    set_state(live, [tasks[(0, 1)]], "in_progress", assignee=user_id(live, "ann"))
    set_state(live, [tasks[(1, 1)]], "accepted", assignee=user_id(live, "ann"))
    copy = add_copy(live, tasks[(0, 0)], "gold", user_id(live, "rita"))
    free, anns = _collection((grid.box(10, 10, 20, 20), 1)), _collection((grid.box(10, 70, 20, 80), 2))
    body = error_of(_import(live, made["set"], "f.geojson", json.dumps(free).encode(), ann), 422)
    assert "not assigned to you" in body["problems"][0]["reason"]  # type: ignore[index]
    assert _import(live, made["set"], "a.geojson", json.dumps(anns).encode(), ann).json() == {"imported": 1, "tasks": 1}
    both = _collection((grid.box(10, 10, 20, 20), 1), (grid.box(10, 70, 20, 80), 2))
    r = _import(live, made["set"], "b.geojson", json.dumps(both).encode(), rita)
    assert r.json() == {"imported": 2, "tasks": 2}, r.text
    with live.platform.db.read() as s:
        where = sorted(f.task_id for f in s.scalars(select(LabelFeature)))
        free_task, copied = s.get(AnnotationTask, tasks[(0, 0)]), s.get(AnnotationTask, copy)
        assert free_task is not None and copied is not None
        assert (free_task.state, free_task.assignee_id) == ("open", None)  # still in the queue
    assert where == sorted([tasks[(0, 0)], tasks[(0, 1)], tasks[(0, 1)]]) and copy not in where
    with live.client(ann) as c:
        assert c.post(f"{BASE}/sets/{made['set']}/next").json()["id"] == tasks[(0, 1)]  # hers first
    accepted = _collection((grid.box(70, 70, 80, 80), 1))
    body = error_of(_import(live, made["set"], "c.geojson", json.dumps(accepted).encode(), rita), 422)
    assert "is accepted" in body["problems"][0]["reason"]  # type: ignore[index]


def test_an_annotator_imports_only_into_cells_assigned_to_them(live: LiveServer, project: dict[str, Any]) -> None:
    token = live.user("ann")
    with live.client() as c:
        assert c.post("/projects/tiny/members", json={"username": "ann", "role": "annotator"}).status_code == 201
    with live.platform.db.write() as s:
        task = s.get(AnnotationTask, project["tasks"][(0, 0)])
        assert task is not None
        task.assignee_id = user_id(live, "ann")
    grid = project["grid"]
    mine = json.dumps(_collection((grid.box(10, 10, 20, 20), 1))).encode()
    theirs = json.dumps(_collection((grid.box(10, 70, 20, 80), 1))).encode()
    body = error_of(_import(live, project["set"], "x.geojson", theirs, token), 422)
    assert "not assigned to you" in body["problems"][0]["reason"]  # type: ignore[index]
    assert _import(live, project["set"], "x.geojson", mine, token).json() == {"imported": 1, "tasks": 1}
    set_state(live, [project["tasks"][(0, 0)]], "submitted")
    body = error_of(_import(live, project["set"], "x.geojson", mine, token), 422)
    assert "is submitted" in body["problems"][0]["reason"]  # type: ignore[index]
    assert _import(live, project["set"], "x.geojson", mine).json() == {"imported": 1, "tasks": 1}  # a reviewer's fix
    set_state(live, [project["tasks"][(0, 0)]], "accepted")
    body = error_of(_import(live, project["set"], "x.geojson", mine), 422)
    assert "is accepted" in body["problems"][0]["reason"]  # type: ignore[index]
    viewer = live.user("viewer")
    with live.client() as c:
        assert c.post("/projects/tiny/members", json={"username": "viewer", "role": "viewer"}).status_code == 201
    error_of(_import(live, project["set"], "x.geojson", mine, viewer), 403)


def test_a_label_raster_imports_as_polygons_that_export_to_the_same_pixels(
        live: LiveServer, project: dict[str, Any], tmp_path: Path) -> None:
    grid = project["grid"]
    values = np.zeros((grid.height, grid.width), dtype=np.uint8)
    values[10:20, 10:30] = 2
    values[100:110, 100:140] = 4
    values[30:34, 60:70] = 1  # across two cells' border
    a = grid.transform
    path = write_raster(tmp_path / "labels.tif", values, crs=grid.crs, res=a[0], origin=(a[2], a[5]), nodata=0)
    r = _import(live, project["set"], "labels.tif", path.read_bytes())
    assert r.status_code == 200, r.text
    set_state(live, list(project["tasks"].values()), "accepted")
    with live.client() as c:
        exported = c.get(f"{BASE}/sets/{project['set']}/export", params={"format": "raster"})
    (tmp_path / "out.tif").write_bytes(exported.content)
    with rasterio.open(tmp_path / "out.tif") as ds:
        back = ds.read(1)
    np.testing.assert_array_equal(back, np.where(values == 0, 255, values))


def test_geopackage_and_zipped_shapefile_import(live: LiveServer, project: dict[str, Any], tmp_path: Path) -> None:
    grid = project["grid"]
    frame = gpd.GeoDataFrame({"label": [3, 4]}, geometry=[shape(grid.box(5, 5, 9, 9)), shape(grid.box(5, 70, 9, 79))],
                             crs="EPSG:4326").to_crs(grid.crs)
    frame.to_file(tmp_path / "l.gpkg", driver="GPKG")
    assert _import(live, project["set"], "l.gpkg", (tmp_path / "l.gpkg").read_bytes()).json() == {
        "imported": 2, "tasks": 2}
    frame.to_file(tmp_path / "l.shp")
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as zf:
        for ext in ("shp", "shx", "dbf", "prj"):
            zf.write(tmp_path / f"l.{ext}", f"l.{ext}")
    assert _import(live, project["set"], "l.zip", (tmp_path / "l.zip").read_bytes()).json() == {
        "imported": 2, "tasks": 2}


def test_unreadable_imports_answer_422(live: LiveServer, project: dict[str, Any], tmp_path: Path) -> None:
    assert "cannot read" in error_of(_import(live, project["set"], "x.geojson", b"not json"), 422)["error"]
    assert "cannot read the label raster" in error_of(_import(live, project["set"], "x.tif", b"II*\0bad"), 422)["error"]
    with rasterio.open(tmp_path / "nocrs.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as ds:
        ds.write(np.ones((1, 4, 4), dtype=np.uint8))
    nocrs = (tmp_path / "nocrs.tif").read_bytes()
    assert "no CRS" in error_of(_import(live, project["set"], "nocrs.tif", nocrs), 422)["error"]
    empty = write_raster(tmp_path / "empty.tif", np.zeros((1, 4, 4), dtype=np.uint8), crs=project["grid"].crs, nodata=0)
    assert "no labelled pixel" in error_of(_import(live, project["set"], "e.tif", empty.read_bytes()), 422)["error"]
    nolabel = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": project["grid"].box(1, 1, 2, 2), "properties": {"class": 1}}]}
    assert "'label'" in error_of(_import(live, project["set"], "x.geojson", json.dumps(nolabel).encode()), 422)["error"]
    with live.client() as c:
        error_of(c.post(f"{BASE}/sets/{project['set']}/import", json={}), 422)
        error_of(c.post(f"{BASE}/sets/{project['set']}/import", files={"other": ("a", b"b")}), 422)
        error_of(c.post(f"{BASE}/sets/999/import", files={"file": ("a.geojson", b"{}")}), 404)
    assert _stored(live) == 0


def test_through_the_annotation_api_draw_review_import_export_and_snapshot(live: LiveServer, tmp_path: Path) -> None:
    made = annotation_project(live)  # for the project and its grid; the set below is made through the API
    grid = made["grid"]
    with live.client() as c:
        r = c.post(f"{BASE}/sets", json={"name": "api", "items": [made["item"]], "kind": "classes", "block_size": 64})
        assert r.status_code == 201, r.text
        set_id = r.json()["id"]
        tasks = {(f["properties"]["row"], f["properties"]["col"]): f["id"]
                 for f in c.get(f"{BASE}/sets/{set_id}/tasks").json()["features"]}
        for key in ((0, 0), (1, 1)):
            assert c.post(f"{BASE}/tasks/{tasks[key]}/assign", json={"user": "admin"}).status_code == 200
        drawn = {"type": "Feature", "geometry": grid.box(3, 4, 9, 12), "properties": {"label": 4}}
        assert c.post(f"{BASE}/tasks/{tasks[(0, 0)]}/features", json=drawn).status_code == 201
        imported = _collection((grid.box(70, 70, 75, 90), 5))
        assert c.post(f"{BASE}/sets/{set_id}/import", files={"file": ("i.geojson", json.dumps(imported))}).json() == {
            "imported": 1, "tasks": 1}
        for key in ((0, 0), (1, 1)):
            assert c.post(f"{BASE}/tasks/{tasks[key]}/submit").status_code == 200
            assert c.post(f"{BASE}/tasks/{tasks[key]}/review", json={"decision": "accept"}).status_code == 200
        back = c.get(f"{BASE}/sets/{set_id}/export").json()["features"]
        snap = c.post(f"{BASE}/sets/{set_id}/snapshots").json()
        raster = c.get(f"{BASE}/sets/{set_id}/export", params={"format": "raster"}).content
    assert [(f["geometry"], f["properties"]["label"], f["properties"]["state"]) for f in back] == [
        (drawn["geometry"], 4, "accepted"), (imported["features"][0]["geometry"], 5, "accepted")]
    assert (snap["features"], snap["tasks"]) == (2, 2)
    (tmp_path / "api.tif").write_bytes(raster)
    with rasterio.open(tmp_path / "api.tif") as ds:
        values = ds.read(1)
    assert (values[3:9, 4:12] == 4).all() and (values[70:75, 70:90] == 5).all()
    assert values[0, 0] == 1 and values[64, 64] == 1 and values[0, 64] == 255  # background: the first class


def test_a_model_class_map_imports_as_suggestions_of_its_classes(live: LiveServer, project: dict[str, Any],
                                                                tmp_path: Path) -> None:
    with live.platform.db.read() as s:
        aset = s.get(AnnotationSet, project["set"])
        assert aset is not None
        grid = grid_of(aset.grid)
    infos = [ClassInfo(index=i, value=c["value"], name=c["name"], color=c["color"]) for i, c in enumerate(CLASSES)]
    coding = ClassCoding.of(infos)
    codes = np.full((grid.height, grid.width), coding.nodata, dtype=np.uint8)  # a map of part of the scene
    codes[130:150, 10:40] = 3
    with rasterio.open(tmp_path / "map.tif", "w", **map_profile(grid, coding)) as dst:
        dst.write(codes, 1)
        dst.write_colormap(1, coding.colormap(infos) or {})
    r = _import(live, project["set"], "map.tif", (tmp_path / "map.tif").read_bytes())
    assert r.json() == {"imported": 1, "tasks": 1}
    with live.client() as c:
        (got,) = c.get(f"{BASE}/sets/{project['set']}/export", params={"state": "all"}).json()["features"]
    assert got["properties"]["label"] == 3 and (got["properties"]["row"], got["properties"]["col"]) == (2, 0)
    assert shape(got["geometry"]).area == pytest.approx(shape(project["grid"].box(130, 10, 150, 40)).area, rel=1e-6)


def test_a_prediction_map_of_class_positions_imports_as_the_classes_its_tags_name(
        live: LiveServer, project: dict[str, Any], tmp_path: Path) -> None:
    with live.platform.db.read() as s:
        aset = s.get(AnnotationSet, project["set"])
        assert aset is not None
        grid = grid_of(aset.grid)
    # a model whose classes are listed in another order than the set's: positions 0..2 name them
    order = [CLASSES[4], CLASSES[2], CLASSES[0]]
    infos = [ClassInfo(index=i, value=c["name"], name=c["name"], color=c["color"]) for i, c in enumerate(order)]
    coding = ClassCoding.of(infos)
    assert coding.kind == "positions"  # as `eoengine predict` writes a map of classes without integer values
    codes = np.full((grid.height, grid.width), coding.nodata, dtype=np.uint8)
    codes[10:20, 10:30], codes[70:80, 70:90], codes[130:140, 130:140] = 0, 1, 2
    with rasterio.open(tmp_path / "pred.tif", "w", **map_profile(grid, coding)) as dst:
        dst.write(codes, 1)
        dst.update_tags(**coding.tags(infos))
    assert _import(live, project["set"], "pred.tif", (tmp_path / "pred.tif").read_bytes()).json() == {
        "imported": 3, "tasks": 3}
    with live.client() as c:
        got = c.get(f"{BASE}/sets/{project['set']}/export", params={"state": "all"}).json()["features"]
    assert sorted((f["properties"]["row"], f["properties"]["label"]) for f in got) == [(0, 5), (1, 3), (2, 1)]


def test_an_import_takes_the_upload_limit_not_the_json_one(tmp_path: Path) -> None:
    from eoengine.platform.app import body_limit
    from eoengine.platform.settings import PlatformSettings

    settings = PlatformSettings(home=tmp_path, max_upload_mb=100, max_json_mb=4)
    cap, name, _ = body_limit(settings, "/api/v1/projects/p/annotation/sets/1/import")
    assert cap > 100 * 2**20 and "upload limit" in name
    assert body_limit(settings, "/api/v1/projects/p/annotation/sets/1/snapshots")[0] == 4 * 2**20
