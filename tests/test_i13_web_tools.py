"""The annotate page's tools in Chromium against one real platform server per module: freehand, point and line
drawing, snapping to a neighbour's vertex, select + move, vertex drag, Delete, a stale edit's "keep theirs", a
reviewer's fix and accept (the panel refreshed from the server), the swipe divider, the two synchronised maps of
Compare, and the per-item recipe fallback. Stored coordinates are checked against the lon/lat under the mouse.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from platform_fixtures import ConsoleLog
from platform_server import live_platform
from test_i12_web import sign_in
from test_i13_web import (
    DOCS_IMG,
    PIXEL_DEG,
    SECOND_SCENE,
    Setup,
    draw,
    features,
    inner,
    lonlat,
    open_task,
    screen,
    settled,
    task_of,
)

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page
RGB_SCENE = """    - id: lsat7_rgb
      datetime: "2002-05-24"
      files:
        blue: data/lsat7_2000_10.tif
        green: data/lsat7_2000_20.tif
        red: data/lsat7_2000_30.tif
"""
HALF = PIXEL_DEG / 2


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[Setup]:
    """An NC project with three dates (the third has no near-infrared), ``ann``, ``rev``, a set of the first two."""
    with live_platform(tmp_path_factory.mktemp("tools") / "home") as live:
        with live.client() as c:
            slug = c.post("/projects", json={"name": "NC", "template": "nc-landsat"}).json()["slug"]
            text = c.get(f"/projects/{slug}").json()["config"]
            assert c.put(f"/projects/{slug}/config", json={
                "config": text.replace("\nlabels:", f"{SECOND_SCENE}{RGB_SCENE}\nlabels:", 1)}).status_code == 200
            made = c.post(f"/projects/{slug}/annotation/sets", json={"name": "tools", "items": ["lsat7_2000", "lsat7_2001"]})
            assert made.status_code == 201, made.text
        reviewer = live.user("rev")
        live.user("ann")
        with live.client() as c:
            for name, role in (("ann", "annotator"), ("rev", "reviewer")):
                assert c.post(f"/projects/{slug}/members", json={"username": name, "role": role}).status_code == 201
        yield Setup(live, slug, made.json()["id"], reviewer)


def assigned(s: Setup, user: str) -> dict[str, Any]:
    """An open inner cell of the set (not on the grid's last row or column), assigned to ``user``."""
    with s.live.client() as c:
        cells = c.get(f"/projects/{s.slug}/annotation/sets/{s.set_id}/tasks").json()["features"]
        last = max(f["properties"]["row"] for f in cells), max(f["properties"]["col"] for f in cells)
        free = next(f for f in cells if f["properties"]["state"] == "open" and not f["properties"]["assignee"]
                    and f["properties"]["row"] < last[0] and f["properties"]["col"] < last[1])
        r = c.post(f"/projects/{s.slug}/annotation/tasks/{free['id']}/assign", json={"user": user})
        assert r.status_code == 200, r.text
    return task_of(s, free["id"])


def near(p: list[float], q: tuple[float, float], tolerance: float = HALF) -> bool:
    """Whether two lon/lat points are within ``tolerance`` degrees on both axes."""
    return abs(p[0] - q[0]) < tolerance and abs(p[1] - q[1]) < tolerance


def off_path(p: list[float], path: list[tuple[float, float]]) -> float:
    """The distance (degrees) from ``p`` to the nearest segment of ``path``."""
    best = math.inf
    for (ax, ay), (bx, by) in itertools.pairwise(path):
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / (dx * dx + dy * dy or 1)))
        best = min(best, math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy))
    return best


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start``, move to ``end`` in steps, release."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def as_annotator(page: Page, s: Setup, task: dict[str, Any], user: str = "ann") -> None:
    sign_in(page, s.live.url, user, "password-123")
    open_task(page, s, task["id"])


def test_freehand_point_and_line_store_what_the_mouse_drew(tools: Setup, page: Page,
                                                            screenshot: Callable[[str], Path]) -> None:
    s = tools
    task = assigned(s, "ann")
    as_annotator(page, s, task)
    page.get_by_role("button", name="freehand").click()
    ring = [screen(page, *p) for p in inner(task, [(0.1, 0.1), (0.4, 0.1), (0.4, 0.4), (0.1, 0.4), (0.1, 0.15)])]
    page.mouse.move(*ring[0])
    page.mouse.click(*ring[0])
    for point in ring[1:]:
        page.mouse.move(*point, steps=8)
    page.mouse.click(*ring[-1])
    settled(page)
    [free] = features(s, task["id"])
    traced = [lonlat(page, x, y) for x, y in ring]
    coords = free["geometry"]["coordinates"][0]
    assert free["geometry"]["type"] == "Polygon" and len(coords) > 8
    assert near(coords[0], traced[0]) and all(off_path(p, traced) < HALF for p in coords), coords

    page.get_by_role("button", name="point").click()
    spot = screen(page, *inner(task, [(0.7, 0.2)])[0])
    page.mouse.click(*spot)
    settled(page)
    page.get_by_role("button", name="linestring").click()
    line = [screen(page, *p) for p in inner(task, [(0.6, 0.6), (0.8, 0.7), (0.7, 0.9)])]
    draw(page, line)
    settled(page)
    stored = {f["geometry"]["type"]: f["geometry"]["coordinates"] for f in features(s, task["id"])}
    assert near(stored["Point"], lonlat(page, *spot))
    assert len(stored["LineString"]) == 3
    assert all(near(p, lonlat(page, *q)) for p, q in zip(stored["LineString"], line, strict=True))
    screenshot("annotate-freehand-point-line")


def test_a_vertex_snaps_to_the_neighbours_then_move_vertex_drag_and_delete(tools: Setup, page: Page,
                                                                          screenshot: Callable[[str], Path]) -> None:
    s = tools
    task = assigned(s, "ann")
    as_annotator(page, s, task)
    page.keyboard.press("p")
    first = [screen(page, *p) for p in inner(task, [(0.2, 0.2), (0.5, 0.2), (0.5, 0.5), (0.2, 0.5)])]
    draw(page, first)
    settled(page)
    [a] = features(s, task["id"])
    shared = a["geometry"]["coordinates"][0][1]  # the vertex at (0.5, 0.2)
    sx, sy = screen(page, *shared)
    second = [(sx + 4, sy + 3)] + [screen(page, *p) for p in inner(task, [(0.8, 0.2), (0.8, 0.45)])]
    draw(page, second)
    settled(page)
    b = next(f for f in features(s, task["id"]) if f["id"] != a["id"])
    assert b["geometry"]["coordinates"][0][0] == shared  # snapped: exactly the neighbour's vertex

    page.keyboard.press("s")
    grab = screen(page, *inner(task, [(0.3, 0.35)])[0])
    page.mouse.click(*grab)
    centre = (grab[0] + 6, grab[1])  # Terra Draw's drag starts past its threshold and moves from its first drag event
    moved_to = (centre[0] + 30, centre[1] + 40)
    page.mouse.move(*grab)
    page.mouse.down()
    page.mouse.move(grab[0] + 3, grab[1])
    page.mouse.move(*centre)
    page.mouse.move(*moved_to, steps=10)
    page.mouse.up()
    settled(page)
    now = next(f for f in features(s, task["id"]) if f["id"] == a["id"])
    pairs = list(zip(a["geometry"]["coordinates"][0], now["geometry"]["coordinates"][0], strict=True))
    shift = (pairs[0][1][0] - pairs[0][0][0], pairs[0][1][1] - pairs[0][0][1])
    # moved whole (Terra Draw moves on screen, in Web Mercator: the same shift in lon/lat within a metre)
    assert all(near(new, (old[0] + shift[0], old[1] + shift[1]), 1e-5) for old, new in pairs)
    old_xy, new_xy = screen(page, *pairs[0][0]), screen(page, *pairs[0][1])
    mouse = (moved_to[0] - grab[0], moved_to[1] - grab[1])
    # by the mouse's way, less what Terra Draw's drag threshold swallows (the first few pixels)
    assert abs(new_xy[0] - old_xy[0] - mouse[0]) <= 7 and abs(new_xy[1] - old_xy[1] - mouse[1]) <= 2, (old_xy, new_xy, mouse)
    assert now["properties"]["version"] == 2

    corner = screen(page, *now["geometry"]["coordinates"][0][2])
    target = (corner[0] + 25, corner[1] + 15)
    drag(page, corner, target)
    settled(page)
    edited = next(f for f in features(s, task["id"]) if f["id"] == a["id"])
    assert near(edited["geometry"]["coordinates"][0][2], lonlat(page, *target))
    assert edited["properties"]["version"] == 3
    screenshot("annotate-select-edit")

    page.keyboard.press("Delete")
    settled(page)
    assert [f["id"] for f in features(s, task["id"])] == [b["id"]]
    assert page.evaluate("window.eoengineAnnotate.shapes()") == 1


def test_keep_theirs_shows_the_other_users_version(tools: Setup, page: Page, console_log: ConsoleLog) -> None:
    console_log.allow(r"status of 409")
    s = tools
    task = assigned(s, "rev")
    as_annotator(page, s, task, "rev")
    page.keyboard.press("3")
    page.keyboard.press("p")
    draw(page, [screen(page, *p) for p in inner(task, [(0.3, 0.3), (0.7, 0.3), (0.5, 0.7)])])
    settled(page)
    [mine] = features(s, task["id"])
    theirs_geometry = {"type": "Polygon", "coordinates": [[list(p) for p in inner(task, [
        (0.35, 0.35), (0.65, 0.35), (0.5, 0.6), (0.35, 0.35)])]]}
    with s.live.client(s.reviewer) as c:  # another tab changes shape and class first
        r = c.put(f"/projects/{s.slug}/annotation/features/{mine['id']}", json={
            "type": "Feature", "geometry": theirs_geometry, "properties": {"label": 5, "version": 1}})
        assert r.status_code == 200, r.text
    page.keyboard.press("s")
    page.mouse.click(*screen(page, *inner(task, [(0.5, 0.45)])[0]))
    page.keyboard.press("4")
    page.locator("#conflict").wait_for()
    page.get_by_role("button", name="Keep theirs").click()
    settled(page)
    page.wait_for_function("window.eoengineAnnotate.labels().features[0].properties.label === 5")
    [shown] = page.evaluate("window.eoengineAnnotate.labels().features")
    for got, want in zip(shown["geometry"]["coordinates"][0], theirs_geometry["coordinates"][0], strict=True):
        assert got == pytest.approx(want, abs=1e-9)  # Terra Draw holds 9 decimals
    [stored] = features(s, task["id"])
    assert stored["properties"]["label"] == 5 and stored["properties"]["version"] == 2
    assert page.locator("#conflict").count() == 0


def test_a_reviewer_fixes_and_accepts_and_the_panel_follows(tools: Setup, page: Page,
                                                            screenshot: Callable[[str], Path]) -> None:
    s = tools
    task = assigned(s, "ann")
    ann = s.live.user("ann2")
    with s.live.client() as c:
        assert c.post(f"/projects/{s.slug}/members", json={"username": "ann2", "role": "annotator"}).status_code == 201
        assert c.post(f"/projects/{s.slug}/annotation/tasks/{task['id']}/assign", json={"user": "ann2"}).status_code == 200
    ring = [list(p) for p in inner(task, [(0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.2)])]
    with s.live.client(ann) as c:
        r = c.post(f"/projects/{s.slug}/annotation/tasks/{task['id']}/features", json={
            "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {"label": 2}})
        assert r.status_code == 201, r.text
        assert c.post(f"/projects/{s.slug}/annotation/tasks/{task['id']}/submit").status_code == 200
    as_annotator(page, s, task, "rev")
    page.locator("#review-comment").fill("the road is missing")
    page.locator("#place-pins").check()
    page.mouse.click(*screen(page, *inner(task, [(0.7, 0.7)])[0]))
    page.get_by_role("button", name="Reject").click()
    page.locator("#task-state [data-state=rejected]").wait_for()
    page.locator("#comments", has_text="the road is missing").wait_for()  # refreshed without a reload
    assert page.inner_text("#task-reviewer") == "rev" and page.locator(".comment-pin").count() == 1
    assert page.locator(".review-pin").count() == 0
    with s.live.client(ann) as c:  # the annotator adds a point and hands it in again
        r = c.post(f"/projects/{s.slug}/annotation/tasks/{task['id']}/features", json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": list(inner(task, [(0.5, 0.5)])[0])},
            "properties": {"label": 2}})
        assert r.status_code == 201, r.text
        assert c.post(f"/projects/{s.slug}/annotation/tasks/{task['id']}/submit").status_code == 200

    open_task(page, s, task["id"])  # the reviewer adds the missing road and accepts
    page.get_by_role("button", name="linestring").click()
    road = [screen(page, *p) for p in inner(task, [(0.1, 0.8), (0.9, 0.8)])]
    draw(page, road)
    settled(page)
    drawn = [lonlat(page, *q) for q in road]  # where the road is, before the panel changes with the review
    page.get_by_role("button", name="Accept").click()
    page.locator("#task-state [data-state=accepted]").wait_for()
    stored = features(s, task["id"])
    assert sorted(f["geometry"]["type"] for f in stored) == ["LineString", "Point", "Polygon"]
    line = next(f for f in stored if f["geometry"]["type"] == "LineString")
    assert all(near(p, q) for p, q in zip(line["geometry"]["coordinates"], drawn, strict=True))
    assert task_of(s, task["id"])["state"] == "accepted"
    with s.live.client() as c:
        events = c.get(f"/projects/{s.slug}/annotation/tasks/{task['id']}/history").json()["events"]
    actions = [(e["action"], e["actor"]) for e in events]
    assert ("feature.create", "rev") in actions and actions[-1] == ("task.accept", "rev"), actions
    assert actions.index(("feature.create", "rev")) > actions.index(("task.reject", "rev"))
    screenshot("annotate-fix-accept")


def test_swipe_divider_and_compare_maps(tools: Setup, page: Page, screenshot: Callable[[str], Path]) -> None:
    s = tools
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/tiles/" in r.url else None)
    task = assigned(s, "ann")
    as_annotator(page, s, task)
    page.keyboard.press("p")
    draw(page, [screen(page, *p) for p in inner(task, [(0.3, 0.3), (0.7, 0.3), (0.5, 0.7)])])
    settled(page)
    page.locator("#swipe").check()
    page.wait_for_function("!!window.eoengineMaps.swipe && window.eoengineMaps.swipe.loaded()")
    box = page.locator("#annotate-map").bounding_box()
    divider = page.locator("#swipe-divider").bounding_box()
    drag(page, (divider["x"] + 2, divider["y"] + 100), (box["x"] + 200, divider["y"] + 100))
    assert page.evaluate("document.querySelector('#swipe-map').style.clipPath") == "inset(0px 0px 0px 200px)"
    page.wait_for_function("() => window.eoengineMaps.swipe.areTilesLoaded()")
    assert any("/imagery/lsat7_2001/tiles/" in u for u in tiles)
    screenshot("annotate-swipe")
    page.locator("#swipe").uncheck()

    page.keyboard.press("c")
    page.locator("#compare-map[data-ready=true]").wait_for()
    cameras = ("[window.eoengineMaps.annotate, window.eoengineMaps.compare].map((m) =>"
               " [m.getCenter().lng, m.getCenter().lat, m.getZoom()])")
    right = page.locator("#compare-map").bounding_box()
    drag(page, (right["x"] + 200, right["y"] + 200), (right["x"] + 120, right["y"] + 260))
    left_cam, right_cam = page.evaluate(cameras)
    assert left_cam == right_cam
    drag(page, (box["x"] + 100, box["y"] + 60), (box["x"] + 160, box["y"] + 20))  # an empty spot: a pan, not a select
    left_cam, right_cam = page.evaluate(cameras)
    assert left_cam == right_cam
    page.wait_for_function("() => window.eoengineMaps.compare.queryRenderedFeatures({layers: ['compare-labels-fill']}).length > 0")
    [label] = page.evaluate("async () => (await window.eoengineMaps.compare.getSource('compare-labels').getData()).features")
    [stored] = features(s, task["id"])
    assert label["geometry"]["coordinates"] == stored["geometry"]["coordinates"]  # fixed in map coordinates
    vertex = stored["geometry"]["coordinates"][0][0]
    on_left = page.evaluate("(p) => { const q = window.eoengineMaps.annotate.project(p); return [q.x, q.y]; }", vertex)
    on_right = page.evaluate("(p) => { const q = window.eoengineMaps.compare.project(p); return [q.x, q.y]; }", vertex)
    assert on_left == pytest.approx(on_right, abs=0.01)
    page.wait_for_function("() => window.eoengineMaps.compare.areTilesLoaded()")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "annotate-compare.png"))
    screenshot("annotate-compare")
    page.get_by_role("button", name="Compare").click()
    assert page.locator("#compare-map").count() == 0


def test_an_item_the_recipe_cannot_draw_falls_back_and_says_so(tools: Setup, page: Page) -> None:
    s = tools
    with s.live.client() as c:
        made = c.post(f"/projects/{s.slug}/annotation/sets", json={"name": "rgb", "items": ["lsat7_2000", "lsat7_rgb"]})
        assert made.status_code == 201, made.text
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/tiles/" in r.url else None)
    sign_in(page, s.live.url, "rev", "password-123")
    page.goto(f"{s.live.url}/#/projects/{s.slug}/annotate/{made.json()['id']}")
    page.locator("#annotate-recipe").select_option("false-color")
    page.locator("#recipe-note .fallback[data-item=lsat7_rgb]").wait_for()
    assert "lsat7_rgb cannot be drawn as false-color: shown as true-color" in page.inner_text("#recipe-note")
    page.get_by_role("button", name="date ▶").click()
    page.wait_for_function("() => window.eoengineMaps.annotate.areTilesLoaded()")
    rgb = [u for u in tiles if "/imagery/lsat7_rgb/" in u]
    assert rgb and all("recipe=true-color" in u for u in rgb), rgb
    assert any("/imagery/lsat7_2000/" in u and "recipe=false-color" in u for u in tiles)
    page.locator("#annotate-recipe").select_option("true-color")
    page.wait_for_function("document.querySelector('#recipe-note').hidden")
