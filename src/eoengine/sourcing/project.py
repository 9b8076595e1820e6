"""Scenes for a project whose config names a search (``imagery.source``) instead of files.

The search runs against the catalog or STAC API; each item found has the configured bands
(matched by name or common name) fetched, clipped to the area, into the project's imagery
cache as one stack per item, and becomes a scene of the config. Fetching is cached, so
building the dataset again neither downloads again nor changes its version.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from eoengine.config.schema import BuildConfig, SceneSpec, changed
from eoengine.errors import Invalid, NotFound


def with_sourced_scenes(cfg: BuildConfig) -> BuildConfig:
    """A copy of ``cfg`` whose scenes include those its ``imagery.source`` finds (fetched and cached).

    Args:
        cfg: A config that can build a dataset.

    Returns:
        ``cfg`` itself without a source, else a validated copy with the found scenes added.

    Raises:
        NotFound: the search finds nothing.
        Invalid: the scenes found do not fit the config (a scene ``imagery.scenes`` lists
            already, another number of dates).
        EOError: a fetch fails.

    """
    src = cfg.imagery.source
    if src is None:
        return cfg
    from eoengine.sourcing.fetch import fetch
    from eoengine.sourcing.search import aoi_geometry, search

    query = src.search_query(intersects=aoi_geometry(str(cfg.resolve(src.aoi)))) if src.aoi else src.search_query()
    catalog = src.catalog if "://" in src.catalog else str(cfg.resolve(src.catalog))
    found = search(catalog, query)
    if not len(found):
        raise NotFound(f"imagery.source found no scenes in {src.catalog}", "widen the area, the datetime or max_cloud")
    area = query.area()
    cache = cfg.resolve(src.cache) if src.cache else cfg.output_path / "imagery"
    bands = [b.common_name or b.name for b in cfg.imagery.bands]
    results = fetch(list(found), bands, Path(cache), area, storage=src.storage)
    scenes = list(cfg.imagery.scenes)
    for item, got in zip(found, results, strict=True):
        if got.path is not None:
            when = item.datetime.isoformat() if item.datetime else None
            scenes.append(SceneSpec(id=item.id, datetime=when, stack=str(got.path)))
    try:
        return changed(cfg, imagery=changed(cfg.imagery, scenes=scenes), base_dir=cfg.base_dir)
    except ValidationError as err:  # e.g. a scene found that imagery.scenes lists already
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors(include_url=False))
        raise Invalid(f"the scenes imagery.source found do not fit the config: {problems}",
                      "list each scene once (drop from imagery.scenes those the search finds), "
                      "give all scenes the same number of dates, or narrow imagery.source") from None
