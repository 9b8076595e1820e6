"""The annotation API over real HTTP on the sample Landsat project: sets, exact features, bad input, review, queue.

One server (SQLite) for the module: project ``nc`` from the nc-landsat template (scene
``lsat7_2000``, EPSG:32119, 489 x 443 px, patch 32: blocks of 128 px, so 4 x 4 tasks) and an
imagery upload ``crop2026`` (its top-left 200 x 200 px, dated by the upload: a later date).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from browse_support import error_of
from conftest import NC
from platform_server import LiveServer, live_platform
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import shape

from eoengine.platform.annotation.checks import MAX_VERTICES
from eoengine.platform.annotation.grid import cell, grid_of

SCENE, CROP = "lsat7_2000", "crop2026"
ANN = "/projects/nc/annotation"
TO_LONLAT = Transformer.from_crs("EPSG:32119", "EPSG:4326", always_xy=True)
USERS = {"vera": "viewer", "ann": "annotator", "bob": "annotator", "rita": "reviewer"}


@dataclass
class Team:
    """The server, and an API token per user name (``admin`` too); ``outsider`` is no member."""

    live: LiveServer
    tokens: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        return self.live.client(self.tokens[who])


def _crop(folder: Path) -> Path:
    with rasterio.open(NC / "data" / "lsat7_2000_40.tif") as ds:
        window = Window(0, 0, 200, 200)
        profile = ds.profile | {"width": 200, "height": 200}  # the window starts at the origin: same transform
        data = ds.read(window=window)
    path = folder / f"{CROP}.tif"
    with rasterio.open(path, "w", **profile) as out:
        out.write(data)
    return path


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    home = tmp_path_factory.mktemp("annotation")
    with live_platform(home / "home") as live:
        tokens = {"admin": live.admin.token, "outsider": live.user("olga")}
        with live.client() as c:
            assert c.post("/projects", json={"name": "nc", "template": "nc-landsat"}).status_code == 201
            for name, role in USERS.items():
                tokens[name] = live.user(name)
                assert c.post("/projects/nc/members", json={"username": name, "role": role}).status_code == 201
            with _crop(home).open("rb") as f:
                r = c.post("/projects/nc/uploads", files={"file": (f"{CROP}.tif", f)}, data={"kind": "imagery"})
            assert r.status_code == 201, r.text
        yield Team(live, tokens)


def make_set(team: Team, name: str, **body: Any) -> dict[str, Any]:
    """A new set (as the reviewer)."""
    with team.client("rita") as c:
        r = c.post(f"{ANN}/sets", json={"name": name, "items": [SCENE]} | body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def tasks_of(team: Team, set_id: int, who: str = "rita") -> dict[tuple[int, int], dict[str, Any]]:
    """(row, col) → the task's properties."""
    with team.client(who) as c:
        found = c.get(f"{ANN}/sets/{set_id}/tasks").json()["features"]
    return {(f["properties"]["row"], f["properties"]["col"]): f["properties"] for f in found}


def assign(team: Team, task_id: int, user: str | None) -> None:
    with team.client("rita") as c:
        r = c.post(f"{ANN}/tasks/{task_id}/assign", json={"user": user})
    assert r.status_code == 200, r.text


def pixel_polygon(grid_json: dict[str, Any], rows: tuple[float, float], cols: tuple[float, float]) -> dict[str, Any]:
    """A polygon whose vertices are pixel corners (row, col) of the grid, in lon/lat by pyproj."""
    affine = grid_of(grid_json).affine
    corners = [(cols[0], rows[0]), (cols[1], rows[0]), (cols[1], rows[1]), (cols[0], rows[1]), (cols[0], rows[0])]
    ring = [list(TO_LONLAT.transform(*(affine @ (c, r)))) for c, r in corners]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"label": 5} | props}


def features_of(team: Team, task_id: int) -> list[dict[str, Any]]:
    with team.client("vera") as c:
        return list(c.get(f"{ANN}/tasks/{task_id}/features").json()["features"])


def test_a_set_has_one_task_per_block_of_the_first_items_grid(team: Team) -> None:
    made = make_set(team, "grid")
    assert made["block_size"] == 128 and made["kind"] == "classes" and made["counts"] == {"open": 16}
    assert [c["value"] for c in made["classes"]] == [1, 2, 3, 4, 5, 6, 7]
    assert made["completeness"] == {"background": 1} and made["items"][0]["id"] == SCENE
    assert made["items"][0]["datetime"].startswith("2000-05-24")
    grid = grid_of(made["grid"])
    assert (grid.width, grid.height, grid.crs_wkt) == (489, 443, "EPSG:32119")
    tasks = tasks_of(team, made["id"])
    assert sorted(tasks) == [(r, c) for r in range(4) for c in range(4)]
    with team.client("vera") as c:
        listed = c.get(f"{ANN}/sets/{made['id']}/tasks").json()["features"]
        one = c.get(f"{ANN}/tasks/{tasks[(3, 2)]['id']}").json()
    assert "gold" not in listed[0]["properties"] and "gold" in tasks[(0, 0)]
    expected = cell(grid, 128, 3, 2)
    assert expected.window == (384, 256, 59, 128)  # the last row of blocks is cut at the scene's edge
    assert shape(one["geometry"]).equals_exact(expected.lonlat, 1e-9)
    assert shape(one["complete_area"]).area == pytest.approx(expected.lonlat.area, rel=1e-6)
    assert one["state"] == "open" and one["assignee"] is None and one["comments"] == []


def test_an_area_of_interest_makes_only_its_cells(team: Team) -> None:
    whole = make_set(team, "whole")
    with team.client("vera") as c:
        corner = c.get(f"{ANN}/tasks/{tasks_of(team, whole['id'])[(0, 0)]['id']}").json()["geometry"]
    small = shape(corner).buffer(-0.002)
    made = make_set(team, "aoi", aoi=small.__geo_interface__, block_size=64, background=6)
    assert made["counts"] == {"open": 4} and made["completeness"] == {"background": 6}
    assert sorted(tasks_of(team, made["id"])) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_bad_sets_are_refused(team: Team) -> None:
    with team.client("rita") as c:
        for body, status, words in [
            ({"items": ["nope"]}, 422, "no item 'nope'"),
            ({"items": [SCENE], "kind": "change"}, 422, "two items"),
            ({"items": [SCENE], "background": 99}, 422, "background 99"),
            ({"items": [SCENE], "aoi": {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 10]]]}},
             422, "overlaps no cell"),
            ({"items": [SCENE], "aoi": {"type": "Point", "coordinates": [-78.7, 35.7]}}, 422, "aoi is a Point"),
            ({"items": [SCENE], "block_size": 1}, 422, "more than 10000"),  # 216,627 one-pixel cells
            ({"items": [SCENE], "classes": [{"value": 1, "name": "a"}, {"value": "1", "name": "b"}]}, 422, "same value"),
            ({"items": []}, 422, "items"),
        ]:
            error = error_of(c.post(f"{ANN}/sets", json={"name": "bad"} | body), status)
            assert words in error["error"], (body, error)
        make_set(team, "taken")
        assert "named 'taken'" in error_of(c.post(f"{ANN}/sets", json={"name": "taken", "items": [SCENE]}), 409)["error"]
        error_of(c.get(f"{ANN}/sets/999999"), 404)


def test_pixel_corners_are_stored_exactly_with_the_native_crs(team: Team) -> None:
    made = make_set(team, "exact")
    task = tasks_of(team, made["id"])[(0, 0)]
    assign(team, task["id"], "ann")
    polygon = pixel_polygon(made["grid"], (10, 20), (10, 30))
    with team.client("ann") as c:
        r = c.post(f"{ANN}/tasks/{task['id']}/features", json=feature(polygon))
    assert r.status_code == 201, r.text
    stored = features_of(team, task["id"])
    assert [f["id"] for f in stored] == [r.json()["id"]]
    assert stored[0]["geometry"]["coordinates"] == polygon["coordinates"]  # the very floats sent
    props = stored[0]["properties"]
    assert props | {"updated_at": None} == {
        "label": 5, "version": 1, "task": task["id"], "item": SCENE, "items": [SCENE], "native_crs": "EPSG:32119",
        "source": "drawn", "created_by": "ann", "updated_by": "ann", "updated_at": None}
    back = Transformer.from_crs("EPSG:4326", "EPSG:32119", always_xy=True)
    native = {"type": "Polygon", "coordinates": [[list(back.transform(x, y)) for x, y in polygon["coordinates"][0]]]}
    grid = grid_of(made["grid"])
    burnt = rasterize([(native, 1)], out_shape=(grid.height, grid.width), transform=grid.affine)
    expected = np.zeros_like(burnt)
    expected[10:20, 10:30] = 1
    assert (burnt == expected).all()  # the vertices on pixel corners rasterise onto those pixels
    with team.client("vera") as c:
        assert c.get(f"{ANN}/tasks/{task['id']}").json()["state"] == "in_progress"  # the first write started it


def _bad_features(grid_json: dict[str, Any], task_id: int) -> list[tuple[str, dict[str, Any], int, str]]:
    inside = pixel_polygon(grid_json, (10, 20), (10, 30))
    ring = inside["coordinates"][0]
    bowtie = {"type": "Polygon", "coordinates": [[ring[0], ring[2], ring[1], ring[3], ring[0]]]}
    far = pixel_polygon(grid_json, (300, 310), (300, 310))  # cell (2, 2)
    many = [[ring[0][0] + 1e-6 * np.cos(a), ring[0][1] + 1e-6 * np.sin(a)]
            for a in np.linspace(0, 2 * np.pi, MAX_VERTICES + 1)[:-1]]
    return [
        ("bowtie", feature(bowtie), 422, "Self-intersection"),
        ("outside the cell", feature(far), 422, f"outside task {task_id}'s cell"),
        ("wrong crs member", feature(inside) | {"crs": {"type": "name", "properties": {"name": "EPSG:32119"}}},
         422, "not lon/lat"),
        ("unknown class", feature(inside, label=42), 422, "label 42 is no class"),
        ("unknown item", feature(inside, item="nope"), 422, "item 'nope'"),
        ("too many vertices", feature({"type": "Polygon", "coordinates": [[*many, many[0]]]}), 422,
         f"more than {MAX_VERTICES}"),
        ("out of range", feature({"type": "Point", "coordinates": [-200, 35.8]}), 422, "out of lon/lat range"),
        ("a collection", feature({"type": "GeometryCollection", "geometries": []}), 422, "'GeometryCollection'"),
        ("no coordinates", feature({"type": "Polygon", "coordinates": [[1, 2]]}), 422, "malformed"),
    ]


def test_every_bad_feature_is_refused_and_nothing_is_stored(team: Team) -> None:
    made = make_set(team, "bad", items=[SCENE, CROP])
    tasks = tasks_of(team, made["id"])
    task, far = tasks[(0, 0)]["id"], tasks[(3, 3)]["id"]
    assign(team, task, "ann")
    assign(team, far, "ann")
    with team.client("ann") as c:
        for name, body, status, words in _bad_features(made["grid"], task):
            error = error_of(c.post(f"{ANN}/tasks/{task}/features", json=body), status)
            assert words in error["error"], (name, error)
        corner = pixel_polygon(made["grid"], (400, 410), (450, 460))  # cell (3, 3): the scene has it, the crop not
        error = error_of(c.post(f"{ANN}/tasks/{far}/features", json=feature(corner, item=CROP)), 422)
        assert f"outside the imagery of item '{CROP}'" in error["error"]
        assert c.post(f"{ANN}/tasks/{far}/features", json=feature(corner)).status_code == 201  # the scene has it
    with team.client("bob") as c:  # an annotator the task is not assigned to
        error = error_of(c.post(f"{ANN}/tasks/{task}/features", json=feature(pixel_polygon(made["grid"], (1, 2), (1, 2)))),
                         403)
        assert "not assigned to you" in error["error"] and "next" in error["fix"]
    assert features_of(team, task) == []
    with team.client("vera") as c:
        assert c.get(f"{ANN}/tasks/{task}").json()["state"] == "open"  # no write started it
        assert [e["action"] for e in c.get(f"{ANN}/tasks/{task}/history").json()["events"]] == ["task.assign"]


def test_stale_edits_get_409_with_the_current_feature(team: Team) -> None:
    made = make_set(team, "stale")
    task = tasks_of(team, made["id"])[(1, 1)]["id"]
    assign(team, task, "ann")
    first = pixel_polygon(made["grid"], (130, 140), (130, 140))
    with team.client("ann") as one, team.client("rita") as two:
        created = one.post(f"{ANN}/tasks/{task}/features", json=feature(first)).json()
        fid = created["id"]
        assert two.post(f"{ANN}/tasks/{task}/submit").status_code == 403  # only the assignee submits
        moved = one.put(f"{ANN}/features/{fid}", json=feature(first, label=6, version=1))
        assert moved.status_code == 200 and moved.json()["properties"]["version"] == 2
        stale = one.put(f"{ANN}/features/{fid}", json=feature(first, label=7, version=1))
        body = error_of(stale, 409)
        assert body["current"]["properties"]["version"] == 2 and body["current"]["properties"]["label"] == 6
        error_of(one.delete(f"{ANN}/features/{fid}", params={"version": 1}), 409)
        assert one.delete(f"{ANN}/features/{fid}", params={"version": 2}).json() == {"id": fid, "version": 3,
                                                                                     "deleted": True}
        gone = error_of(one.put(f"{ANN}/features/{fid}", json=feature(first, version=3)), 409)
        assert gone["current"]["properties"]["deleted"] is True
        error_of(one.put(f"{ANN}/features/{fid}", json=feature(first)), 422)  # no version
        error_of(one.put(f"{ANN}/features/{fid}", json=feature(first, version="2")), 422)
        error_of(one.delete(f"{ANN}/features/{fid}"), 422)
        error_of(one.put(f"{ANN}/features/999999", json=feature(first, version=1)), 404)
    assert features_of(team, task) == []


def test_submit_reject_fix_submit_accept_with_history(team: Team) -> None:
    made = make_set(team, "review")
    task = tasks_of(team, made["id"])[(0, 1)]["id"]
    assign(team, task, "ann")
    square = pixel_polygon(made["grid"], (5, 15), (140, 150))
    with team.client("ann") as ann, team.client("rita") as rita:
        fid = ann.post(f"{ANN}/tasks/{task}/features", json=feature(square)).json()["id"]
        error_of(rita.post(f"{ANN}/tasks/{task}/review", json={"decision": "accept"}), 409)  # not submitted yet
        assert ann.post(f"{ANN}/tasks/{task}/submit").json()["state"] == "submitted"
        error_of(ann.put(f"{ANN}/features/{fid}", json=feature(square, version=1)), 409)  # frozen for the annotator
        error_of(rita.post(f"{ANN}/tasks/{task}/review", json={"decision": "reject"}), 422)  # no reason
        pin = {"lon": -78.74, "lat": 35.8, "text": "this is forest, not water"}
        rejected = rita.post(f"{ANN}/tasks/{task}/review", json={"decision": "reject", "pins": [pin]}).json()
        assert rejected["state"] == "rejected" and rejected["reviewer"] == "rita"
        assert [(c["lon"], c["lat"], c["text"], c["author"]) for c in rejected["comments"]] == [
            (-78.74, 35.8, pin["text"], "rita")]
        nxt = ann.post(f"{ANN}/sets/{made['id']}/next").json()
        assert nxt["id"] == task  # the rejected task comes back first
        assert ann.put(f"{ANN}/features/{fid}", json=feature(square, label=6, version=1)).status_code == 200
        assert ann.post(f"{ANN}/tasks/{task}/comments", json={"text": "fixed"}).status_code == 201
        assert ann.post(f"{ANN}/tasks/{task}/submit").json()["state"] == "submitted"
        fixed = rita.put(f"{ANN}/features/{fid}", json=feature(square, label=5, version=2))  # fix and accept
        assert fixed.status_code == 200 and fixed.json()["properties"]["updated_by"] == "rita"
        assert rita.post(f"{ANN}/tasks/{task}/review", json={"decision": "accept"}).json()["state"] == "accepted"
        error_of(rita.put(f"{ANN}/features/{fid}", json=feature(square, version=3)), 409)  # accepted: frozen
        error_of(ann.post(f"{ANN}/tasks/{task}/submit"), 409)
        history = ann.get(f"{ANN}/tasks/{task}/history").json()["events"]
    assert [e["action"] for e in history] == [
        "task.assign", "feature.create", "task.submit", "task.reject", "feature.update", "task.comment",
        "task.submit", "feature.update", "task.accept"]
    assert [e["actor"] for e in history] == ["rita", "ann", "ann", "rita", "ann", "ann", "ann", "rita", "rita"]
    assert history[1]["data"] == {"task": task, "version": 1, "label": "5"} and history[3]["data"]["pins"] == 1


def test_the_queue_hands_out_distinct_tasks(team: Team) -> None:
    made = make_set(team, "queue", aoi=None, block_size=256)  # 2 x 2 tasks
    with team.client("ann") as ann, team.client("bob") as bob, team.client("vera") as vera:
        a1 = ann.post(f"{ANN}/sets/{made['id']}/next").json()
        b1 = bob.post(f"{ANN}/sets/{made['id']}/next").json()
        assert (a1["row"], a1["col"], a1["assignee"]) == (0, 0, "ann") and (b1["row"], b1["col"], b1["assignee"]) == (
            0, 1, "bob")
        assert ann.post(f"{ANN}/sets/{made['id']}/next").json()["id"] == a1["id"]  # still theirs until submitted
        assert ann.post(f"{ANN}/tasks/{a1['id']}/submit").status_code == 200
        a2 = ann.post(f"{ANN}/sets/{made['id']}/next").json()
        assert bob.post(f"{ANN}/tasks/{b1['id']}/submit").status_code == 200
        b2 = bob.post(f"{ANN}/sets/{made['id']}/next").json()
        assert len({a1["id"], b1["id"], a2["id"], b2["id"]}) == 4
        assert ann.post(f"{ANN}/tasks/{a2['id']}/submit").status_code == 200
        assert "no task left" in error_of(ann.post(f"{ANN}/sets/{made['id']}/next"), 404)["error"]
        error_of(vera.post(f"{ANN}/sets/{made['id']}/next"), 403)
    counts = tasks_of(team, made["id"])
    assert sorted(t["assignee"] for t in counts.values()) == ["ann", "ann", "bob", "bob"]


def test_a_change_set_feature_carries_from_and_to(team: Team) -> None:
    made = make_set(team, "change", items=[CROP, SCENE], kind="change")
    assert [i["id"] for i in made["items"]] == [SCENE, CROP]  # ordered by date
    task = tasks_of(team, made["id"])[(0, 0)]["id"]
    assign(team, task, "ann")
    square = pixel_polygon(made["grid"], (50, 60), (50, 60))
    with team.client("ann") as c:
        r = c.post(f"{ANN}/tasks/{task}/features", json=feature(square, label=None, **{"from": 5, "to": 1}))
        assert r.status_code == 201, r.text
        props = r.json()["properties"]
        assert (props["from"], props["to"], props["label"], props["items"]) == (5, 1, "change", [SCENE, CROP])
        same = c.post(f"{ANN}/tasks/{task}/features", json=feature(square, label="no-change"))
        assert same.json()["properties"]["label"] == "no-change"
        for body, words in [(feature(square, label=5), "neither 'change'"),
                            (feature(square, label=None, **{"from": 5, "to": 9}), "to 9"),
                            (feature(square, label="no-change", **{"from": 5, "to": 1}), "contradicts")]:
            assert words in error_of(c.post(f"{ANN}/tasks/{task}/features", json=body), 422)["error"]
    assert len(features_of(team, task)) == 2


def test_a_cell_edge_tolerates_half_a_pixel(team: Team) -> None:
    made = make_set(team, "edge")
    task = tasks_of(team, made["id"])[(1, 1)]["id"]  # pixel rows and cols 128 to 255
    assign(team, task, "ann")
    with team.client("ann") as c:
        near = c.post(f"{ANN}/tasks/{task}/features", json=feature(pixel_polygon(made["grid"], (127.6, 130), (140, 150))))
        assert near.status_code == 201, near.text  # 0.4 px over the edge: a click on the boundary
        far = c.post(f"{ANN}/tasks/{task}/features", json=feature(pixel_polygon(made["grid"], (127.3, 130), (140, 150))))
        assert "outside task" in error_of(far, 422)["error"]  # 0.7 px over: in the neighbour's cell
    assert len(features_of(team, task)) == 1
