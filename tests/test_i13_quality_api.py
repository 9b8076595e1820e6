"""Gold tasks, double-labelled cells and annotator statistics over real HTTP on the sample Landsat project.

One server (SQLite) for the module: project ``nc`` from the nc-landsat template (scene
``lsat7_2000``, EPSG:32119, 28.5 m pixels; blocks of 128 px). Three annotators (ann, bob, cara),
a reviewer (rita), a viewer (vera). The expected agreement is computed here with shapely from
the polygons drawn, independently of the server's measures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from browse_support import error_of
from platform_server import live_platform
from pyproj import Transformer
from shapely.geometry import shape
from shapely.ops import transform
from sqlalchemy import select, update
from test_i13_core_api import ANN, Team, feature, make_set, pixel_polygon, tasks_of

from eoengine.platform.annotation.grid import grid_of
from eoengine.platform.db.models import Event

USERS = {"vera": "viewer", "ann": "annotator", "bob": "annotator", "cara": "annotator", "rita": "reviewer"}
TO_NATIVE = Transformer.from_crs("EPSG:4326", "EPSG:32119", always_xy=True)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    with live_platform(tmp_path_factory.mktemp("quality") / "home") as live:
        tokens = {"admin": live.admin.token, "outsider": live.user("olga")}
        with live.client() as c:
            assert c.post("/projects", json={"name": "nc", "template": "nc-landsat"}).status_code == 201
            for name, role in USERS.items():
                tokens[name] = live.user(name)
                assert c.post("/projects/nc/members", json={"username": name, "role": role}).status_code == 201
        yield Team(live, tokens)


def call(team: Team, who: str, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
    with team.client(who) as c:
        r = c.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def draw_and_submit(team: Team, who: str, task_id: int, polygon: dict[str, Any], label: int = 5) -> int:
    made = call(team, who, "POST", f"{ANN}/tasks/{task_id}/features", 201, json=feature(polygon, label=label))
    call(team, who, "POST", f"{ANN}/tasks/{task_id}/submit")
    return int(made["id"])


def review(team: Team, task_id: int, decision: str = "accept") -> None:
    body = {"decision": decision} | ({"comment": "shift it"} if decision == "reject" else {})
    call(team, "rita", "POST", f"{ANN}/tasks/{task_id}/review", json=body)


def native(geometry: dict[str, Any]) -> Any:
    return transform(lambda x, y, z=None: TO_NATIVE.transform(x, y), shape(geometry))


def expected_agreement(ref: dict[str, Any], ann: dict[str, Any], area: dict[str, Any]) -> dict[str, float]:
    """Class 5 (the squares) and background (the rest of the area) IoU, and their mean, with shapely."""
    a, b, cell = native(ref), native(ann), native(area)
    five = a.intersection(b).area / a.union(b).area
    bg_a, bg_b = cell.difference(a), cell.difference(b)
    background = bg_a.intersection(bg_b).area / bg_a.union(bg_b).area
    return {"5": five, "1": background, "mean": (five + background) / 2}


def accepted_task(team: Team, set_id: int, cell: tuple[int, int], who: str, polygon: dict[str, Any]) -> int:
    task = tasks_of(team, set_id)[cell]["id"]
    call(team, "rita", "POST", f"{ANN}/tasks/{task}/assign", json={"user": who})
    draw_and_submit(team, who, task, polygon)
    review(team, task)
    return int(task)


def test_a_gold_task_is_labelled_blind_and_scored(team: Team) -> None:
    made = make_set(team, "gold")
    square = pixel_polygon(made["grid"], (10, 40), (10, 40))  # 30 x 30 px on pixel corners
    gold = accepted_task(team, made["id"], (0, 0), "ann", square)
    answer = call(team, "rita", "POST", f"{ANN}/tasks/{gold}/gold", 201, json={})
    assert answer["task"]["gold"] is True and answer["task"]["copy_kind"] == ""
    copies = {c["assignee"]: c for c in answer["copies"]}
    assert sorted(copies) == ["bob", "cara"]  # every annotator but the task's own
    assert all(c["copy_kind"] == "gold" and c["reference_task_id"] == gold and c["state"] == "open" for c in copies.values())
    again = call(team, "rita", "POST", f"{ANN}/tasks/{gold}/gold", 201, json={"annotators": ["bob"]})
    assert again["copies"] == []  # bob holds a copy already
    bobs = copies["bob"]["id"]

    seen = call(team, "bob", "GET", f"{ANN}/tasks/{bobs}")
    assert (seen["copy_kind"], seen["reference_task_id"], seen["gold"]) == (None, None, None)
    assert seen["row"] == 0 and seen["col"] == 0 and seen["assignee"] == "bob"
    assert tasks_of(team, made["id"], "bob")[(0, 0)]["id"] == bobs and "copy_kind" not in tasks_of(team, made["id"], "bob")[(0, 0)]
    assert tasks_of(team, made["id"], "cara")[(0, 0)]["id"] == copies["cara"]["id"]
    assert tasks_of(team, made["id"], "vera")[(0, 0)]["id"] == gold  # no copy: the primary, copies hidden
    assert len(tasks_of(team, made["id"], "vera")) == 16
    error_of(team.client("bob").get(f"{ANN}/tasks/{gold}/features"), 404)  # the known answer stays out of sight
    error_of(team.client("bob").get(f"{ANN}/tasks/{gold}"), 404)
    error_of(team.client("bob").get(f"{ANN}/tasks/{copies['cara']['id']}/features"), 404)
    assert [e["action"] for e in call(team, "bob", "GET", f"{ANN}/tasks/{bobs}/history")["events"]] == ["task.assign"]
    # nor through the export or the event log: without the review role, gold tasks and the events making copies are left out
    exported = {who: call(team, who, "GET", f"{ANN}/sets/{made['id']}/export", params={"state": "all"})
                for who in ("bob", "rita")}
    assert [f["properties"]["task"] for f in exported["rita"]["features"]] == [gold] and exported["bob"]["features"] == []
    actions = {who: {e["action"] for e in call(team, who, "GET", "/events", params={"project": "nc", "limit": 1000})}
               for who in ("bob", "rita")}
    assert "task.gold" in actions["rita"] and "task.gold" not in actions["bob"] and "task.assign" in actions["bob"]
    assert call(team, "bob", "POST", f"{ANN}/sets/{made['id']}/next")["id"] == bobs
    assert call(team, "vera", "GET", f"{ANN}/sets/{made['id']}")["counts"] == {"accepted": 1, "open": 15}
    rita_view = {f["properties"]["id"]: f["properties"] for f in
                 call(team, "rita", "GET", f"{ANN}/sets/{made['id']}/tasks")["features"]}
    assert rita_view[bobs]["copy_kind"] == "gold" and rita_view[bobs]["reference_task_id"] == gold

    shifted = pixel_polygon(made["grid"], (10, 40), (12, 42))  # 2 px to the east
    draw_and_submit(team, "bob", bobs, shifted)
    stats = call(team, "rita", "GET", f"{ANN}/sets/{made['id']}/stats")
    assert stats["copies"] == {"gold": 2, "double": 0} and stats["counts"] == {"accepted": 1, "open": 15}
    assert stats["classes"] == [1, 2, 3, 4, 5, 6, 7]
    assert [a["user"] for a in stats["annotators"]] == ["ann", "bob", "cara"]  # rita only assigned and reviewed
    bob = next(a for a in stats["annotators"] if a["user"] == "bob")
    expected = expected_agreement(square, shifted, answer["task"]["complete_area"])
    assert bob["gold"]["n"] == 1 and bob["double"] is None
    assert bob["gold"]["iou_per_class"]["5"] == pytest.approx(expected["5"], rel=1e-6)
    assert bob["gold"]["iou_per_class"]["1"] == pytest.approx(expected["1"], rel=1e-6)
    assert bob["gold"]["iou"] == pytest.approx(expected["mean"], rel=1e-6)
    res = grid_of(made["grid"]).res  # 28.5 m
    assert bob["gold"]["boundary_m"] == pytest.approx(res, rel=1e-6)  # k/2 pixels for a k-pixel shift
    assert bob["gold"]["boundary_p95_m"] == pytest.approx(2 * res, rel=1e-6) and bob["gold"]["boundary_px"] == pytest.approx(1.0)
    confusion = bob["confusion"]
    assert confusion[4][4] == 30 * 28 and confusion[4][0] == 30 * 2 and confusion[0][4] == 30 * 2
    assert sum(map(sum, confusion)) == 128 * 128
    own = call(team, "bob", "GET", f"{ANN}/sets/{made['id']}/stats/bob")
    assert own["gold"] == bob["gold"] and [(c["task"], c["reference"], c["kind"]) for c in own["comparisons"]] == [
        (bobs, gold, "gold")]

    cara = copies["cara"]["id"]  # cara's copy is rejected: writable again, so she does not see its score
    draw_and_submit(team, "cara", cara, pixel_polygon(made["grid"], (10, 40), (14, 44)))
    review(team, cara, "reject")
    hers = call(team, "cara", "GET", f"{ANN}/sets/{made['id']}/stats/cara")
    assert hers["comparisons"] == [] and hers["gold"] is None and hers["tasks"]["rejected"] == 1
    by_rita = call(team, "rita", "GET", f"{ANN}/sets/{made['id']}/stats/cara")
    assert [c["state"] for c in by_rita["comparisons"]] == ["rejected"]
    assert by_rita["comparisons"][0]["boundary_m"] == pytest.approx(2 * res, rel=1e-6)
    error_of(team.client("bob").get(f"{ANN}/sets/{made['id']}/stats/cara"), 403)
    error_of(team.client("bob").get(f"{ANN}/sets/{made['id']}/stats"), 403)
    error_of(team.client("vera").get(f"{ANN}/sets/{made['id']}/stats/vera"), 403)
    error_of(team.client("rita").get(f"{ANN}/sets/{made['id']}/stats/nobody"), 404)


def test_double_labelled_cells_go_to_someone_else_and_measure_agreement(team: Team) -> None:
    whole = make_set(team, "double-grid")
    corner = shape(call(team, "vera", "GET", f"{ANN}/tasks/{tasks_of(team, whole['id'])[(0, 0)]['id']}")["geometry"])
    made = make_set(team, "double", aoi=corner.buffer(-0.002).__geo_interface__, block_size=64)
    tasks = tasks_of(team, made["id"])
    assert len(tasks) == 4
    first = tasks[(0, 0)]["id"]
    call(team, "rita", "POST", f"{ANN}/tasks/{first}/assign", json={"user": "ann"})
    square = pixel_polygon(made["grid"], (20, 50), (20, 50))
    draw_and_submit(team, "ann", first, square)
    (copy,) = call(team, "rita", "POST", f"{ANN}/sets/{made['id']}/double", 201, json={"tasks": [first]})
    assert copy["copy_kind"] == "double" and copy["reference_task_id"] == first and copy["assignee"] is None
    assert call(team, "rita", "POST", f"{ANN}/sets/{made['id']}/double", 201, json={"tasks": [first]}) == []
    handed = []
    for _ in range(3):  # ann clears her queue: what is left is the copy of her own cell, never hers
        handed.append(call(team, "ann", "POST", f"{ANN}/sets/{made['id']}/next")["id"])
        call(team, "ann", "POST", f"{ANN}/tasks/{handed[-1]}/submit")
    assert copy["id"] not in handed and sorted(handed) == sorted(t["id"] for k, t in tasks.items() if k != (0, 0))
    error_of(team.client("ann").post(f"{ANN}/sets/{made['id']}/next"), 404)
    assert call(team, "bob", "POST", f"{ANN}/sets/{made['id']}/next")["id"] == copy["id"]
    error_of(team.client("ann").get(f"{ANN}/tasks/{copy['id']}"), 404)
    assert tasks_of(team, made["id"], "bob")[(0, 0)]["id"] == copy["id"]

    other = pixel_polygon(made["grid"], (22, 52), (20, 50))  # 2 px to the south
    draw_and_submit(team, "bob", copy["id"], other)
    stats = {a["user"]: a for a in call(team, "rita", "GET", f"{ANN}/sets/{made['id']}/stats")["annotators"]}
    expected = expected_agreement(square, other, copy["complete_area"])
    for who in ("ann", "bob"):  # the agreement is both annotators'
        assert stats[who]["double"]["n"] == 1 and stats[who]["gold"] is None
        assert stats[who]["double"]["iou"] == pytest.approx(expected["mean"], rel=1e-6)
        assert stats[who]["double"]["boundary_m"] == pytest.approx(grid_of(made["grid"]).res, rel=1e-6)
    assert stats["bob"]["confusion"][4][4] == 28 * 30 and sum(map(sum, stats["ann"]["confusion"])) == 0
    ann = call(team, "rita", "GET", f"{ANN}/sets/{made['id']}/stats/ann")
    assert [(c["task"], c["reference"], c["kind"]) for c in ann["comparisons"]] == [(first, copy["id"], "double")]

    shared = call(team, "rita", "POST", f"{ANN}/sets/{made['id']}/double", 201, json={"share": 0.5, "seed": 7})
    again = call(team, "rita", "POST", f"{ANN}/sets/{made['id']}/double", 201, json={"share": 0.5, "seed": 7})
    assert len(shared) <= 2 and again == []  # ceil(0.5 x 4) = 2 drawn; the first cell has its copy already
    assert {c["reference_task_id"] for c in shared} <= set(t["id"] for t in tasks.values())
    full = call(team, "rita", "POST", f"{ANN}/sets/{made['id']}/double", 201, json={"share": 1})
    assert len(full) + len(shared) == 3  # every primary task has one double copy now
    assert call(team, "rita", "GET", f"{ANN}/sets/{made['id']}/stats")["copies"] == {"gold": 0, "double": 4}


def _set_times(team: Team, task_id: int, seconds: list[float]) -> None:
    """Give the task's events (its own and its features', in order) the times t0 + seconds."""
    t0 = dt.datetime(2026, 3, 1, 9, 0, 0)
    with team.live.platform.db.write() as s:
        fids = [str(f) for f in s.scalars(select(Event.object_id).where(Event.object_type == "label_feature"))]
        events = list(s.scalars(select(Event).where(
            ((Event.object_type == "annotation_task") & (Event.object_id == str(task_id)))
            | ((Event.object_type == "label_feature") & Event.object_id.in_(fids))).order_by(Event.id)))
        mine = [e for e in events if e.object_type == "annotation_task" or e.data.get("task") == task_id]
        assert len(mine) == len(seconds), [e.action for e in mine]
        for e, sec in zip(mine, seconds, strict=True):
            s.execute(update(Event).where(Event.id == e.id).values(at=t0 + dt.timedelta(seconds=sec)))


def test_acceptance_rate_and_time_spent_come_from_the_events(team: Team) -> None:
    made = make_set(team, "timing")
    task = call(team, "cara", "POST", f"{ANN}/sets/{made['id']}/next")["id"]  # task.assign by cara
    drawn = call(team, "cara", "POST", f"{ANN}/tasks/{task}/features", 201,
                 json=feature(pixel_polygon(made["grid"], (5, 25), (5, 25))))
    changed = call(team, "cara", "PUT", f"{ANN}/features/{drawn['id']}",
                   json=feature(pixel_polygon(made["grid"], (5, 25), (5, 30)), version=1))
    call(team, "cara", "POST", f"{ANN}/tasks/{task}/submit")
    review(team, task, "reject")
    call(team, "cara", "PUT", f"{ANN}/features/{drawn['id']}",
         json=feature(pixel_polygon(made["grid"], (5, 25), (5, 35)), version=changed["properties"]["version"]))
    call(team, "cara", "POST", f"{ANN}/tasks/{task}/submit")
    review(team, task, "accept")
    # assign, create, update, submit, reject (rita's: not cara's time), update, submit, accept (rita's)
    _set_times(team, task, [0, 60, 120, 1000, 1100, 2000, 2030, 2100])
    cara = next(a for a in call(team, "rita", "GET", f"{ANN}/sets/{made['id']}/stats")["annotators"] if a["user"] == "cara")
    assert cara["tasks"] == {"submitted": 1, "accepted": 1, "rejected": 1} and cara["acceptance_rate"] == 0.5
    assert cara["time_spent_s"] == 60 + 60 + 300 + 300 + 30  # the gaps of 880 s and 1000 s count as 5 minutes each
    assert cara["median_task_s"] == 750
    assert cara["gold"] is None and cara["double"] is None
    assert call(team, "cara", "GET", f"{ANN}/sets/{made['id']}/stats/cara")["time_spent_s"] == 750


def test_bad_quality_requests_are_refused(team: Team) -> None:
    made = make_set(team, "bad-quality")
    tasks = tasks_of(team, made["id"])
    open_task = tasks[(1, 1)]["id"]
    with team.client("rita") as c:
        assert "is open" in error_of(c.post(f"{ANN}/tasks/{open_task}/gold", json={}), 409)["error"]
    gold = accepted_task(team, made["id"], (0, 0), "ann", pixel_polygon(made["grid"], (10, 20), (10, 20)))
    with team.client("rita") as c:
        copy = c.post(f"{ANN}/tasks/{gold}/gold", json={"annotators": ["bob"]}).json()["copies"][0]["id"]
        cases = [
            (f"/tasks/{copy}/gold", {}, 409, "gold copy"),
            (f"/tasks/{gold}/gold", {"annotators": ["nobody"]}, 422, "'nobody' is no member"),
            (f"/tasks/{gold}/gold", {"annotators": ["vera"]}, 422, "'vera' is no member"),
            (f"/tasks/{gold}/gold", {"annotators": ["ann"]}, 422, "annotated task"),
            (f"/tasks/{gold}/gold", {"annotators": []}, 422, "annotators"),
            (f"/sets/{made['id']}/double", {"share": 0.5, "tasks": [open_task]}, 422, "exactly one"),
            (f"/sets/{made['id']}/double", {}, 422, "exactly one"),
            (f"/sets/{made['id']}/double", {"share": 0}, 422, "not in (0, 1]"),
            (f"/sets/{made['id']}/double", {"share": 1.5}, 422, "not in (0, 1]"),
            (f"/sets/{made['id']}/double", {"tasks": [copy]}, 422, "no primary tasks"),
            (f"/sets/{made['id']}/double", {"tasks": [999999]}, 422, "no primary tasks"),
            ("/sets/999999/double", {"share": 0.1}, 404, "no annotation set"),
            ("/tasks/999999/gold", {}, 404, "no annotation task"),
        ]
        for path, body, status, words in cases:
            error = error_of(c.post(f"{ANN}{path}", json=body), status)
            assert words in str(error), (path, body, error)
        assert c.get(f"{ANN}/sets/{made['id']}/stats").json()["copies"] == {"gold": 1, "double": 0}  # nothing half-made
    error_of(team.client("bob").post(f"{ANN}/tasks/{gold}/gold", json={}), 403)
    error_of(team.client("bob").post(f"{ANN}/sets/{made['id']}/double", json={"share": 0.5}), 403)


def test_the_client_speaks_the_quality_routes(team: Team) -> None:
    from eoengine.client import Client
    from eoengine.errors import Conflict, Denied

    made = make_set(team, "client-quality")
    gold = accepted_task(team, made["id"], (2, 2), "bob", pixel_polygon(made["grid"], (260, 280), (260, 280)))
    with Client(team.live.url, team.tokens["rita"]) as rita:
        marked = rita.mark_gold("nc", gold, ["ann"])
        assert marked.task.gold is True and [c.assignee for c in marked.copies] == ["ann"]
        doubled = rita.double_label("nc", made["id"], share=0.1, seed=1)
        assert len(doubled) == 2 and all(t.copy_kind == "double" for t in doubled)  # ceil(0.1 x 16)
        with pytest.raises(Conflict):
            rita.mark_gold("nc", marked.copies[0].id)
        assert rita.annotation_stats("nc", made["id"]).copies == {"gold": 1, "double": 2}
        assert rita.annotator_stats("nc", made["id"], "bob").tasks.accepted == 1
    with Client(team.live.url, team.tokens["ann"]) as ann:
        assert ann.annotator_stats("nc", made["id"], "ann").comparisons == []
        with pytest.raises(Denied):
            ann.annotation_stats("nc", made["id"])
