"""Annotation in the browser: a task with 10,000 polygons, loaded in the annotate page and one edit saved.

A real platform server (in a thread, on SQLite) with the ``nc-landsat`` project and an annotation set; the
polygons (small squares on a 100 x 100 grid inside one task's cell) are stored through the API first. Headless
Chromium (Debian's, as the browser tests launch it) then opens the task's page and the benchmark times:

* load: from navigation until the page shows every feature on the map (``window.eoengineAnnotate.shapes()``);
* save: one edit (select a polygon, press a class key: a PUT with its version) until the server has answered;
* baseline: the same GET of the features and the same PUT from Python (httpx), without the browser.

    .venv/bin/python benchmarks/bench_annotate_browser.py [--polygons 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, not the installed one

from platform_fixtures import CHROMIUM_ARGS
from platform_server import LiveServer, live_platform


def squares(cell: list[list[float]], n: int) -> list[list[list[float]]]:
    """``n`` small square rings on a grid inside the middle 80 % of a cell's lon/lat box."""
    xs, ys = [p[0] for p in cell], [p[1] for p in cell]
    side = int(n ** 0.5 + 0.999)
    w, h = 0.8 * (max(xs) - min(xs)) / side, 0.8 * (max(ys) - min(ys)) / side
    x0, y0 = min(xs) + 0.1 * (max(xs) - min(xs)), min(ys) + 0.1 * (max(ys) - min(ys))
    out = []
    for k in range(n):
        x, y = x0 + (k % side) * w, y0 + (k // side) * h
        out.append([[x, y], [x + 0.6 * w, y], [x + 0.6 * w, y + 0.6 * h], [x, y + 0.6 * h], [x, y]])
    return out


def seed(live: LiveServer, n: int) -> tuple[str, int, dict[str, Any], str]:
    """The project, a set and a task in the scene's middle with ``n`` polygons; returns slug, set id, task, token."""
    token = live.user("ann")
    with live.client() as c:
        slug = c.post("/projects", json={"name": "NC", "template": "nc-landsat"}).json()["slug"]
        assert c.post(f"/projects/{slug}/members", json={"username": "ann", "role": "annotator"}).status_code == 201
        item = c.get(f"/projects/{slug}/imagery").json()[0]["id"]
        made = c.post(f"/projects/{slug}/annotation/sets", json={"name": "bench", "items": [item]}).json()
        cells = c.get(f"/projects/{slug}/annotation/sets/{made['id']}/tasks").json()["features"]
        middle = next(f for f in cells if f["properties"]["row"] == 1 and f["properties"]["col"] == 1)
        assert c.post(f"/projects/{slug}/annotation/tasks/{middle['id']}/assign", json={"user": "ann"}).status_code == 200
    rings = squares(middle["geometry"]["coordinates"][0], n)

    def post(chunk: list[list[list[float]]]) -> None:
        with live.client(token) as c:
            for ring in chunk:
                r = c.post(f"/projects/{slug}/annotation/tasks/{middle['id']}/features",
                           json={"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                                 "properties": {"label": 5}})
                assert r.status_code == 201, r.text

    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, [rings[i::4] for i in range(4)]))
    print(f"stored {n} polygons through the API in {time.perf_counter() - start:.1f} s")
    return slug, made["id"], middle, token


def browser_times(live: LiveServer, slug: str, set_id: int, task: dict[str, Any], n: int, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds to load the task page with its ``n`` features, and to save one edit, ``repeat`` times each."""
    from playwright.sync_api import sync_playwright

    loads, saves = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{live.url}/#/signin")
        page.get_by_label("User name").fill("ann")
        page.get_by_label("Password").fill("password-123")
        page.get_by_label("Password").press("Enter")
        page.wait_for_function("location.hash === '#/projects'")
        url = f"{live.url}/#/projects/{slug}/annotate/{set_id}/tasks/{task['id']}"
        for i in range(repeat):
            if i:
                page.goto(f"{live.url}/#/projects")
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_function(f"!!window.eoengineAnnotate && window.eoengineAnnotate.shapes() === {n}", timeout=300_000)
            loads.append(time.perf_counter() - start)
            page.keyboard.press("s")
            box = page.evaluate("() => { const m = window.eoengineMaps.annotate; const r = m.getCanvas().getBoundingClientRect();"
                                " return [r.left, r.top]; }")
            xs = [p[0] for p in task["geometry"]["coordinates"][0]]
            ys = [p[1] for p in task["geometry"]["coordinates"][0]]
            first = squares(task["geometry"]["coordinates"][0], n)[0]
            lon, lat = (first[0][0] + first[2][0]) / 2, (first[0][1] + first[2][1]) / 2
            assert min(xs) < lon < max(xs) and min(ys) < lat < max(ys)
            x, y = page.evaluate("([lon, lat]) => { const p = window.eoengineMaps.annotate.project([lon, lat]); return [p.x, p.y]; }",
                                 [lon, lat])
            page.mouse.click(box[0] + x, box[1] + y)
            page.wait_for_timeout(300)
            start = time.perf_counter()
            page.keyboard.press(str(2 + i % 3))  # relabel the selected polygon: one PUT
            page.evaluate("window.eoengineAnnotate.settled()")
            page.wait_for_function("window.eoengineAnnotate.pending() === 0")
            saves.append(time.perf_counter() - start)
        browser.close()
    return loads, saves


def api_times(live: LiveServer, slug: str, task: dict[str, Any], token: str, repeat: int) -> tuple[list[float], list[float]]:
    """The baseline: the same GET of the features and one PUT, from Python."""
    gets, puts = [], []
    with live.client(token) as c:
        for i in range(repeat):
            start = time.perf_counter()
            features = c.get(f"/projects/{slug}/annotation/tasks/{task['id']}/features").json()["features"]
            gets.append(time.perf_counter() - start)
            f = features[-1]
            start = time.perf_counter()
            r = c.put(f"/projects/{slug}/annotation/features/{f['id']}", json={
                "type": "Feature", "geometry": f["geometry"], "properties": {"label": 2 + i % 3, "version": f["properties"]["version"]}})
            assert r.status_code == 200, r.text
            puts.append(time.perf_counter() - start)
    return gets, puts


def main() -> None:
    """Seed, time the page and the API, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polygons", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, live_platform(Path(tmp) / "home") as live:
        slug, set_id, task, token = seed(live, args.polygons)
        loads, saves = browser_times(live, slug, set_id, task, args.polygons, args.repeat)
        gets, puts = api_times(live, slug, task, token, args.repeat)
    med = statistics.median
    print(f"| path | {args.polygons:,} polygons: load (s, median of {args.repeat}) | one edit saved (s) |")
    print("|---|---|---|")
    print(f"| annotate page in Chromium | {med(loads):.2f} (all: {', '.join(f'{t:.2f}' for t in loads)}) "
          f"| {med(saves):.3f} (all: {', '.join(f'{t:.3f}' for t in saves)}) |")
    print(f"| API from Python (GET features / PUT) | {med(gets):.2f} | {med(puts):.3f} |")


if __name__ == "__main__":
    main()
