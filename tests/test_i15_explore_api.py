"""The explore page's pixel time series over real HTTP: ``GET /projects/{slug}/imagery/series``.

The project is the NC sample (one Landsat scene of 2000-05-24) with three dated four-band uploads inside it
(:mod:`explore_support`): a point there is held by four scenes. Every value is checked against the raster
read with rasterio's ``sample`` at that point, and the index against its formula worked out here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rasterio
from browse_support import error_of
from explore_support import BANDS, DATES, NODATA_PIXEL, SLUG, explore_server, pixel_centre, scene_id
from platform_server import LiveServer
from rasterio.warp import transform

SERIES = f"/projects/{SLUG}/imagery/series"
NC_FILES = {"blue": "10", "green": "20", "red": "30", "nir": "40"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with explore_server(tmp_path_factory.mktemp("explore")) as server:
        yield server


def _series(live: LiveServer, **params: Any) -> dict[str, Any]:
    with live.client() as c:
        r = c.get(SERIES, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _sampled(path: Path, lon: float, lat: float) -> list[float | None]:
    """Every band of a raster at a point, read with rasterio (None where it is nodata)."""
    with rasterio.open(path) as src:
        (x,), (y,) = transform("EPSG:4326", src.crs, [lon], [lat])
        values = next(src.sample([(x, y)], masked=True))
    return [None if v is None else float(v) for v in values.tolist()]  # masked values list as None


def _files(live: LiveServer) -> Path:
    return live.platform.settings.projects_dir / SLUG


def _expected(live: LiveServer, item: str, lon: float, lat: float) -> dict[str, float | None]:
    """Band → value of a scene at a point, read with rasterio from its files."""
    if item == "lsat7_2000":
        return {b: _sampled(_files(live) / f"data/lsat7_2000_{n}.tif", lon, lat)[0] for b, n in NC_FILES.items()}
    upload = next(_files(live).rglob(f"{item}.tif"))
    return dict(zip(BANDS, _sampled(upload, lon, lat), strict=True))


def _by_name(point: dict[str, Any]) -> dict[str, float | None]:
    return {b["names"][0]: b["value"] for b in point["bands"]}


def _ndvi(values: dict[str, float | None]) -> float | None:
    nir, red = values["nir"], values["red"]
    return None if nir is None or red is None else (nir - red) / (nir + red)


def test_series_values_equal_rasterio_reads_oldest_first(live: LiveServer) -> None:
    lon, lat = pixel_centre(20, 13)
    body = _series(live, lon=lon, lat=lat)
    assert (body["lon"], body["lat"], body["index"]) == (lon, lat, "NDVI")
    points = body["points"]
    assert [p["item"] for p in points] == ["lsat7_2000", *(scene_id(d) for d in DATES)]
    assert [p["datetime"][:10] for p in points] == ["2000-05-24", "2019-06-01", "2020-06-01", "2021-06-01"]
    for point in points:
        expected = _expected(live, point["item"], lon, lat)
        got = _by_name(point)
        assert {b: got[b] for b in expected} == expected, point["item"]
        assert point["index"] == pytest.approx(_ndvi(expected), rel=1e-6), point["item"]
        assert all(isinstance(b["row"], int) for b in point["bands"])
    uploads = [_by_name(p) for p in points[1:]]
    assert len({u["red"] for u in uploads}) == 3  # the dates differ


def test_other_indices_and_names(live: LiveServer) -> None:
    lon, lat = pixel_centre(3, 30)
    body = _series(live, lon=lon, lat=lat, index="SAVI")
    point = body["points"][-1]
    values = _expected(live, point["item"], lon, lat)
    nir, red = values["nir"], values["red"]
    assert nir is not None and red is not None
    assert point["index"] == pytest.approx(2 * (nir - red) / (nir + red + 1), rel=1e-6)  # spyndex's L is 1
    nc = body["points"][0]
    assert {"red", "nir", "swir16", "swir1"} <= {n for b in nc["bands"] for n in b["names"]}  # common name and name


def test_nodata_is_null_and_so_is_the_index_it_feeds(live: LiveServer) -> None:
    lon, lat = pixel_centre(*NODATA_PIXEL)
    for point in _series(live, lon=lon, lat=lat)["points"][1:]:
        got = _by_name(point)
        assert got["red"] is None and got["nir"] is not None and point["index"] is None, point


def test_bands_and_datetime_filters(live: LiveServer) -> None:
    lon, lat = pixel_centre(10, 10)
    body = _series(live, lon=lon, lat=lat, bands="red,nir", datetime="2020-01-01T00:00:00Z/..")
    assert [p["item"] for p in body["points"]] == [scene_id(d) for d in DATES[1:]]
    for point in body["points"]:
        assert [b["names"][0] for b in point["bands"]] == ["red", "nir"]
        assert point["index"] == pytest.approx(_ndvi(_by_name(point)), rel=1e-6)
    nc_only = _series(live, lon=lon, lat=lat, datetime="2000-05-24T00:00:00Z")
    assert [p["item"] for p in nc_only["points"]] == ["lsat7_2000"]


def test_a_point_outside_every_scene_has_no_points(live: LiveServer) -> None:
    assert _series(live, lon=10.0, lat=50.0)["points"] == []
    nc_only = _series(live, lon=-78.75, lat=35.75)["points"]  # in the Landsat scene, west of the uploads
    assert [p["item"] for p in nc_only] == ["lsat7_2000"]


@pytest.mark.parametrize(("params", "problem", "fix"), [
    ({"lon": 200, "lat": 35.7}, "EPSG:4326", "-180..180"),
    ({"lon": "nan", "lat": 35.7}, "EPSG:4326", "-180..180"),
    ({"lon": -78.7, "lat": 35.7, "index": "NDVX"}, "NDVX", "NDVI, NDWI"),
    ({"lon": -78.7, "lat": 35.7, "bands": "red,swir9"}, "swir9", "nir"),
    ({"lon": -78.7, "lat": 35.7, "datetime": "last year"}, "RFC 3339", "START/END"),
    ({"lon": -78.7, "lat": 35.7, "datetime": "2021-01-01/2020-01-01"}, "ends before", "START/END"),
])
def test_bad_input_names_the_problem_and_fix(live: LiveServer, params: dict[str, Any], problem: str, fix: str) -> None:
    with live.client() as c:
        body = error_of(c.get(SERIES, params=params), 422)
    assert problem in body["error"] and fix in body["fix"], body


def test_the_series_checks_the_caller(live: LiveServer) -> None:
    params = {"lon": -78.68, "lat": 35.76}
    error_of(httpx.get(f"{live.url}/api/v1{SERIES}", params=params), 401)
    with live.client(live.user("olga-explore")) as outsider:
        error_of(outsider.get(SERIES, params=params), 404)
    with live.client() as c:
        error_of(c.get("/projects/nope/imagery/series", params=params), 404)
        error_of(c.get(SERIES, params={"lat": 35.7}), 422)
