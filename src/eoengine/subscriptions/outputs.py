"""A subscription's outputs: each run's STAC Item in the subscription's Collection, and the statistics series.

The output folder holds ``collection.json`` (a STAC Collection a STAC API can serve, its extent
that of its runs), ``runs/<key>/`` per run (``map.tif``, ``item.json``, ``change.geojson`` and
``record.json``, written last: a run folder without it is not finished), ``history.jsonl`` (every
run's record, including failed and no-imagery runs) and the per-class area time series over the
successful runs as ``stats.json``, ``stats.csv`` and ``stats.parquet`` (GeoParquet, each row with
the area's geometry). Every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pystac

from eoengine.subscriptions.spec import SubscriptionSpec
from eoengine.subscriptions.state import RunRecord, write_json_atomic

PROCESSING_EXT = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"


def run_folder(out: Path, key: str) -> Path:
    """The folder of run ``key``."""
    return out / "runs" / key


def finished_record(out: Path, key: str) -> RunRecord | None:
    """The record of run ``key`` if its folder is complete (``record.json`` is written last), else None."""
    path = run_folder(out, key) / "record.json"
    return RunRecord.model_validate_json(path.read_text()) if path.is_file() else None


def make_item(spec: SubscriptionSpec, record: RunRecord, scenes: list[pystac.Item]) -> pystac.Item:
    """The STAC Item of a successful run: the area, the period, the model version, the input items, the map.

    Args:
        spec: the subscription.
        record: the run (its key, map and stats set).
        scenes: the input scenes.

    Returns:
        The item (not yet saved).

    """
    from shapely.geometry import shape

    import eoengine

    when = max((s.datetime for s in scenes if s.datetime), default=record.period_end)
    item = pystac.Item(id=str(record.key), geometry=spec.area, bbox=list(shape(spec.area).bounds), datetime=when,
                       properties={"start_datetime": _iso(record.period_start), "end_datetime": _iso(record.period_end),
                                   "processing:software": {"eoengine": eoengine.__version__},
                                   "processing:lineage": f"{record.composite} of {len(scenes)} scene(s) predicted "
                                                         f"with {record.model_version}",
                                   "eoengine:model": record.model, "eoengine:model_version": record.model_version,
                                   "eoengine:input_items": record.scene_ids, "eoengine:composite": record.composite,
                                   "eoengine:stats": [s.model_dump() for s in record.stats]},
                       stac_extensions=[PROCESSING_EXT], collection=_collection_id(spec))
    item.add_asset("map", pystac.Asset("./map.tif", media_type=pystac.MediaType.COG, roles=["data"], title="class map"))
    if record.change is not None:
        item.add_asset("change", pystac.Asset("./change.geojson", media_type=pystac.MediaType.GEOJSON, roles=["data"],
                                              title="change polygons"))
    item.add_asset("record", pystac.Asset("./record.json", media_type=pystac.MediaType.JSON, roles=["metadata"]))
    for scene in scenes:
        href = scene.get_self_href()
        if href:
            item.add_link(pystac.Link("derived_from", href, pystac.MediaType.JSON, title=scene.id))
    return item


def add_to_collection(spec: SubscriptionSpec, out: Path, item: pystac.Item) -> Path:
    """Save ``item`` in its run folder and add it to ``collection.json`` (the extent updated).

    Args:
        spec: the subscription.
        out: the output folder.
        item: the run's item.

    Returns:
        The item's path.

    """
    folder = run_folder(out, item.id)
    path = folder / "item.json"
    item.set_self_href(str(path))
    item.add_link(pystac.Link("collection", "../../collection.json", pystac.MediaType.JSON))
    item.add_link(pystac.Link("parent", "../../collection.json", pystac.MediaType.JSON))
    write_json_atomic(path, json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False), indent=2))
    items = [pystac.Item.from_file(str(p)) for p in sorted((out / "runs").glob("*/item.json"))]
    collection = pystac.Collection(id=_collection_id(spec), description=f"The maps of subscription {spec.name!r}",
                                   extent=pystac.Extent.from_items(items), license="other")
    data = collection.to_dict(include_self_link=False, transform_hrefs=False)
    data["links"] = [link for link in data["links"] if link["rel"] not in ("root", "item")]
    data["links"] += [{"rel": "root", "href": "./collection.json", "type": "application/json"}]
    data["links"] += [{"rel": "item", "href": f"./runs/{i.id}/item.json", "type": "application/geo+json"} for i in items]
    write_json_atomic(out / "collection.json", json.dumps(data, indent=2))
    return path


def append_history(out: Path, record: RunRecord) -> None:
    """Append one run's record to ``history.jsonl`` (flushed, one line each)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "history.jsonl").open("a") as f:
        f.write(record.model_dump_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_stats(spec: SubscriptionSpec, out: Path) -> list[dict[str, Any]]:
    """The per-class area series over the successful runs, as ``stats.json``, ``stats.csv`` and ``stats.parquet``.

    Args:
        spec: the subscription.
        out: the output folder.

    Returns:
        The rows (one per run and class), oldest run first.

    """
    import geopandas as gpd
    from shapely.geometry import shape

    records = sorted((RunRecord.model_validate_json(p.read_text()) for p in (out / "runs").glob("*/record.json")),
                     key=lambda r: (r.period_end, r.finished or r.started))
    rows = [{"run": r.key, "datetime": _iso(r.period_end), "model_version": r.model_version, "class": s.name,
             "code": s.code, "pixels": s.pixels, "hectares": s.hectares} for r in records for s in r.stats]
    write_json_atomic(out / "stats.json", json.dumps({"subscription": spec.name, "series": rows}, indent=2))
    frame = gpd.GeoDataFrame(rows, geometry=[shape(spec.area)] * len(rows), crs="EPSG:4326")
    columns = ["run", "datetime", "model_version", "class", "code", "pixels", "hectares"]
    _atomic(out / "stats.csv", lambda p: frame.reindex(columns=columns).to_csv(p, index=False))
    _atomic(out / "stats.parquet", lambda p: frame.to_parquet(p))
    return rows


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _collection_id(spec: SubscriptionSpec) -> str:
    return "subscription-" + "-".join(spec.name.lower().split())


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
