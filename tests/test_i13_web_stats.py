"""The annotation quality page in Chromium against a real platform server.

A gold task (ann's, accepted) is labelled again by bob, 2 pixels off, and a double copy of
another cell by ann; a reviewer opens the set's page, follows its **Quality** link and sees each
annotator's row with the numbers the API answers, and bob's confusion matrix as a heat table,
then bob's own page with his comparison. The stats page has no map: no coordinates to check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from platform_fixtures import REPO
from platform_server import live_platform
from test_i12_web import sign_in
from test_i13_core_api import ANN, Team, make_set, pixel_polygon, tasks_of
from test_i13_quality_api import accepted_task, call, draw_and_submit

pytest.importorskip("playwright")
Page = Any  # playwright.sync_api.Page
DOCS_IMG = REPO / "docs" / "img"
PASSWORD = "password-123"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[Team]:
    with live_platform(tmp_path_factory.mktemp("stats-web") / "home") as live:
        tokens = {"admin": live.admin.token}
        with live.client() as c:
            assert c.post("/projects", json={"name": "nc", "template": "nc-landsat"}).status_code == 201
            for name, role in {"ann": "annotator", "bob": "annotator", "rita": "reviewer"}.items():
                tokens[name] = live.user(name, PASSWORD)
                assert c.post("/projects/nc/members", json={"username": name, "role": role}).status_code == 201
        yield Team(live, tokens)


def js_num(value: float | None) -> str:
    """A number as the page's ``num(v, 3)`` writes it (three significant digits, no trailing zeros)."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}"
    return repr(float(f"{value:.3g}"))


def test_the_stats_page_shows_the_apis_numbers_and_a_confusion_heat_table(
        team: Team, page: Page, screenshot: Callable[[str], Path]) -> None:
    made = make_set(team, "web-quality")
    grid, set_id = made["grid"], made["id"]
    gold = accepted_task(team, set_id, (0, 0), "ann", pixel_polygon(grid, (10, 40), (10, 40)))
    (bobs,) = call(team, "rita", "POST", f"{ANN}/tasks/{gold}/gold", 201, json={"annotators": ["bob"]})["copies"]
    draw_and_submit(team, "bob", bobs["id"], pixel_polygon(grid, (10, 40), (12, 42)))
    primary = tasks_of(team, set_id)[(1, 1)]["id"]
    call(team, "rita", "POST", f"{ANN}/tasks/{primary}/assign", json={"user": "bob"})
    draw_and_submit(team, "bob", primary, pixel_polygon(grid, (140, 170), (140, 170)), label=6)
    (double,) = call(team, "rita", "POST", f"{ANN}/sets/{set_id}/double", 201, json={"tasks": [primary]})
    call(team, "rita", "POST", f"{ANN}/tasks/{double['id']}/assign", json={"user": "ann"})
    draw_and_submit(team, "ann", double["id"], pixel_polygon(grid, (141, 171), (140, 170)), label=6)
    stats = call(team, "rita", "GET", f"{ANN}/sets/{set_id}/stats")
    by_user = {a["user"]: a for a in stats["annotators"]}

    sign_in(page, team.live.url, "rita", PASSWORD)
    page.goto(f"{team.live.url}/#/projects/nc/annotate/{set_id}")
    page.locator("#stats-link").click()
    page.wait_for_function("location.hash.endsWith('/stats')")
    page.locator("#annotator-stats table").wait_for()
    assert "Copies: 1 gold, 1 double." in page.inner_text("#stats-counts")
    rows = page.locator("#annotator-stats tbody tr")
    assert rows.count() == 2
    for i, user in enumerate(["ann", "bob"]):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        s = by_user[user]
        assert cells[0] == user and cells[1:4] == [str(s["tasks"][k]) for k in ("submitted", "accepted", "rejected")]
        rate = s["acceptance_rate"]
        assert cells[4] == ("—" if rate is None else f"{100 * rate:.1f} %")
        for col, kind in ((7, "gold"), (9, "double")):
            agreement = s[kind]
            assert cells[col] == ("—" if agreement is None else f"{js_num(agreement['iou'])} ({agreement['n']})")
            assert cells[col + 1] == ("—" if agreement is None else f"{js_num(agreement['boundary_m'])} m")
    assert by_user["bob"]["gold"]["n"] == 1 and by_user["ann"]["double"]["n"] == 1
    heat = page.locator("#confusion-bob td.heat")
    counts = [int(v) for v in heat.evaluate_all("cells => cells.map(c => c.dataset.count)")]
    assert counts == [v for row in by_user["bob"]["confusion"] for v in row]
    n = len(stats["classes"])
    assert heat.count() == n * n and page.locator("#confusion-bob tbody th").first.inner_text() == made["classes"][0]["name"]
    assert page.locator("#confusion-ann td.heat").count() == n * n
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "annotate-stats.png"), full_page=True)
    screenshot("annotate-stats")

    page.get_by_role("link", name="bob", exact=True).click()
    page.wait_for_function("location.hash.endsWith('/stats/bob')")
    page.locator("#comparisons table").wait_for()
    compared = [c.strip() for c in page.locator("#comparisons tbody tr").first.locator("td").all_inner_texts()]
    detail = call(team, "rita", "GET", f"{ANN}/sets/{set_id}/stats/bob")
    first = detail["comparisons"][0]
    assert compared == [str(first["task"]), str(first["reference"]), first["kind"], js_num(first["iou"]),
                        f"{js_num(first['boundary_m'])} m", first["state"]]
    screenshot("annotate-stats-bob")
