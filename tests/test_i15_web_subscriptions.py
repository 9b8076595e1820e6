"""The subscriptions list page in Chromium against a real platform server (issue 15): state, cadence and runs of
each subscription, pause and resume from the list (the server's state follows), and no buttons for a viewer.

The tiny project has a model package registered as ``landcover@champion`` in its own registry; subscriptions are
created through the API as the server's tests create them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import saved_package
from jobs_support import make_project
from platform_fixtures import ConsoleLog
from platform_server import LiveServer, live_platform
from test_i12_web import keep, sign_in
from test_i15_server_api import _register, spec

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page (imported lazily by the fixtures)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[tuple[LiveServer, int]]:
    home = tmp_path_factory.mktemp("web-subs") / "home"
    with live_platform(home) as live:
        folder = make_project(live, "subs")
        shutil.copytree(saved_package(home.parent / "pkg"), folder / "pkg")
        _register(folder)
        live.user("viewer-user")
        with live.client() as c:
            assert c.post("/projects/subs/members", json={"username": "viewer-user", "role": "viewer"}).status_code == 201
            made = c.post("/projects/subs/subscriptions", json={"spec": spec("weekly-watch", webhooks=[])})
            assert made.status_code == 201, made.text
        yield live, made.json()["id"]


def _state(live: LiveServer, sub: int) -> str:
    with live.client() as c:
        state: str = c.get(f"/projects/subs/subscriptions/{sub}").json()["state"]
        return state


def test_pause_and_resume_from_the_list(served: tuple[LiveServer, int], page: Page,
                                        screenshot: Callable[[str], Path]) -> None:
    live, sub = served
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/projects/subs")
    page.locator("#subscriptions-link").click()  # linked from the project page
    page.wait_for_function("location.hash === '#/projects/subs/subscriptions'")
    row = page.locator("#subscription-table tr", has=page.locator(f'span[data-sub="{sub}"]'))
    row.locator('[data-state="active"]').wait_for()
    assert "weekly" in row.inner_text() and row.locator("td").nth(3).inner_text() == "0"
    assert row.locator("button").evaluate_all("(b) => b.map((x) => x.dataset.action)") == ["pause", "cancel", "run"]
    row.locator('button[data-action="pause"]').click()
    row.locator('[data-state="suspended"]').wait_for()
    assert _state(live, sub) == "suspended"
    assert row.locator("button").evaluate_all("(b) => b.map((x) => x.dataset.action)") == ["resume", "cancel"]
    screenshot("subscriptions")
    keep(page, "subscriptions.png")
    row.locator('button[data-action="resume"]').click()
    row.locator('[data-state="active"]').wait_for()
    assert _state(live, sub) == "active"


def test_a_viewer_sees_the_list_without_buttons(served: tuple[LiveServer, int], page: Page) -> None:
    live, sub = served
    sign_in(page, live.url, "viewer-user", "password-123")
    page.goto(f"{live.url}/#/projects/subs/subscriptions")
    page.locator(f'#subscription-table span[data-sub="{sub}"]').wait_for()
    assert page.locator("#subscription-table button").count() == 0


def test_create_a_subscription_by_drawing_its_area(served: tuple[LiveServer, int], page: Page, console_log: ConsoleLog,
                                                   screenshot: Callable[[str], Path]) -> None:
    from test_i15_web_map_area import draw_rectangle, lonlat, screen

    console_log.allow(r"status of 422")  # the browser logs the refused dry run; the page shows its message

    live, _ = served
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/projects/subs/subscriptions")
    page.locator("#new-subscription").click()
    page.wait_for_function("location.hash === '#/projects/subs/subscriptions/new'")
    page.wait_for_function("window.eoengineMaps?.['subscription-new']?.loaded()")
    page.fill("#sub-name", "drawn watch")
    page.get_by_role("button", name="Create subscription").click()  # no area yet: said, nothing sent
    page.locator("#alerts .alert").first.wait_for()
    assert "No area yet" in page.inner_text("#alerts")
    with live.client() as c:
        (item,) = c.get("/projects/subs/imagery").json()
        before = {s["id"] for s in c.get("/projects/subs/subscriptions").json()}
    page.locator("#alerts .alert-close").click()  # dismissed: the map is where it was drawn on
    page.evaluate("window.scrollTo(0, 0)")  # back to the map, above the form
    west, south, east, north = item["bbox"]
    corners = [screen(page, west + f * (east - west), south + g * (north - south), "subscription-new")
               for f, g in ((0.3, 0.35), (0.6, 0.7))]
    (lon0, lat0), (lon1, lat1) = (lonlat(page, *c, name="subscription-new") for c in corners)
    pixel = 2 * abs(lonlat(page, corners[0][0] + 1, corners[0][1], name="subscription-new")[0] - lon0)
    drawn = draw_rectangle(page, corners)
    lons, lats = [p[0] for p in drawn["coordinates"][0]], [p[1] for p in drawn["coordinates"][0]]
    assert min(lons) == pytest.approx(lon0, abs=pixel) and max(lons) == pytest.approx(lon1, abs=pixel)
    assert min(lats) == pytest.approx(lat0, abs=pixel) and max(lats) == pytest.approx(lat1, abs=pixel)
    page.select_option("#sub-model", "models:/landcover@champion")
    page.select_option("#sub-cadence", "cron")
    page.fill("#sub-cron", "every monday")  # the server's message for a cadence that does not parse is shown
    page.get_by_role("button", name="Dry run").click()
    page.locator("#alerts .alert").first.wait_for()
    assert "does not parse" in page.inner_text("#alerts")
    page.fill("#sub-cron", "0 6 * * 1")
    page.fill("#sub-start", "1999-11-01")  # weekly on Mondays until the end of 1999, the history processed too
    page.fill("#sub-end", "1999-12-31")
    page.check("#sub-backfill")
    page.get_by_role("button", name="Dry run").click()
    page.locator("#dry-run").wait_for()
    assert int(page.get_attribute("#dry-run", "data-tiles") or 0) > 0 and item["id"] in page.inner_text("#dry-run")
    screenshot("subscription-new")
    keep(page, "subscription-new.png")
    page.get_by_role("button", name="Create subscription").click()
    page.wait_for_function("/^#\\/projects\\/subs\\/subscriptions\\/\\d+$/.test(location.hash)")
    page.locator("#subscription-chart").wait_for()
    with live.client() as c:
        (made,) = [s for s in c.get("/projects/subs/subscriptions").json() if s["id"] not in before]
    assert page.evaluate("location.hash").endswith(f"/subscriptions/{made['id']}")
    assert made["spec"]["area"] == drawn and made["spec"]["cadence"] == "0 6 * * 1"
    assert made["spec"]["model"] == "models:/landcover@champion" and made["name"] == "drawn watch"
    assert made["spec"]["backfill"] is True and made["spec"]["end"].startswith("1999-12-31")
