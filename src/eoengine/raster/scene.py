"""A scene: named bands from one or many files, presented on one pixel grid.

Bands may live in separate files (Landsat), in one stack, or behind a STAC Item, and may
have different resolutions (Sentinel-2's 10/20/60 m). :class:`SceneReader` picks the finest
band as the reference grid, warps the others onto it lazily (``WarpedVRT``) and reads any
window as float32 with NaN for nodata, after applying each band's scale and offset
(:func:`mask_and_scale`); ``read_raw`` gives the values as stored, for prediction to mask and
scale by the model's band specs. Nothing ever reads a whole scene.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from eoengine.config.schema import BandFiles, BandSpec, SceneSpec
from eoengine.errors import EOError, NotFound, check_not_folder, first_line
from eoengine.raster.crs import crs_equivalent


@dataclass(frozen=True)
class BandSource:
    """Where one named band is read from, and how its values are scaled."""

    name: str
    path: str
    index: int = 1
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    common_name: str | None = None


@dataclass(frozen=True)
class Grid:
    """A pixel grid: CRS, affine transform and size."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def affine(self) -> Affine:
        """The grid's affine transform."""
        return Affine(*self.transform)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid's CRS."""
        a = self.affine
        xs = [a.c, a.c + a.a * self.width]
        ys = [a.f, a.f + a.e * self.height]
        return (min(xs), min(ys), max(xs), max(ys))

    def window_bounds(self, row: float, col: float, height: float, width: float) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of a pixel window in the grid's CRS."""
        a = self.affine
        x0, y0 = a @ (col, row)
        x1, y1 = a @ (col + width, row + height)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    @property
    def res(self) -> float:
        """Pixel size (assumes square pixels, as the grids we build are)."""
        return abs(self.transform[0])


def mask_and_scale(x: np.ndarray, nodata: Sequence[float | None], scale: Sequence[float], offset: Sequence[float]) -> None:
    """Mask nodata and apply scale/offset, in place, band by band.

    A value is nodata where it equals its band's nodata (NaN nodata: where it is NaN); it
    becomes NaN, and NaN stays NaN. Bands with scale 1 and offset 0 are left as they are.

    Args:
        x: float32 band values, (bands, h, w) or (batch, bands, h, w).
        nodata: Each band's nodata value, or None.
        scale: Each band's scale.
        offset: Each band's offset.

    """
    for b, (value, mul, add) in enumerate(zip(nodata, scale, offset, strict=True)):
        band = x[..., b, :, :]
        if value is not None:
            band[np.isnan(band) if np.isnan(value) else band == np.float32(value)] = np.nan
        if mul != 1.0 or add != 0.0:
            band *= np.float32(mul)
            band += np.float32(add)


def open_raster(path: str) -> Any:
    """Open a raster with rasterio, turning failures into an error that names the file."""
    if "://" not in path and not Path(path).exists():
        raise NotFound(f"raster not found: {path}", "check the path in the config or command")
    try:
        return rasterio.open(path)
    except RasterioError as exc:
        check_not_folder(path, "a raster file", "pass the image file itself (e.g. a .tif inside the folder)")
        reason = str(exc).split("\n")[0]
        raise EOError(
            f"cannot read raster {path}: {reason}",
            "check it is a valid GeoTIFF/COG/JP2 (re-download or re-export it)",
        ) from None


def _stac_sources(bands: list[BandSpec], item_path: Path) -> list[tuple[str, int]]:
    if not item_path.exists():
        raise NotFound(f"STAC item not found: {item_path}", "check the scene's stac_item path")
    try:
        item = json.loads(item_path.read_text())
        assets: dict[str, Any] = item["assets"]
    except (ValueError, KeyError):
        raise EOError(f"{item_path}: not a STAC Item with assets", "pass a STAC Item JSON") from None
    out = []
    for band in bands:
        key = band.name if band.name in assets else None
        if key is None:
            for k, asset in assets.items():
                for eo in asset.get("eo:bands", []) + asset.get("bands", []):
                    if band.name in (eo.get("name"), eo.get("common_name")) or (
                        band.common_name and eo.get("common_name") == band.common_name
                    ):
                        key = k
        if key is None:
            raise EOError(
                f"{item_path}: no asset for band '{band.name}' (assets: {sorted(assets)})",
                "name the band like the asset key, or set its common_name",
            )
        href = assets[key]["href"]
        if "://" not in href and not Path(href).is_absolute():
            href = str(item_path.parent / href)
        out.append((href, 1))
    return out


def resolve_scene_bands(bands: list[BandSpec], scene: SceneSpec, base_dir: Path) -> list[BandSource]:
    """Turn a configured scene into one :class:`BandSource` per configured band and date.

    Multi-date scenes give the bands of their first date, then those of the second, and so on.
    """
    out: list[BandSource] = []
    for i, date in enumerate(scene.dates):
        label = scene.id if scene.timesteps is None else f"{scene.id}' timestep '{i}"
        out += _date_sources(bands, date, label, base_dir)
    return out


def _date_sources(bands: list[BandSpec], scene: BandFiles, label: str, base_dir: Path) -> list[BandSource]:
    def res(p: str) -> str:
        q = Path(p).expanduser()
        return p if "://" in p or q.is_absolute() else str(base_dir / q)

    if scene.files is not None:
        missing = [b.name for b in bands if b.name not in scene.files]
        extra = sorted(set(scene.files) - {b.name for b in bands})
        if missing or extra:
            raise EOError(
                f"scene '{label}': files do not match the bands "
                f"(missing: {missing or 'none'}, not a configured band: {extra or 'none'})",
                f"give one file per band in imagery.bands: {[b.name for b in bands]}",
            )
        locations = [(res(scene.files[b.name]), 1) for b in bands]
    elif scene.stack is not None:
        idx = scene.stack_indexes or list(range(1, len(bands) + 1))
        if len(idx) != len(bands):
            raise EOError(
                f"scene '{label}': stack_indexes has {len(idx)} entries for {len(bands)} bands",
                "give one 1-based band index per configured band",
            )
        locations = [(res(scene.stack), i) for i in idx]
    else:
        assert scene.stac_item is not None
        locations = _stac_sources(bands, Path(res(scene.stac_item)))
    return [
        BandSource(b.name, p, i, b.scale, b.offset, b.nodata, b.common_name)
        for b, (p, i) in zip(bands, locations, strict=True)
    ]


class SceneReader:
    """Read windows of a multi-file, multi-resolution scene on one grid.

    Use as a context manager. ``read(window)`` returns float32 ``(bands, h, w)`` with NaN
    wherever a band is nodata; windows may extend past the scene (padded with NaN).
    """

    def __init__(
        self,
        sources: list[BandSource],
        resampling: str = "bilinear",
        resolution: float | None = None,
    ) -> None:
        self.sources = sources
        self._datasets: dict[str, Any] = {}
        self._readers: list[tuple[Any, int, float | None]] = []
        try:
            self._open(resampling, resolution)
        except BaseException:
            self.close()
            raise

    def _open(self, resampling: str, resolution: float | None) -> None:
        for s in self.sources:
            if s.path not in self._datasets:
                self._datasets[s.path] = open_raster(s.path)
            ds = self._datasets[s.path]
            if s.index < 1 or s.index > ds.count:
                raise EOError(
                    f"band '{s.name}': {s.path} has {ds.count} band(s), no band {s.index}",
                    "fix the band index or the file",
                )
            if ds.crs is None:
                raise EOError(f"{s.path} has no CRS", "assign one (gdal_edit.py -a_srs EPSG:...)")
        ref_ds = min((self._datasets[s.path] for s in self.sources), key=lambda d: abs(d.res[0]))
        transform = ref_ds.transform
        width, height = ref_ds.width, ref_ds.height
        if resolution is not None and abs(resolution - abs(transform.a)) > 1e-9:
            left, bottom, right, top = ref_ds.bounds
            width = max(1, round((right - left) / resolution))
            height = max(1, round((top - bottom) / resolution))
            transform = Affine(resolution, 0, left, 0, -resolution, top)
        self.grid = Grid(ref_ds.crs.to_wkt(), tuple(transform)[:6], width, height)  # type: ignore[arg-type]
        method = Resampling[resampling]
        for s in self.sources:
            ds = self._datasets[s.path]
            nodata = s.nodata if s.nodata is not None else ds.nodatavals[s.index - 1]
            same = (
                crs_equivalent(ds.crs, ref_ds.crs, tuple(ds.bounds))
                and ds.transform.almost_equals(transform, precision=1e-6)
                and (ds.width, ds.height) == (width, height)
            )
            if same:
                self._readers.append((ds, s.index, nodata))
            else:
                vrt = WarpedVRT(
                    ds,
                    crs=ref_ds.crs,
                    transform=transform,
                    width=width,
                    height=height,
                    resampling=method,
                    src_nodata=nodata,
                    nodata=nodata if nodata is not None else np.nan,
                    dtype="float32",
                )
                self._datasets[f"vrt:{s.path}:{s.index}"] = vrt
                self._readers.append((vrt, s.index, nodata if nodata is not None else np.nan))

    @property
    def band_names(self) -> list[str]:
        """Names of the bands, in read order."""
        return [s.name for s in self.sources]

    @property
    def nodata(self) -> list[float | None]:
        """Each band's nodata as :meth:`read` masks it: its source's own, else its file's (None: none)."""
        return [nodata for _, _, nodata in self._readers]

    def read(self, window: Window) -> np.ndarray:
        """Read ``window`` as float32 (bands, h, w), NaN where nodata, scale/offset applied."""
        out = self.read_raw(window)
        mask_and_scale(out, self.nodata, [s.scale for s in self.sources], [s.offset for s in self.sources])
        return out

    def read_raw(self, window: Window) -> np.ndarray:
        """Read ``window`` as float32 (bands, h, w), values as stored (no scale/offset, nodata not masked).

        Pixels outside the scene are NaN; a warped band's pixels without data hold its nodata
        (the band's own, else the file's), or NaN if neither is set.
        """
        h, w = int(window.height), int(window.width)
        out = np.full((len(self.sources), h, w), np.nan, dtype=np.float32)
        r0, c0 = int(window.row_off), int(window.col_off)
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + h, self.grid.height), min(c0 + w, self.grid.width)
        if rr1 <= rr0 or cc1 <= cc0:
            return out
        inner = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
        for i, data in self._read_all(inner):
            out[i, rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = data
        return out

    def _read_all(self, inner: Window) -> list[tuple[int, np.ndarray]]:
        """Read every band, the bands of one open dataset in one call.

        A pixel-interleaved file then decodes each block once, not once per band.
        """
        groups: dict[int, list[int]] = {}
        for i, (ds, _, _) in enumerate(self._readers):
            groups.setdefault(id(ds), []).append(i)
        out: list[tuple[int, np.ndarray]] = []
        for members in groups.values():
            ds = self._readers[members[0]][0]
            try:
                block = ds.read([self._readers[i][1] for i in members], window=inner, out_dtype="float32")
            except RasterioError as exc:
                names = ", ".join(self.sources[i].name for i in members)
                reason = first_line(exc.__cause__ or exc)  # rasterio's own text only points at GDAL's
                raise EOError(
                    f"cannot read band(s) {names} from {self.sources[members[0]].path}: {reason}",
                    "the file is corrupt or truncated; re-download or re-export it",
                ) from None
            out += [(i, block[k]) for k, i in enumerate(members)]
        return out

    def check_pixels(self) -> None:
        """Read a cheap sample of every band's blocks: the last, first and centre pixels.

        The last pixel is in the last block, so a truncated file fails here.

        Raises:
            EOError: A band's pixels cannot be read (the message :meth:`read` gives).

        """
        g = self.grid
        for row, col in ((g.height - 1, g.width - 1), (0, 0), (g.height // 2, g.width // 2)):
            self.read(Window(col, row, 1, 1))

    def close(self) -> None:
        """Close every file this reader opened."""
        for ds in reversed(list(self._datasets.values())):
            ds.close()
        self._datasets.clear()

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
