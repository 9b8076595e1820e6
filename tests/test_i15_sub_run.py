"""Subscription runs over a local STAC catalog of tiny real scenes: maps, items, statistics, change, webhooks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
from conftest import saved_package
from shapely.geometry import shape
from subscriptions_support import SECRET, Receiver, area_of, catalog, inside, item_of, spec_data, write_scene
from test_i12_dataset_browse import _validate as stac_errors

from eoengine.inference.class_areas import class_areas
from eoengine.raster.cog import is_cog
from eoengine.subscriptions.run import run_due
from eoengine.subscriptions.spec import parse_spec
from eoengine.subscriptions.state import SubscriptionState

NOW = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_package(tmp_path_factory.mktemp("i15pkg") / "pkg")


@pytest.fixture
def receiver() -> Receiver:
    r = Receiver()
    yield r  # type: ignore[misc]
    r.close()


def _signed(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-eoengine-signature"], expected)


def test_a_new_scene_gives_a_new_map_item_stats_change_and_a_signed_webhook(tmp_path: Path, package: Path,
                                                                             receiver: Receiver) -> None:
    a = write_scene(tmp_path / "scenes", "a")
    area = area_of(a)
    cat = catalog(tmp_path / "cat", [("a", "2021-03-01", 20.0, a)])
    spec = parse_spec(spec_data(cat, package, area, webhooks=[{"url": receiver.url, "secret": SECRET}]))
    out, cache = tmp_path / "out", tmp_path / "cache"
    state, first = run_due(spec, SubscriptionState(), out, cache, NOW)
    assert [r.status for r in first] == ["succeeded"] and first[0].scene_ids == ["a"] and first[0].change is None

    b = write_scene(tmp_path / "scenes", "b", shift=8, gain=1.3)
    catalog(cat, [("a", "2021-03-01", 20.0, a), ("b", "2021-04-10", 5.0, b)])
    state, second = run_due(spec, state, out, cache, NOW + dt.timedelta(days=1))
    [run] = second
    assert run.status == "succeeded" and run.scene_ids == ["b"] and run.key != first[0].key
    assert state.newest_scene == dt.datetime(2021, 4, 10, tzinfo=dt.UTC) and state.previous_key == run.key

    # the map: a COG with overviews, over the area, its class areas those recorded
    assert run.map_path and is_cog(Path(run.map_path))
    measured = {c.name: round(c.hectares, 4) for c in class_areas(Path(run.map_path), area)}
    assert {s.name: s.hectares for s in run.stats} == measured and sum(measured.values()) > 0

    # the STAC item validates, names the model version and inputs, and is in the collection
    item = item_of(run)
    errors, missing = stac_errors(item.to_dict())
    assert errors == [] and missing == ["https://stac-extensions.github.io/processing/v1.2.0/schema.json"]
    assert stac_errors({**item.to_dict(), "geometry": None, "bbox": "x"})[0]  # the check can fail
    assert item.properties["eoengine:input_items"] == ["b"] and item.properties["eoengine:model_version"] == run.model_version
    assert "processing:lineage" in item.properties and inside(item.geometry, area) and inside(area, item.geometry)
    assert Path(item.assets["map"].get_absolute_href() or "").resolve() == Path(run.map_path).resolve()
    collection = pystac.Collection.from_file(str(out / "collection.json"))
    assert stac_errors(collection.to_dict()) == ([], [])
    assert {i.id for i in collection.get_items()} == {first[0].key, run.key}
    from eoengine.config.query import SearchQuery
    from eoengine.sourcing.search import search

    assert [i.id for i in search(str(out), SearchQuery.of({"ids": [run.key]}))] == [run.key]  # a catalog to serve
    assert collection.extent.temporal.intervals[0] == [first[0].period_start, run.period_end]  # the periods mapped

    # the series over both runs, in JSON, CSV and GeoParquet (with the area's geometry)
    series = json.loads((out / "stats.json").read_text())["series"]
    assert [r["run"] for r in series] == [first[0].key] * len(first[0].stats) + [run.key] * len(run.stats)
    frame = gpd.read_parquet(out / "stats.parquet")
    assert len(frame) == len(series) and frame.crs.to_epsg() == 4326
    assert frame.geometry.iloc[0].equals_exact(shape(area), 1e-9)
    assert (out / "stats.csv").read_text().splitlines()[0] == "run,datetime,model_version,class,code,pixels,hectares"

    # the change: transitions from the previous map to this one, and polygons within the area
    assert run.change is not None and run.change.previous_key == first[0].key
    with rasterio.open(first[0].map_path) as old, rasterio.open(run.map_path) as new:
        assert old.transform == new.transform
        moved = int(((old.read(1) != new.read(1)) & (old.read(1) != old.nodata)).sum())
    assert (moved > 0) == (run.change.changed_hectares > 0)
    assert run.change.changed_hectares == pytest.approx(sum(t.hectares for t in run.change.transitions), abs=1e-3)
    polygons = json.loads(Path(run.change.polygons).read_text())["features"]
    assert len(polygons) == run.change.polygon_count > 0
    assert all(inside(f["geometry"], area, 1e-7) and f["properties"]["from"] != f["properties"]["to"] for f in polygons)

    # drift: the tiny package records no dataset, which is said, not failed
    assert run.drift is not None and run.drift.status == "no-reference" and "records no dataset" in run.drift.reasons[0]

    # webhooks: run.succeeded twice and change.detected once (threshold 0), each signed
    topics = [h["x-eoengine-event"] for h, _ in receiver.received]
    assert topics == ["run.succeeded", "run.succeeded", "change.detected"]
    assert all(_signed(h, body) and h["x-eoengine-delivery"] and h["x-eoengine-timestamp"] for h, body in receiver.received)
    assert receiver.bodies("change.detected")[0]["run"]["change"]["changed_hectares"] == run.change.changed_hectares
    assert [d.outcome for d in run.deliveries] == ["delivered", "delivered"]
    assert SECRET not in (out / "history.jsonl").read_text() + Path(run.item_path or "").read_text()

    # idempotency: nothing new → nothing runs, nothing is sent
    state, third = run_due(spec, state, out, cache, NOW + dt.timedelta(days=2))
    assert third == [] and len(receiver.received) == 3 and len(list((out / "runs").iterdir())) == 2


def test_backfill_runs_each_period_of_three_dates_once(tmp_path: Path, package: Path) -> None:
    scenes = [(f"s{d}", f"2021-03-0{d}T12:00:00", 10.0, write_scene(tmp_path / "scenes", f"s{d}", shift=4 * d)) for d in (1, 2, 3)]
    cat = catalog(tmp_path / "cat", scenes)
    spec = parse_spec(spec_data(cat, package, area_of(scenes[0][3]), cadence="daily", backfill=True,
                                start="2021-03-01T00:00:00Z", end="2021-03-05T00:00:00Z"))
    state, records = run_due(spec, SubscriptionState(), tmp_path / "out", tmp_path / "cache", NOW)
    assert [(r.period_start.day, r.period_end.day, r.status, r.scene_ids) for r in records] == [
        (1, 2, "succeeded", ["s1"]), (2, 3, "succeeded", ["s2"]), (3, 4, "succeeded", ["s3"]), (4, 5, "no-imagery", [])]
    assert state.completed and state.last_due == dt.datetime(2021, 3, 5, tzinfo=dt.UTC)
    assert [r.change is not None for r in records[:3]] == [False, True, True]
    again, rerun = run_due(spec, state, tmp_path / "out", tmp_path / "cache", NOW + dt.timedelta(days=30))
    assert rerun == [] and again.completed


def test_without_backfill_only_the_latest_period_runs(tmp_path: Path, package: Path) -> None:
    scenes = [(f"s{d}", f"2021-03-0{d}T12:00:00", 10.0, write_scene(tmp_path / "scenes", f"s{d}")) for d in (1, 2)]
    cat = catalog(tmp_path / "cat", scenes)
    spec = parse_spec(spec_data(cat, package, area_of(scenes[0][3]), cadence="daily", start="2021-03-01T00:00:00Z"))
    _, records = run_due(spec, SubscriptionState(), tmp_path / "out", tmp_path / "cache",
                         dt.datetime(2021, 3, 3, 6, tzinfo=dt.UTC))
    assert [(r.period_start.day, r.period_end.day, r.scene_ids) for r in records] == [(2, 3, ["s2"])]


def test_least_cloudy_takes_the_clearest_scene_and_median_is_numpy_s_median(tmp_path: Path, package: Path) -> None:
    files = [write_scene(tmp_path / "scenes", n, gain=g) for n, g in (("x", 1.0), ("y", 1.2), ("z", 0.7))]
    cat = catalog(tmp_path / "cat", [("x", "2021-03-01", 30.0, files[0]), ("y", "2021-03-02", 2.5, files[1]),
                                     ("z", "2021-03-03", 60.0, files[2])])
    area = area_of(files[0])
    _, [clear] = run_due(parse_spec(spec_data(cat, package, area, composite="least-cloudy")), SubscriptionState(),
                         tmp_path / "o1", tmp_path / "cache", NOW)
    assert clear.scene_ids == ["y"]
    _, [median] = run_due(parse_spec(spec_data(cat, package, area, composite="median")), SubscriptionState(),
                          tmp_path / "o2", tmp_path / "cache", NOW)
    assert sorted(median.scene_ids) == ["x", "y", "z"]
    composite = Path(median.map_path or "").with_name("composite.tif")
    stacks = sorted((tmp_path / "cache").rglob("*.tif"))
    with rasterio.open(composite) as ds:
        made = ds.read(masked=True)
    inputs = []
    for path in stacks:
        with rasterio.open(path) as ds:
            inputs.append(ds.read().astype("float32"))
    assert len(inputs) == 3 and all(i.shape == made.shape for i in inputs)
    np.testing.assert_allclose(made.filled(np.nan), np.median(np.stack(inputs), axis=0))
    assert median.status == "succeeded" and is_cog(Path(median.map_path or ""))


def test_a_registry_alias_is_resolved_at_each_run_and_an_unknown_one_fails_the_run(tmp_path: Path, package: Path) -> None:
    from eoengine.deploy.registry import move_alias, register
    from eoengine.models.package import load_package

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for _ in range(2):
        register(load_package(package), "watcher", uri, ["champion"])
    move_alias(uri, "watcher", "champion", "1")
    a = write_scene(tmp_path / "scenes", "a")
    cat = catalog(tmp_path / "cat", [("a", "2021-03-01", 20.0, a)])
    spec = parse_spec(spec_data(cat, "models:/watcher@champion", area_of(a)))
    state, [first] = run_due(spec, SubscriptionState(), tmp_path / "out", tmp_path / "cache", NOW, tracking_uri=uri)
    assert first.status == "succeeded" and first.model_version == "watcher/1"

    move_alias(uri, "watcher", "champion", "2")  # a new champion takes over at the next run
    b = write_scene(tmp_path / "scenes", "b", shift=8)
    catalog(cat, [("a", "2021-03-01", 20.0, a), ("b", "2021-04-10", 5.0, b)])
    state, [second] = run_due(spec, state, tmp_path / "out", tmp_path / "cache", NOW, tracking_uri=uri)
    assert second.status == "succeeded" and second.model_version == "watcher/2"
    assert item_of(second).properties["eoengine:model_version"] == "watcher/2"

    unknown = parse_spec(spec_data(cat, "models:/watcher@nobody", area_of(a)))
    _, [failed] = run_due(unknown, SubscriptionState(), tmp_path / "o2", tmp_path / "cache", NOW, tracking_uri=uri)
    assert failed.status == "failed" and failed.error is not None
    assert "models:/watcher@nobody is not in the registry" in failed.error.error and failed.error.fix
