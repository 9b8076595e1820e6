"""A project's imagery: its STAC API (``eoengine source serve``'s, mounted per project) and tiles by render recipe.

``/projects/{slug}/stac/…`` is the STAC API app of :mod:`eoengine.serving.stac_api` over the
project's catalog (:mod:`eoengine.platform.imagery`), behind the platform's sign-in and the
project's ``read`` role: :class:`ProjectStac` checks the caller, then hands the request to
that app (one per project, made again when the catalog is rebuilt), whose links name the
mounted URLs. ``/projects/{slug}/imagery`` lists the catalog's items;
``/imagery/{item}/tiles/{z}/{x}/{y}.png?recipe=…`` renders one:

- ``true-color``: red, green, blue; ``false-color``: nir, red, green (bands found by common name);
- ``index:NAME``: any Awesome Spectral Indices (spyndex) index computed from the bands by common
  name, through a red-yellow-green ramp;
- ``bands:A,B,C``: any three bands (or one, in grey) by name or common name (an upload's bands
  are named ``b1``, ``b2``… unless the file names them).

Each band (or the index) is stretched between its 2nd and 98th percentile over the whole item
(computed once per file version, :mod:`eoengine.platform.tiles`), so neighbouring tiles match.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from eoengine.errors import EOError, Invalid, NotFound
from eoengine.features.indices import common_name_to_symbol, compute_indices, required_symbols
from eoengine.platform.browse import imagery_artifacts, project_config, project_folder
from eoengine.platform.db.models import Project
from eoengine.platform.deps import DbSession, Reader, current_caller, find_project, platform_of
from eoengine.platform.imagery import item_bands, project_catalog
from eoengine.platform.projects import CONFIG
from eoengine.platform.schemas import ImageryItemOut
from eoengine.platform.tiles import (
    INDEX_RAMP,
    BandRef,
    Range,
    blank,
    check_tile,
    overview,
    percentile_range,
    ramp_png,
    read_tile,
    rgb_png,
)
from eoengine.serving.errors import error_response, status_of
from eoengine.serving.stac_api import create_stac_app
from eoengine.sourcing.catalog import CatalogIndex

router = APIRouter(prefix="/projects/{slug}/imagery", tags=["imagery"])
COLOURS = {"true-color": ("red", "green", "blue"), "false-color": ("nir", "red", "green")}
LISTED_INDICES = ("NDVI", "NDWI", "NDBI", "NBR", "SAVI", "EVI")
"""Indices an item's listing offers when its bands allow them (any other works by name)."""
RECIPE_FIX = ("use recipe=true-color, false-color, index:NAME (any spyndex index, e.g. index:NDVI) "
              "or bands:A,B,C (three band names, or one)")
TILE_HEADERS = {"Cache-Control": "private, max-age=300"}


@dataclass(frozen=True)
class Recipe:
    """How to render: the bands by common name, and the index they make (None: the bands as red, green, blue)."""

    bands: tuple[str, ...]
    index: str | None = None


def parse_recipe(text: str) -> Recipe:
    """A render recipe from its name.

    Args:
        text: ``true-color``, ``false-color``, ``index:NAME`` or ``bands:A,B,C``.

    Returns:
        The recipe.

    Raises:
        Invalid: Another name, an index spyndex does not know (with the closest names), or not one or three bands.

    """
    if text in COLOURS:
        return Recipe(COLOURS[text])
    if text.startswith("index:"):
        try:
            symbols, _ = required_symbols(text[6:])
        except EOError as exc:
            raise Invalid(exc.problem, f"{exc.fix}; {RECIPE_FIX}") from None
        by_symbol = {s: c for c, s in common_name_to_symbol().items()}
        return Recipe(tuple(by_symbol.get(s, s) for s in symbols), text[6:])
    if text.startswith("bands:"):
        names = tuple(b.strip() for b in text[6:].split(","))
        if len(names) not in (1, 3) or not all(names):
            raise Invalid(f"recipe {text!r} names {len(names)} band(s)", "name three bands (or one), e.g. bands:b4,b3,b2")
        return Recipe(names * 3 if len(names) == 1 else names)
    raise Invalid(f"unknown recipe {text!r}", RECIPE_FIX)


def catalog_of(request: Request, project: Project, session: Session) -> CatalogIndex:
    """The project's imagery catalog, built or rebuilt as needed.

    Args:
        request: The request (for the server's settings).
        project: The project.
        session: A database session (its transaction is ended before the catalog is read).

    Returns:
        The catalog.

    Raises:
        NotFound: The project has no local imagery.
        EOError: Its config no longer validates, or none of its scenes can be read.

    """
    artifacts = imagery_artifacts(session, project)
    session.commit()
    folder = project_folder(request, project)
    return project_catalog(project_config(request, project), (folder / CONFIG).read_text(), folder, artifacts)


def _item(index: CatalogIndex, item_id: str) -> dict[str, Any]:
    found = next((r.item for r in index.records if r.item["id"] == item_id), None)
    if found is None:
        raise NotFound(f"no scene {item_id!r} in the project's imagery", "list it: GET /api/v1/projects/SLUG/imagery")
    return found


def _recipes(bands: dict[str, BandRef]) -> list[str]:
    out = [name for name, needs in COLOURS.items() if set(needs) <= set(bands)]
    return out + [f"index:{i}" for i in LISTED_INDICES if set(parse_recipe(f"index:{i}").bands) <= set(bands)]


@router.get("", response_model=list[ImageryItemOut])
def list_imagery(access: Reader, request: Request, session: DbSession) -> list[ImageryItemOut]:
    """The project's scenes and imagery uploads, with the bands and recipes their tiles can use."""
    index = catalog_of(request, access.project, session)
    out = []
    for r in index.records:
        bands = item_bands(r.item)
        out.append(ImageryItemOut(id=r.item["id"], collection=r.collection, datetime=r.item["properties"].get("datetime"),
                                  bbox=r.item["bbox"], bands=sorted(bands), recipes=_recipes(bands),
                                  properties=_kept(r.item["properties"]),
                                  tiles=f"/projects/{access.project.slug}/imagery/{r.item['id']}/tiles/{{z}}/{{x}}/{{y}}.png"))
    return out


def _kept(properties: dict[str, Any]) -> dict[str, Any]:
    """The item's descriptive STAC properties (cloud cover, platform...), without its projection's details."""
    return {k: v for k, v in properties.items() if k != "datetime" and not k.startswith("proj:")}


def _index_of(bands: np.ndarray, recipe: Recipe) -> np.ndarray:
    """The recipe's index (h, w) from its bands (n, h, w), which are named by common name."""
    assert recipe.index is not None
    common: list[str | None] = list(recipe.bands)
    return compute_indices(bands, [recipe.index], list(recipe.bands), common)[0]


@lru_cache(maxsize=512)
def _stretch(bands: tuple[BandRef, ...], bbox: tuple[float, ...], stamps: tuple[tuple[int, int], ...],
             recipe: Recipe) -> list[Range]:
    view = overview(bands, bbox)  # type: ignore[arg-type]
    if recipe.index is None:
        return [percentile_range(v) for v in view]
    return [percentile_range(_index_of(view, recipe))]


def render(item: dict[str, Any], recipe: Recipe, z: int, x: int, y: int) -> bytes:
    """One tile of an item by a recipe.

    Args:
        item: The STAC Item.
        recipe: The recipe.
        z: Zoom level.
        x: Column.
        y: Row.

    Returns:
        The PNG (transparent outside the item or where a band has no data).

    Raises:
        Invalid: The item lacks a band the recipe needs.

    """
    available = item_bands(item)
    missing = [b for b in recipe.bands if b not in available]
    if missing:
        raise Invalid(f"scene {item['id']!r} has no band (by name or common name) {', '.join(dict.fromkeys(missing))}",
                      f"its bands: {', '.join(sorted(available))}; choose a recipe they allow")
    bands = tuple(available[b] for b in recipe.bands)
    ranges = _stretch(bands, tuple(item["bbox"]), tuple(b.stamp() for b in bands), recipe)
    tile = read_tile(bands, z, x, y)
    if tile is None:
        return blank()
    if recipe.index is None:
        return rgb_png(tile, ranges)
    return ramp_png(_index_of(tile, recipe), ranges[0], INDEX_RAMP)


@router.get("/{item}/tiles/{z}/{x}/{y}.png", responses={200: {"content": {"image/png": {}}}}, response_class=Response)
def imagery_tile(item: str, z: int, x: int, y: int, access: Reader, request: Request, session: DbSession,
                 recipe: Annotated[str, Query(description="true-color, false-color, index:NAME or bands:A,B,C")] = "true-color",
                 ) -> Response:
    """A 256 px tile of a scene rendered by a recipe; transparent outside the scene."""
    check_tile(z, x, y)
    chosen = parse_recipe(recipe)
    found = _item(catalog_of(request, access.project, session), item)
    return Response(render(found, chosen, z, x, y), media_type="image/png", headers=TILE_HEADERS)


class ProjectStac:
    """The ASGI app at ``/api/v1/projects/{slug}/stac``: the caller must read the project; then its STAC API answers."""

    def __init__(self) -> None:
        self._apps: dict[str, tuple[CatalogIndex, FastAPI]] = {}

    def _index(self, request: Request, slug: str) -> CatalogIndex:
        with platform_of(request).db.request() as session:
            access = find_project(session, slug, current_caller(request, session), "read")
            return catalog_of(request, access.project, session)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the caller, then hand the request to the project's STAC API app."""
        request = Request(scope, receive)
        slug = scope["path_params"]["slug"]
        try:
            index = await run_in_threadpool(self._index, request, slug)
        except EOError as exc:
            await error_response(status_of(exc), exc.problem, exc.fix or "")(scope, receive, send)
            return
        cached = self._apps.get(slug)
        if cached is None or cached[0] is not index:
            cached = (index, create_stac_app(index, title=f"eoengine imagery of {slug}"))
            self._apps[slug] = cached
        # the STAC app builds its links from the base URL, which Starlette keeps at the outer app's root: make it the mount's
        await cached[1](dict(scope, app_root_path=scope.get("root_path", "")), receive, send)
