"""Dated scenes for the explore page's tests: small four-band GeoTIFFs inside the NC sample scene, uploaded to a project.

Each is 40 x 40 pixels in EPSG:4326 over :data:`BOX` (inside the Raleigh Landsat scene of the ``nc-landsat``
template, so a point there is held by four dated scenes), its bands described blue, green, red, nir (so they
are common names too), random values per date, and one pixel of red without data (:data:`NODATA_PIXEL`).
The date is in the file name, which is where the project catalog finds an upload's date.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
from platform_server import LiveServer, live_platform
from rasterio.transform import from_bounds

BOX = (-78.70, 35.74, -78.66, 35.78)
SIZE = 40
BANDS = ("blue", "green", "red", "nir")
DATES = ("20190601", "20200601", "20210601")
SLUG = "explore"
NODATA_PIXEL = (7, 9)  # (row, col) where red has no data
NODATA = 0


def scene_id(date: str) -> str:
    """The item id (and file stem) of the scene of a date (``YYYYMMDD``)."""
    return f"explore_{date}"


def write_scene(path: Path, seed: int) -> Path:
    """One dated scene's GeoTIFF (random uint16 values 100..6000 by ``seed``; red has no data at NODATA_PIXEL)."""
    data = np.random.default_rng(seed).integers(100, 6000, (len(BANDS), SIZE, SIZE)).astype(np.uint16)
    data[BANDS.index("red"), NODATA_PIXEL[0], NODATA_PIXEL[1]] = NODATA
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": len(BANDS), "dtype": "uint16",
               "crs": "EPSG:4326", "transform": from_bounds(*BOX, SIZE, SIZE), "nodata": NODATA}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = BANDS
    return path


def upload_scenes(live: LiveServer, slug: str, folder: Path) -> list[str]:
    """Upload one scene per date of :data:`DATES` to a project; returns their item ids, oldest first."""
    ids = []
    with live.client() as c:
        for seed, date in enumerate(DATES):
            path = write_scene(folder / f"{scene_id(date)}.tif", seed)
            with path.open("rb") as f:
                made = c.post(f"/projects/{slug}/uploads", files={"file": (path.name, f)}, data={"kind": "imagery"})
            assert made.status_code == 201, made.text
            ids.append(scene_id(date))
    return ids


def pixel_centre(row: int, col: int) -> tuple[float, float]:
    """The lon/lat of a pixel's centre in the scenes' grid."""
    west, _, east, north = BOX
    step = (east - west) / SIZE
    return west + (col + 0.5) * step, north - (row + 0.5) * step


@contextmanager
def explore_server(folder: Path) -> Iterator[LiveServer]:
    """A platform server whose project :data:`SLUG` is the NC sample with the dated uploads, until the block ends."""
    with live_platform(folder / "home") as server:
        with server.client() as c:
            assert c.post("/projects", json={"name": SLUG, "template": "nc-landsat"}).status_code == 201
        upload_scenes(server, SLUG, folder)
        yield server
