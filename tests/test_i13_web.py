"""The annotate page in Chromium against a real platform server: an annotator takes the next task, draws a
polygon with mouse events on the map (its stored lon/lat checked within half an imagery pixel), undoes and redoes
it, cuts a hole, switches recipe and date, submits; a reviewer rejects with a pinned comment, the annotator sees
it, edits and resubmits, the reviewer accepts. A stale edit shows the other person's version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from platform_fixtures import REPO, ConsoleLog
from platform_server import LiveServer, live_platform
from test_i12_web import sign_in

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page
SECOND_SCENE = """    - id: lsat7_2001
      datetime: "2001-05-24"
      files:
        blue: data/lsat7_2000_10.tif
        green: data/lsat7_2000_20.tif
        red: data/lsat7_2000_30.tif
        nir: data/lsat7_2000_40.tif
        swir1: data/lsat7_2000_50.tif
        swir2: data/lsat7_2000_70.tif
"""
PIXEL_DEG = 28.5 / 111_000  # the NC scene's 28.5 m pixel, in degrees of latitude (longitude's are wider)
DOCS_IMG = REPO / "docs" / "img"


@dataclass
class Setup:
    """The server, the project, the set and its users' tokens."""

    live: LiveServer
    slug: str
    set_id: int
    reviewer: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[Setup]:
    """An NC project with two dates, an annotator ``ann``, a reviewer ``rev`` and a set of its whole scene."""
    with live_platform(tmp_path_factory.mktemp("annotate") / "home") as live:
        with live.client() as c:
            slug = c.post("/projects", json={"name": "NC", "template": "nc-landsat"}).json()["slug"]
            text = c.get(f"/projects/{slug}").json()["config"]
            two = text.replace("\nlabels:", f"{SECOND_SCENE}\nlabels:", 1)
            assert c.put(f"/projects/{slug}/config", json={"config": two}).status_code == 200
            items = [i["id"] for i in c.get(f"/projects/{slug}/imagery").json()]
            assert sorted(items) == ["lsat7_2000", "lsat7_2001"], items
            made = c.post(f"/projects/{slug}/annotation/sets", json={"name": "landcover", "items": items})
            assert made.status_code == 201, made.text
        reviewer = live.user("rev")
        live.user("ann")
        with live.client() as c:
            for name, role in (("ann", "annotator"), ("rev", "reviewer")):
                assert c.post(f"/projects/{slug}/members", json={"username": name, "role": role}).status_code == 201
        yield Setup(live, slug, made.json()["id"], reviewer)


def settled(page: Page) -> None:
    """Wait until the page's every write has been answered."""
    page.wait_for_function("!!window.eoengineAnnotate")
    page.evaluate("window.eoengineAnnotate.settled()")
    page.wait_for_function("window.eoengineAnnotate.pending() === 0")


def features(s: Setup, task: int) -> list[dict[str, Any]]:
    """The task's stored features, through the API."""
    with s.live.client() as c:
        return list(c.get(f"/projects/{s.slug}/annotation/tasks/{task}/features").json()["features"])


def task_of(s: Setup, task: int) -> dict[str, Any]:
    """The task as the API shows it."""
    with s.live.client() as c:
        return dict(c.get(f"/projects/{s.slug}/annotation/tasks/{task}").json())


def screen(page: Page, lon: float, lat: float) -> tuple[float, float]:
    """The page coordinates of a lon/lat on the annotate map."""
    x, y = page.evaluate("([lon, lat]) => { const m = window.eoengineMaps.annotate; const p = m.project([lon, lat]);"
                         " const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
                         [lon, lat])
    return round(x), round(y)


def lonlat(page: Page, x: float, y: float) -> tuple[float, float]:
    """The lon/lat under page coordinates on the annotate map."""
    got = page.evaluate("([x, y]) => { const m = window.eoengineMaps.annotate; const r = m.getCanvas().getBoundingClientRect();"
                        " const l = m.unproject([x - r.left, y - r.top]); return [l.lng, l.lat]; }", [x, y])
    return float(got[0]), float(got[1])


def draw(page: Page, points: list[tuple[float, float]]) -> None:
    """Click each page point (moving between them), then Enter finishes the shape."""
    for x, y in points:
        page.mouse.move(x, y, steps=3)
        page.mouse.click(x, y)
        page.wait_for_timeout(60)
    page.keyboard.press("Enter")


def inner(task: dict[str, Any], fractions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points at fractions of the task cell's lon/lat box."""
    ring = task["geometry"]["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return [(min(xs) + fx * (max(xs) - min(xs)), min(ys) + fy * (max(ys) - min(ys))) for fx, fy in fractions]


def open_task(page: Page, s: Setup, task: int) -> None:
    """Open a task's drawing view and wait until its features are on the map."""
    url = f"{s.live.url}/#/projects/{s.slug}/annotate/{s.set_id}/tasks/{task}"
    if page.url == url:
        page.reload()  # the same hash: no hashchange, so load the page again
    else:
        page.goto(url)
    page.wait_for_function("!!window.eoengineAnnotate && window.eoengineMaps.annotate.loaded()")
    page.wait_for_timeout(300)


def test_draw_undo_hole_recipe_date_submit_review_cycle(setup: Setup, page: Page, browser: Any, console_log: ConsoleLog,
                                                        screenshot: Callable[[str], Path]) -> None:
    s = setup
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/imagery/" in r.url else None)
    sign_in(page, s.live.url, "ann", "password-123")
    page.goto(f"{s.live.url}/#/projects/{s.slug}/annotate/{s.set_id}")
    page.locator("#state-legend").wait_for()
    page.get_by_role("button", name="Next task").click()
    page.wait_for_function("location.hash.includes('/tasks/')")
    task_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    assert task_of(s, task_id)["assignee"] == "ann"
    open_task(page, s, task_id)
    task = task_of(s, task_id)

    page.keyboard.press("2")  # agriculture
    page.keyboard.press("p")
    corners = [screen(page, lon, lat) for lon, lat in inner(task, [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)])]
    draw(page, corners)
    settled(page)
    [stored] = features(s, task_id)
    assert stored["properties"]["label"] == 2 and stored["properties"]["version"] == 1
    ring = stored["geometry"]["coordinates"][0]
    expected = [lonlat(page, x, y) for x, y in corners]
    assert len(ring) == 5 and ring[0] == ring[-1]
    for got, want in zip(ring[:4], expected, strict=True):
        assert abs(got[0] - want[0]) < PIXEL_DEG / 2 and abs(got[1] - want[1]) < PIXEL_DEG / 2, (got, want)
    assert task_of(s, task_id)["state"] == "in_progress"
    page.locator("#task-state [data-state=in_progress]").wait_for()  # the panel follows
    screenshot("annotate-drawn")

    page.keyboard.press("Control+z")
    settled(page)
    assert features(s, task_id) == []
    page.keyboard.press("Control+Shift+z")
    settled(page)
    [again] = features(s, task_id)
    assert again["geometry"] == stored["geometry"] and again["properties"]["label"] == 2

    page.keyboard.press("h")
    hole = [screen(page, lon, lat) for lon, lat in inner(task, [(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)])]
    draw(page, hole)
    settled(page)
    [holed] = features(s, task_id)
    assert len(holed["geometry"]["coordinates"]) == 2 and holed["properties"]["version"] == 2
    keep = page.screenshot()

    before = len(tiles)
    recipe = page.locator("#annotate-recipe").input_value()
    page.keyboard.press("r")
    page.wait_for_function("(r) => document.querySelector('#annotate-recipe').value !== r", arg=recipe)
    now = page.locator("#annotate-recipe").input_value()
    deadline = time.monotonic() + 20
    while not any(f"recipe={now}" in u for u in tiles[before:]):
        assert time.monotonic() < deadline, tiles[-5:]
        page.wait_for_timeout(100)
    shown = page.get_attribute("#annotate-date", "data-item")
    page.keyboard.press("]")
    page.wait_for_function("(i) => document.querySelector('#annotate-date').dataset.item !== i", arg=shown)
    other = page.get_attribute("#annotate-date", "data-item")
    deadline = time.monotonic() + 20
    while not any(f"/imagery/{other}/tiles/" in u for u in tiles):
        assert time.monotonic() < deadline, tiles[-5:]
        page.wait_for_timeout(100)
    assert other != shown

    page.get_by_role("button", name="Submit task").click()
    page.locator("#task-state [data-state=submitted]").wait_for()
    assert task_of(s, task_id)["state"] == "submitted"

    reviewer = browser.new_page(viewport={"width": 1280, "height": 800})
    reviewer.on("console", console_log.record_console)
    reviewer.on("pageerror", console_log.record_page_error)
    sign_in(reviewer, s.live.url, "rev", "password-123")
    open_task(reviewer, s, task_id)
    reviewer.locator("#review-comment").fill("the field continues east")
    reviewer.locator("#place-pins").check()
    pin = screen(reviewer, *inner(task, [(0.9, 0.5)])[0])
    reviewer.mouse.click(*pin)
    reviewer.locator("#pin-count", has_text="1 pin").wait_for()
    reviewer.get_by_role("button", name="Reject").click()
    reviewer.locator("#task-state [data-state=rejected]").wait_for()
    got = task_of(s, task_id)
    assert got["state"] == "rejected"
    pinned = [c for c in got["comments"] if c["lon"] is not None]
    assert pinned and pinned[0]["text"] == "the field continues east"
    want = lonlat(reviewer, *pin)
    assert abs(pinned[0]["lon"] - want[0]) < PIXEL_DEG and abs(pinned[0]["lat"] - want[1]) < PIXEL_DEG
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    reviewer.screenshot(path=str(DOCS_IMG / "annotate-review.png"))
    screenshot("annotate-review")

    open_task(page, s, task_id)
    page.locator("#comments", has_text="the field continues east").wait_for()
    assert page.locator(".comment-pin").count() == 1
    page.keyboard.press("b")
    box = [screen(page, lon, lat) for lon, lat in inner(task, [(0.82, 0.3), (0.95, 0.7)])]
    page.mouse.move(*box[0])
    page.mouse.click(*box[0])
    page.mouse.move(*box[1], steps=5)
    page.mouse.click(*box[1])
    settled(page)
    assert len(features(s, task_id)) == 2
    page.get_by_role("button", name="Submit task").click()
    page.locator("#task-state [data-state=submitted]").wait_for()

    open_task(reviewer, s, task_id)
    reviewer.get_by_role("button", name="Accept").click()
    reviewer.locator("#task-state [data-state=accepted]").wait_for()
    assert task_of(s, task_id)["state"] == "accepted"
    (DOCS_IMG / "annotate-draw.png").write_bytes(keep)
    reviewer.close()


def test_a_stale_edit_shows_theirs_and_overwrite_puts_mine(setup: Setup, page: Page, console_log: ConsoleLog) -> None:
    console_log.allow(r"status of 409")
    s = setup
    with s.live.client(s.reviewer) as c:
        nxt = c.post(f"/projects/{s.slug}/annotation/sets/{s.set_id}/next")
        assert nxt.status_code == 200, nxt.text
        task_id = nxt.json()["id"]
        task = nxt.json()
    sign_in(page, s.live.url, "rev", "password-123")
    open_task(page, s, task_id)
    page.keyboard.press("3")
    page.keyboard.press("p")
    draw(page, [screen(page, lon, lat) for lon, lat in inner(task, [(0.3, 0.3), (0.7, 0.3), (0.5, 0.7)])])
    settled(page)
    [mine] = features(s, task_id)
    with s.live.client(s.reviewer) as c:  # someone else (same user, another tab) relabels it first
        theirs = c.put(f"/projects/{s.slug}/annotation/features/{mine['id']}", json={
            "type": "Feature", "geometry": mine["geometry"], "properties": {"label": 5, "version": 1}})
        assert theirs.status_code == 200, theirs.text
    page.keyboard.press("s")
    x, y = screen(page, *inner(task, [(0.5, 0.45)])[0])
    page.mouse.click(x, y)
    page.keyboard.press("4")  # relabel the selected feature: a PUT with version 1, stale
    page.locator("#conflict").wait_for()
    assert "version 2" in page.inner_text("#conflict")
    page.get_by_role("button", name="Overwrite with mine").click()
    settled(page)
    [now] = features(s, task_id)
    assert now["properties"]["label"] == 4 and now["properties"]["version"] == 3
