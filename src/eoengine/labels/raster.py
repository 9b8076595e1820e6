"""Target rasters on a scene's grid: class labels (mapped to class indices) or continuous values."""

from __future__ import annotations

import numpy as np
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from eoengine.errors import EOError
from eoengine.labels import IGNORE
from eoengine.raster.crs import crs_equivalent
from eoengine.raster.scene import Grid, open_raster


class GridRaster:
    """A single-band raster read on a scene's grid (warped on the fly when the grids differ)."""

    def __init__(self, path: str, grid: Grid, resampling: str = "nearest", nodata: float | None = None) -> None:
        self.path = path
        self.ds = open_raster(path)
        if self.ds.crs is None:
            self.ds.close()
            raise EOError(f"label raster {path} has no CRS", "assign the CRS of the imagery")
        self.nodata = nodata if nodata is not None else self.ds.nodata
        self.grid = grid
        same = (
            crs_equivalent(self.ds.crs, grid.crs_wkt, tuple(self.ds.bounds))
            and self.ds.transform.almost_equals(grid.affine, precision=1e-6)
            and (self.ds.width, self.ds.height) == (grid.width, grid.height)
        )
        left, bottom, right, top = transform_bounds(self.ds.crs, grid.crs_wkt, *self.ds.bounds)
        g = grid.bounds
        if left >= g[2] or right <= g[0] or bottom >= g[3] or top <= g[1]:
            self.ds.close()
            raise EOError(
                f"label raster {path} does not overlap the scene",
                "check the labels are for this scene and their CRS is right",
            )
        self.src = self.ds
        if not same:
            self.src = WarpedVRT(
                self.ds,
                crs=grid.crs_wkt,
                transform=grid.affine,
                width=grid.width,
                height=grid.height,
                resampling=Resampling[resampling],
                src_nodata=self.nodata,
            )

    def read_raw(self, window: Window) -> np.ndarray:
        """The raster's values (h, w) as float64 for ``window`` (may extend past the grid)."""
        inside = (window.row_off >= 0 and window.col_off >= 0 and window.row_off + window.height <= self.grid.height
                  and window.col_off + window.width <= self.grid.width)
        if inside:  # boundless reads go through a VRT and are several times slower
            raw = self.src.read(1, window=window)
        else:
            raw = self.src.read(1, window=window, boundless=True, fill_value=self.nodata or 0)
        return raw.astype(np.float64)

    def close(self) -> None:
        """Close the raster."""
        if self.src is not self.ds:
            self.src.close()
        self.ds.close()


class RasterLabeler(GridRaster):
    """Read a label raster on a scene grid (nearest-neighbour) as class indices.

    Values not in the configured classes, and the raster's nodata, become :data:`IGNORE`.
    """

    def __init__(self, path: str, grid: Grid, class_values: list[int | str]) -> None:
        values = []
        for v in class_values:
            try:
                values.append(float(v))
            except ValueError:
                raise EOError(
                    f"class value {v!r} is not a number, but label rasters hold numbers",
                    "give each class the number it has in the label raster",
                ) from None
        self.values = np.array(values, dtype=np.float64)
        super().__init__(path, grid)

    def read(self, window: Window) -> np.ndarray:
        """Class indices (h, w) uint8 for ``window`` (inside the grid)."""
        raw = self.read_raw(window)
        out = np.full(raw.shape, IGNORE, dtype=np.uint8)
        for i, v in enumerate(self.values):
            out[raw == v] = i
        if self.nodata is not None:
            out[raw == self.nodata] = IGNORE
        return out


class ValueReader(GridRaster):
    """Read a raster of continuous targets on a scene grid; nodata and non-finite become NaN."""

    def read(self, window: Window) -> np.ndarray:
        """Values (h, w) float32 for ``window``."""
        raw = self.read_raw(window)
        if self.nodata is not None:
            raw[raw == self.nodata] = np.nan
        raw[~np.isfinite(raw)] = np.nan
        return raw.astype(np.float32)
