"""A project's prediction maps: listed from the index, described from the COG itself, and shown as XYZ tiles.

A map's description is read from its file (the artefacts are the truth): a class map (one
with a colour table or eoengine's class tags) lists its codes with names (the
``EOENGINE_CLASS_VALUES`` tag) and colours (the colour table; for a map GDAL could give none,
as a signed one, its model package's class colours); any other map holds values, shown
through a colour ramp over each band's 2nd-98th percentile. Tiles are rendered by
:mod:`eoengine.platform.tiles` from the COG in place (its overviews serve the coarse zooms);
one outside the map is a transparent PNG.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from eoengine.errors import EOError, Invalid
from eoengine.models.meta import PackageMeta
from eoengine.platform.browse import ROW_ID, artifacts_of, inside, one_artifact, project_folder
from eoengine.platform.db.models import Artifact
from eoengine.platform.deps import DbSession, Reader
from eoengine.platform.schemas import MapClass, MapOut
from eoengine.platform.tiles import (
    BandRef,
    blank,
    check_tile,
    class_png,
    overview,
    percentile_range,
    ramp_png,
    read_tile,
)
from eoengine.raster.footprint import footprint_wgs84

router = APIRouter(prefix="/projects/{slug}/maps", tags=["maps"])
MAP_FIX = "list the project's maps (GET /api/v1/projects/SLUG/maps)"
TILE_HEADERS = {"Cache-Control": "private, max-age=300"}
_MODEL_TAG = re.compile(r"\((?P<path>.+)\)\s*$")


def _hex(rgb: tuple[int, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3])


def _package_colours(model_tag: str) -> dict[str, str]:
    """Class name → colour from the model package the ``EOENGINE_MODEL`` tag names, when it is on this machine."""
    found = _MODEL_TAG.search(model_tag)
    try:
        meta = PackageMeta.read(Path(found["path"])) if found else None
    except EOError:
        meta = None
    return {c.name: c.color for c in meta.classes} if meta else {}


def _named(text: str) -> dict[int, str]:
    """Code → class name from eoengine's class tag (nothing when it is not that tag's JSON of integer codes)."""
    try:
        return {int(k): str(v) for k, v in json.loads(text).items()}
    except (ValueError, AttributeError):
        return {}


def _classes(ds: Any, tags: dict[str, str]) -> list[MapClass]:
    """The codes, names and colours of a class map (empty for a map of values)."""
    try:
        table = ds.colormap(1)
    except ValueError:  # no colour table
        table = {}
    named = _named(tags.get("EOENGINE_CLASS_VALUES", "{}"))
    if not named:  # GDAL fills the entries it was not given with black: those are no classes
        return [MapClass(code=code, name=str(code), color=_hex(rgba)) for code, rgba in sorted(table.items())
                if rgba[3] > 0 and rgba[:3] != (0, 0, 0) and code != ds.nodata]
    colours = {} if table else _package_colours(tags.get("EOENGINE_MODEL", ""))
    return [MapClass(code=code, name=name, color=_hex(table[code]) if code in table else colours.get(name, "#808080"))
            for code, name in sorted(named.items())]


@lru_cache(maxsize=128)
def _describe(path: str, stamp: tuple[int, int]) -> dict[str, Any]:
    """What a map file says of itself (cached per file version)."""
    import rasterio
    from rasterio.errors import RasterioIOError
    from shapely.geometry import shape

    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
            classes = _classes(ds, tags)
            info: dict[str, Any] = {
                "crs": ds.crs.to_string() if ds.crs else "", "width": ds.width, "height": ds.height,
                "dtype": ds.dtypes[0], "bands": [d or f"b{i + 1}" for i, d in enumerate(ds.descriptions)],
                "tags": tags, "classes": classes, "kind": "classes" if classes else "values"}
    except RasterioIOError as exc:
        raise EOError(f"cannot read the map {Path(path).name}: {str(exc).splitlines()[0]}",
                      "run its prediction again") from None
    footprint = footprint_wgs84(path)
    info |= {"footprint": footprint, "bbox": list(shape(footprint).bounds)}
    if info["kind"] == "values":
        bands = [BandRef(path, i + 1) for i in range(len(info["bands"]))]
        info["ranges"] = [list(percentile_range(v)) for v in overview(bands, tuple(info["bbox"]))]
    else:
        info["ranges"] = []
    return info


def describe_map(path: Path) -> dict[str, Any]:
    """A map file's CRS, size, bands, classes (or value ranges), footprint and tags.

    Args:
        path: The map (a COG).

    Returns:
        The fields of :class:`~eoengine.platform.schemas.MapOut` the file decides.

    Raises:
        EOError: The file cannot be read or has no CRS.

    """
    return _describe(str(path), BandRef(str(path)).stamp())


def map_file(request: Request, access: Any, session: Any, map_id: int) -> tuple[Artifact, Path]:
    """A project map's row and its file.

    Args:
        request: The request (for the project folder).
        access: The caller's access to the project.
        session: The request's session.
        map_id: The map's artefact id.

    Returns:
        (row, resolved file path).

    Raises:
        NotFound: No such map in the project, or its file is not there.

    """
    found = one_artifact(session, access.project, "map", MAP_FIX, artifact_id=map_id)
    return found, inside(project_folder(request, access.project), found.path, "map")


def _out(a: Artifact, slug: str, info: dict[str, Any]) -> MapOut:
    return MapOut(id=a.id, name=a.name, path=a.path, created_at=a.created_at, job_id=a.job_id, meta=a.meta,
                  tiles=f"/projects/{slug}/maps/{a.id}/tiles/{{z}}/{{x}}/{{y}}.png", **info)


@router.get("", response_model=list[MapOut])
def list_maps(access: Reader, request: Request, session: DbSession) -> list[MapOut]:
    """The project's maps, newest first (a map whose file is gone or unreadable is left out)."""
    folder, maps = project_folder(request, access.project), []
    for a in artifacts_of(session, access.project, "map"):
        try:
            maps.append(_out(a, access.project.slug, describe_map(inside(folder, a.path, "map"))))
        except EOError:
            continue
    return maps


@router.get("/{map_id}", response_model=MapOut)
def get_map(map_id: ROW_ID, access: Reader, request: Request, session: DbSession) -> MapOut:
    """One map: its file's description, footprint and tile URL."""
    found, path = map_file(request, access, session, map_id)
    return _out(found, access.project.slug, describe_map(path))


@router.get("/{map_id}/tiles/{z}/{x}/{y}.png", responses={200: {"content": {"image/png": {}}}},
            response_class=Response)
def map_tile(map_id: ROW_ID, z: int, x: int, y: int, access: Reader, request: Request, session: DbSession,
             band: Annotated[int, Query(ge=1, description="The band of a map of values")] = 1) -> Response:
    """A 256 px tile of a map: classes in their colours, values through a colour ramp; transparent outside."""
    check_tile(z, x, y)
    _, path = map_file(request, access, session, map_id)
    info = describe_map(path)
    if band > len(info["bands"]):
        raise Invalid(f"the map has {len(info['bands'])} band(s), not {band}", f"use band=1..{len(info['bands'])}")
    categorical = info["kind"] == "classes"
    tile = read_tile([BandRef(str(path), band)], z, x, y, categorical=categorical)
    if tile is None:
        body = blank()
    elif categorical:
        body = class_png(tile[0], {c.code: c.color for c in info["classes"]})
    else:
        lo, hi = info["ranges"][band - 1]
        body = ramp_png(tile[0], (lo, hi))
    return Response(body, media_type="image/png", headers=TILE_HEADERS)
