"""``eoengine source ...``: scan folders into STAC, search catalogs and APIs, serve a STAC API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from eoengine.errors import EOError

if TYPE_CHECKING:
    from eoengine.config.query import SearchQuery

source_app = typer.Typer(help="Find imagery: scan folders into STAC catalogs, search them or any STAC API, serve one.",
                         no_args_is_help=True)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


@source_app.command("scan")
def scan(
    folder: Annotated[Path, typer.Argument(help="Folder of GeoTIFF/COG/JP2 files (searched recursively)")],
    output: Annotated[Path, typer.Option("--out", "-o", help="Catalog folder to write")],
    collection: Annotated[str, typer.Option(help="Collection id")] = "local",
    datetime_pattern: Annotated[str | None, typer.Option(help="Regex with a (?P<date>...) group, then |FORMAT, e.g. '(?P<date>\\d{8})|%Y%m%d'")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="File name globs to leave out (repeat)")] = None,
    band_names: Annotated[str | None, typer.Option(help="Names of multi-band files' bands in order, e.g. blue,green,red,nir")] = None,
    datetime: Annotated[str | None, typer.Option(help="Date for files with none in their tags or name, e.g. 2024-06-01")] = None,
) -> None:
    """Scan a folder into a STAC Collection: footprints, projection, bands, dates."""
    from eoengine.sourcing.scan import EO_COMMON_NAMES, check_band_names, scan_folder

    names = band_names.split(",") if band_names else None
    plain = check_band_names(names)
    if plain:
        out.print(f"note: {', '.join(plain)} written as band name(s) only, not common names "
                  f"(STAC common names: {', '.join(EO_COMMON_NAMES)})")
    col = scan_folder(folder, output, collection, datetime_pattern, exclude=exclude, band_names=names, fixed_date=datetime)
    items = list(col.get_items())
    out.print(f"wrote {output / 'collection.json'}: {len(items)} item(s), "
              f"{min(i.datetime for i in items if i.datetime):%Y-%m-%d} to {max(i.datetime for i in items if i.datetime):%Y-%m-%d}")


def flags_query(bbox: str | None = None, aoi: str | None = None, place: str | None = None, datetime: str | None = None,
                collection: list[str] | None = None, ids: list[str] | None = None, max_cloud: float | None = None,
                query: str | None = None, limit: int = 100, sort: str = "datetime", descending: bool = False) -> SearchQuery:
    """The query ``source search`` flags give: the area from ``--bbox``, ``--aoi`` or ``--place``.

    Args:
        bbox: ``W,S,E,N`` in degrees.
        aoi: a GeoJSON file or GeoJSON text.
        place: a place name, geocoded.
        datetime: an RFC 3339 instant or interval.
        collection: collection ids.
        ids: item ids.
        max_cloud: the largest ``eo:cloud_cover``.
        query: property filters as JSON.
        limit: at most this many items.
        sort: the property to sort by.
        descending: newest / largest first.

    Returns:
        The query.

    Raises:
        EOError: more than one area flag, an AOI or place that cannot be read (BadQuery: a value that does not parse).

    """
    from eoengine.config.query import SearchQuery
    from eoengine.sourcing.search import aoi_geometry

    if sum(x is not None for x in (bbox, aoi, place)) > 1:
        raise EOError("give one of --bbox, --aoi and --place", "use one area filter")
    if place:
        from eoengine.sourcing.places import place_geometry

        aoi = json.dumps(place_geometry(place))
    return SearchQuery.of({"bbox": bbox, "intersects": aoi_geometry(aoi), "datetime": datetime, "collections": collection,
                           "ids": ids, "max_cloud": max_cloud, "query": query, "limit": limit, "sort": sort,
                           "descending": descending})


@source_app.command("search")
def search(
    source: Annotated[str, typer.Argument(help="Catalog folder/JSON, or a STAC API URL")],
    bbox: Annotated[str | None, typer.Option(help="west,south,east,north in degrees")] = None,
    aoi: Annotated[str | None, typer.Option(help="GeoJSON file or geometry for the area of interest")] = None,
    place: Annotated[str | None, typer.Option(help="A place name as the area (OpenStreetMap Nominatim)")] = None,
    datetime: Annotated[str | None, typer.Option(help="RFC 3339 instant or interval start/end ('..' open)")] = None,
    collection: Annotated[list[str] | None, typer.Option(help="Collection id (repeat)")] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="Item id (repeat)")] = None,
    max_cloud: Annotated[float | None, typer.Option(help="Largest eo:cloud_cover")] = None,
    query: Annotated[str | None, typer.Option(help='Property filters as JSON, e.g. \'{"platform": {"eq": "sentinel-2a"}}\'')] = None,
    limit: Annotated[int, typer.Option(help="At most this many items")] = 100,
    sort: Annotated[str, typer.Option(help="Property to sort by")] = "datetime",
    descending: Annotated[bool, typer.Option(help="Newest / largest first")] = False,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Write the results as an ItemCollection (JSON)")] = None,
) -> None:
    """Search by area, time, collection, cloud cover and any property; print a table, write an ItemCollection."""
    from eoengine.sourcing.search import search as run

    found = run(source, flags_query(bbox, aoi, place, datetime, collection, ids, max_cloud, query, limit, sort, descending))
    table = Table(title=f"{len(found)} item(s)")
    for col in ("id", "collection", "datetime", "cloud", "assets"):
        table.add_column(col)
    for item in found:
        cloud = item.properties.get("eo:cloud_cover")
        table.add_row(item.id, item.collection_id or "", str(item.datetime or ""), "" if cloud is None else f"{cloud:.1f}",
                      ", ".join(list(item.assets)[:8]) + (" ..." if len(item.assets) > 8 else ""))
    out.print(table)
    if output:
        found.save_object(dest_href=str(output))
        out.print(f"wrote {output}")


@source_app.command("serve")
def serve(
    catalog: Annotated[Path, typer.Argument(help="Catalog folder (one or more collections) or collection.json")],
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8081,
    max_limit: Annotated[int, typer.Option(help="Largest page size a search may ask for")] = 1000,
    cache: Annotated[Path, typer.Option(help="Where POST /fetch jobs write COGs")] = Path("eoengine-cache"),
    api_key: Annotated[str | None, typer.Option(help="Key for writes (default: EOENGINE_API_KEY, else generated)")] = None,
    private: Annotated[bool, typer.Option(help="Reading needs the key too")] = False,
) -> None:
    """Serve a local catalog as a STAC API (landing, conformance, collections, items, /search) with fetch jobs."""
    import os
    import secrets

    import uvicorn

    from eoengine.serving.stac_api import create_stac_app
    from eoengine.sourcing.catalog import CatalogIndex

    index = CatalogIndex(catalog)
    key = api_key or os.environ.get("EOENGINE_API_KEY")
    if not key:
        key = secrets.token_urlsafe(24)
        out.print(f"API key for POST /fetch (generated; set EOENGINE_API_KEY to choose one): {key}")
    out.print(f"STAC API over {len(index.records)} item(s) in {len(index.collections)} collection(s) on http://{host}:{port}/")
    app = create_stac_app(index, max_limit=max_limit, cache=cache, api_key=key, private=private)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@source_app.command("fetch")
def fetch(
    items: Annotated[Path, typer.Argument(help="ItemCollection JSON (from 'source search --out')")],
    bands: Annotated[str, typer.Option(help="Comma-separated bands: asset keys, eo:bands names or common names")],
    cache: Annotated[Path, typer.Option(help="Cache folder for the fetched COGs")] = Path("eoengine-cache"),
    bbox: Annotated[str | None, typer.Option(help="Clip to west,south,east,north (degrees)")] = None,
    aoi: Annotated[str | None, typer.Option(help="Clip to a GeoJSON file or geometry")] = None,
    crs: Annotated[str | None, typer.Option(help="Reproject to this CRS (e.g. EPSG:32633)")] = None,
    resolution: Annotated[float | None, typer.Option(help="Pixel size in the target CRS's units")] = None,
    workers: Annotated[int, typer.Option(help="Items fetched at once")] = 4,
    storage: Annotated[list[str] | None, typer.Option(
        help="GDAL option for s3://, gs://, az:// assets, KEY=VALUE or KEY=env:VAR (repeat)")] = None,
) -> None:
    """Fetch chosen bands of items, clipped/reprojected and stacked, into a cache of COGs (never twice)."""
    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import FetchSpec
    from eoengine.sourcing.storage import parse_options, redacted

    spec = FetchSpec(items=items, bands=bands, cache=cache, bbox=bbox, aoi=aoi, crs=crs, resolution=resolution,
                     workers=workers, storage=storage)
    if collected(spec):
        return
    options = parse_options(storage)
    if options:
        out.print(f"storage options: {redacted(options)}")
    results = run_spec(spec).items
    table = Table(title=f"{len(results)} item(s)")
    for col in ("item", "state", "file", "sha256"):
        table.add_column(col)
    for r in results:
        state = r.skipped or ("cached" if r.cached else "fetched")
        table.add_row(r.item_id, state, str(r.path or ""), r.sha256[:12])
    out.print(table)
