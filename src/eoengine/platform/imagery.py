"""A project's imagery as a static STAC catalog: the scenes of its config and its uploaded rasters.

The catalog is made with the scan code of ``eoengine source scan`` (one Item per scene date,
an asset per band file, footprints, projection and eo extensions) and written under the
project's output folder (``out/catalog``); the config adds what it knows of each band (its
name, common name, nodata, scale and offset: the eo and raster extensions), so a search or a
render recipe finds bands by common name. It is rebuilt when the config or any of its files
changes (their sizes and modification times make its signature) and otherwise read back
from disk once per server process.

Three collections: ``scenes`` (the config's listed scenes whose files are local; scenes given
as STAC Items or URLs are left out: their assets may be anywhere), ``fetched`` (the stacks
that fetch jobs wrote, with the STAC properties of the items they were fetched from: their
datetime, cloud cover, platform...) and ``uploads`` (imagery uploads, dated by their upload).
Item ids are the scene ids (``<id>-t<i>`` for each date of a time series), the fetched items'
ids, and the uploads' names without their suffix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eoengine.config.schema import BandFiles, BandSpec, ProjectConfig
from eoengine.errors import EOError, NotFound
from eoengine.jobs.specs import PROJECT_CATALOG
from eoengine.platform.db.models import Artifact
from eoengine.platform.tiles import BandRef
from eoengine.sourcing.catalog import CatalogIndex
from eoengine.sourcing.scan import EO_COMMON_NAMES, make_item, write_collection

CATALOG = PROJECT_CATALOG
SIGNATURE = "signature.txt"
RASTER_EXTENSION = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
_lock = threading.Lock()
_loaded: dict[str, tuple[str, CatalogIndex]] = {}


@dataclass(frozen=True)
class Source:
    """One item to make: its id, band files (file, band name or None for a multi-band file), bands, date.

    ``when`` is its date when known (the config's); otherwise the scan finds one in the files'
    tags or names, else takes ``fallback``. ``properties`` are STAC properties kept from where
    the item came from (a fetched item's), over the scan's.
    """

    item_id: str
    members: list[tuple[Path, str | None]]
    bands: list[BandSpec]
    stack_indexes: list[int] | None = None
    when: dt.datetime | None = None
    fallback: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    properties: dict[str, Any] = field(default_factory=dict)


def _date(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _entry(cfg: ProjectConfig, item_id: str, entry: BandFiles) -> Source | None:
    bands = cfg.imagery.bands if cfg.imagery else []
    if entry.files and not any("://" in p for p in entry.files.values()):
        return Source(item_id, [(cfg.resolve(p), name) for name, p in entry.files.items()], bands,
                      when=_date(entry.datetime))
    if entry.stack and "://" not in entry.stack:
        return Source(item_id, [(cfg.resolve(entry.stack), None)], bands, entry.stack_indexes, _date(entry.datetime))
    return None


def scene_sources(cfg: ProjectConfig) -> list[Source]:
    """The items of the config's listed scenes whose files are local (one per date).

    Args:
        cfg: The project's config.

    Returns:
        One source per scene date (scenes given as STAC Items or URLs are left out).

    """
    out = []
    for scene in cfg.imagery.scenes if cfg.imagery else []:
        for i, entry in enumerate(scene.timesteps or [scene]):
            date = entry.datetime or scene.datetime
            item_id = scene.id if scene.timesteps is None else f"{scene.id}-t{i}"
            found = _entry(cfg, item_id, entry.model_copy(update={"datetime": date}))
            if found is not None:
                out.append(found)
    return out


def upload_sources(folder: Path, uploads: list[Artifact]) -> list[Source]:
    """The items of the imagery uploads whose files are there (dated by their upload when nothing else dates them).

    Args:
        folder: The project folder.
        uploads: The project's upload artefacts.

    Returns:
        One source per imagery upload.

    """
    out, seen = [], set()
    for a in uploads:
        path = folder / a.path
        if a.kind != "upload" or a.meta.get("kind") != "imagery" or not path.is_file():
            continue
        item_id = Path(a.name).stem if Path(a.name).stem not in seen else a.name
        seen.add(item_id)
        out.append(Source(item_id, [(path, None)], [], fallback=a.created_at))
    return out


def fetched_sources(folder: Path, scenes: list[Artifact]) -> list[Source]:
    """The items of the stacks fetch jobs wrote whose files are there, with the fetched items' STAC properties.

    Args:
        folder: The project folder.
        scenes: The project's ``scene`` artefacts (newest first: a stack fetched again for another
            area or bands names the same item, and the newest wins).

    Returns:
        One source per fetched item.

    """
    out, seen = [], set()
    for a in scenes:
        path = folder / a.path
        if a.kind != "scene" or a.name in seen or not path.is_file():
            continue
        seen.add(a.name)
        props = dict(a.meta.get("properties") or {})
        out.append(Source(a.name, [(path, None)], [], when=_date(props.pop("datetime", None)), fallback=a.created_at,
                          properties=props))
    return out


def _describe_bands(asset: Any, specs: list[BandSpec], indexes: list[int]) -> None:
    """Give an asset's bands (1-based ``indexes``) the config's names, common names, nodata and scaling."""
    eo = asset.extra_fields["eo:bands"]
    raster: list[dict[str, Any]] = [{} for _ in eo]
    for spec, index in zip(specs, indexes, strict=False):
        band: dict[str, Any] = {"name": spec.name}
        if spec.common_name in EO_COMMON_NAMES:
            band["common_name"] = spec.common_name
        eo[index - 1] = band
        raster[index - 1] = {k: v for k, v in (("nodata", spec.nodata), ("scale", spec.scale), ("offset", spec.offset))
                             if v is not None}
    asset.extra_fields["raster:bands"] = raster


def make_scene_item(source: Source) -> Any:
    """One STAC Item of a source (the scan's item, its bands described by the config).

    Args:
        source: The item to make.

    Returns:
        The ``pystac.Item``.

    Raises:
        EOError: A file cannot be read or has no CRS.

    """
    item = make_item(source.item_id, source.members, fixed_date=source.when or source.fallback)
    if source.when is not None:
        item.datetime = source.when
    item.properties.update(source.properties)
    if source.bands:
        by_name = {b.name: b for b in source.bands}
        for key, asset in item.assets.items():
            if key == "data":
                _describe_bands(asset, source.bands, source.stack_indexes or list(range(1, len(source.bands) + 1)))
            elif key in by_name:
                _describe_bands(asset, [by_name[key]], [1])
        item.stac_extensions.append(RASTER_EXTENSION)
    return item


def signature(cfg_text: str, sources: list[Source]) -> str:
    """What the catalog is made of: the config text, the items and each file's path, size and modification time.

    Args:
        cfg_text: The config's text.
        sources: The items.

    Returns:
        A SHA-256 hex digest (a change of any of them changes it).

    """
    files = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for s in sources for p, _ in s.members if p.exists()]
    parts = [cfg_text, [[s.item_id, str(s.when), s.properties] for s in sources], files]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _build(root: Path, groups: dict[str, list[Source]], sig: str) -> None:
    """Write the catalog beside ``root``, then swap it in (a reader never sees half of one).

    A scene whose files cannot be read is left out (until they change); when none can be, the
    first one's error is raised.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{CATALOG}-", dir=root.parent))
    failed: list[EOError] = []
    try:
        for collection, sources in groups.items():
            items = []
            for source in sources:
                try:
                    items.append(make_scene_item(source))
                except EOError as exc:
                    failed.append(exc)
            if items:
                write_collection(items, staging / collection, collection, f"The project's {collection}")
        if failed and not any(staging.glob("*/collection.json")):
            raise failed[0]
        (staging / SIGNATURE).write_text(sig)
        old = root.with_name(f".{CATALOG}-old")
        shutil.rmtree(old, ignore_errors=True)
        if root.exists():
            root.rename(old)
        staging.rename(root)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def project_catalog(cfg: ProjectConfig, cfg_text: str, folder: Path, artifacts: list[Artifact]) -> CatalogIndex:
    """The project's imagery catalog, rebuilt when its config, its fetched scenes, uploads or files changed.

    Args:
        cfg: The project's config.
        cfg_text: Its text (part of the signature).
        folder: The project folder.
        artifacts: The project's ``scene`` and ``upload`` artefacts (newest first).

    Returns:
        The catalog, ready to search.

    Raises:
        NotFound: The project has no local imagery.
        EOError: A scene's file cannot be read.

    """
    groups = {"scenes": scene_sources(cfg), "fetched": fetched_sources(folder, artifacts),
              "uploads": upload_sources(folder, artifacts)}
    if not any(groups.values()):
        raise NotFound("the project has no local imagery",
                       "list scenes with local files in its config, run a fetch job, or upload imagery "
                       "(POST .../uploads kind=imagery)")
    sig = signature(cfg_text, [s for sources in groups.values() for s in sources])
    root = cfg.output_path / CATALOG
    with _lock:
        cached = _loaded.get(str(root))
        if cached is not None and cached[0] == sig:
            return cached[1]
        stored = (root / SIGNATURE).read_text() if (root / SIGNATURE).is_file() else None
        if stored != sig:
            _build(root, groups, sig)
        index = CatalogIndex(root)
        _loaded[str(root)] = (sig, index)
        return index


def item_bands(item: dict[str, Any]) -> dict[str, BandRef]:
    """The bands of an item by common name and by band name, each a file and band index with nodata and scaling.

    An item of one file also names its bands by position: ``b1``, ``b2``, ...

    Args:
        item: A STAC Item (as a dict) of the project catalog.

    Returns:
        Name → band; the first asset band with that common name (or name) wins.

    """
    out: dict[str, BandRef] = {}
    assets = list(item.get("assets", {}).values())
    for asset in assets:
        raster = asset.get("raster:bands") or []
        for i, band in enumerate(asset.get("eo:bands") or []):
            extra = raster[i] if i < len(raster) else {}
            ref = BandRef(asset["href"], i + 1, extra.get("nodata"), extra.get("scale", 1.0), extra.get("offset", 0.0))
            for name in (band.get("common_name"), band.get("name"), f"b{i + 1}" if len(assets) == 1 else None):
                if name:
                    out.setdefault(str(name), ref)
    return out
