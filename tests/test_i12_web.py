"""The web app in Chromium against a real platform server: sign-in, projects, the overview's map, a dataset build
watched on its job page, the dataset page, members and tokens, and each page's bad input.

One server (and worker) for the module; the NC Landsat dataset is built once (by the flow test through the
pages, or by the first test needing it through the API) and shared.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from platform_fixtures import REPO, ConsoleLog
from platform_server import ADMIN_PASSWORD, LiveServer, live_platform

from eoengine.datasets.schema import DatasetManifest

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page (imported lazily by the fixtures)
BUILD_TIMEOUT_S = 240
TRAIN_TIMEOUT_S = 480  # two epochs take about a minute, over three on a loaded machine (imports, MLflow, scoring)
NC_LON, NC_LAT = (-79.0, -78.0), (35.0, 36.0)
DOCS_IMG = REPO / "docs" / "img"


@dataclass
class Shared:
    """What the module's tests share: the server and the NC project with its built dataset."""

    live: LiveServer
    slug: str = ""
    dataset: str = ""  # name@version
    short: str = ""  # name@ the version's first 12 characters, as the pages show it
    seen_progress: list[str] = field(default_factory=list)
    run_id: str = ""


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[Shared]:
    """The platform server with a worker running its jobs, for the whole module."""
    from eoengine.platform.worker import Worker

    with live_platform(tmp_path_factory.mktemp("web") / "home") as live:
        worker = Worker(live.platform)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            yield Shared(live)
        finally:
            worker.stop.set()
            thread.join(timeout=30)


def sign_in(page: Page, url: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    """Sign in through the sign-in page and wait for the projects page."""
    page.goto(f"{url}/#/signin")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")  # the form submits with Enter
    page.wait_for_function("location.hash === '#/projects'")
    page.get_by_role("heading", name="Projects", exact=True).wait_for()


def alert_text(page: Page) -> str:
    """The text of the page's alerts, once one is shown."""
    page.locator("#alerts .alert").first.wait_for()
    return str(page.inner_text("#alerts"))


def map_coordinates(page: Page, name: str, source: str) -> list[list[float]]:
    """Every vertex of the features MapLibre holds in a map's GeoJSON source (waits until it has some)."""
    page.wait_for_function(
        "([n, s]) => { const m = window.eoengineMaps && window.eoengineMaps[n];"
        " return !!m && !!m.getSource(s) && m.isSourceLoaded(s) && m.querySourceFeatures(s).length > 0; }",
        arg=[name, source], timeout=30_000)
    return list(page.evaluate(
        "([n, s]) => window.eoengineMaps[n].querySourceFeatures(s).flatMap((f) => {"
        " const out = []; const walk = (c) => typeof c[0] === 'number' ? out.push(c) : c.forEach(walk);"
        " walk(f.geometry.coordinates); return out; })", [name, source]))


def counts(texts: list[str]) -> list[tuple[int, int]]:
    """The ``completed/total`` pairs in progress texts such as ``building chips · 158/1,147``."""
    pairs = (re.search(r"([\d,]+)/([\d,]+)", text) for text in texts)
    return [(int(m[1].replace(",", "")), int(m[2].replace(",", ""))) for m in pairs if m]


def in_nc(points: list[list[float]]) -> bool:
    """Whether every point is in North Carolina's Raleigh area (lon -79..-78, lat 35..36)."""
    return bool(points) and all(NC_LON[0] < x < NC_LON[1] and NC_LAT[0] < y < NC_LAT[1] for x, y in points)


def previews_shown(page: Page) -> None:
    """Wait until the dataset page shows its chip previews and their labels (decoded PNGs)."""
    page.wait_for_function("(() => { const all = [...document.querySelectorAll('#chip-previews img')];"
                           " return all.length > 0 && all.every((i) => i.complete && i.naturalWidth > 0); })()")


def wait_for_job(live: LiveServer, job_id: int, timeout: float = BUILD_TIMEOUT_S) -> dict[str, Any]:
    """Poll a job through the API until it has finished; returns it."""
    deadline = time.monotonic() + timeout
    with live.client() as c:
        while time.monotonic() < deadline:
            job = c.get(f"/jobs/{job_id}").json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return dict(job)
            time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


def project(shared: Shared) -> Shared:
    """The NC project: made by the flow test when it ran first, else through the API now."""
    if not shared.slug:
        with shared.live.client() as c:
            made = c.post("/projects", json={"name": "NC landcover", "template": "nc-landsat"})
            assert made.status_code == 201, made.text
            shared.slug = made.json()["slug"]
    return shared


def built(shared: Shared) -> Shared:
    """The NC project with its dataset built: by the flow test when it ran first, else through the API now."""
    if shared.dataset:
        return shared
    with project(shared).live.client() as c:
        job = c.post(f"/projects/{shared.slug}/jobs", json={"spec": {"kind": "build"}})
        assert job.status_code == 201, job.text
        done = wait_for_job(shared.live, job.json()["id"])
        assert done["state"] == "succeeded", done
        [dataset] = c.get(f"/projects/{shared.slug}").json()["datasets"]
        shared.dataset = f"{dataset['name']}@{dataset['version']}"
        shared.short = f"{dataset['name']}@{dataset['version'][:12]}"
    return shared


SAMPLE_MODEL = "name: unet\n  dropout: 0.1\n  kwargs: {depth: 3, base_channels: 24}"
SMALL_MODEL = "name: cnn\n  kwargs: {width: 8, layers: 2}"


def short_training(shared: Shared) -> None:
    """Make the project's config train a small CNN for two epochs (the sample trains a U-Net for 40)."""
    with shared.live.client() as c:
        text = c.get(f"/projects/{shared.slug}").json()["config"]
        if SMALL_MODEL in text:
            return
        assert "epochs: 40" in text and SAMPLE_MODEL in text
        short = text.replace("epochs: 40", "epochs: 2").replace(SAMPLE_MODEL, SMALL_MODEL)
        changed = c.put(f"/projects/{shared.slug}/config", json={"config": short})
        assert changed.status_code == 200, changed.text


def trained(shared: Shared) -> Shared:
    """The dataset and a two-epoch training run of it: by the run page's test when it ran first, else through the API."""
    if shared.run_id:
        return shared
    built(shared)
    short_training(shared)
    with shared.live.client() as c:
        job = c.post(f"/projects/{shared.slug}/jobs", json={"spec": {"kind": "train"}})
        assert job.status_code == 201, job.text
        done = wait_for_job(shared.live, job.json()["id"], TRAIN_TIMEOUT_S)
        assert done["state"] == "succeeded", done
        shared.run_id = done["result"]["run_id"]
    return shared


def manifest_of(shared: Shared) -> DatasetManifest:
    """The built dataset's manifest, read from its folder."""
    with shared.live.client() as c:
        [dataset] = c.get(f"/projects/{shared.slug}").json()["datasets"]
    return DatasetManifest.read(shared.live.platform.settings.projects_dir / shared.slug / dataset["path"])


def keep(page: Page, name: str) -> None:
    """Save what the window shows (1280×800) as docs/img/NAME for the README."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / name))


# ---------------------------------------------------------------- sign-in and projects


def test_wrong_password_shows_the_error_and_the_right_one_signs_in(shared: Shared, page: Page, console_log: ConsoleLog,
                                                                   screenshot: Callable[[str], Path]) -> None:
    console_log.allow(r"status of 401")  # the browser logs the refused sign-in's response
    url = shared.live.url
    page.goto(f"{url}/#/projects")
    page.wait_for_function("location.hash.startsWith('#/signin')")  # not signed in: sent to sign-in
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    text = alert_text(page)
    assert "wrong user name or password" in text and "after 5 failures" in text
    assert page.evaluate("location.hash").startswith("#/signin")
    screenshot("web-signin-error")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_function("location.hash === '#/projects'")  # the page asked for before signing in
    assert page.inner_text("#whoami") == "admin (site admin)"
    assert page.locator("#alerts .alert").count() == 0  # a new page starts clean
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_function("location.hash === '#/signin'")
    assert page.inner_text("#nav") == ""


def test_a_bad_pasted_config_shows_the_cli_message(shared: Shared, page: Page, console_log: ConsoleLog) -> None:
    console_log.allow(r"status of 422")
    sign_in(page, shared.live.url)
    page.get_by_label("Name").fill("broken")
    page.get_by_label("Start from").select_option("config")
    page.get_by_label("Config (eoengine.yaml)").fill("name: x\nimagery: {bands: []}\n")
    page.get_by_role("button", name="Create project").click()
    text = alert_text(page)
    assert "eoengine.yaml" in text and "imagery" in text  # the CLI's validation message
    assert page.evaluate("location.hash") == "#/projects"
    with shared.live.client() as c:
        assert "broken" not in [p["slug"] for p in c.get("/projects").json()]


# ---------------------------------------------------------------- the flow: a project, a build, its dataset


def test_flow_sample_project_build_job_and_dataset_page(shared: Shared, page: Page,
                                                        screenshot: Callable[[str], Path]) -> None:
    url = shared.live.url
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, url)
    page.get_by_label("Name").fill("NC landcover")
    assert page.get_by_label("Start from").input_value() == "template"  # the bundled sample by default
    page.get_by_role("button", name="Create project").click()
    page.wait_for_function("location.hash === '#/projects/nc-landcover'")
    shared.slug = "nc-landcover"
    page.get_by_role("heading", name="NC landcover").wait_for()
    assert in_nc(map_coordinates(page, "project", "scenes"))  # the Landsat scene's footprint, fitted
    assert page.evaluate("(() => { const c = document.querySelector('#project-map canvas.maplibregl-canvas');"
                         " return c.width > 0 && c.height > 0 && !!(c.getContext('webgl2') || c.getContext('webgl')); })()")
    screenshot("web-project-new")

    page.get_by_role("button", name="Build dataset").click()
    page.wait_for_function("location.hash.startsWith('#/jobs/')")
    job_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    page.get_by_role("heading", name=f"Job #{job_id} · build").wait_for()
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while time.monotonic() < deadline:
        shared.seen_progress.append(page.inner_text("#job-progress"))
        state = page.get_attribute("#job-summary [data-state]", "data-state")
        if state in ("succeeded", "failed", "cancelled"):
            break
        if len(shared.seen_progress) == 20:
            screenshot("web-job-running")
        page.wait_for_timeout(500)
    assert state == "succeeded", page.inner_text("main")
    assert any(0 < done < total for done, total in counts(shared.seen_progress)), shared.seen_progress  # live
    page.locator(".output-dataset").wait_for()
    log = page.inner_text("#job-log")
    assert log.strip(), "the job's log is shown"
    with shared.live.client() as c:
        full = c.get(f"/jobs/{job_id}/log").text
    assert log.strip() == full.strip()  # read on by offsets: nothing lost or doubled
    assert "up_to_date" in page.inner_text("#job-result")  # the result, readably
    screenshot("web-job-done")

    page.locator(".output-dataset").click()
    page.wait_for_function("location.hash.includes('/datasets/')")
    shared.dataset = page.evaluate("decodeURIComponent(location.hash.split('/datasets/')[1])")
    shared.short = shared.dataset[:shared.dataset.index("@") + 13]
    page.get_by_role("heading", name=f"Dataset {shared.short}").wait_for()
    assert in_nc(map_coordinates(page, "dataset", "chips"))
    manifest = manifest_of(shared)
    classes = [c.name for c in manifest.classes]
    legend = page.locator("#split-legend li").evaluate_all("(items) => items.map((li) => li.dataset.split)")
    with shared.live.client() as c:
        chips = c.get(f"/projects/{shared.slug}/datasets/{shared.dataset}/footprints").json()["features"]
    assert sorted(legend) == sorted({f["properties"]["split"] for f in chips}) and "train" in legend
    assert page.locator("#class-legend li").evaluate_all("(items) => items.map((li) => li.dataset.class)") == classes
    bars = page.locator("#class-balance-chart rect").evaluate_all("(rs) => rs.map((r) => r.dataset.class)")
    assert set(bars) == set(classes) and len(bars) == len(classes) * len(legend)
    colours = page.locator("#class-legend .swatch").evaluate_all("(s) => s.map((e) => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) == len(classes)  # the manifest's class colours
    page.locator("#leakage-result").wait_for()
    previews_shown(page)
    screenshot("web-dataset")
    page.evaluate("window.scrollTo(0, 0)")
    keep(page, "web-dataset.png")

    page.get_by_role("link", name="Back to the project").click()
    page.get_by_role("heading", name="NC landcover").wait_for()
    page.get_by_role("link", name=shared.short).wait_for()  # the overview lists the dataset
    page.get_by_role("link", name=f"#{job_id}").first.wait_for()
    map_coordinates(page, "project", "scenes")
    screenshot("web-project")
    outside = [u for u in requests if not u.startswith((url, f"blob:{url}", "data:"))]
    assert not outside, outside  # no tiles, glyphs, styles or scripts from elsewhere


# ---------------------------------------------------------------- the dataset page's inputs


def test_dataset_previews_follow_the_recipe_and_a_bad_stretch_shows_the_message(
        shared: Shared, page: Page, console_log: ConsoleLog) -> None:
    console_log.allow(r"status of 422")
    ready = built(shared)
    sign_in(page, ready.live.url)
    page.goto(f"{ready.live.url}/#/projects/{ready.slug}/datasets/{ready.dataset}")
    previews_shown(page)
    before = page.eval_on_selector("#chip-previews img.chip-image", "(i) => i.src")
    page.get_by_label("Red").select_option("nir")
    page.get_by_label("Stretch").fill("0,0.3")
    page.get_by_label("Stretch").press("Enter")
    page.wait_for_function("(b) => document.querySelector('#chip-previews img.chip-image').src !== b", arg=before)
    page.get_by_label("Stretch").fill("lots")
    page.get_by_role("button", name="Show").click()
    text = alert_text(page)
    assert "stretch" in text and "p2,p98" in text  # the stage's message and fix


# ---------------------------------------------------------------- a run, and its map on the overview


def test_train_job_from_the_overview_and_its_run_page(shared: Shared, page: Page,
                                                      screenshot: Callable[[str], Path]) -> None:
    ready = built(shared)
    short_training(ready)
    sign_in(page, ready.live.url)
    page.goto(f"{ready.live.url}/#/projects/{ready.slug}")
    page.get_by_label("Kind").select_option("train")
    page.get_by_label("Options (JSON").fill("{}")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_function("location.hash.startsWith('#/jobs/')")
    page.locator("#job-summary [data-state=succeeded], #job-summary [data-state=failed]").wait_for(
        timeout=TRAIN_TIMEOUT_S * 1000)
    assert page.get_attribute("#job-summary [data-state]", "data-state") == "succeeded", page.inner_text("main")
    page.locator(".output-run").click()
    page.wait_for_function("location.hash.includes('/runs/')")
    ready.run_id = page.evaluate("location.hash.split('/runs/')[1]")
    page.get_by_role("heading", name="Per-epoch curves").wait_for()
    with ready.live.client() as c:
        run = c.get(f"/projects/{ready.slug}/runs/{ready.run_id}").json()
    params = page.locator("#params tbody tr").evaluate_all("(rows) => rows.map((r) => r.cells[0].textContent)")
    assert sorted(params) == sorted(run["params"]) and "training.epochs" in params
    assert page.locator("#params tr", has_text="training.epochs").inner_text().split()[-1] == "2"
    assert page.locator("#metrics tbody tr").count() == len(run["metrics"]) > 0
    drawn = page.locator("#curves path[data-series]").evaluate_all(
        "(ps) => ps.map((p) => [p.dataset.series, p.getAttribute('d').split('L').length])")
    assert sorted(name for name, _ in drawn) == sorted(k for k, v in run["history"].items() if v)  # every metric
    assert all(points == len(run["history"][name]) for name, points in drawn)  # a point per epoch
    classes = [c.name for c in manifest_of(ready).classes]
    [first, *_] = run["confusion_matrices"]
    table = page.locator(".confusion").first
    assert table.locator("thead th").all_inner_texts()[1:] == first["classes"] == classes
    cells = table.locator("td.cm-cell").evaluate_all("(cs) => cs.map((c) => Number(c.dataset.count))")
    assert cells == [n for row in first["matrix"] for n in row]
    screenshot("web-run")


def test_a_prediction_map_is_drawn_from_its_tiles_on_the_overview(shared: Shared, page: Page,
                                                                 screenshot: Callable[[str], Path]) -> None:
    ready = trained(shared)
    scene = [f"data/lsat7_2000_{n}.tif" for n in (10, 20, 30, 40, 50, 70)]
    with ready.live.client() as c:
        job = c.post(f"/projects/{ready.slug}/jobs", json={"spec": {
            "kind": "predict", "model": ready.run_id, "scene": scene, "output": "out/maps/nc.tif"}})
        assert job.status_code == 201, job.text
        done = wait_for_job(ready.live, job.json()["id"])
        assert done["state"] == "succeeded", done
        [made] = [m for m in c.get(f"/projects/{ready.slug}").json()["maps"] if m["job_id"] == done["id"]]
    tiles: list[tuple[str, int, str]] = []
    page.on("response", lambda r: tiles.append((r.url, r.status, r.headers.get("content-type", "")))
            if "/tiles/" in r.url else None)
    sign_in(page, ready.live.url)
    page.goto(f"{ready.live.url}/#/projects/{ready.slug}")
    page.get_by_role("cell", name="nc.tif", exact=True).wait_for()
    page.wait_for_function("(() => { const m = window.eoengineMaps && window.eoengineMaps.project;"
                           " return !!m && Object.keys(m.getStyle().sources).some((s) => s.startsWith('map-')); })()")
    deadline = time.monotonic() + 30
    while not ({"/maps/", "/imagery/"} <= {k for t in tiles for k in ("/maps/", "/imagery/") if k in t[0]}
               and page.evaluate("window.eoengineMaps.project.areTilesLoaded()")):
        assert time.monotonic() < deadline, tiles
        page.wait_for_timeout(200)
    maps = [t for t in tiles if "/maps/" in t[0]]
    assert maps and all(status == 200 and kind == "image/png" for _, status, kind in maps), maps
    imagery = [t for t in tiles if "/imagery/" in t[0]]
    assert imagery and all(status == 200 for _, status, _ in imagery) and "recipe=true-color" in imagery[0][0]
    screenshot("web-project-map")
    keep(page, "web-project.png")
    page.get_by_label("Prediction maps").uncheck()  # the imagery under them
    layer = f"map-{made['id']}"
    assert page.evaluate("(l) => window.eoengineMaps.project.getLayoutProperty(l, 'visibility')", layer) == "none"


def test_bad_job_options_show_messages_and_a_running_job_is_cancelled(shared: Shared, page: Page,
                                                                       console_log: ConsoleLog) -> None:
    console_log.allow(r"status of 422")
    ready = built(shared)
    sign_in(page, ready.live.url)
    page.goto(f"{ready.live.url}/#/projects/{ready.slug}")
    page.get_by_label("Kind").select_option("predict")
    page.get_by_label("Options (JSON").fill("{model: oops")
    page.get_by_role("button", name="Submit job").click()
    assert "not a JSON object" in alert_text(page)  # caught before anything is sent
    page.get_by_label("Options (JSON").fill('{"scene": ["data/lsat7_2000_10.tif"]}')
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_function("document.querySelector('#alerts').textContent.includes('model')")  # the server's 422
    assert page.evaluate("location.hash") == f"#/projects/{ready.slug}"
    with ready.live.client() as c:
        job = c.post(f"/projects/{ready.slug}/jobs", json={"spec": {"kind": "train"}}).json()
    page.goto(f"{ready.live.url}/#/jobs/{job['id']}")
    page.locator("#job-summary [data-state=running]").wait_for(timeout=60_000)
    page.get_by_role("button", name="Cancel job").click()
    page.locator("#job-summary [data-state=cancelled]").wait_for(timeout=60_000)
    assert page.get_by_role("button", name="Cancel job").count() == 0
    assert wait_for_job(ready.live, job["id"])["state"] == "cancelled"


def test_an_unknown_run_job_or_dataset_shows_the_servers_message(shared: Shared, page: Page,
                                                                 console_log: ConsoleLog) -> None:
    console_log.allow(r"status of (404|422)")  # a version too short to name one is a 422
    ready = project(shared)
    sign_in(page, ready.live.url)
    for path, expected in ((f"projects/{ready.slug}/runs/0123abcd", "0123abcd"),
                           (f"projects/{ready.slug}/datasets/nope@0123", "nope"), ("jobs/987654", "987654")):
        page.goto(f"{ready.live.url}/#/{path}")
        text = alert_text(page)
        assert expected in text, (path, text)
        page.evaluate("document.querySelector('#alerts').replaceChildren()")


# ---------------------------------------------------------------- members and tokens


def test_members_added_changed_and_removed(shared: Shared, page: Page, console_log: ConsoleLog) -> None:
    console_log.allow(r"status of 404")
    ready = project(shared)
    ready.live.user("mia")
    sign_in(page, ready.live.url)
    page.goto(f"{ready.live.url}/#/projects/{ready.slug}")
    page.get_by_role("link", name="Members").click()
    page.get_by_role("heading", name="Members of NC landcover").wait_for()
    page.get_by_label("User name").fill("nobody")
    page.get_by_label("User name").press("Enter")
    assert "nobody" in alert_text(page)
    page.get_by_label("User name").fill("mia")
    page.locator("#member-role").select_option("reviewer")
    page.get_by_role("button", name="Add member").click()
    page.get_by_label("Role of mia").wait_for()
    page.get_by_label("Role of mia").select_option("viewer")
    page.locator(".change-role[data-user=mia]").click()

    def roles() -> dict[str, str]:
        with ready.live.client() as c:
            return {m["username"]: m["role"] for m in c.get(f"/projects/{ready.slug}/members").json()}

    deadline = time.monotonic() + 10
    while roles().get("mia") != "viewer" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert roles() == {"admin": "admin", "mia": "viewer"}
    page.locator(".remove-member[data-user=mia]").click()
    page.get_by_label("Role of mia").wait_for(state="detached")
    assert roles() == {"admin": "admin"}


def test_a_viewer_sees_the_project_but_no_job_buttons(shared: Shared, page: Page) -> None:
    ready = project(shared)
    ready.live.user("vic")
    with ready.live.client() as c:
        assert c.post(f"/projects/{ready.slug}/members", json={"username": "vic", "role": "viewer"}).status_code == 201
    sign_in(page, ready.live.url, "vic", "password-123")
    page.get_by_role("link", name="NC landcover").click()
    page.get_by_role("heading", name="NC landcover").wait_for()
    page.get_by_role("heading", name="Datasets").wait_for()
    assert in_nc(map_coordinates(page, "project", "scenes"))
    assert page.get_by_role("button", name="Build dataset").count() == 0
    assert page.get_by_role("link", name="Members").count() == 0


def test_tokens_made_shown_once_and_revoked(shared: Shared, page: Page, screenshot: Callable[[str], Path]) -> None:
    url = shared.live.url
    sign_in(page, url)
    page.get_by_role("link", name="API tokens").click()
    page.get_by_role("heading", name="API tokens").wait_for()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Days valid").fill("30")
    page.get_by_label("Days valid").press("Enter")
    secret = page.get_by_label("The new token")
    secret.wait_for()
    token = secret.input_value()
    assert token.startswith("eoe_")
    with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/auth/me").json()["username"] == "admin"  # the token shown works
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    row = page.locator("#token-list tr", has_text="laptop")
    assert token[:8] in row.inner_text() and token not in page.inner_text("#token-list")
    screenshot("web-tokens")
    page.reload()
    page.get_by_role("heading", name="API tokens").wait_for()
    page.locator("#token-list tr", has_text="laptop").wait_for()
    assert token not in page.inner_text("main")  # shown once
    page.locator(".revoke-token[data-token=laptop]").click()
    page.locator("#token-list tr", has_text="revoked").wait_for()
    with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/auth/me").status_code == 401
