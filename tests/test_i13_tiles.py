"""Render recipes an annotator controls, over real HTTP: per-band stretches, an index's colour map and range, the
pixel inspector, and every bad parameter (422 with error and fix).

The scene is a real GeoTIFF uploaded to the project: four bands (described blue, green, red, nir, so they are also
common names) on the exact grid of one Web Mercator tile, each band constant over each quadrant, so the colour of a
pixel inside a quadrant is known whatever the resampling.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from browse_support import decode_tile, error_of
from platform_server import LiveServer, live_platform
from rasterio.transform import from_bounds
from rasterio.warp import transform
from rio_tiler.colormap import cmap

TILE = morecantile.tms.get("WebMercatorQuad").tile(10.0, 50.0, 12)
QUADRANTS = {  # band → (top-left, top-right, bottom-left, bottom-right)
    "blue": (100, 200, 300, 400),
    "green": (500, 1000, 1500, 2000),
    "red": (1000, 2000, 3000, 4000),
    "nir": (4000, 3000, 2000, 1000),
}
CENTRES = {"tl": (64, 64), "tr": (64, 192), "bl": (192, 64), "br": (192, 192)}  # pixel (row, col) of each quadrant
NODATA = 0
ITEM = "quads"


def _scene(path: Path) -> Path:
    """The four-band scene on the tile's grid (256 px, EPSG:3857), with one nodata pixel at (0, 0) in every band."""
    bounds = morecantile.tms.get("WebMercatorQuad").xy_bounds(TILE)
    data = np.empty((4, 256, 256), np.uint16)
    for b, values in enumerate(QUADRANTS.values()):
        data[b, :128, :128], data[b, :128, 128:], data[b, 128:, :128], data[b, 128:, 128:] = values
    data[:, 0, 0] = NODATA
    profile = {"driver": "GTiff", "width": 256, "height": 256, "count": 4, "dtype": "uint16", "crs": "EPSG:3857",
               "transform": from_bounds(*bounds, 256, 256), "nodata": NODATA, "tiled": True, "blockxsize": 256,
               "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(QUADRANTS)
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("tiles")
    with live_platform(folder / "home") as server:
        with server.client() as c, _scene(folder / f"{ITEM}.tif").open("rb") as f:
            assert c.post("/projects", json={"name": "tiles", "template": "nc-landsat"}).status_code == 201
            made = c.post("/projects/tiles/uploads", files={"file": (f"{ITEM}.tif", f)}, data={"kind": "imagery"})
            assert made.status_code == 201, made.text
        yield server


URL = f"/projects/tiles/imagery/{ITEM}/tiles/{TILE.z}/{TILE.x}/{TILE.y}.png"


def _tile(live: LiveServer, **params: str) -> np.ndarray:
    with live.client() as c:
        return decode_tile(c.get(URL, params=params))


def _level(value: float, low: float, high: float) -> int:
    """The 0..255 level of a value stretched linearly from low..high (as the renderer: clipped, truncated)."""
    return int(np.clip((value - low) / (high - low) * 255.0, 0, 255))


def _colours(img: np.ndarray) -> dict[str, tuple[int, ...]]:
    return {q: tuple(int(v) for v in img[r, c]) for q, (r, c) in CENTRES.items()}


def test_the_listing_names_the_render_parameters(live: LiveServer) -> None:
    with live.client() as c:
        item = next(i for i in c.get("/projects/tiles/imagery").json() if i["id"] == ITEM)
    assert {"true-color", "index:NDVI"} <= set(item["recipes"])
    render = item["render"]
    assert render["stretch"] == "p2,p98" and render["colormap"] == "rdylgn"
    assert {"viridis", "rdylgn", "magma"} <= set(render["colormaps"])
    assert render["pixel"] == f"/projects/tiles/imagery/{ITEM}/pixel"


def test_default_stretch_is_the_2_98_percentiles(live: LiveServer) -> None:
    got = _colours(_tile(live, recipe="bands:red,green,blue"))
    # four equal quadrants: the 2nd percentile is the lowest quadrant's value, the 98th the highest's
    for q, i in zip(CENTRES, range(4), strict=True):
        assert got[q] == (*(_level(QUADRANTS[b][i], min(QUADRANTS[b]), max(QUADRANTS[b]))
                            for b in ("red", "green", "blue")), 255), q
    assert got["tl"][:3] == (0, 0, 0) and got["br"][:3] == (255, 255, 255)
    narrower = _colours(_tile(live, recipe="bands:red,green,blue", stretch="p30,p70"))
    # red's p30 and p70 fall in its second and third quadrants (2000, 3000): those become black and white
    assert [narrower[q][0] for q in CENTRES] == [0, 0, 255, 255]


def test_one_value_stretch_for_all_bands(live: LiveServer) -> None:
    got = _colours(_tile(live, recipe="true-color", stretch="0,5000"))
    for q, i in zip(CENTRES, range(4), strict=True):
        assert got[q][:3] == tuple(_level(QUADRANTS[b][i], 0, 5000) for b in ("red", "green", "blue")), q


def test_a_stretch_per_band_mixing_values_and_percentiles(live: LiveServer) -> None:
    got = _colours(_tile(live, recipe="bands:nir,red,green", stretch="0,4000;1500,2500;p2,p98"))
    for q, i in zip(CENTRES, range(4), strict=True):
        assert got[q][:3] == (_level(QUADRANTS["nir"][i], 0, 4000), _level(QUADRANTS["red"][i], 1500, 2500),
                              _level(QUADRANTS["green"][i], 500, 2000)), q


def _ndvi(i: int) -> float:
    nir, red = QUADRANTS["nir"][i], QUADRANTS["red"][i]
    return (nir - red) / (nir + red)


def test_an_index_through_a_named_colour_map_and_range(live: LiveServer) -> None:
    got = _colours(_tile(live, recipe="index:NDVI", colormap="viridis", range="-1,1"))
    viridis = cmap.get("viridis")
    for q, i in zip(CENTRES, range(4), strict=True):
        level = _level(_ndvi(i), -1, 1)  # the index is float32: a value on a level's edge may take the one below
        assert got[q] in [(*viridis[v][:3], 255) for v in (level - 1, level)], q
    assert _colours(_tile(live, recipe="index:NDVI", colormap="viridis", stretch="-1,1")) == got  # same as range
    default = _colours(_tile(live, recipe="index:NDVI", range="-1,1"))
    assert default["tl"] == (*cmap.get("rdylgn")[_level(_ndvi(0), -1, 1)][:3], 255)
    assert default != got
    # without a range the index spans its own 2nd..98th percentile: the lowest NDVI takes the map's first colour
    spread = _colours(_tile(live, recipe="index:NDVI", colormap="Magma"))
    magma = cmap.get("magma")
    assert spread["br"] == (*magma[0][:3], 255) and spread["tl"] == (*magma[255][:3], 255)


def test_nodata_is_transparent(live: LiveServer) -> None:
    img = _tile(live, recipe="true-color", stretch="0,5000")
    assert img[0, 0, 3] == 0 and (img[100:, 100:, 3] == 255).all()


def test_pixel_values_equal_rasterio_reads(live: LiveServer, tmp_path: Path) -> None:
    path = next((live.platform.settings.projects_dir / "tiles").rglob(f"{ITEM}.tif"))
    with rasterio.open(path) as src:
        for row, col in [(10, 20), (200, 33), (130, 250)]:
            x, y = src.xy(row, col)
            (lon,), (lat,) = transform(src.crs, "EPSG:4326", [x], [y])
            with live.client() as c:
                r = c.get(f"/projects/tiles/imagery/{ITEM}/pixel", params={"lon": lon, "lat": lat})
            assert r.status_code == 200, r.text
            body = r.json()
            expected = src.read(window=((row, row + 1), (col, col + 1)))[:, 0, 0]
            assert [(b["row"], b["col"]) for b in body["bands"]] == [(row, col)] * 4
            assert [b["value"] for b in body["bands"]] == [float(v) for v in expected]
            assert [b["names"][0] for b in body["bands"]] == list(QUADRANTS)
        x, y = src.xy(0, 0)
    (lon,), (lat,) = transform("EPSG:3857", "EPSG:4326", [x], [y])
    with live.client() as c:
        body = c.get(f"/projects/tiles/imagery/{ITEM}/pixel", params={"lon": lon, "lat": lat}).json()
    assert [b["value"] for b in body["bands"]] == [None] * 4  # the nodata pixel


def test_pixel_bad_points(live: LiveServer) -> None:
    pixel = f"/projects/tiles/imagery/{ITEM}/pixel"
    outsider = live.user("olga-tiles")
    with live.client() as c:
        body = error_of(c.get(pixel, params={"lon": 0, "lat": 0}), 422)
        assert "outside" in body["error"] and "bbox" in body["fix"]
        for lon, lat in ((0, -90), (180, -90), (0, 90)):  # outside the scene's CRS's domain: outside, not a 500
            assert "outside" in error_of(c.get(pixel, params={"lon": lon, "lat": lat}), 422)["error"]
        assert "-180..180" in error_of(c.get(pixel, params={"lon": 200, "lat": 50}), 422)["fix"]
        error_of(c.get(pixel, params={"lon": "nan", "lat": 50}), 422)
        error_of(c.get(pixel, params={"lat": 50}), 422)
        error_of(c.get("/projects/tiles/imagery/nope/pixel", params={"lon": 10, "lat": 50}), 404)
    with live.client(outsider) as o:
        error_of(o.get(pixel, params={"lon": 10, "lat": 50}), 404)


@pytest.mark.parametrize(("params", "named", "hint"), [
    ({"stretch": "bright"}, "stretch", "p2,p98"),
    ({"stretch": "1"}, "stretch", "LO,HI"),
    ({"stretch": "5,1"}, "stretch", "LO,HI"),
    ({"stretch": "p2,98"}, "stretch", "pLO,pHI"),
    ({"stretch": "p-1,p50"}, "stretch", "percentiles"),
    ({"stretch": "p2,p120"}, "stretch", "percentiles"),
    ({"stretch": "nan,1"}, "stretch", "LO,HI"),
    ({"stretch": "0,1;0,1"}, "stretch", "one entry"),
    ({"stretch": "0,1;0,1;0,1", "recipe": "index:NDVI"}, "stretch", "one entry"),
    ({"colormap": "nope", "recipe": "index:NDVI"}, "colormap", "viridis"),
    ({"colormap": "viridis"}, "colormap", "index:NAME"),
    ({"range": "-1,1", "recipe": "bands:red,green,blue"}, "range", "index:NAME"),
    ({"range": "1", "recipe": "index:NDVI"}, "range", "range=LO,HI"),
    ({"range": "p2,p98", "recipe": "index:NDVI"}, "range", "range=LO,HI"),
    ({"range": "1,-1", "recipe": "index:NDVI"}, "range", "range=LO,HI"),
    ({"range": "-1,1", "stretch": "p2,p98", "recipe": "index:NDVI"}, "range", "range=LO,HI or stretch"),
])
def test_bad_render_parameters(live: LiveServer, params: dict[str, str], named: str, hint: str) -> None:
    with live.client() as c:
        body = error_of(c.get(URL, params=params), 422)
    assert named in body["error"] and hint in body["fix"], body


def test_a_point_outside_the_band_s_projection_domain_is_outside() -> None:
    from conftest import NC

    from eoengine.platform.tiles import BandRef, pixel_value

    band = BandRef(str(next((NC / "data").glob("*.tif"))))  # North Carolina State Plane: the south pole has no coordinates
    assert pixel_value(band, 0, -90) is None
    assert pixel_value(band, 180, -90) is None
