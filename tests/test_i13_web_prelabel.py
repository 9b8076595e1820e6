"""Pre-labelling in the annotate page (Chromium, a real server and worker, a real trained model).

The annotator opens their task, chooses the registered model and clicks **Pre-label**: the job runs
on the worker, the suggestions appear dashed in their own layer at the coordinates the API stores,
listed with their scores; selecting one and pressing ``a`` accepts it (it leaves the dashed layer for
the editable drawing, and the API shows it accepted); Delete removes another. No console errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from assist_support import SLUG, Assist, assign, assisted, features_of, make_set, tasks_of
from test_i12_web import sign_in
from test_i13_web import DOCS_IMG

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[Assist]:
    with assisted(tmp_path_factory.mktemp("assist-web")) as made:
        yield made


def _shown(page: Page) -> list[dict[str, Any]]:
    """The suggestions layer's features (their fid and geometry) as the map holds them."""
    return list(page.evaluate("window.eoengineMaps.annotate.getSource('suggestions').serialize().data.features"))


def test_prelabel_shows_dashed_suggestions_to_accept_and_delete(team: Assist, page: Page,
                                                                 screenshot: Callable[[str], Path]) -> None:
    made = make_set(team, "web")
    task = tasks_of(team, made["id"])[(1, 1)]["id"]
    assign(team, task, "ann")
    sign_in(page, team.live.url, "ann", "password-123")
    page.goto(f"{team.live.url}/#/projects/{SLUG}/annotate/{made['id']}/tasks/{task}")
    page.wait_for_function("!!window.eoengineAnnotate && !!window.eoengineSuggestions && window.eoengineMaps.annotate.loaded()")
    page.locator("#prelabel-model option").first.wait_for(state="attached")
    assert page.locator("#prelabel-model").input_value() == "landcover@champion"
    page.get_by_role("button", name="Pre-label").click()
    page.wait_for_function("window.eoengineSuggestions.ids().length > 0", timeout=120_000)

    stored = {f["id"]: f for f in features_of(team, task)}
    assert stored and all(f["properties"]["suggestion"] for f in stored.values())
    ids = page.evaluate("window.eoengineSuggestions.ids()")
    assert sorted(ids) == sorted(stored)
    dash = page.evaluate("window.eoengineMaps.annotate.getPaintProperty('suggestions-line', 'line-dasharray')")
    assert dash == [2, 2]
    for f in _shown(page):  # drawn where the API says, in lon/lat
        assert f["geometry"] == stored[f["properties"]["fid"]]["geometry"]
    assert page.locator("#suggestion-list li").count() == len(stored)
    page.wait_for_timeout(500)
    screenshot("annotate-prelabel")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "annotate-prelabel.png"))

    shapes = page.evaluate("window.eoengineAnnotate.shapes()")
    first, second = sorted(stored)[:2]
    page.locator(f"#suggestion-list li[data-fid='{first}'] button.suggestion").click()
    assert page.evaluate("window.eoengineSuggestions.selected()") == first
    page.locator("#annotate-map").focus()
    page.keyboard.press("a")
    page.wait_for_function(f"!window.eoengineSuggestions.ids().includes({first})")
    assert page.evaluate("window.eoengineAnnotate.shapes()") == shapes + 1  # now in the editable drawing
    assert first not in [f["properties"]["fid"] for f in _shown(page)]
    accepted = {f["id"]: f for f in features_of(team, task)}[first]
    assert "suggestion" not in accepted["properties"] and accepted["properties"]["version"] == 2

    page.locator(f"#suggestion-list li[data-fid='{second}'] button.suggestion").click()
    page.keyboard.press("Delete")
    page.wait_for_function(f"!window.eoengineSuggestions.ids().includes({second})")
    assert second not in {f["id"] for f in features_of(team, task)}
    assert page.evaluate("window.eoengineAnnotate.shapes()") == shapes + 1
