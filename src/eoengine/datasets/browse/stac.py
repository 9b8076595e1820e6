"""A dataset version as a STAC Collection: extent, bands, classes, splits, licence and its files as assets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pystac

from eoengine.datasets.browse.folder import open_dataset, split_names
from eoengine.datasets.schema import MANIFEST
from eoengine.datasets.store import ARRAYS, INDEX
from eoengine.sourcing.scan import EO_COMMON_NAMES

EO_EXTENSION = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
CLASSIFICATION_EXTENSION = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"


def _when(text: str | None) -> datetime | None:
    """A scene's datetime in UTC (a date alone is its midnight), or None when it has none or no readable one."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stac_collection(root: Path, self_href: str, files_href: str | None = None) -> dict[str, Any]:
    """The dataset version as a STAC Collection (core 1.1.0 with the eo and classification extensions).

    Args:
        root: The dataset folder.
        self_href: The URL the collection is served at.
        files_href: The URL the dataset's files are served under; default ``files/`` next to ``self_href``
            (``…/name@version/stac`` → ``…/name@version/files/``).

    Returns:
        The collection as a dict: id ``name@version``, bbox of the chips and interval of the scenes,
        licence (the manifest's ``license`` if recorded, else ``other``), summaries of the bands
        (``eo:bands``) and classes (``classification:classes``, value = index in the labels array),
        ``eoengine:splits`` with chips per split, and assets manifest, chips and data.

    Raises:
        NotFound: ``root`` is not a dataset folder.

    """
    ds = open_dataset(root)
    m, index = ds.manifest, ds.index
    files = files_href or urljoin(self_href, "files/")
    placed = index.geometry[index.geometry.notna()]
    bbox = [float(v) for v in placed.total_bounds] if len(placed) else [-180.0, -90.0, 180.0, 90.0]
    times = sorted(t for t in (_when(s.datetime) for s in m.scenes) if t is not None)
    interval: list[datetime | None] = [times[0], times[-1]] if times else [None, None]
    bands = [{"name": b.name, **({"common_name": b.common_name} if b.common_name in EO_COMMON_NAMES else {})}
             for b in m.band_specs]
    classes = [{"value": c.index, "name": c.name, "description": f"{c.name} (label value {c.value})",
                "color_hint": c.color.lstrip("#").upper()} for c in m.classes]
    summaries = {"eo:bands": bands, **({"classification:classes": classes} if classes else {})}
    counts = {s: int((index["split"] == s).sum()) for s in split_names(ds)}
    collection = pystac.Collection(
        id=ds.ref, title=f"{m.name} version {m.version[:12]}",
        description=(f"eoengine dataset {ds.ref}: {len(index)} chips of {m.patch_size} x {m.patch_size} pixels, "
                     f"{len(m.channels)} channels ({', '.join(m.channels)}), {len(m.classes)} classes; "
                     + ", ".join(f"{n} {s}" for s, n in counts.items())),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]),
                             pystac.TemporalExtent([interval])),
        license=str((m.model_extra or {}).get("license") or "other"),
        stac_extensions=[EO_EXTENSION, *([CLASSIFICATION_EXTENSION] if classes else [])],
        summaries=pystac.Summaries(summaries),
        extra_fields={"eoengine:version": m.version, "eoengine:format": m.format, "eoengine:created": m.created,
                      "eoengine:patch_size": m.patch_size, "eoengine:channels": list(m.channels),
                      "eoengine:splits": {s: {"chips": n} for s, n in counts.items()}},
    )
    collection.set_self_href(self_href)
    for key, name, media, role, title in (
            ("manifest", MANIFEST, pystac.MediaType.JSON, "metadata", "Dataset manifest"),
            ("chips", INDEX, "application/vnd.apache.parquet", "metadata", "Chip index (GeoParquet)"),
            ("data", ARRAYS, "application/vnd+zarr; version=3", "data", "Chip arrays (Zarr v3)")):
        collection.add_asset(key, pystac.Asset(urljoin(files, name), title=title, media_type=media, roles=[role]))
    return collection.to_dict(include_self_link=True, transform_hrefs=False)
