"""A change set's snapshot builds a change_detection dataset of its two dates, on the NC sample over real HTTP.

One server (SQLite) for the module: project ``nc`` (scene ``lsat7_2000``, EPSG:32119, 489 x 443 px,
blocks of 128 px) and imagery uploads, each a later date (dated by its upload): ``later`` (the
scene's six bands over its top-left 200 x 200 px, one stack), ``nironly`` (only the nir band
there), ``away`` (six bands, 100 km east: no overlap) and ``shifting`` (six bands, rewritten later
with one band, then deleted).
"""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
import zarr
from annotation_io_support import PixelGrid, stack_grid
from browse_support import error_of
from conftest import NC, run_cli
from jobs_support import wait_job, worker
from platform_server import LiveServer, live_platform
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import shape
from shapely.ops import transform, unary_union
from sqlalchemy import select

from eoengine.datasets.schema import DatasetManifest
from eoengine.platform.db.models import Artifact

SCENE = "lsat7_2000"
ANN = "/projects/nc/annotation"
BANDS = ("10", "20", "30", "40", "50", "70")
TO_NATIVE = Transformer.from_crs("EPSG:4326", "EPSG:32119", always_xy=True).transform
CROP = 200


@dataclass
class Team:
    """The server, the project folder, the scene's pixel grid and tokens of an annotator and a reviewer."""

    live: LiveServer
    folder: Path
    grid: PixelGrid
    ann: str
    rita: str


def _stack(path: Path, bands: tuple[str, ...] = BANDS, east: float = 0.0) -> Path:
    """The scene's ``bands`` over its top-left 200 x 200 px as one GeoTIFF (moved ``east`` metres)."""
    with rasterio.open(NC / "data" / "lsat7_2000_10.tif") as ds:
        a = ds.transform
        profile = ds.profile | {"width": CROP, "height": CROP, "count": len(bands),
                                "transform": rasterio.Affine(a.a, 0, a.c + east, 0, a.e, a.f)}
    with rasterio.open(path, "w", **profile) as out:
        for i, band in enumerate(bands, 1):
            with rasterio.open(NC / "data" / f"lsat7_2000_{band}.tif") as ds:
                out.write(ds.read(1, window=Window(0, 0, CROP, CROP)), i)
    return path


def _upload(c: Any, path: Path) -> None:
    with path.open("rb") as f:
        r = c.post("/projects/nc/uploads", files={"file": (path.name, f)}, data={"kind": "imagery"})
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    home = tmp_path_factory.mktemp("change")
    with live_platform(home / "home") as live:
        ann, rita = live.user("ann"), live.user("rita")
        with live.client() as c:
            assert c.post("/projects", json={"name": "nc", "template": "nc-landsat"}).status_code == 201
            for name, role in (("ann", "annotator"), ("rita", "reviewer")):
                assert c.post("/projects/nc/members", json={"username": name, "role": role}).status_code == 201
            for name, bands, east in (("later", BANDS, 0.0), ("nironly", ("40",), 0.0), ("away", BANDS, 100_000.0),
                                      ("shifting", BANDS, 0.0)):
                _upload(c, _stack(home / f"{name}.tif", bands, east))
        folder = live.platform.settings.projects_dir / "nc"
        yield Team(live, folder, stack_grid(NC / "data" / "lsat7_2000_10.tif"), ann, rita)


def _change_set(team: Team, name: str, items: list[str]) -> tuple[int, dict[tuple[int, int], dict[str, Any]]]:
    """A change set (as the reviewer): its id and its tasks by (row, col)."""
    with team.live.client(team.rita) as c:
        r = c.post(f"{ANN}/sets", json={"name": name, "kind": "change", "items": items})
        assert r.status_code == 201, r.text
        set_id = r.json()["id"]
        found = c.get(f"{ANN}/sets/{set_id}/tasks").json()["features"]
    return set_id, {(f["properties"]["row"], f["properties"]["col"]): f["properties"] for f in found}


def _label(team: Team, task_id: int, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assign a task to ann, who draws ``features`` and submits it; rita accepts it. Returns the stored features."""
    with team.live.client(team.rita) as c:
        assert c.post(f"{ANN}/tasks/{task_id}/assign", json={"user": "ann"}).status_code == 200
    with team.live.client(team.ann) as c:
        for f in features:
            r = c.post(f"{ANN}/tasks/{task_id}/features", json=f)
            assert r.status_code == 201, r.text
        assert c.post(f"{ANN}/tasks/{task_id}/submit").status_code == 200
        stored = c.get(f"{ANN}/tasks/{task_id}/features").json()["features"]
    with team.live.client(team.rita) as c:
        r = c.post(f"{ANN}/tasks/{task_id}/review", json={"decision": "accept"})
        assert r.status_code == 200, r.text
    return list(stored)


def _feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def _expected(team: Team, tasks: list[int], features: list[dict[str, Any]]) -> np.ndarray:
    """The scene's labels by a direct rasterisation: 255 outside the accepted tasks' completeness areas,
    no-change (0) inside them, change (1) inside the change polygons (from != to, or labelled change)."""
    with team.live.client(team.rita) as c:
        areas = [shape(c.get(f"{ANN}/tasks/{t}").json()["complete_area"]) for t in tasks]
    g = team.grid
    affine = rasterio.Affine(*g.transform)
    out = np.full((g.height, g.width), 255, dtype=np.uint8)
    rasterize([(transform(TO_NATIVE, unary_union(areas)), 0)], out=out, transform=affine)
    burns = [(transform(TO_NATIVE, shape(f["geometry"])), 1 if f["properties"]["label"] == "change" else 0)
             for f in features]
    rasterize(burns, out=out, transform=affine)
    return out


def _build(team: Team, set_id: int, digest: str, log: Path) -> dict[str, Any]:
    with team.live.client(team.rita) as c:
        r = c.post(f"{ANN}/sets/{set_id}/snapshots/{digest}/build")
        assert r.status_code == 201, r.text
        with worker(team.live.platform.settings, log):
            job = wait_job(c, r.json()["id"], 600)
    assert job["state"] == "succeeded", job["error"]
    return dict(job)


def _check_chips(root: Path, expected: np.ndarray) -> int:
    """Every chip's labels equal the expected ones where both dates have pixels, 255 where one has none.

    Returns:
        How many chip pixels are change.

    """
    index = gpd.read_parquet(root / "chips.parquet")
    group = zarr.open_group(str(root / "data.zarr"), mode="r")
    p, changed, scene_nodata = DatasetManifest.read(root).patch_size, 0, _nodata()
    assert len(index) > 0
    for chip in index.itertuples():
        nodata = np.ones((p, p), dtype=bool)
        inside = scene_nodata[chip.row: chip.row + p, chip.col: chip.col + p]
        nodata[: inside.shape[0], : inside.shape[1]] = inside
        assert np.array_equal(np.isnan(group["images"][chip.chip_id]).any(axis=0), nodata), chip.chip_id
        want = np.full((p, p), 255, dtype=np.uint8)
        part = expected[chip.row: chip.row + p, chip.col: chip.col + p]
        want[: part.shape[0], : part.shape[1]] = part
        want[nodata] = 255
        got = group["labels"][chip.chip_id]
        assert np.array_equal(got, want), (chip.chip_id, np.argwhere(got != want)[:5])
        changed += int((got == 1).sum())
    return changed


def _nodata() -> np.ndarray:
    """The scene's pixels where either date has no value: outside the later date's 200 x 200 px, or a band's nodata."""
    with rasterio.open(NC / "data" / "lsat7_2000_10.tif") as ds:
        out = np.ones((ds.height, ds.width), dtype=bool)
    out[:CROP, :CROP] = False
    for band in BANDS:
        with rasterio.open(NC / "data" / f"lsat7_2000_{band}.tif") as ds:
            out |= ds.read(1) == ds.nodata
    return out


def test_a_change_sets_snapshot_builds_a_change_detection_dataset_the_cli_builds_again(
        team: Team, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_id, tasks = _change_set(team, "landcover-change", [SCENE, "later"])
    g = team.grid
    drawn = _label(team, tasks[(0, 0)]["id"], [
        _feature(g.box(10, 20, 40, 60), **{"from": 5, "to": 1}),          # forest → developed: change
        _feature(g.box(60, 70, 90, 110), **{"from": 5, "to": 5}),         # forest stays forest: no change
    ]) + _label(team, tasks[(0, 1)]["id"], [_feature(g.box(20, 140, 50, 180), label="change")])
    assert sorted(f["properties"]["label"] for f in drawn) == ["change", "change", "no-change"]
    with team.live.client(team.rita) as c:
        r = c.post(f"{ANN}/sets/{set_id}/snapshots")
    assert r.status_code == 201, r.text
    made = r.json()
    job = _build(team, set_id, made["hash"], tmp_path / "worker.log")
    root = Path(job["result"]["path"])
    built = DatasetManifest.read(root)
    assert (built.task or {}).get("type") == "change_detection"
    assert built.timesteps == 2 and [(c.value, c.name) for c in built.classes] == [(0, "no-change"), (1, "change")]
    steps = built.config["imagery"]["scenes"][0]["timesteps"]
    assert steps[0]["datetime"].startswith("2000-05-24") and steps[1]["datetime"] > steps[0]["datetime"]  # the upload's
    sources = [(Path(s.path).name, s.index) for s in built.scenes[0].sources]
    assert sources == [(f"lsat7_2000_{b}.tif", 1) for b in BANDS] + [("later.tif", i) for i in range(1, 7)]
    assert built.channels[0].startswith("t0:") and built.channels[-1].startswith("t1:")
    expected = _expected(team, [tasks[(0, 0)]["id"], tasks[(0, 1)]["id"]], drawn)
    assert _check_chips(root, expected) > 0
    # The download, unzipped elsewhere beside copies of the files its config names, builds the same version
    with team.live.client(team.rita) as c:
        r = c.get(f"{ANN}/sets/{set_id}/snapshots/{made['hash']}/download")
    assert r.status_code == 200, r.text
    away = tmp_path / "0-elsewhere"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == ["eoengine.yaml", f"{made['path']}/complete.geojson", f"{made['path']}/labels.geojson"]
        zf.extractall(away)
    cfg = yaml.safe_load((away / "eoengine.yaml").read_text())
    steps = cfg["imagery"]["scenes"][0]["timesteps"]
    assert steps[0]["files"]["blue"] == "data/lsat7_2000_10.tif" and steps[1]["stack"] == "uploads/later.tif"
    assert cfg["task"] == {"type": "change_detection"} and cfg["labels"]["background"] == "no-change"
    for name in [*steps[0]["files"].values(), steps[1]["stack"], cfg["dataset"]["split"]["path"]]:
        (away / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(team.folder / name, away / name)
    code, _, err = run_cli(["dataset", "build", str(away / "eoengine.yaml")], capsys)
    assert code == 0, err
    (cli,) = (away / "eoengine-out" / "datasets").glob(f"{built.name}@*")
    assert DatasetManifest.read(cli).version == built.version


def _accept_empty(team: Team, tasks: dict[tuple[int, int], dict[str, Any]]) -> None:
    _label(team, tasks[(0, 0)]["id"], [])


def _snapshots(team: Team) -> int:
    with team.live.platform.db.read() as s:
        return len(s.scalars(select(Artifact).where(Artifact.kind == "labels")).all())


@pytest.mark.parametrize(("name", "items", "words"), [
    ("no-overlap", [SCENE, "away"], "do not overlap"),
    ("one-band", [SCENE, "nironly"], "band layout"),
    ("three-dates", [SCENE, "later", "nironly"], "exactly 2"),
])
def test_a_change_set_whose_dates_make_no_scene_gets_no_snapshot(team: Team, name: str, items: list[str],
                                                                  words: str) -> None:
    set_id, tasks = _change_set(team, name, items)
    _accept_empty(team, tasks)
    before = _snapshots(team)
    with team.live.client(team.rita) as c:
        error = error_of(c.post(f"{ANN}/sets/{set_id}/snapshots"), 422)
    assert words in error["error"], error
    assert _snapshots(team) == before


def test_a_date_whose_bands_changed_or_that_is_gone_after_the_snapshot_is_refused_at_build(team: Team) -> None:
    set_id, tasks = _change_set(team, "shifting", [SCENE, "shifting"])
    _label(team, tasks[(0, 0)]["id"], [_feature(team.grid.box(10, 20, 40, 60), label="change")])
    with team.live.client(team.rita) as c:
        r = c.post(f"{ANN}/sets/{set_id}/snapshots")
        assert r.status_code == 201, r.text
        digest = r.json()["hash"]
        _stack(team.folder / "uploads" / "shifting.tif", ("40",))  # the file behind the item now holds one band
        error = error_of(c.post(f"{ANN}/sets/{set_id}/snapshots/{digest}/build"), 422)
        assert "band layout" in error["error"] and "6 bands" in error["fix"], error
        assert "band layout" in error_of(c.get(f"{ANN}/sets/{set_id}/snapshots/{digest}/download"), 422)["error"]
        (team.folder / "uploads" / "shifting.tif").unlink()  # and now it is gone
        assert "no longer" in error_of(c.post(f"{ANN}/sets/{set_id}/snapshots/{digest}/build"), 409)["error"]
        assert not [j for j in c.get("/projects/nc/jobs").json() if digest in str(j["spec"])]
    assert not (team.folder / "labels" / "snapshots" / digest / "build.yaml").exists()
