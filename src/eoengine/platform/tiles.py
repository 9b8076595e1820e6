"""XYZ tiles (Web Mercator, 256 px PNG) of rasters read in place with rio-tiler: class maps, value maps, imagery.

Every tile route renders through here, so they agree: a tile that does not touch the raster
is a fully transparent PNG (never a 204 — every map client draws it as nothing), pixels
without data are transparent, and a bad ``z/x/y`` is an :class:`~eoengine.errors.Invalid`
(422). Class maps are coloured by their classes' colours (nearest-neighbour, so codes are
never blended); values (a regression map, probabilities, a spectral index) by a colour ramp
over a range; imagery bands by a per-band linear stretch.

Stretch ranges come from percentiles of the whole raster or item, read once at low
resolution (an aligned :data:`OVERVIEW`-pixel view in EPSG:4326, so bands of different files
and grids line up for an index) and cached per file version (its size and modification
time): later tiles of the same raster cost no statistics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

# rio-tiler is imported with this module: imported lazily, by the first tile requests on several threads at once,
# some got "partially initialized module rio_tiler.io" (a 500)
from rio_tiler.colormap import cmap
from rio_tiler.errors import RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.utils import render

from eoengine.errors import EOError, Invalid

TILE = 256
MAX_ZOOM = 24
OVERVIEW = 512
"""Side in pixels of the low-resolution view stretch ranges are computed from."""
VALUE_RAMP = "viridis"
INDEX_RAMP = "rdylgn"
Range = tuple[float, float]


@dataclass(frozen=True)
class BandRef:
    """One band of a file: its path, 1-based index, nodata and scaling to physical values (``value * scale + offset``)."""

    href: str
    index: int = 1
    nodata: float | None = None
    scale: float = 1.0
    offset: float = 0.0

    def stamp(self) -> tuple[int, int]:
        """The file's version: (size, modification time in ns); (0, 0) when it cannot be seen."""
        try:
            info = os.stat(self.href)
        except OSError:
            return 0, 0
        return info.st_size, info.st_mtime_ns


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse a tile address outside the Web Mercator grid.

    Args:
        z: Zoom level.
        x: Column.
        y: Row.

    Raises:
        Invalid: ``z`` outside 0..:data:`MAX_ZOOM`, or ``x``/``y`` outside 0..2^z - 1.

    """
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise Invalid(f"tile {z}/{x}/{y} is not in the Web Mercator grid",
                      f"use 0 <= z <= {MAX_ZOOM} and 0 <= x, y < 2^z")


def png(rgb: np.ndarray, visible: np.ndarray) -> bytes:
    """A PNG from (3, h, w) uint8 colours, transparent where ``visible`` is False.

    Args:
        rgb: The colours.
        visible: (h, w) booleans.

    Returns:
        The PNG bytes.

    """
    return bytes(render(rgb.astype(np.uint8), mask=np.where(visible, 255, 0).astype(np.uint8), img_format="PNG"))


@contextmanager
def _reading(href: str) -> Iterator[Any]:
    """A rio-tiler reader of ``href``; a file GDAL cannot read (or a band it lacks) is an EOError naming the file."""
    from rasterio.errors import RasterioError

    try:
        with Reader(href) as reader:
            yield reader
    except TileOutsideBounds:
        raise
    except (RasterioError, RioTilerError) as exc:
        raise EOError(f"cannot read {Path(href).name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                      "check the file (or replace it) and try again") from None


@lru_cache(maxsize=1)
def blank() -> bytes:
    """A fully transparent tile."""
    return png(np.zeros((3, TILE, TILE), np.uint8), np.zeros((TILE, TILE), bool))


def read_tile(bands: Sequence[BandRef], z: int, x: int, y: int, categorical: bool = False) -> np.ndarray | None:
    """The tile of each band, scaled to physical values, NaN where a band has no data.

    Args:
        bands: The bands (several may come from one file: it is read once).
        z: Zoom level.
        x: Column.
        y: Row.
        categorical: Resample with nearest neighbour and keep the codes unscaled (class maps).

    Returns:
        (len(bands), 256, 256) float64, or None when the tile does not touch the first band's raster.

    """
    out = np.full((len(bands), TILE, TILE), np.nan)
    method = "nearest" if categorical else "bilinear"
    for href in dict.fromkeys(b.href for b in bands):
        mine = [i for i, b in enumerate(bands) if b.href == href]
        with _reading(href) as reader:
            try:
                img = reader.tile(x, y, z, tilesize=TILE, indexes=[bands[i].index for i in mine],
                                  nodata=bands[mine[0]].nodata, resampling_method=method, reproject_method=method)
            except TileOutsideBounds:
                if href == bands[0].href:
                    return None
                continue
        data = np.ma.masked_invalid(np.ma.asarray(img.array, dtype=np.float64))
        for k, i in enumerate(mine):
            scale, offset = (1.0, 0.0) if categorical else (bands[i].scale, bands[i].offset)
            out[i] = np.ma.filled(data[k] * scale + offset, np.nan)
    return out


@lru_cache(maxsize=256)
def _overview(bands: tuple[BandRef, ...], bbox: tuple[float, float, float, float],
              stamps: tuple[tuple[int, int], ...]) -> np.ndarray:
    out = np.full((len(bands), OVERVIEW, OVERVIEW), np.nan)
    for i, band in enumerate(bands):
        with _reading(band.href) as reader:
            img = reader.part(bbox, dst_crs="EPSG:4326", bounds_crs="EPSG:4326", indexes=[band.index], width=OVERVIEW,
                              height=OVERVIEW, nodata=band.nodata, resampling_method="average")
        data = np.ma.masked_invalid(np.ma.asarray(img.array[0], dtype=np.float64))
        out[i] = np.ma.filled(data * band.scale + band.offset, np.nan)
    out.setflags(write=False)
    return out


def overview(bands: Sequence[BandRef], bbox: tuple[float, float, float, float]) -> np.ndarray:
    """The bands over ``bbox`` (EPSG:4326) at :data:`OVERVIEW` pixels a side, aligned, scaled, NaN without data.

    Cached per band and file version.

    Args:
        bands: The bands.
        bbox: west, south, east, north in degrees.

    Returns:
        (len(bands), OVERVIEW, OVERVIEW) float64 (read-only).

    """
    bands = tuple(bands)
    return _overview(bands, tuple(bbox), tuple(b.stamp() for b in bands))  # type: ignore[arg-type]


def percentile_range(values: np.ndarray, low: float = 2.0, high: float = 98.0) -> Range:
    """The ``low`` and ``high`` percentiles of the finite values (a range of width > 0; (0, 1) when none).

    Args:
        values: Any array (NaN: no data).
        low: Lower percentile.
        high: Upper percentile.

    Returns:
        (lower, upper).

    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [low, high]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def stretched(values: np.ndarray, ranges: Sequence[Range]) -> np.ndarray:
    """Bands stretched linearly from their ranges to 0..255.

    Args:
        values: (n, h, w) values (NaN: no data).
        ranges: Each band's (low, high), mapped to 0 and 255.

    Returns:
        (n, h, w) uint8 (NaN → 0).

    """
    out = np.empty(values.shape, np.uint8)
    for i, (lo, hi) in enumerate(ranges):
        with np.errstate(invalid="ignore"):
            out[i] = np.nan_to_num(np.clip((values[i] - lo) / (hi - lo) * 255.0, 0, 255))
    return out


def rgb_png(values: np.ndarray, ranges: Sequence[Range]) -> bytes:
    """Three bands as a colour PNG, each stretched by its range; transparent where any band has no data.

    Args:
        values: (3, h, w) values (NaN: no data).
        ranges: Each band's (low, high).

    Returns:
        The PNG bytes.

    """
    return png(stretched(values, ranges), np.isfinite(values).all(axis=0))


def colormaps() -> list[str]:
    """The colour map names a ramp may use (rio-tiler's), sorted."""
    return sorted(cmap.list())


@lru_cache(maxsize=64)
def colormap_lut(name: str) -> np.ndarray:
    """A colour map as a (256, 3) uint8 lookup table.

    Args:
        name: A rio-tiler colour map name (any case).

    Returns:
        The table (read-only).

    Raises:
        Invalid: No colour map of that name.

    """
    if name.lower() not in cmap.list():
        raise Invalid(f"colormap={name!r} is not a colour map",
                      f"use a rio-tiler colour map name, e.g. {INDEX_RAMP}, viridis, magma, spectral, rdbu_r")
    table = cmap.get(name.lower())
    lut = np.array([table[i][:3] for i in range(256)], np.uint8)
    lut.setflags(write=False)
    return lut


def ramp_png(values: np.ndarray, value_range: Range, ramp: str = VALUE_RAMP) -> bytes:
    """One band through a colour ramp; transparent where it has no data.

    Args:
        values: (h, w) values (NaN: no data).
        value_range: The (low, high) the ramp spans (values beyond take its ends).
        ramp: A rio-tiler colour map name.

    Returns:
        The PNG bytes.

    Raises:
        Invalid: ``ramp`` is no colour map.

    """
    level = stretched(values[None], [value_range])[0]
    return png(np.moveaxis(colormap_lut(ramp)[level], -1, 0), np.isfinite(values))


def class_png(codes: np.ndarray, colours: dict[int, str]) -> bytes:
    """Class codes in their classes' colours; codes of no class (and no data) are transparent.

    Args:
        codes: (h, w) pixel codes (NaN: no data).
        colours: Code → ``#rrggbb``.

    Returns:
        The PNG bytes.

    """
    rgb = np.zeros((3, *codes.shape), np.uint8)
    known = np.zeros(codes.shape, bool)
    for code, colour in colours.items():
        where = codes == code
        rgb[:, where] = np.frombuffer(bytes.fromhex(colour.lstrip("#")), np.uint8)[:3, None]
        known |= where
    return png(rgb, known)


@dataclass(frozen=True)
class PixelValue:
    """A band's value at a point: its pixel (row, col of its own file) and value in physical units (None: no data)."""

    row: int
    col: int
    value: float | None


def pixel_value(band: BandRef, lon: float, lat: float) -> PixelValue | None:
    """A band's value at a point, read with rasterio from the file in place.

    Args:
        band: The band.
        lon: Longitude (EPSG:4326).
        lat: Latitude (EPSG:4326).

    Returns:
        The pixel and its value (``value * scale + offset``; None where the band has no data), or None when the
        point is outside the band's raster.

    Raises:
        EOError: The file cannot be read.

    """
    import rasterio
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError
    from rasterio.warp import transform
    from rasterio.windows import Window

    try:
        with rasterio.open(band.href) as src:
            try:
                xs, ys = transform("EPSG:4326", src.crs, [lon], [lat]) if src.crs else ([lon], [lat])
            except CPLE_BaseError:  # outside the CRS's domain (e.g. the south pole in North Carolina's State Plane)
                return None
            if not (np.isfinite(xs[0]) and np.isfinite(ys[0])):
                return None
            row, col = src.index(xs[0], ys[0])
            if not (0 <= row < src.height and 0 <= col < src.width):
                return None
            value = src.read(band.index, window=Window(col, row, 1, 1), masked=True)[0, 0]
            nodata = band.nodata if band.nodata is not None else src.nodata
    except RasterioError as exc:
        raise EOError(f"cannot read {Path(band.href).name}: {str(exc).splitlines()[0] if str(exc) else 'error'}",
                      "check the file (or replace it) and try again") from None
    if np.ma.is_masked(value) or (nodata is not None and float(value) == nodata) or not np.isfinite(float(value)):
        return PixelValue(int(row), int(col), None)
    return PixelValue(int(row), int(col), float(value) * band.scale + band.offset)
