"""A set's block grid on the sample Landsat scene: its cells are the dataset builder's split blocks, in lon/lat."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import NC
from pyproj import Transformer
from shapely.geometry import box

from eoengine.datasets.split import block_splitter
from eoengine.errors import Invalid
from eoengine.platform.annotation.grid import block_counts, cell, cells, item_grid, to_lonlat
from eoengine.sourcing.scan import make_item

RED = NC / "data" / "lsat7_2000_30.tif"
BLOCK = 128


@pytest.fixture(scope="module")
def item() -> dict[str, Any]:
    made = make_item("lsat7_2000", [(Path(RED), "red")], fixed_date=dt.datetime(2000, 5, 24, tzinfo=dt.UTC))
    return made.to_dict()


def test_the_grid_is_the_items_pixel_grid(item: dict[str, Any]) -> None:
    import rasterio

    grid = item_grid(item)
    with rasterio.open(RED) as ds:
        assert (grid.width, grid.height, grid.transform) == (ds.width, ds.height, tuple(ds.transform)[:6])
    assert grid.crs_wkt == "EPSG:32119"
    with pytest.raises(Invalid, match="proj:transform"):
        item_grid({"id": "x", "properties": {"proj:code": "EPSG:32119"}, "assets": {"a": {"href": "x"}}})


def test_cells_are_the_split_blocks(item: dict[str, Any]) -> None:
    grid = item_grid(item)
    split = block_splitter(grid, BLOCK, {"train": 0.6, "val": 0.2, "test": 0.2}, 7, "lsat7_2000")
    rows, cols = block_counts(grid, BLOCK)
    covered = np.zeros((grid.height, grid.width), dtype=int)
    for r in range(rows):
        for c in range(cols):
            r0, c0, h, w = cell(grid, BLOCK, r, c).window
            assert (r0, c0) == (r * BLOCK, c * BLOCK)
            covered[r0:r0 + h, c0:c0 + w] += 1
            whole = split(r0, c0, min(h, w))  # a chip of the cell's pixels lies in one block: it has a split
            assert whole is not None
            assert {split(r0 + dr, c0 + dc, 1) for dr in (0, h - 1) for dc in (0, w - 1)} == {whole}
    assert (covered == 1).all()  # the cells tile the grid, each pixel once


def test_cells_in_lonlat_and_the_area_of_interest(item: dict[str, Any]) -> None:
    grid = item_grid(item)
    first = cell(grid, BLOCK, 0, 0)
    to_ll = Transformer.from_crs("EPSG:32119", "EPSG:4326", always_xy=True)
    x0, y0, x1, y1 = grid.window_bounds(0, 0, BLOCK, BLOCK)
    corners = {tuple(np.round(to_ll.transform(x, y), 9)) for x, y in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))}
    assert corners <= {tuple(np.round(p, 9)) for p in first.lonlat.exterior.coords}
    everything = to_lonlat(box(*grid.bounds), grid.crs_wkt)
    assert len(cells(grid, BLOCK, everything)) == 16
    corner = to_lonlat(box(x0, y1 - 10 * grid.res, x0 + 10 * grid.res, y1), grid.crs_wkt)  # inside cell (0, 0)
    found = cells(grid, BLOCK, corner)
    assert [(c.row, c.col) for c, _ in found] == [(0, 0)]
    assert found[0][1].area == pytest.approx(corner.area, rel=1e-4)  # edges densified differently
