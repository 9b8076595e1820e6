"""What a change set's snapshot builds: a ``change_detection`` dataset of its two dates, change / no change.

The library's ``change_detection`` task is a segmentation head over a scene of exactly two
``timesteps`` (the dates' bands stacked, the first date's grid). Every feature of a change set
has a ``label`` of ``change`` or ``no-change`` (derived from ``from`` != ``to`` when those are
given, :func:`eoengine.platform.annotation.checks.check_label`), but not every one has a from- and
a to-class, so the dataset's classes are binary: ``no-change`` (0, the background inside the
accepted tasks' completeness areas) and ``change`` (1); 255 outside them stays unknown.

The scene's two dates are the set's two items (in date order), each given as the project's
config gives it when it is one of the config's scenes (its paths as written, so a download of
the snapshot keeps them relative), else from its catalog assets: one file per band named as the
config's bands, or one file of as many bands as the config has (an upload, a fetched stack),
relative to the project folder when it lies inside it. Two items that do not overlap, or whose
bands are not the config's, cannot make such a scene: :class:`~eoengine.errors.Invalid` says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shapely.geometry import box

from eoengine.errors import Conflict, Invalid
from eoengine.platform.annotation.checks import CHANGE_LABELS
from eoengine.platform.annotation.grid import item_grid, reproject
from eoengine.platform.db.models import AnnotationSet

CHANGE, NO_CHANGE = CHANGE_LABELS
CLASSES = [{"value": 0, "name": NO_CHANGE, "color": "#bdbdbd"}, {"value": 1, "name": CHANGE, "color": "#e31a1c"}]
"""The classes of a change set's dataset: no-change is its background."""
_SOURCE_KEYS = ("files", "stack", "stack_indexes", "stac_item")


def _config_entries(mapping: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The band sources of the config's scenes by catalog item id (``<id>-t<i>`` for each date of a time series)."""
    out = {}
    for scene in (mapping.get("imagery") or {}).get("scenes") or []:
        dates = scene.get("timesteps") or [scene]
        for i, entry in enumerate(dates):
            item_id = scene["id"] if not scene.get("timesteps") else f"{scene['id']}-t{i}"
            out[item_id] = {k: entry[k] for k in _SOURCE_KEYS if entry.get(k) is not None}
    return out


def _local(href: str, folder: Path) -> str:
    """An asset's file relative to the project folder (a file elsewhere, or a URL, as it is)."""
    if "://" in href:
        return href
    try:
        return Path(href).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return href


def _asset_entry(item: dict[str, Any], bands: list[str], folder: Path) -> dict[str, Any]:
    """An item's band sources from its catalog assets: a file per config band, or one file of all the bands.

    Raises:
        Invalid: Its assets are neither.

    """
    assets = {k: a for k, a in (item.get("assets") or {}).items() if a.get("eo:bands") or a.get("proj:shape")}
    if all(b in assets for b in bands):
        return {"files": {b: _local(assets[b]["href"], folder) for b in bands}}
    counts = [len(a.get("eo:bands") or []) for a in assets.values()]
    if len(assets) == 1 and counts == [len(bands)]:
        return {"stack": _local(next(iter(assets.values()))["href"], folder)}
    layout = ", ".join(f"{k} ({n} band{'s' * (n != 1)})" for k, n in zip(assets, counts, strict=True)) or "none"
    raise Invalid(f"item {item['id']!r} does not have the project's band layout: its assets are {layout}, "
                  f"the config's bands are {', '.join(bands)}",
                  "pair dates with the same bands: one file per band named as the config's bands, "
                  f"or one file of {len(bands)} bands in the config's order")


def _check_overlap(first: dict[str, Any], second: dict[str, Any]) -> None:
    """Refuse two items whose footprints (their grids' bounds) share no area."""
    a, b = item_grid(first), item_grid(second)
    shared = box(*a.bounds).intersection(reproject(box(*b.bounds), b.crs_wkt, a.crs_wkt))
    if shared.is_empty or shared.area == 0:
        raise Invalid(f"items {first['id']!r} and {second['id']!r} of the change set do not overlap",
                      "make the change set of two dates of the same place")


def change_scene(aset: AnnotationSet, items: dict[str, dict[str, Any]], mapping: dict[str, Any],
                 folder: Path) -> dict[str, Any]:
    """The config scene of a change set: its two items as the two ``timesteps`` of one scene.

    Args:
        aset: The change set (its items in date order).
        items: The project catalog's items (STAC dicts) by id.
        mapping: The project's config (its bands and scenes, paths as written).
        folder: The project folder.

    Returns:
        ``{id, timesteps: [{datetime, files|stack...}, ...]}``, paths relative to the project folder.

    Raises:
        Invalid: The set has not exactly two items, they do not overlap, or one lacks the config's bands.
        Conflict: An item is no longer in the project's imagery.

    """
    if len(aset.items) != 2:
        raise Invalid(f"change set {aset.name!r} has {len(aset.items)} dates; a change_detection dataset needs exactly 2",
                      "make a change set of two items (the dates before and after)")
    gone = [i for i in aset.items if i not in items]
    if gone:
        raise Conflict(f"item(s) {', '.join(gone)} of set {aset.id} are no longer in the project's imagery",
                       "restore the scenes in the config (or the uploads), or make a new set")
    first, second = (items[i] for i in aset.items)
    _check_overlap(first, second)
    bands = [b["name"] for b in (mapping.get("imagery") or {}).get("bands") or []]
    known = _config_entries(mapping)
    steps = []
    for item in (first, second):
        entry = known.get(item["id"]) or _asset_entry(item, bands, folder)
        steps.append({"datetime": item["properties"].get("datetime"), **entry})
    return {"id": "-".join(aset.items), "timesteps": steps}


def change_config(aset: AnnotationSet, items: dict[str, dict[str, Any]], mapping: dict[str, Any],
                  folder: Path) -> dict[str, Any]:
    """The project's config made a change set's: task ``change_detection``, its two-date scene, binary classes.

    Args:
        aset: The change set.
        items: The project catalog's items by id.
        mapping: The project's config.
        folder: The project folder.

    Returns:
        The config (the project's bands, resampling and resolution; only the change scene).

    Raises:
        Invalid: As :func:`change_scene`.
        Conflict: As :func:`change_scene`.

    """
    imagery = {k: v for k, v in (mapping.get("imagery") or {}).items() if k != "source"}
    imagery["scenes"] = [change_scene(aset, items, mapping, folder)]
    return mapping | {"imagery": imagery, "classes": CLASSES, "task": {"type": "change_detection"}}
