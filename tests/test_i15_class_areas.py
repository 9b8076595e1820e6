"""Per-class areas of a class map in hectares: projected and geographic grids, within an area, nodata left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from eoengine.errors import Invalid, NotFound
from eoengine.inference.class_areas import class_areas


def _map(path: Path, codes: np.ndarray, crs: str, transform: object, names: dict[str, str] | None = None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1, dtype="uint8",
                       nodata=255, crs=crs, transform=transform, tiled=True, blockxsize=16, blockysize=16) as ds:
        ds.write(codes, 1)
        ds.update_tags(EOENGINE_CLASS_VALUES=json.dumps(names or {"0": "water", "1": "forest", "2": "urban"}))
    return path


def test_a_utm_map_counts_30_m_pixels_as_0_09_ha_and_skips_nodata(tmp_path: Path) -> None:
    codes = np.zeros((40, 50), dtype=np.uint8)
    codes[:, 20:] = 1
    codes[:5, :] = 255
    path = _map(tmp_path / "m.tif", codes, "EPSG:32615", from_origin(500000, 4000000, 30, 30))
    got = {a.name: a for a in class_areas(path)}
    assert got["water"].pixels == 35 * 20 and got["water"].hectares == pytest.approx(35 * 20 * 0.09)
    assert got["forest"].pixels == 35 * 30 and got["forest"].hectares == pytest.approx(35 * 30 * 0.09)
    assert got["urban"].pixels == 0 and got["urban"].hectares == 0


def test_within_an_area_only_pixels_whose_centres_fall_inside_count(tmp_path: Path) -> None:
    codes = np.ones((64, 64), dtype=np.uint8)
    path = _map(tmp_path / "m.tif", codes, "EPSG:32615", from_origin(500000, 4000000, 10, 10))
    with rasterio.open(path) as ds:
        from rasterio.warp import transform_geom
        from shapely.geometry import box, mapping

        # the 20 x 10 pixels from column 10 and row 30, in lon/lat
        left, top = ds.transform @ (10, 30)
        right, bottom = ds.transform @ (30, 40)
        area = transform_geom(ds.crs, "EPSG:4326", mapping(box(left + 1, bottom + 1, right - 1, top - 1)))
    (forest,) = [a for a in class_areas(path, area) if a.name == "forest"]
    assert forest.pixels == 200 and forest.hectares == pytest.approx(200 * 0.01, rel=1e-9)


def test_a_lonlat_map_uses_geodesic_pixel_areas(tmp_path: Path) -> None:
    codes = np.full((10, 10), 2, dtype=np.uint8)  # 0.01° pixels at the equator: ~1.113 km × 1.106 km each
    path = _map(tmp_path / "m.tif", codes, "EPSG:4326", from_origin(0, 0.1, 0.01, 0.01))
    (urban,) = [a for a in class_areas(path) if a.name == "urban"]
    assert urban.pixels == 100 and urban.hectares == pytest.approx(12_308, rel=2e-3)  # (0.1°)² at the equator


def test_bad_maps_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no map at"):
        class_areas(tmp_path / "none.tif")
    (tmp_path / "text.tif").write_text("not a raster")
    with pytest.raises(Invalid, match="not a raster"):
        class_areas(tmp_path / "text.tif")
    with rasterio.open(tmp_path / "f.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="float32",
                       crs="EPSG:32615", transform=from_origin(0, 0, 1, 1)) as ds:
        ds.write(np.zeros((4, 4), dtype=np.float32), 1)
    with pytest.raises(Invalid, match="not a class map"):
        class_areas(tmp_path / "f.tif")
