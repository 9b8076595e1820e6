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
