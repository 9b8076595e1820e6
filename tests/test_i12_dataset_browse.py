"""Browsing real datasets built from the sample scene: balance, statistics, footprints, previews, archive, leakage, STAC."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import referencing
import zarr
from affine import Affine
from conftest import save_config, tiny_config, write_raster
from jsonschema import Draft7Validator
from pyproj import Geod
from pystac.validation.local_validator import get_local_schema_cache
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds
from referencing.jsonschema import DRAFT7
from shapely.geometry import box, shape

from eoengine.config.load import load_config
from eoengine.datasets import browse
from eoengine.datasets.build import build_dataset
from eoengine.datasets.schema import DATASET_FIX, DatasetManifest
from eoengine.datasets.tfrecord import example_class, write_records
from eoengine.datasets.tfrecord_import import import_tfrecords
from eoengine.errors import Invalid, NotFound
from eoengine.labels import IGNORE

SCHEMAS = Path(__file__).parent / "data" / "stac-schemas"
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rasterio's own Affine products


def _build(tmp: Path, **overrides: Any) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    return build_dataset(load_config(save_config(tmp, tiny_config(tmp, **overrides)))).path


@pytest.fixture(scope="module")
def tiny_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny config's dataset: 16 px chips side by side, split at random (chips of different splits touch)."""
    return _build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def overlap_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chips every 8 px, split at random: chips of different splits share pixels."""
    return _build(tmp_path_factory.mktemp("overlap"), **{"dataset.stride": 8})


def _regions(path: Path, crs: str, corner: tuple[float, float], px: float, width: int,
             rows: dict[str, tuple[int, int]]) -> dict[str, str]:
    """A split config on regions: one band of scene rows per split, across the scene (gaps between bands drop chips)."""
    import geopandas as gpd

    x0, y0 = corner
    geoms = [box(x0, y0 - b * px, x0 + width * px, y0 - a * px) for a, b in rows.values()]
    gpd.GeoDataFrame({"split": list(rows)}, geometry=geoms, crs=crs).to_file(path)
    return {"method": "regions", "path": str(path)}


@pytest.fixture(scope="module")
def regions_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Split by regions as the demo is, with 10 px gaps between them: train on top, val, then test below."""
    tmp = tmp_path_factory.mktemp("regions")
    split = _regions(tmp / "regions.geojson", "EPSG:32615", (462405.0, 1741815.0), 30.0, 250,
                     {"train": (0, 100), "val": (110, 170), "test": (180, 250)})
    return _build(tmp, **{"dataset.split": split})


@pytest.fixture(scope="module")
def geo_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scene on a geographic grid (EPSG:4326) with nodata edges, split by regions with gaps."""
    tmp = tmp_path_factory.mktemp("geo")
    rng = np.random.default_rng(1)
    image = rng.uniform(100, 3000, (4, 128, 128)).astype(np.float32)
    image[:, :8], image[:, :, :8] = -9999, -9999  # a nodata border on two sides
    grid = {"crs": "EPSG:4326", "res": 0.0003, "origin": (-93.35, 15.75)}
    stack = write_raster(tmp / "scene.tif", image, nodata=-9999, **grid)
    labels = write_raster(tmp / "labels.tif", rng.integers(1, 3, (128, 128)).astype(np.uint8), **grid)
    bands = [{"name": b, "common_name": b} for b in ("blue", "green", "red", "nir")]
    return _build(tmp, **{"imagery": {"bands": bands, "scenes": [{"id": "g", "datetime": "2001-02-03", "stack": str(stack)}]},
                          "labels": {"type": "raster", "path": str(labels)},
                          "classes": [{"value": 1, "name": "a", "color": "#102030"}, {"value": 2, "name": "b", "color": "#a0b0c0"}],
                          "features.indices": [], "dataset.split": _regions(tmp / "regions.geojson", "EPSG:4326", (-93.35, 15.75),
                                                                            0.0003, 128, {"train": (0, 60), "val": (68, 96), "test": (104, 128)})})


@pytest.fixture(scope="module")
def imported_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TFRecord import: chips without footprints, scenes or common names."""
    tmp = tmp_path_factory.mktemp("imported")
    rng = np.random.default_rng(0)
    files = {}
    for split in ("train", "test"):
        records = []
        for _ in range(4):
            ex = example_class()()
            for band in ("B4", "B3", "B2", "B8"):
                ex.features.feature[band].float_list.value.extend(rng.random(64).tolist())
            ex.features.feature["landcover"].int64_list.value.extend(rng.integers(0, 3, 64).tolist())
            records.append(ex.SerializeToString())
        write_records(tmp / f"{split}.tfrecord.gz", records)
        files[split] = [str(tmp / f"{split}.tfrecord.gz")]
    return import_tfrecords(files, tmp / "ds", label="landcover").path


def _index(root: Path) -> Any:
    import geopandas as gpd

    return gpd.read_parquet(root / "chips.parquet").sort_values("chip_id").reset_index(drop=True)


def _arrays(root: Path) -> tuple[Any, Any]:
    group = zarr.open_group(str(root / "data.zarr"), mode="r")
    return group["images"], group["labels"]


def _native_boxes(root: Path) -> dict[int, Any]:
    """Chip footprints in the scene's CRS, from the manifest's grid with rasterio (not the module's code)."""
    m = DatasetManifest.read(root)
    grids = {s.id: Affine(*s.grid.transform) for s in m.scenes}
    p = m.patch_size
    return {int(r.chip_id): box(*window_bounds(Window(r.col, r.row, p, p), grids[r.scene])) for r in _index(root).itertuples()}


def _decode(png: bytes) -> np.ndarray:
    with MemoryFile(png) as mem, mem.open() as ds:
        assert ds.driver == "PNG"
        return ds.read()


# --- class balance and band statistics -------------------------------------------------------------------


def test_class_balance_counts_every_label_pixel_of_every_split(tiny_ds: Path) -> None:
    m, index = DatasetManifest.read(tiny_ds), _index(tiny_ds)
    _, labels = _arrays(tiny_ds)
    balance = browse.class_balance(tiny_ds)
    assert [s.split for s in balance.splits] == ["train", "val", "test"]
    assert balance.dataset == tiny_ds.name
    for s in balance.splits:
        ids = index.loc[index.split == s.split, "chip_id"].to_numpy()
        expected = np.bincount(labels.get_orthogonal_selection((ids,)).ravel(), minlength=256)
        assert [c.pixels for c in s.classes] == expected[: len(m.classes)].tolist() == m.class_frequencies[s.split]
        assert s.unlabelled == expected[IGNORE] and s.unlabelled > 0
        assert s.chips == m.splits[s.split] and s.pixels == s.chips * m.patch_size**2
        assert [(c.index, c.value, c.name, c.color) for c in s.classes] == [(c.index, c.value, c.name, c.color) for c in m.classes]
    assert json.loads(json.dumps(balance.to_json()))["splits"][0]["classes"][0]["name"] == "forest"


def test_band_stats_over_every_train_chip_equal_the_manifest_and_numpy(tiny_ds: Path) -> None:
    m, index = DatasetManifest.read(tiny_ds), _index(tiny_ds)
    images, _ = _arrays(tiny_ds)
    train = index.loc[index.split == "train", "chip_id"].to_numpy()
    x = np.moveaxis(images.get_orthogonal_selection((train,)), 1, 0).reshape(len(m.channels), -1)
    stats = browse.band_stats(tiny_ds)
    assert (stats.chips, stats.sampled, stats.split) == (len(train), len(train), "train")
    assert [c.name for c in stats.channels] == m.channels
    for k, c in enumerate(stats.channels):
        s = m.statistics.train
        assert (c.mean, c.std, c.min, c.max) == pytest.approx((s.mean[k], s.std[k], s.min[k], s.max[k]), rel=1e-6)
        valid = x[k][np.isfinite(x[k])]
        assert (c.p2, c.p98) == pytest.approx(tuple(np.percentile(valid, [2, 98])), rel=1e-6)
        assert c.p2 < c.p98 and c.nodata_share == 0.0


def test_band_stats_sample_is_spread_evenly_and_repeatable(tiny_ds: Path) -> None:
    index = _index(tiny_ds)
    images, _ = _arrays(tiny_ds)
    train = index.loc[index.split == "train", "chip_id"].to_numpy()
    picked = browse.evenly(train, 5)
    assert len(set(picked)) == 5 and picked[0] == train[0] and picked[-1] == train[-1]
    stats = browse.band_stats(tiny_ds, max_chips=5)
    assert stats.sampled == 5 and stats.chips == len(train)
    blue = images.get_orthogonal_selection((picked,))[:, 0]
    assert stats.channels[0].mean == pytest.approx(float(np.mean(blue, dtype=np.float64)), rel=1e-6)
    assert stats.channels[0].max == pytest.approx(float(blue.max()))
    assert browse.band_stats(tiny_ds, max_chips=5) == stats
    strided = browse.band_stats(tiny_ds, max_values=100)  # percentiles over every 70th value: still within the range
    assert all(c.min <= c.p2 <= c.p98 <= c.max for c in strided.channels)  # type: ignore[operator]


def test_band_stats_count_nodata(geo_ds: Path) -> None:
    index = _index(geo_ds)
    images, _ = _arrays(geo_ds)
    train = index.loc[index.split == "train", "chip_id"].to_numpy()
    nan_share = float(np.isnan(images.get_orthogonal_selection((train,))[:, 0]).mean())
    stats = browse.band_stats(geo_ds)
    assert stats.channels[0].nodata_share == pytest.approx(nan_share)
    assert 0 < nan_share < 1  # the nodata edges reach train chips: the check means something
    assert stats.channels[0].min >= 100  # type: ignore[operator]  # nodata (-9999) is not a value


# --- footprints and previews -----------------------------------------------------------------------------


def test_footprints_are_every_chip_in_4326_coloured_by_split(tiny_ds: Path) -> None:
    m, index = DatasetManifest.read(tiny_ds), _index(tiny_ds)
    fc = browse.footprints(tiny_ds)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == m.n_chips == len(index)
    assert [f["properties"]["chip"] for f in fc["features"]] == index.chip_id.tolist()
    colours = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
    assert all(f["properties"]["color"] == colours[f["properties"]["split"]] for f in fc["features"])
    assert {f["properties"]["split"] for f in fc["features"]} == {"train", "val", "test"}
    assert {f["properties"]["scene"] for f in fc["features"]} == {"s1999"}
    chip = index.iloc[5]
    feature = next(f for f in fc["features"] if f["id"] == chip.chip_id)
    grid = m.scenes[0].grid
    native = window_bounds(Window(chip.col, chip.row, m.patch_size, m.patch_size), Affine(*grid.transform))
    expected = transform_bounds(rasterio.CRS.from_wkt(grid.crs_wkt), "EPSG:4326", *native)
    assert shape(feature["geometry"]).bounds == pytest.approx(expected, abs=1e-7)
    assert -94 < expected[0] < -93 and 15 < expected[1] < 16  # Mexico, where the sample scene lies


def test_chip_preview_is_a_stretched_rgb_png_of_the_chip(tiny_ds: Path) -> None:
    m, index = DatasetManifest.read(tiny_ds), _index(tiny_ds)
    images, _ = _arrays(tiny_ds)
    chip = int(index.chip_id.iloc[3])
    png = browse.chip_preview_png(tiny_ds, chip)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    rgba = _decode(png)
    assert rgba.shape == (4, m.patch_size, m.patch_size)
    assert (rgba[3] == 255).all()  # no nodata in the sample scene
    rgb = images[chip][[2, 1, 0]].astype(np.float64)  # red, green, blue by common name
    lo, hi = np.percentile(rgb, [2, 98], axis=(1, 2))
    expected = np.clip((rgb - lo[:, None, None]) / (hi - lo)[:, None, None] * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(rgba[:3].astype(int) - expected).max() <= 1
    assert (rgba[:3] == 0).any() and (rgba[:3] == 255).any()  # the stretch clips at both ends
    fixed = _decode(browse.chip_preview_png(tiny_ds, chip, bands="nir,red,green", stretch="0,0.5"))
    nrg = images[chip][[3, 2, 1]].astype(np.float64)
    assert np.abs(fixed[:3].astype(int) - np.clip(nrg / 0.5 * 255 + 0.5, 0, 255).astype(int)).max() <= 1
    grey = _decode(browse.chip_preview_png(tiny_ds, chip, bands=["NDVI"]))
    assert (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all() and grey[0].std() > 0


def test_chip_preview_makes_nodata_transparent(geo_ds: Path) -> None:
    images, _ = _arrays(geo_ds)
    index = _index(geo_ds)
    chip = next(int(c) for c in index.chip_id if np.isnan(images[c]).any())
    rgba = _decode(browse.chip_preview_png(geo_ds, chip, stretch="p0,p100"))
    nodata = np.isnan(images[chip][[2, 1, 0]]).any(axis=0)
    assert ((rgba[3] == 0) == nodata).all() and nodata.any() and not nodata.all()


def test_label_preview_uses_the_class_colours_and_hides_unlabelled(tiny_ds: Path) -> None:
    m, index = DatasetManifest.read(tiny_ds), _index(tiny_ds)
    _, labels = _arrays(tiny_ds)
    chip = next(int(c) for c in index.chip_id if len(np.unique(labels[c])) > 2)
    lab = labels[chip]
    rgba = _decode(browse.label_preview_png(tiny_ds, chip))
    assert rgba.shape == (4, m.patch_size, m.patch_size)
    assert ((rgba[3] == 0) == (lab == IGNORE)).all()
    for c in m.classes:
        where = lab == c.index
        assert (rgba[:3, where].T == list(bytes.fromhex(c.color[1:]))).all()


# --- archive ---------------------------------------------------------------------------------------------


def test_archive_holds_every_file_sorted_with_fixed_times_and_is_reproducible(tiny_ds: Path) -> None:
    m = DatasetManifest.read(tiny_ds)
    first, second = io.BytesIO(), io.BytesIO()
    browse.write_archive(tiny_ds, first)
    browse.write_archive(tiny_ds, second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        members = tar.getmembers()
        files = {mem.name: mem for mem in members if mem.isfile()}
        assert set(files) == {f"{tiny_ds.name}/{p.relative_to(tiny_ds).as_posix()}" for p in tiny_ds.rglob("*") if p.is_file()}
        manifest = tar.extractfile(files[f"{tiny_ds.name}/manifest.json"])
        assert manifest is not None and manifest.read() == (tiny_ds / "manifest.json").read_bytes()
        chip = next(n for n in files if "/labels/c/" in n)
        member = tar.extractfile(files[chip])
        assert member is not None and member.read() == (tiny_ds.parent / chip).read_bytes()
    assert {mem.mtime for mem in members} == {int(datetime.fromisoformat(m.created).timestamp())}
    assert {(mem.uid, mem.gid, mem.uname) for mem in members} == {(0, 0, "")}
    names = [mem.name for mem in members]
    assert names.index(f"{tiny_ds.name}/data.zarr") < names.index(f"{tiny_ds.name}/data.zarr/images")
    assert names.index(f"{tiny_ds.name}/chips.parquet") < names.index(f"{tiny_ds.name}/manifest.json")
    packed = io.BytesIO()
    browse.write_archive(tiny_ds, packed, gz=True)
    assert packed.getvalue()[4:8] == b"\0\0\0\0"  # gzip header time 0: the same bytes every time
    assert gzip.decompress(packed.getvalue()) == first.getvalue()
    assert b"".join(browse.archive_chunks(tiny_ds)) == first.getvalue()


def test_archive_stream_stops_its_thread_when_the_reader_leaves(tiny_ds: Path) -> None:
    before = set(threading.enumerate())  # other tests' threads may end meanwhile: compare the new ones only
    chunks = browse.archive_chunks(tiny_ds)
    assert len(next(chunks)) > 0
    chunks.close()  # type: ignore[attr-defined]
    assert [t.name for t in set(threading.enumerate()) - before] == []


def test_archive_leaves_out_symlinks(tiny_ds: Path, tmp_path: Path) -> None:
    copy = tmp_path / tiny_ds.name
    shutil.copytree(tiny_ds, copy)
    (tmp_path / "secret.txt").write_text("not part of the dataset")
    (copy / "link.txt").symlink_to(tmp_path / "secret.txt")
    out = io.BytesIO()
    browse.write_archive(copy, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert f"{copy.name}/link.txt" not in tar.getnames() and f"{copy.name}/manifest.json" in tar.getnames()


# --- leakage ---------------------------------------------------------------------------------------------


def _brute(root: Path, threshold: float) -> dict[str, tuple[float, int, int]]:
    """(min distance, train chips within threshold, train chips sharing pixels) per split, over every pair."""
    boxes, index = _native_boxes(root), _index(root)
    split = dict(zip(index.chip_id, index.split, strict=True))
    train = [b for c, b in boxes.items() if split[c] == "train"]
    out = {}
    for s in ("val", "test"):
        other = [b for c, b in boxes.items() if split[c] == s]
        dist = np.array([[t.distance(o) for o in other] for t in train])
        shared = np.array([[t.intersection(o).area > 0 for o in other] for t in train])
        out[s] = (float(dist.min()), int((dist.min(axis=1) <= threshold).sum()), int(shared.any(axis=1).sum()))
    return out


def test_leakage_of_touching_chips_is_zero_distance_without_shared_pixels(tiny_ds: Path) -> None:
    report = browse.leakage(tiny_ds)
    expected = _brute(tiny_ds, 0.0)
    assert {s.split: (s.min_distance_m, s.within, s.overlapping) for s in report.splits} == expected
    assert expected["test"][0] == 0 and expected["test"][1] > 0 and expected["test"][2] == 0  # the case this test is about
    assert report.verdict == "near" and "touch" in report.summary
    assert report.crs == "EPSG:32615 (WGS 84 / UTM zone 15N)"
    assert report.train_chips == DatasetManifest.read(tiny_ds).splits["train"]
    far = browse.leakage(tiny_ds, threshold_m=100.0)
    assert {s.split: s.within for s in far.splits} == {s: v[1] for s, v in _brute(tiny_ds, 100.0).items()}


def test_leakage_counts_train_chips_sharing_pixels_with_evaluation_chips(overlap_ds: Path) -> None:
    report = browse.leakage(overlap_ds)
    expected = _brute(overlap_ds, 0.0)
    assert {s.split: (s.min_distance_m, s.within, s.overlapping) for s in report.splits} == expected
    assert all(v[2] > 0 for v in expected.values())
    assert report.verdict == "overlap" and "sharing pixels" in report.summary


def test_leakage_of_a_region_split_with_gaps_is_the_smallest_distance(regions_ds: Path) -> None:
    report = browse.leakage(regions_ds)
    expected = _brute(regions_ds, 0.0)
    assert {s.split: (s.min_distance_m, s.within, s.overlapping) for s in report.splits} == expected
    assert all(v[0] >= 300 for v in expected.values())  # the 10 px gap between the regions, at least
    assert report.verdict == "separated"
    boxes = _native_boxes(regions_ds)
    for s in report.splits:
        assert s.nearest is not None
        assert boxes[s.nearest[0]].distance(boxes[s.nearest[1]]) == pytest.approx(s.min_distance_m)
    nearest = min(s.min_distance_m for s in report.splits if s.min_distance_m is not None)
    at = browse.leakage(regions_ds, threshold_m=nearest)
    assert at.verdict == "near" and sum(s.within for s in at.splits) >= 1
    assert {s.split: s.within for s in at.splits} == {s: v[1] for s, v in _brute(regions_ds, nearest).items()}


def test_leakage_on_a_geographic_grid_is_in_metres(geo_ds: Path) -> None:
    report = browse.leakage(geo_ds)
    assert "UTM zone 15N" in report.crs
    fc = {f["id"]: shape(f["geometry"]) for f in browse.footprints(geo_ds)["features"]}
    geod = Geod(ellps="WGS84")
    for s in report.splits:
        assert s.nearest is not None and s.min_distance_m is not None and s.min_distance_m > 200
        a, b = (np.array(fc[c].exterior.segmentize(0.0001).coords) for c in s.nearest)
        lon1, lon2 = np.meshgrid(a[:, 0], b[:, 0])
        lat1, lat2 = np.meshgrid(a[:, 1], b[:, 1])
        geodesic = geod.inv(lon1.ravel(), lat1.ravel(), lon2.ravel(), lat2.ravel())[2].min()
        assert s.min_distance_m == pytest.approx(geodesic, rel=0.01)


# --- STAC ------------------------------------------------------------------------------------------------


def _validate(doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Validate an Item or Collection offline (core schema and each extension's, Draft 7): (errors, schemas not available offline)."""
    resources = [(url, referencing.Resource.from_contents(s, default_specification=DRAFT7))
                 for url, s in get_local_schema_cache().items()]
    for f in SCHEMAS.rglob("*.json"):
        resources.append((f"https://{f.relative_to(SCHEMAS).as_posix()}",
                          referencing.Resource.from_contents(json.loads(f.read_text()), default_specification=DRAFT7)))
    registry = referencing.Registry().with_resources(resources)
    kind = "item" if doc.get("type") == "Feature" else "collection"
    core = f"https://schemas.stacspec.org/v{doc['stac_version']}/{kind}-spec/json-schema/{kind}.json"
    errors, missing = [], []
    for url in [core, *doc.get("stac_extensions", [])]:
        try:
            schema = registry.contents(url)
        except referencing.exceptions.NoSuchResource:
            missing.append(url)
            continue
        errors += [f"{url}: {e.message}" for e in Draft7Validator(schema, registry=registry).iter_errors(doc)]
    return errors, missing


def test_stac_collection_describes_the_dataset_and_validates(tiny_ds: Path) -> None:
    import pystac

    m = DatasetManifest.read(tiny_ds)
    href = "https://eo.example/api/v1/projects/p/datasets/tiny@x/stac"
    doc = browse.stac_collection(tiny_ds, href)
    errors, missing = _validate(doc)
    assert errors == []
    assert missing == [browse.CLASSIFICATION_EXTENSION]  # not stored offline: its fields are checked below
    assert doc["id"] == tiny_ds.name == f"{m.name}@{m.version[:12]}" and doc["license"] == "other"
    assert doc["extent"]["spatial"]["bbox"] == [pytest.approx(list(_index(tiny_ds).total_bounds))]
    assert doc["extent"]["temporal"]["interval"] == [["1999-11-18T00:00:00Z", "1999-11-18T00:00:00Z"]]
    assert doc["summaries"]["eo:bands"] == [{"name": b, "common_name": b} for b in ("blue", "green", "red", "nir")]
    classes = doc["summaries"]["classification:classes"]
    assert [(c["value"], c["name"], c["color_hint"]) for c in classes] == [
        (c.index, c.name, c.color[1:].upper()) for c in m.classes]
    assert all(isinstance(c["value"], int) and len(c["color_hint"]) == 6 for c in classes)
    assert doc["eoengine:splits"] == {s: {"chips": n} for s, n in m.splits.items()}
    assert doc["eoengine:version"] == m.version
    base = "https://eo.example/api/v1/projects/p/datasets/tiny@x/files/"
    assert {k: a["href"] for k, a in doc["assets"].items()} == {
        "manifest": base + "manifest.json", "chips": base + "chips.parquet", "data": base + "data.zarr"}
    assert next(link["href"] for link in doc["links"] if link["rel"] == "self") == href
    assert pystac.Collection.from_dict(doc).id == doc["id"]
    other = browse.stac_collection(tiny_ds, href, files_href="https://cdn.example/tiny/")
    assert other["assets"]["chips"]["href"] == "https://cdn.example/tiny/chips.parquet"


def test_stac_collection_records_a_licence_when_the_manifest_has_one(tiny_ds: Path, tmp_path: Path) -> None:
    copy = tmp_path / tiny_ds.name
    shutil.copytree(tiny_ds, copy)
    data = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(data | {"license": "CC-BY-4.0"}))
    doc = browse.stac_collection(copy, "https://eo.example/x/stac")
    assert doc["license"] == "CC-BY-4.0" and _validate(doc)[0] == []


# --- imported datasets, changes, bad input ---------------------------------------------------------------


def test_an_imported_dataset_without_footprints_still_browses(imported_ds: Path) -> None:
    fc = browse.footprints(imported_ds)
    assert len(fc["features"]) == 8 and all(f["geometry"] is None for f in fc["features"])
    assert _decode(browse.chip_preview_png(imported_ds, 0)).shape == (4, 8, 8)  # its first three channels
    assert browse.preview_channels(DatasetManifest.read(imported_ds)) == [0, 1, 2]
    doc = browse.stac_collection(imported_ds, "https://eo.example/x/stac")
    assert doc["extent"]["spatial"]["bbox"] == [[-180.0, -90.0, 180.0, 90.0]] and _validate(doc)[0] == []
    assert doc["summaries"]["eo:bands"] == [{"name": b} for b in DatasetManifest.read(imported_ds).bands]
    balance = browse.class_balance(imported_ds)
    assert sum(c.pixels for c in balance.splits[0].classes) + balance.splits[0].unlabelled == 4 * 64
    with pytest.raises(Invalid, match="records no chip footprints") as err:
        browse.leakage(imported_ds)
    assert "eoengine dataset build" in str(err.value.fix)


def test_a_changed_folder_is_read_again(tiny_ds: Path, tmp_path: Path) -> None:
    copy = tmp_path / tiny_ds.name
    shutil.copytree(tiny_ds, copy)
    assert browse.class_balance(copy).splits[2].chips > 0
    index = _index(copy)
    index[index.split != "test"].to_parquet(copy / "chips.parquet")
    balance = browse.class_balance(copy)
    assert balance.splits[2].chips == 0 and balance.splits[0].chips == (index.split == "train").sum()


@pytest.mark.parametrize("call", [browse.class_balance, browse.band_stats, browse.footprints, browse.leakage,
                                  lambda r: browse.chip_preview_png(r, 0), lambda r: browse.label_preview_png(r, 0),
                                  lambda r: browse.write_archive(r, io.BytesIO()), browse.archive_chunks,
                                  lambda r: browse.stac_collection(r, "https://x/stac")])
def test_a_folder_that_is_not_a_dataset_is_not_found(call: Any, tmp_path: Path, tiny_ds: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_ds / "manifest.json", partial / "manifest.json")
    for root, why in [(tmp_path / "missing", "not found"), (tmp_path / "file.txt", "a file"),
                      (tmp_path / "empty", "no manifest.json"), (partial, "no chips.parquet")]:
        with pytest.raises(NotFound, match="is not an eoengine dataset") as err:
            call(root)
        assert why in err.value.problem and err.value.fix == DATASET_FIX


def test_an_unknown_chip_is_not_found(tiny_ds: Path) -> None:
    for preview in (browse.chip_preview_png, browse.label_preview_png):
        with pytest.raises(NotFound, match=r"chip 1 is not in dataset tiny@") as err:
            preview(tiny_ds, 1)  # a candidate the build dropped: its array row was never written
        assert "ids run from 6 to 251" in str(err.value.fix)


def test_unknown_bands_and_bad_band_counts_are_refused(tiny_ds: Path) -> None:
    chip = int(_index(tiny_ds).chip_id.iloc[0])
    with pytest.raises(Invalid, match="the dataset has no band 'swir16'") as err:
        browse.chip_preview_png(tiny_ds, chip, bands="red,swir16,blue")
    assert err.value.fix == "use one of its channels: blue, green, red, nir, NDVI"
    with pytest.raises(Invalid, match="three bands .* not 2"):
        browse.chip_preview_png(tiny_ds, chip, bands=["red", "green"])


@pytest.mark.parametrize("stretch", ["2,98,99", "p2,0.3", "a,b", "p50,p10", "p2,p120", "0.3,0.1", "nan,1", ""])
def test_a_malformed_stretch_is_refused(tiny_ds: Path, stretch: str) -> None:
    chip = int(_index(tiny_ds).chip_id.iloc[0])
    with pytest.raises(Invalid, match="stretch") as err:
        browse.chip_preview_png(tiny_ds, chip, stretch=stretch)
    assert err.value.fix == browse.STRETCH_FIX


def test_bad_numbers_are_refused(tiny_ds: Path) -> None:
    for threshold in (-1.0, float("nan"), float("inf")):
        with pytest.raises(Invalid, match="is not a distance"):
            browse.leakage(tiny_ds, threshold_m=threshold)
    with pytest.raises(Invalid, match="at least one chip"):
        browse.band_stats(tiny_ds, max_chips=0)
