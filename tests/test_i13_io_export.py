"""Export of an annotation set: GeoJSON, GeoPackage, the label raster COG on the set's grid, and STAC label Items."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from annotation_io_support import (
    BASE,
    CLASSES,
    PixelGrid,
    add_feature,
    annotation_project,
    make_set,
    set_state,
    user_id,
)
from browse_support import error_of
from platform_server import LiveServer, live_platform
from test_i12_dataset_browse import _validate

from eoengine.platform.annotation.export import LABEL_EXTENSION
from eoengine.raster.cog import is_cog


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def labelled(live: LiveServer) -> dict[str, Any]:
    """A project with a set of 64-pixel cells on the sample stack: two features in cell (0, 0), accepted; one in (1, 1)."""
    made = annotation_project(live)
    grid, tasks, item, admin = made["grid"], made["tasks"], made["item"], user_id(live, "admin")
    first = add_feature(live, tasks[(0, 0)], grid.box(10, 20, 13, 25), 2, admin, item)
    second = add_feature(live, tasks[(0, 0)], grid.box(40, 40, 50, 60), 5, admin, item)
    other = add_feature(live, tasks[(1, 1)], grid.box(70, 70, 80, 80), 1, admin, item)
    set_state(live, [tasks[(0, 0)]], "accepted", reviewer=admin)
    return made | {"features": (first, second, other)}


def _get(live: LiveServer, set_id: int, **params: str) -> Any:
    with live.client() as c:
        return c.get(f"{BASE}/sets/{set_id}/export", params=params)


def test_geojson_export_carries_state_people_task_and_item(live: LiveServer, labelled: dict[str, Any]) -> None:
    r = _get(live, labelled["set"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    accepted = r.json()["features"]
    assert [f["id"] for f in accepted] == list(labelled["features"][:2])
    props = accepted[0]["properties"]
    assert props["label"] == 2 and props["state"] == "accepted" and props["annotator"] == "admin"
    assert props["reviewer"] == "admin" and props["task"] == labelled["tasks"][(0, 0)] and props["version"] == 1
    assert props["item"] == labelled["item"] and (props["row"], props["col"]) == (0, 0)
    assert accepted[0]["geometry"] == labelled["grid"].box(10, 20, 13, 25)
    everything = _get(live, labelled["set"], state="all").json()["features"]
    assert len(everything) == 3 and everything[2]["properties"]["state"] == "open"


def test_geopackage_export_reads_back_with_the_same_features(live: LiveServer, labelled: dict[str, Any],
                                                            tmp_path: Path) -> None:
    r = _get(live, labelled["set"], format="gpkg", state="all")
    assert r.status_code == 200
    (tmp_path / "out.gpkg").write_bytes(r.content)
    frame = gpd.read_file(tmp_path / "out.gpkg", layer="labels")
    assert frame.crs.to_epsg() == 4326 and sorted(frame["label"]) == [1, 2, 5]
    assert set(frame["state"]) == {"accepted", "open"}


def _raster(live: LiveServer, labelled: dict[str, Any], tmp_path: Path, **params: str) -> tuple[np.ndarray, Any]:
    r = _get(live, labelled["set"], format="raster", **params)
    assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
    path = tmp_path / "labels.tif"
    path.write_bytes(r.content)
    assert is_cog(path)
    with rasterio.open(path) as ds:
        grid: PixelGrid = labelled["grid"]
        assert ds.crs.to_wkt() == rasterio.crs.CRS.from_wkt(grid.crs).to_wkt() and ds.dtypes[0] == "uint8"
        assert tuple(ds.transform)[:6] == pytest.approx(grid.transform) and (ds.height, ds.width) == (grid.height, grid.width)
        return ds.read(1), ds.colormap(1)


def test_label_raster_burns_pixel_corner_polygons_onto_exactly_their_pixels(live: LiveServer, labelled: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    values, colours = _raster(live, labelled, tmp_path)
    expected = np.full(values.shape, 255, dtype=np.uint8)
    expected[:64, :64] = 3  # the accepted cell's background class
    expected[10:13, 20:25] = 2
    expected[40:50, 40:60] = 5
    np.testing.assert_array_equal(values, expected)
    assert colours[2][:3] == (0x1F, 0x78, 0xB4) and colours[255][3] == 0
    everything, _ = _raster(live, labelled, tmp_path, state="all")
    assert (everything[70:80, 70:80] == 1).all() and everything[69, 70] == 3 and everything[64, 64] == 3


def test_stac_export_is_a_valid_collection_of_label_items(live: LiveServer, labelled: dict[str, Any]) -> None:
    import pystac

    r = _get(live, labelled["set"], format="stac", state="all")
    assert r.status_code == 200
    files = zipfile.ZipFile(io.BytesIO(r.content))
    docs = {name: json.loads(files.read(name)) for name in files.namelist()}
    collection = docs["collection.json"]
    assert _validate(collection) == ([], [])
    assert len(collection["links"]) == len(labelled["tasks"])
    task = labelled["tasks"][(0, 0)]
    item = docs[f"task-{task}.json"]
    assert LABEL_EXTENSION in item["stac_extensions"]
    read = pystac.Item.from_dict(item)
    label = pystac.extensions.label.LabelExtension.ext(read)
    assert label.label_type == "vector" and label.label_tasks == ["segmentation"] and label.label_methods == ["manual"]
    assert label.label_classes[0].classes == [c["value"] for c in CLASSES]
    counts = {c.name: c.count for c in label.label_overviews[0].counts}
    assert counts == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    sources = [link for link in read.links if link.rel == "source"]
    assert [s.title for s in sources] == [labelled["item"]] and sources[0].href.endswith(f"/stac/collections/scenes/items/{labelled['item']}")
    asset = docs[read.assets["labels"].href.removeprefix("./")]
    assert [f["id"] for f in asset["features"]] == list(labelled["features"][:2])
    assert item["properties"]["datetime"].startswith("1999-11-18")


def test_stac_items_validate_against_the_label_extension_item_schema(live: LiveServer, labelled: dict[str, Any]) -> None:
    import referencing
    from jsonschema import Draft7Validator
    from pystac.validation.local_validator import get_local_schema_cache
    from referencing.jsonschema import DRAFT7
    from test_i12_dataset_browse import SCHEMAS

    label = json.loads((SCHEMAS / "stac-extensions.github.io" / "label" / "v1.0.1" / "schema.json").read_text())
    registry = referencing.Registry().with_resources(
        (url, referencing.Resource.from_contents(s, default_specification=DRAFT7))
        for url, s in get_local_schema_cache().items())
    core = registry.contents("https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json")
    r = _get(live, labelled["set"], format="stac")
    files = zipfile.ZipFile(io.BytesIO(r.content))
    items = [json.loads(files.read(n)) for n in files.namelist() if n.startswith("task-") and n.endswith(".json")]
    assert len(items) == 1  # only the accepted task
    for schema in (core, label):
        validator = Draft7Validator(schema, registry=registry)
        assert [e.message for e in validator.iter_errors(items[0])] == []
        broken = {**items[0], "properties": {"datetime": "1999-11-18T00:00:00Z", "label:type": "pixels"}}
        assert list(Draft7Validator(label, registry=registry).iter_errors(broken))  # the check can fail


def test_bad_exports_answer_4xx(live: LiveServer, labelled: dict[str, Any]) -> None:
    assert "format" in json.dumps(error_of(_get(live, labelled["set"], format="shp"), 422))
    assert "state" in json.dumps(error_of(_get(live, labelled["set"], state="some"), 422))
    assert "no annotation set" in error_of(_get(live, 999), 404)["error"]
    outsider = live.user("outsider")
    with live.client(outsider) as c:
        error_of(c.get(f"{BASE}/sets/{labelled['set']}/export"), 404)
    change, _ = make_set(live, "tiny", labelled["item"], labelled["grid"], kind="change", name="change")
    assert "change set" in error_of(_get(live, change, format="raster"), 422)["error"]
    set_state(live, [labelled["tasks"][(0, 0)]], "submitted")
    assert "no features" in error_of(_get(live, labelled["set"], format="gpkg"), 422)["error"]
    assert "no tasks" in error_of(_get(live, labelled["set"], format="stac"), 422)["error"]
