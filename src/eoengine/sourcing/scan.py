"""Scan a folder of GeoTIFF / COG / JP2 files into a static STAC catalog.

Each file becomes an Item, or, when file names follow ``<scene>_<band>`` (Sentinel-2's
``T33UUU_20170216T102101_B02.jp2``), the files of one scene become one Item with an asset per
band. Items carry their footprint and bbox in EPSG:4326, the native CRS and grid through the
projection extension, the bands (names and STAC common names) through the eo extension, and
a datetime taken from the file's tags, from a date in its name (``20170216``,
``20170216T102101``, a Landsat scene id's year and day), from the user's pattern, or, for
files with none of these, the user's fixed datetime. User band names must be distinct and
match each file's band count; only names in the eo extension's list are written as common
names (others stay plain band names), so the catalog validates and searches by common name
find the right bands. Assets point to the files in place (absolute paths); the catalog is
self-contained JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pystac
import rasterio
from rasterio.warp import transform_bounds, transform_geom
from shapely.geometry import box, mapping

from eoengine.errors import EOError
from eoengine.raster.cog import is_cog

SUFFIXES = (".tif", ".tiff", ".gtif", ".jp2", ".vrt")
BAND_SUFFIX = re.compile(r"^(?P<scene>.+?)_(?P<band>B\d[\dA])$")
COMMON_NAMES = {  # Sentinel-2 MSI band ids
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge", "B06": "rededge",
    "B07": "rededge", "B08": "nir", "B8A": "nir08", "B09": "nir09", "B10": "cirrus", "B11": "swir16", "B12": "swir22",
}
EO_COMMON_NAMES = ("coastal", "blue", "green", "red", "rededge", "yellow", "pan", "nir", "nir08", "nir09", "cirrus",
                   "swir16", "swir22", "lwir", "lwir11", "lwir12")
"""The common names the eo extension (v1.1.0) allows."""
EXTENSIONS = ["https://stac-extensions.github.io/projection/v2.0.0/schema.json",
              "https://stac-extensions.github.io/eo/v1.1.0/schema.json"]


def date_from_name(name: str, pattern: str | None = None) -> datetime | None:
    """A UTC datetime from a file name: the user's regex (group ``date`` and optional ``format``), or common layouts."""
    if pattern:
        fmt = "%Y%m%d"
        if "|" in pattern and pattern.rsplit("|", 1)[1].startswith("%"):
            pattern, fmt = pattern.rsplit("|", 1)
        m = re.search(pattern, name)
        if not m or "date" not in m.groupdict():
            return None
        return datetime.strptime(m["date"], fmt).replace(tzinfo=UTC)
    if m := re.search(r"(?<!\d)(\d{8})T(\d{6})(?!\d)", name):
        return datetime.strptime(m[1] + m[2], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    if m := re.search(r"(?<!\d)((?:19|20)\d{6})(?!\d)", name):
        try:
            return datetime.strptime(m[1], "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            pass
    if m := re.match(r"^L[CEOTM]\d{7}((?:19|20)\d{2})(\d{3})", name):  # Landsat scene id: year + day of year
        return datetime(int(m[1]), 1, 1, tzinfo=UTC) + timedelta(days=int(m[2]) - 1)
    return None


def _date_from_tags(tags: dict[str, str]) -> datetime | None:
    for key in ("TIFFTAG_DATETIME", "ACQUISITIONDATETIME", "DATETIME"):
        if key in tags:
            for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
                try:
                    return datetime.strptime(tags[key].strip().rstrip("Z"), fmt).replace(tzinfo=UTC)
                except ValueError:
                    continue
    return None


def check_band_names(names: list[str] | None) -> list[str]:
    """Refuse empty or repeated user band names; return those that are not eo common names.

    Args:
        names: the user's band names (``--band-names``), or None.

    Returns:
        The names that will be written as band names only (no ``common_name``).

    Raises:
        EOError: a name is empty or given twice.

    """
    names = names or []
    if any(not n.strip() for n in names):
        raise EOError(f"--band-names {','.join(names)} has an empty name", "give one name per band, e.g. blue,green,red,nir")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise EOError(f"--band-names repeats {', '.join(repeated)}", "give every band its own name, in band order")
    return [n for n in names if n not in EO_COMMON_NAMES]


def _bands(path: Path, ds: Any, band_id: str | None, names: list[str] | None = None) -> list[dict[str, Any]]:
    if band_id:
        out = {"name": band_id}
        if band_id in COMMON_NAMES:
            out["common_name"] = COMMON_NAMES[band_id]
        return [out]
    if names and len(names) != ds.count:
        raise EOError(f"--band-names gives {len(names)} name(s) but {path} has {ds.count} band(s)",
                      f"give exactly {ds.count} names in band order, or leave the file out with --exclude")
    bands = [{"name": name} for name in names] if names else [
        {"name": ds.descriptions[i] or f"b{i + 1}"} for i in range(ds.count)]
    repeated = sorted({b["name"] for b in bands if sum(c["name"] == b["name"] for c in bands) > 1})
    if repeated:
        raise EOError(f"{path} has several bands named {', '.join(repeated)}", "name its bands with --band-names a,b,c,...")
    for band in bands:
        if band["name"] in EO_COMMON_NAMES:
            band["common_name"] = band["name"]
    return bands


def _asset(path: Path, ds: Any, band_id: str | None, names: list[str] | None = None) -> pystac.Asset:
    media = pystac.MediaType.JPEG2000 if path.suffix.lower() == ".jp2" else (
        pystac.MediaType.COG if path.suffix.lower() in (".tif", ".tiff") and is_cog(path) else pystac.MediaType.GEOTIFF)
    extra = {"eo:bands": _bands(path, ds, band_id, names), "proj:shape": [ds.height, ds.width],
             "proj:transform": list(ds.transform)[:6], "gsd": abs(ds.transform.a)}
    return pystac.Asset(str(path.resolve()), title=path.name, media_type=media, roles=["data"], extra_fields=extra)


def _group(files: Iterable[Path]) -> dict[str, list[tuple[Path, str | None]]]:
    groups: dict[str, list[tuple[Path, str | None]]] = {}
    for f in files:
        m = BAND_SUFFIX.match(f.stem)
        key, band = (m["scene"], m["band"]) if m else (f.stem, None)
        groups.setdefault(key, []).append((f, band))
    return groups


def _fixed_date(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise EOError(f"--datetime '{text}' is not a date or RFC 3339 date-time",
                      "e.g. --datetime 2024-06-01 or --datetime 2024-06-01T10:30:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Undated(EOError):
    """A scene whose date could not be found."""


def make_item(item_id: str, members: list[tuple[Path, str | None]], date_pattern: str | None = None,
              band_names: list[str] | None = None, fixed_date: datetime | None = None) -> pystac.Item:
    """One Item from a scene's files (one multi-band file, or one file per band).

    Args:
        item_id: the Item's id.
        members: the files and their band ids (None for a multi-band file).
        date_pattern: the user's regex for dates in names (see :func:`date_from_name`).
        band_names: the user's names of a multi-band file's bands.
        fixed_date: the datetime of a scene with no date in its tags or name.

    Returns:
        The Item, with assets pointing at the files.

    Raises:
        EOError: a file is unreadable, has no CRS, or its bands do not fit ``band_names``.
        Undated: no date was found and ``fixed_date`` is None.

    """
    assets: dict[str, pystac.Asset] = {}
    when, crs, bounds = None, None, None
    for path, band in sorted(members, key=lambda m: m[1] or ""):
        try:
            ds = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise EOError(f"cannot read {path}: {str(exc).splitlines()[0]}", "remove or repair the file") from None
        with ds:
            if ds.crs is None:
                raise EOError(f"{path} has no CRS", "assign one (gdal_edit.py -a_srs) or leave the file out")
            assets[band or "data"] = _asset(path, ds, band, band_names)
            when = when or _date_from_tags(ds.tags())
            crs = crs or ds.crs
            b = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
            bounds = b if bounds is None else (min(bounds[0], b[0]), min(bounds[1], b[1]), max(bounds[2], b[2]), max(bounds[3], b[3]))
            native = (ds.crs, ds.bounds)
    when = when or date_from_name(item_id, date_pattern) or date_from_name(members[0][0].name, date_pattern) or fixed_date
    if when is None:
        raise Undated(f"no date for '{item_id}' in its tags or name",
                      "pass --datetime-pattern with a (?P<date>...) group, e.g. '(?P<date>\\d{8})|%Y%m%d'")
    assert bounds is not None and crs is not None
    footprint = transform_geom(native[0], "EPSG:4326", mapping(box(*native[1])), precision=7)
    props: dict[str, Any] = {"proj:code": f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else None,
                             "proj:bbox": list(native[1])}
    if props["proj:code"] is None:
        props["proj:wkt2"] = crs.to_wkt()
    item = pystac.Item(item_id, footprint, list(bounds), when, props, stac_extensions=list(EXTENSIONS))
    for key, asset in assets.items():
        item.add_asset(key, asset)
    return item


def scan_folder(folder: Path, out: Path, collection_id: str, date_pattern: str | None = None,
                description: str | None = None, exclude: list[str] | None = None,
                band_names: list[str] | None = None, fixed_date: str | None = None) -> pystac.Collection:
    """Scan ``folder`` (recursively) into a self-contained STAC Collection written to ``out``.

    ``exclude`` holds glob patterns of file names to leave out (label rasters, masks);
    ``band_names`` names the bands of multi-band files in order (those in
    :data:`EO_COMMON_NAMES` are also their common names); ``fixed_date`` (RFC 3339, or a
    date) dates the scenes whose tags and names hold none.

    Raises:
        EOError: no imagery, unreadable files, bad band names, a bad ``fixed_date``, or undated scenes.

    """
    check_band_names(band_names)
    fallback = _fixed_date(fixed_date) if fixed_date else None
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                   and not any(p.match(g) for g in exclude or []))
    if not files:
        raise EOError(f"no GeoTIFF, COG or JP2 files under {folder}", "point to the folder that holds the imagery")
    items, undated = [], []
    for key, members in sorted(_group(files).items()):
        try:
            items.append(make_item(key, members, date_pattern, band_names, fallback))
        except Undated:
            undated.append(key)
    if undated:
        raise EOError(f"no date in the tags or names of: {', '.join(undated)}",
                      "pass --datetime-pattern '(?P<date>\\d{8})|%Y%m%d' (a regex with a date group, then | and its "
                      "strptime format), --datetime 2024-06-01 for all of them, or leave them out with --exclude 'NAME*'")
    return write_collection(items, out, collection_id, description or f"Scenes scanned from {Path(folder).resolve()}")


def write_collection(items: list[pystac.Item], out: Path, collection_id: str, description: str) -> pystac.Collection:
    """A self-contained STAC Collection of ``items`` (its extent theirs), written to ``out``.

    Args:
        items: The items (at least one, each with a bbox and datetime).
        out: The folder to write (``collection.json`` and one folder per item).
        collection_id: The collection's id.
        description: Its description.

    Returns:
        The collection.

    """
    west = min(i.bbox[0] for i in items)  # type: ignore[index]
    south = min(i.bbox[1] for i in items)  # type: ignore[index]
    east = max(i.bbox[2] for i in items)  # type: ignore[index]
    north = max(i.bbox[3] for i in items)  # type: ignore[index]
    times = sorted(i.datetime for i in items if i.datetime)
    extent = pystac.Extent(pystac.SpatialExtent([[west, south, east, north]]), pystac.TemporalExtent([[times[0], times[-1]]]))
    collection = pystac.Collection(collection_id, description, extent, license="other", stac_extensions=list(EXTENSIONS))
    for item in items:
        collection.add_item(item)
    out.mkdir(parents=True, exist_ok=True)
    collection.normalize_hrefs(str(out.resolve()))
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    return collection
