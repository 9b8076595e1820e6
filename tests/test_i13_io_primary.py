"""Only people's labels of primary tasks leave the server: no copy task (gold, double) and no pending model suggestion.

Copies of a cell measure annotators against a reference; a model's suggestion is no one's label until a
person accepts it. Exports (every format) and snapshots read only the primary tasks' accepted features.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from annotation_io_support import BASE, add_copy, add_feature, annotation_project, set_state, user_id
from platform_server import LiveServer, live_platform


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def mixed(live: LiveServer) -> dict[str, Any]:
    """Cell (0, 0) accepted with one drawn feature and one pending suggestion; an accepted gold and double copy of it."""
    made = annotation_project(live)
    grid, tasks, item, admin = made["grid"], made["tasks"], made["item"], user_id(live, "admin")
    drawn = add_feature(live, tasks[(0, 0)], grid.box(10, 20, 13, 25), 2, admin, item)
    add_feature(live, tasks[(0, 0)], grid.box(30, 30, 40, 40), 5, admin, item, suggestion=True)
    for kind in ("gold", "double"):
        copy = add_copy(live, tasks[(0, 0)], kind, admin, state="accepted")
        add_feature(live, copy, grid.box(0, 0, 64, 64), 4, admin, item)
    set_state(live, [tasks[(0, 0)]], "accepted", reviewer=admin)
    return made | {"drawn": drawn}


def _export(live: LiveServer, set_id: int, **params: str) -> Any:
    with live.client() as c:
        r = c.get(f"{BASE}/sets/{set_id}/export", params=params)
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("state", ["accepted", "all"])
def test_exports_hold_only_the_primary_tasks_people_labels(live: LiveServer, mixed: dict[str, Any], state: str,
                                                          tmp_path: Path) -> None:
    features = _export(live, mixed["set"], state=state).json()["features"]
    assert [f["id"] for f in features] == [mixed["drawn"]]
    (tmp_path / "l.tif").write_bytes(_export(live, mixed["set"], format="raster", state=state).content)
    with rasterio.open(tmp_path / "l.tif") as ds:
        values = ds.read(1)
    expected = np.full(values.shape, 255 if state == "accepted" else 3, dtype=np.uint8)
    expected[:64, :64] = 3
    expected[10:13, 20:25] = 2
    np.testing.assert_array_equal(values, expected)  # no gold/double copy's 4, no suggestion's 5
    stac = zipfile.ZipFile(io.BytesIO(_export(live, mixed["set"], format="stac", state=state).content))
    items = [n for n in stac.namelist() if n.endswith(".json") and n != "collection.json"]
    assert len(items) == (1 if state == "accepted" else len(mixed["tasks"]))  # one item per primary task


def test_a_snapshot_freezes_only_the_primary_tasks_people_labels(live: LiveServer, mixed: dict[str, Any]) -> None:
    with live.client() as c:
        made = c.post(f"{BASE}/sets/{mixed['set']}/snapshots").json()
    assert (made["features"], made["tasks"]) == (1, 1)
    folder = mixed["folder"] / made["path"]
    labels = json.loads((folder / "labels.geojson").read_text())["features"]
    assert [f["properties"]["label"] for f in labels] == [2]
    assert len(json.loads((folder / "complete.geojson").read_text())["features"]) == 1
