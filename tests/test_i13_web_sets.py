"""Annotation sets in Chromium against one real platform server: the project page's set list and "New annotation
set" form (an API error shown with its fix), the GeoJSON export downloaded from the annotation page, and a snapshot
built into a dataset by a real worker (the job followed to success, the dataset page opened).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_support import worker
from platform_server import live_platform
from test_i12_web import sign_in
from test_i13_web import DOCS_IMG, SECOND_SCENE, Setup, inner

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[Setup]:
    """An NC project with two dates, ``ann`` and ``rev``, a set whose one cell ``ann`` labelled and ``rev`` accepted."""
    with live_platform(tmp_path_factory.mktemp("sets") / "home") as live:
        with live.client() as c:
            slug = c.post("/projects", json={"name": "NC", "template": "nc-landsat"}).json()["slug"]
            text = c.get(f"/projects/{slug}").json()["config"]
            assert c.put(f"/projects/{slug}/config", json={
                "config": text.replace("\nlabels:", f"{SECOND_SCENE}\nlabels:", 1)}).status_code == 200
            made = c.post(f"/projects/{slug}/annotation/sets", json={"name": "landcover", "items": ["lsat7_2000"]})
            assert made.status_code == 201, made.text
        reviewer, ann = live.user("rev"), live.user("ann")
        with live.client() as c:
            for name, role in (("ann", "annotator"), ("rev", "reviewer")):
                assert c.post(f"/projects/{slug}/members", json={"username": name, "role": role}).status_code == 201
        base = f"/projects/{slug}/annotation"
        with live.client(ann) as c:
            task = c.post(f"{base}/sets/{made.json()['id']}/next").json()
            for label, box in ((2, [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.1, 0.5), (0.1, 0.1)]),
                               (5, [(0.6, 0.6), (0.9, 0.6), (0.9, 0.9), (0.6, 0.9), (0.6, 0.6)])):
                ring = [list(p) for p in inner(task, box)]
                r = c.post(f"{base}/tasks/{task['id']}/features", json={
                    "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {"label": label}})
                assert r.status_code == 201, r.text
            assert c.post(f"{base}/tasks/{task['id']}/submit").status_code == 200
        with live.client(reviewer) as c:
            assert c.post(f"{base}/tasks/{task['id']}/review", json={"decision": "accept"}).status_code == 200
        yield Setup(live, slug, made.json()["id"], reviewer)


def test_the_project_page_lists_sets_and_a_reviewer_makes_one(sets: Setup, page: Page, console_log: Any,
                                                               screenshot: Callable[[str], Path]) -> None:
    console_log.allow(r"status of 422")
    s = sets
    sign_in(page, s.live.url, "rev", "password-123")
    page.goto(f"{s.live.url}/#/projects/{s.slug}")
    row = page.locator("#annotation-sets tr", has=page.locator(f"a[data-set='{s.set_id}']"))
    row.wait_for()
    assert "landcover" in row.inner_text() and "accepted 1" in row.inner_text() and "open" in row.inner_text()
    assert page.get_attribute(f"a[data-set='{s.set_id}']", "href") == f"#/projects/{s.slug}/annotate/{s.set_id}"

    page.locator("#set-name").fill("change 2000-2001")
    page.locator("#set-kind").select_option("change")  # with one date: the server refuses, the page says why
    page.get_by_role("button", name="Create set").click()
    page.locator("#alerts .alert").wait_for()
    alert = page.inner_text("#alerts")
    assert "change" in alert and page.locator("#alerts .alert-fix").inner_text().strip()
    page.get_by_label("lsat7_2001 (2001-05-24)").check()
    page.locator("#set-block-size").fill("200")
    screenshot("annotation-sets-form")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.locator("#annotation").screenshot(path=str(DOCS_IMG / "annotation-sets.png"))
    page.get_by_role("button", name="Create set").click()
    page.wait_for_function(f"/#\\/projects\\/{s.slug}\\/annotate\\/\\d+$/.test(location.hash) && !location.hash.endsWith('/{s.set_id}')")
    new_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    page.locator("#state-legend").wait_for()
    with s.live.client() as c:
        made = c.get(f"/projects/{s.slug}/annotation/sets/{new_id}").json()
    assert made["kind"] == "change" and made["block_size"] == 200
    assert [i["id"] for i in made["items"]] == ["lsat7_2000", "lsat7_2001"]

    sign_in(page, s.live.url, "ann", "password-123")  # an annotator sees the list, not the form
    page.goto(f"{s.live.url}/#/projects/{s.slug}")
    page.locator(f"a[data-set='{new_id}']").wait_for()
    assert page.locator("#new-set").count() == 0


def test_export_downloads_the_labels_with_state_and_annotator(sets: Setup, page: Page, tmp_path: Path,
                                                             screenshot: Callable[[str], Path]) -> None:
    s = sets
    sign_in(page, s.live.url, "ann", "password-123")
    page.goto(f"{s.live.url}/#/projects/{s.slug}/annotate/{s.set_id}")
    page.locator("#export-download").wait_for()
    assert page.locator("#take-snapshot").count() == 0  # snapshots are the reviewers'
    with page.expect_download() as got:
        page.get_by_role("button", name="Download").click()
    path = tmp_path / got.value.suggested_filename
    got.value.save_as(path)
    assert path.name == "landcover-accepted.geojson"
    labels = json.loads(path.read_text())
    assert sorted(f["properties"]["label"] for f in labels["features"]) == [2, 5]
    assert {(f["properties"]["state"], f["properties"]["annotator"]) for f in labels["features"]} == {("accepted", "ann")}
    screenshot("annotate-export")


def test_a_reviewer_snapshots_and_builds_a_dataset(sets: Setup, page: Page, tmp_path: Path,
                                                   screenshot: Callable[[str], Path]) -> None:
    s = sets
    sign_in(page, s.live.url, "rev", "password-123")
    page.goto(f"{s.live.url}/#/projects/{s.slug}/annotate/{s.set_id}")
    page.get_by_role("button", name="Take snapshot").click()
    row = page.locator("#snapshots tbody tr")
    row.wait_for()
    with s.live.client() as c:
        [snap] = c.get(f"/projects/{s.slug}/annotation/sets/{s.set_id}/snapshots").json()
    assert row.locator("code").inner_text() == snap["hash"][:12] and snap["features"] == 2
    assert row.locator("td").nth(1).inner_text() == "2" and row.locator("td").nth(2).inner_text() == "1"
    with worker(s.live.platform.settings, tmp_path / "worker.log"):
        row.get_by_role("button", name="Build dataset").click()
        page.locator("#build-job [data-job]").wait_for()
        page.locator("#build-job[data-state=succeeded]").wait_for(timeout=240_000)
    dataset = page.locator("#build-job a.output-dataset")
    dataset.wait_for()
    name = dataset.inner_text().removeprefix("Dataset ").split("@")[0]
    assert name.endswith(f"-{snap['hash'][:12]}"), name  # the dataset <project>-<hash[:12]> of the snapshot
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.locator("#labels-out").screenshot(path=str(DOCS_IMG / "annotate-labels-out.png"))
    screenshot("annotate-snapshot-build")
    job_link = page.locator("#build-job a[data-job]").get_attribute("href")
    dataset.click()
    page.wait_for_function("location.hash.includes('/datasets/')")
    page.get_by_role("heading", name=name, exact=False).first.wait_for()
    assert job_link and job_link.startswith("#/jobs/")
