"""The model pages in Chromium against a real platform server: register a run's model from its run page, set an
alias on the model page, see the version, its package and its lineage dataset → run → model; and the job page
following a job's log as server-sent events.

The tiny project is built and trained for one epoch once (seconds), indexed as jobs index it; a worker thread
runs the one job (a dataset build, found built already) whose page the log test watches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from models_support import trained_project
from platform_fixtures import ConsoleLog
from platform_server import ADMIN_PASSWORD, EXAMPLES, LiveServer, live_platform

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page (imported lazily by the fixtures)
JOB_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    from eoengine.platform.worker import Worker

    with live_platform(tmp_path_factory.mktemp("web-models") / "home", data_roots=(EXAMPLES,)) as live:
        made = trained_project(live)
        worker = Worker(live.platform)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            yield live, made
        finally:
            worker.stop.set()
            thread.join(timeout=30)


def sign_in(page: Page, url: str) -> None:
    """Sign in as the first admin through the sign-in page."""
    page.goto(f"{url}/#/signin")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_function("location.hash === '#/projects'")


def test_register_a_runs_model_set_an_alias_and_see_its_lineage(served: tuple[LiveServer, dict[str, Any]], page: Page,
                                                               screenshot: Callable[[str], Path]) -> None:
    live, t = served
    run_id, dataset = t["run"].run_id, f"dataset:tiny@{t['built'].version}"
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/projects/tiny/runs/{run_id}")
    page.locator(f'#lineage [data-node="{dataset}"]').wait_for()  # the run's lineage: its dataset upstream
    assert page.get_attribute(f'#lineage [data-node="{dataset}"]', "data-side") == "upstream"
    page.get_by_label("Model name").fill("landcover")
    page.get_by_label("Model name").press("Enter")  # the form submits with Enter
    page.wait_for_function("location.hash.includes('/models/landcover')")
    page.locator('[data-version="1"]').wait_for()
    page.get_by_label("Alias", exact=True).fill("champion")
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_role("button", name="Set alias").click()
    page.locator('#aliases code[data-alias="champion"]').wait_for()
    assert page.inner_text("#versions .version-aliases") == "champion"
    classes = page.locator("#versions [data-class]").evaluate_all("(li) => li.map((l) => l.dataset.class)")
    assert classes == ["forest", "water", "herbaceous", "barren", "urban"]
    assert "segmentation" in page.inner_text("#versions")
    page.locator("#lineage [data-node='model:landcover/1']").wait_for()  # the lineage panel loads after the versions
    chain = page.locator("#lineage .lineage-step").evaluate_all("(s) => s.map((x) => x.dataset.type)")
    assert chain[-3:] == ["dataset", "run", "model"] and chain[0] == "scene"
    assert page.get_attribute("#lineage [data-node='model:landcover/1']", "aria-current") == "true"
    screenshot("web-model")
    page.locator(f"#lineage a[data-node='run:{run_id}']").click()  # upstream links lead to their pages
    page.wait_for_function("location.hash.includes('/runs/')")
    page.locator("#registered a[data-ref='models:/landcover/1']").wait_for()
    page.goto(f"{live.url}/#/projects/tiny")
    page.locator("#registered-models a[data-model='landcover']").click()
    page.locator('#aliases code[data-alias="champion"]').wait_for()
    page.get_by_role("button", name="Remove alias champion").click()
    page.get_by_text("No alias yet.").wait_for()
    with live.client() as c:
        assert c.get("/projects/tiny/models/landcover").json()["aliases"] == {}


def test_a_bad_alias_shows_the_servers_message(served: tuple[LiveServer, dict[str, Any]], page: Page,
                                              console_log: ConsoleLog) -> None:
    live, t = served
    with live.client() as c:
        if c.get("/projects/tiny/models").json() == []:
            assert c.post("/projects/tiny/models", json={"run_id": t["run"].run_id, "name": "landcover"}).status_code == 201
    console_log.allow(r"422")  # the browser logs the refused request
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/projects/tiny/models/landcover")
    page.get_by_label("Alias", exact=True).fill("latest")
    page.get_by_role("button", name="Set alias").click()
    page.locator("#alerts .alert").first.wait_for()
    assert "reserved" in page.inner_text("#alerts")


def test_the_job_page_streams_the_log(served: tuple[LiveServer, dict[str, Any]], page: Page) -> None:
    live, _ = served
    with live.client() as c:
        job = c.post("/projects/tiny/jobs", json={"spec": {"kind": "build"}}).json()
    events: list[str] = []
    page.on("request", lambda r: events.append(r.url))
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/jobs/{job['id']}")
    page.locator("#job-summary [data-state=succeeded], #job-summary [data-state=failed]").wait_for(
        timeout=JOB_TIMEOUT_S * 1000)
    page.wait_for_function("document.getElementById('job-log').dataset.follow === 'ended'")
    with live.client() as c:
        log = c.get(f"/jobs/{job['id']}/log").text
    deadline = time.monotonic() + 10
    lines = [line for line in log.replace("\r", "\n").splitlines() if line.strip()]  # a CR ends a streamed line
    while [line for line in page.inner_text("#job-log").splitlines() if line.strip()] != lines:
        assert time.monotonic() < deadline, (page.inner_text("#job-log"), log)
        page.wait_for_timeout(200)
    assert any("/log/stream" in url for url in events)
    assert not any(url.split("?")[0].endswith("/log") for url in events)  # no polling: the stream sufficed
