"""Fetch the chosen bands of STAC items, clipped to an AOI, as COGs in a local cache.

Assets are read in place through GDAL (local paths, ``https://`` via /vsicurl, ``s3://``,
``gs://``, ``az://`` with credentials from the environment or ``storage`` options), only the AOI's window is read,
bands are resampled onto one grid (the finest band's, or ``resolution`` in ``crs``) and
stacked into one COG per item. The cache key is the item, its asset locations and the
request (bands, AOI, CRS, resolution); a finished file has a ``.json`` sidecar with its
SHA-256, and is never fetched twice. A file whose checksum no longer matches, or that does
not open, is fetched again. Files are written under a temporary name and renamed when
complete, so an interrupted fetch (or a full disk) never leaves a partial file under a
final name; the temporary files a killed fetch left are removed by the next one. Items are
fetched concurrently.
"""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import Window
from shapely.geometry import box, mapping, shape

from eoengine.errors import EOError, Unavailable, first_line
from eoengine.hashing import canonical_hash, file_sha256
from eoengine.raster.cog import finish_cog, remove_stale, temp_name


@dataclass
class Fetched:
    """One item's fetched stack."""

    item_id: str
    path: Path | None
    cached: bool
    sha256: str = ""
    skipped: str = ""


def band_locations(item: pystac.Item, bands: list[str]) -> list[tuple[str, int]]:
    """(href, 1-based band index) of each requested band: by asset key, eo:bands name or common name."""
    out = []
    for band in bands:
        found = None
        if band in item.assets:
            found = (item.assets[band].href, 1)
        else:
            for asset in item.assets.values():
                for i, b in enumerate(asset.extra_fields.get("eo:bands", [])):
                    if band in (b.get("name"), b.get("common_name")):
                        found = (asset.href, i + 1)
                        break
                if found:
                    break
        if found is None:
            names = sorted({*item.assets, *(b.get("common_name") or b.get("name") for a in item.assets.values()
                                             for b in a.extra_fields.get("eo:bands", []))} - {None})
            raise EOError(f"item '{item.id}' has no band '{band}'", f"choose from: {', '.join(names)}")
        out.append(found)
    return out


def _grid(srcs: list[Any], aoi: Any, crs: CRS | None, resolution: float | None) -> tuple[CRS, Any, int, int] | None:
    """Target CRS, transform and size covering the AOI (or the whole item), or None if the AOI misses it."""
    target = crs or srcs[0].crs
    if resolution:
        res = resolution
    elif crs is None:  # the finest band's pixel size
        res = min(abs(s.res[0]) for s in srcs)
    else:  # a new CRS without a resolution: the first band's pixel size carried over
        tb = transform_bounds(srcs[0].crs, target, *srcs[0].bounds)
        res = min((tb[2] - tb[0]) / srcs[0].width, (tb[3] - tb[1]) / srcs[0].height)
    item_area = box(*transform_bounds(srcs[0].crs, target, *srcs[0].bounds, densify_pts=21))
    area = item_area
    if aoi is not None:
        area = item_area.intersection(shape(transform_geom("EPSG:4326", target, mapping(aoi))))
        if area.is_empty:
            return None
    w, s, e, n = area.bounds
    w, n = math.floor(w / res) * res, math.ceil(n / res) * res
    width, height = max(1, math.ceil((e - w) / res)), max(1, math.ceil((n - s) / res))
    return target, from_origin(w, n, res, res), width, height


def _read(src: Any, index: int, crs: CRS, transform: Any, width: int, height: int, resampling: str,
          dtype: str, nodata: float) -> np.ndarray:
    """One band on the target grid: a plain window read when the grids line up, else a warped one."""
    same_grid = (src.crs == crs and math.isclose(src.transform.a, transform.a) and math.isclose(src.transform.e, transform.e)
                 and float((transform.c - src.transform.c) / src.transform.a).is_integer()
                 and float((transform.f - src.transform.f) / src.transform.e).is_integer())
    if same_grid:
        col = round((transform.c - src.transform.c) / src.transform.a)
        row = round((transform.f - src.transform.f) / src.transform.e)
        window = Window(col, row, width, height)
        inside = col >= 0 and row >= 0 and col + width <= src.width and row + height <= src.height
        data = src.read(index, window=window) if inside else src.read(  # boundless reads go through a VRT: slower
            index, window=window, boundless=True, fill_value=src.nodata if src.nodata is not None else 0)
        if dtype == "float32":
            data = data.astype(np.float32)
            if src.nodata is not None:
                data[data == src.nodata] = np.nan
        return data  # type: ignore[no-any-return]
    with WarpedVRT(src, crs=crs, transform=transform, width=width, height=height, resampling=Resampling[resampling],
                   src_nodata=src.nodata, nodata=nodata, dtype=dtype) as vrt:
        return vrt.read(index)  # type: ignore[no-any-return]


def _open(href: str) -> Any:
    try:
        return rasterio.open(href)
    except rasterio.errors.RasterioIOError as exc:
        raise Unavailable(f"cannot read {href}: {first_line(exc)}", "check the asset URL and credentials") from None


_WRITING: dict[Path, threading.Lock] = {}
_WRITING_GUARD = threading.Lock()


def _writing(out: Path) -> threading.Lock:
    """The lock of one cached stack: threads fetching the same stack wait for the first one."""
    with _WRITING_GUARD:
        return _WRITING.setdefault(out.resolve(), threading.Lock())


def fetch_item(item: pystac.Item, bands: list[str], cache: Path, aoi: Any = None, crs: str | None = None,
               resolution: float | None = None, resampling: str = "bilinear") -> Fetched:
    """Fetch (or recall) one item's stack; see the module docs.

    Threads of one process that fetch the same stack at once (two area maps of a new scene)
    take turns: the first writes it, the others find it cached.

    Args:
        item: The STAC item.
        bands: Band names (asset keys or common names) in stack order.
        cache: The cache folder.
        aoi: Clip to this shapely geometry (EPSG:4326); None keeps the whole scene.
        crs: Reproject to this CRS; None keeps the first band's.
        resolution: Pixel size in the target CRS' units; None keeps the finest band's.
        resampling: Resampling of bands onto the grid.

    Returns:
        Where the stack is, whether it came from the cache, and its SHA-256.

    Raises:
        EOError: A band is missing or unreadable, or the stack cannot be written.

    """
    locs = band_locations(item, bands)
    key = canonical_hash({"item": item.id, "hrefs": locs, "bands": bands, "aoi": aoi.wkt if aoi is not None else None,
                          "crs": crs, "resolution": resolution, "resampling": resampling})[:16]
    out = cache / (item.collection_id or "items") / item.id / f"{key}.tif"
    with _writing(out):
        return _fetch_stack(item, bands, locs, out, aoi, crs, resolution, resampling)


def _fetch_stack(item: pystac.Item, bands: list[str], locs: list[tuple[str, int]], out: Path, aoi: Any,
                 crs: str | None, resolution: float | None, resampling: str) -> Fetched:
    sidecar = out.with_suffix(".json")
    if out.exists() and sidecar.exists():
        recorded = json.loads(sidecar.read_text()).get("sha256")
        if recorded == file_sha256(out):
            try:
                rasterio.open(out).close()
                return Fetched(item.id, out, True, recorded)
            except rasterio.errors.RasterioIOError:
                pass
        out.unlink()  # corrupt or changed: fetch again
    opened: dict[str, Any] = {}
    try:
        for href, _ in locs:  # each file once, however many of its bands are asked for
            if href not in opened:
                opened[href] = _open(href)
        srcs = [opened[h] for h, _ in locs]
        grid = _grid(srcs, aoi, CRS.from_user_input(crs) if crs else None, resolution)
        if grid is None:
            return Fetched(item.id, None, False, skipped="outside the AOI")
        target, transform, width, height = grid
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(out)
        remove_stale(sidecar)
        tiled = temp_name(out, "tiled.tif")
        dtypes = {s.dtypes[i - 1] for s, (_, i) in zip(srcs, locs, strict=True)}
        nodatas = {s.nodata for s in srcs}
        keep = len(dtypes) == 1 and len(nodatas) == 1 and None not in nodatas  # the source's type and nodata
        dtype, nodata = (dtypes.pop(), nodatas.pop()) if keep else ("float32", np.nan)
        profile = {"driver": "GTiff", "width": width, "height": height, "count": len(bands), "dtype": dtype,
                   "crs": target, "transform": transform, "nodata": nodata, "tiled": True, "blockxsize": 256,
                   "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
        try:
            with rasterio.open(tiled, "w", **profile) as dst:
                for i, (src, (href, index)) in enumerate(zip(srcs, locs, strict=True)):
                    try:
                        data = _read(src, index, target, transform, width, height, resampling, dtype, nodata)
                    except RasterioError as exc:
                        raise EOError(f"cannot read band '{bands[i]}' from {href}: {first_line(exc)}",
                                      "the file is corrupt or truncated; fix or re-publish it") from None
                    dst.write(data, i + 1)
                    dst.set_band_description(i + 1, bands[i])
                dst.update_tags(EOENGINE_ITEM=item.id, EOENGINE_BANDS=",".join(bands))
            finish_cog(tiled, out, "AVERAGE")
            digest = file_sha256(out)
            tmp = temp_name(sidecar, "json")
            tmp.write_text(json.dumps({"item": item.id, "bands": bands, "sha256": digest, "hrefs": locs}, indent=2))
            tmp.replace(sidecar)
        except BaseException as exc:  # nothing partial stays, whatever stopped the write
            for leftover in (tiled, out, temp_name(sidecar, "json")):
                leftover.unlink(missing_ok=True)
            if isinstance(exc, (RasterioError, OSError)):  # a full disk or a failing cache volume
                raise EOError(f"cannot write {out}: {first_line(exc)}",
                              "free space in the cache folder (or choose another --cache) and fetch again; "
                              "nothing partial was kept") from None
            raise
    finally:
        for src in opened.values():
            src.close()
    return Fetched(item.id, out, False, digest)


def fetch(items: list[pystac.Item], bands: list[str], cache: Path, aoi: Any = None, crs: str | None = None,
          resolution: float | None = None, workers: int = 4, storage: dict[str, str] | None = None) -> list[Fetched]:
    """Fetch every item concurrently, reporting a ``fetching`` task (one step per item).

    Args:
        items: The STAC Items to fetch.
        bands: Band names (or common names) to take from each item, in this order.
        cache: Folder of the fetched stacks (an item fetched before is not fetched again).
        aoi: Area (a shapely geometry in degrees) to clip to; None keeps the whole item.
        crs: CRS of the stacks; default the first band's.
        resolution: Pixel size in ``crs`` units; default the finest band's (in another ``crs``: the first band's).
        workers: Items fetched at the same time.
        storage: GDAL options for object-storage assets (see :mod:`eoengine.sourcing.storage`).

    Returns:
        One result per item, in order (no path for an item the AOI misses).

    Raises:
        EOError: no items, a band an item lacks, an unreadable asset, or an AOI that misses every item.

    """
    if not items:
        raise EOError("no items to fetch", "search first: eoengine source search ... --out items.json")
    from eoengine.progress import progress_task
    from eoengine.sourcing.storage import storage_env

    with storage_env(storage), progress_task("fetching", len(items)) as task, ThreadPoolExecutor(max(1, workers)) as pool:

        def one(item: pystac.Item) -> Fetched:
            result = fetch_item(item, bands, cache, aoi, crs, resolution)
            task.advance()
            return result

        results = list(pool.map(one, items))
    if all(r.path is None for r in results):
        raise EOError("the AOI misses every scene", "check the AOI's coordinates (degrees, west,south,east,north)")
    return results
