"""Map an area: the newest scene a search finds there (or the scenes it chooses), fetched and predicted.

:func:`map_area` is the workflow behind the model server's ``POST /predict/aoi``, and what a
subscription runs: for each date the model takes, the newest scene over the query's area in
that date's time window is found in the catalog (or ``query.ids`` chooses the scenes, one
per date), the model's bands (by common name) are fetched into the cache clipped to the
area, and the dates are predicted together into one map COG. Problems are :class:`BadQuery`
(a query or dates that do not fit the model, or a search the catalog refuses),
:class:`NoImagery` (a ``NotFound``: nothing to map there), ``Unavailable`` (the catalog or a
scene's files cannot be reached), or the :class:`EOError` of the step that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac

from eoengine.config.query import BadQuery, SearchQuery
from eoengine.errors import EOError, NotFound, Unavailable
from eoengine.inference.predict import Predictor

SEARCH_FIX = "datetime is RFC 3339 (an instant or start/end); collections must exist"


class NoImagery(NotFound):
    """No scene in the catalog covers the area and time asked for."""


@dataclass(frozen=True)
class AreaMap:
    """What :func:`map_area` made: the map, and the scenes (catalog items) it was predicted from, in date order."""

    map: Path
    scene_ids: list[str]
    scenes: list[Path]
    datetimes: list[str | None]


def date_windows(datetime: str | None, datetimes: list[str] | None, steps: int) -> list[str | None]:
    """The time windows to take one scene each from: one per date the model takes.

    Args:
        datetime: the one window (for a single-date model), or None for any time.
        datetimes: one window per date, oldest first (for a multi-date model).
        steps: the model's number of dates.

    Returns:
        The windows in date order.

    Raises:
        BadQuery: both are given, or the windows do not match the model's dates.

    """
    if datetime is not None and datetimes is not None:
        raise BadQuery("give datetime or datetimes, not both", "datetime for one date, datetimes for a multi-date model")
    windows: list[str | None] = list(datetimes) if datetimes is not None else [datetime]
    if len(windows) != steps:
        example = ", ".join(f"'{2020 + t}-06-01T00:00:00Z/{2020 + t}-09-01T00:00:00Z'" for t in range(steps))
        raise BadQuery(f"the model takes {steps} date(s); the request gives {len(windows)} time window(s)",
                       f"send 'datetimes' with one interval per date, oldest first, e.g. [{example}]"
                       if steps > 1 else "send one 'datetime'")
    return windows


def search_items(source: str, query: SearchQuery) -> list[pystac.Item]:
    """The items ``source`` finds for ``query``; a search the catalog refuses is a :class:`BadQuery`.

    Args:
        source: the catalog or STAC API (see :func:`eoengine.sourcing.search.search`).
        query: the search.

    Returns:
        The items, sorted and limited as the query asks.

    Raises:
        BadQuery: the catalog refuses the search.
        Unavailable: the catalog cannot be reached.

    """
    from eoengine.sourcing.search import search

    try:
        return list(search(source, query))
    except Unavailable:
        raise
    except EOError as exc:  # the catalog refuses the search
        raise BadQuery(exc.problem, SEARCH_FIX) from None


def _newest(source: str, query: SearchQuery, window: str | None) -> pystac.Item:
    """The newest item over the query's area in ``window``."""
    found = search_items(source, query.search_query(datetime=window, limit=1, sort="datetime", descending=True))
    if not found:
        when = f" in {window}" if window else ""
        raise NoImagery(f"no imagery for that area{when}", "widen the datetime or check the area")
    return found[0]


def _chosen(source: str, query: SearchQuery, steps: int) -> list[pystac.Item]:
    """The items ``query.ids`` names (over its area and in its time), oldest first, one per date of the model."""
    ids = list(dict.fromkeys(query.ids or []))
    found = search_items(source, query.search_query(ids=ids, limit=len(ids), sort="datetime", descending=False))
    missing = [i for i in ids if i not in {item.id for item in found}]
    if missing:
        raise NoImagery(f"no scene {missing} over that area{f' in {query.datetime}' if query.datetime else ''}",
                        "check the ids, the area and the datetime")
    if len(found) != steps:
        raise BadQuery(f"the model takes {steps} date(s); the query chooses {len(found)} scene(s)",
                       "choose one scene per date in ids")
    return found


def _fetched(item: pystac.Item, bands: list[str], cache: Path, area: Any, what: str) -> Path:
    from eoengine.sourcing.fetch import fetch_item

    got = fetch_item(item, bands, cache, area)
    if got.path is None:
        raise NoImagery(f"{what} does not cover that area", "check the area")
    return got.path


def map_area(query: SearchQuery, model: Predictor, source: str, cache: Path, out: Path,
             datetimes: list[str] | None = None,
             slot: Callable[[], AbstractContextManager[Any]] = nullcontext) -> AreaMap:
    """Map the newest scene over ``query``'s area (one per date of the model), or the scenes its ids choose.

    Args:
        query: the area, the time (``datetime``: one window), collections and filters; with ``ids``,
            the scenes to map (one per date of the model, mapped oldest first).
        model: the loaded model (with its engine).
        source: the catalog or STAC API to search (see :func:`eoengine.sourcing.search.search`).
        cache: where fetched scenes are kept (a scene fetched before is not fetched again).
        out: the map COG to write.
        datetimes: for a multi-date model, one time window per date, oldest first (instead of ``datetime``).
        slot: held while the model predicts (a server limits how many maps run at once with it).

    Returns:
        The map and the scenes it was predicted from.

    Raises:
        BadQuery: the query or its dates do not fit the model, or the catalog refuses the search.
        NoImagery: no scene matches, or the one found does not cover the area.
        Unavailable: the catalog or a scene's files cannot be reached.
        EOError: a scene cannot be fetched or read.

    """
    bands = fetch_bands(model)
    area = query.area()
    if query.ids:
        if datetimes is not None:
            raise BadQuery("give ids or datetimes, not both", "ids choose the scenes; datetimes the windows of the newest")
        items = _chosen(source, query, model.spec.timesteps)
        paths = [_fetched(item, bands, cache, area, f"scene {item.id}") for item in items]
    else:
        items, paths = [], []
        for window in date_windows(query.datetime, datetimes, model.spec.timesteps):
            items.append(_newest(source, query, window))
            paths.append(_fetched(items[-1], bands, cache, area, f"the newest scene{f' in {window}' if window else ''}"))
    ids = [item.id for item in items]
    predict_fetched(model, paths, ids, out, slot)
    return AreaMap(Path(out), ids, paths, [item.datetime.isoformat() if item.datetime else None for item in items])


def fetch_bands(model: Predictor) -> list[str]:
    """The bands to fetch of each scene for ``model``: its bands' common names (else names), in its order."""
    return [b.common_name or b.name for b in model.pkg.meta.band_specs]


def fetch_scene(item: pystac.Item, model: Predictor, cache: Path, area: Any) -> Path:
    """Fetch (or recall from ``cache``) the stack of ``model``'s bands of one scene, clipped to ``area``.

    Args:
        item: the scene's catalog item.
        model: the loaded model (its bands are fetched).
        cache: where fetched scenes are kept.
        area: a shapely geometry in lon/lat to clip to.

    Returns:
        The stack's path.

    Raises:
        NoImagery: the scene does not cover the area.
        EOError: a band is missing or unreadable.

    """
    return _fetched(item, fetch_bands(model), cache, area, f"scene {item.id}")


def predict_fetched(model: Predictor, paths: list[Path], ids: list[str], out: Path,
                    slot: Callable[[], AbstractContextManager[Any]] = nullcontext) -> Path:
    """Predict fetched stacks (one per date of the model, oldest first) into the map COG ``out``.

    Args:
        model: the loaded model (with its engine).
        paths: the stacks (from :func:`fetch_scene`).
        ids: the scenes' ids, named in the map's tags and in errors instead of the cache's files.
        out: the map COG to write.
        slot: held while the model predicts.

    Returns:
        ``out``.

    Raises:
        EOError: a stack lacks the model's bands or cannot be read (naming the scene).

    """
    from eoengine.inference.sources import sources_for_package
    from eoengine.raster.scene import SceneReader

    try:
        sources = sources_for_package(model.pkg.meta, [str(p) for p in paths])
    except EOError as exc:  # name the scenes, not the cache's files
        problem = exc.problem
        for path, item_id in zip(paths, ids, strict=True):
            problem = problem.replace(str(path), f"scene {item_id}")
        raise type(exc)(problem, exc.fix) from None
    with slot(), SceneReader(sources, model.pkg.meta.resampling) as reader:
        model.predict(reader, out, None, ids)
    return Path(out)
