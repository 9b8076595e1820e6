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

The annotator controls the rendering with more parameters:

- ``stretch``: ``p2,p98`` (the default: percentiles over the whole item, computed once per file version by
  :mod:`eoengine.platform.tiles`, so neighbouring tiles match), or ``LO,HI`` in the band's physical units; one
  for all bands, or one per band separated by ``;`` (``stretch=0,3000;0,3000;p1,p99``);
- for an index, ``colormap=NAME`` (any rio-tiler colour map, default ``rdylgn``) and ``range=LO,HI`` (its values;
  default: ``stretch``'s, one entry).

``/imagery/{item}/pixel?lon=&lat=`` gives each band's value at a point (the web app's inspector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from eoengine.config.schema import ProjectConfig
from eoengine.errors import EOError, Invalid, NotFound
from eoengine.features.indices import common_name_to_symbol, compute_indices, required_symbols
from eoengine.platform.browse import imagery_artifacts, project_config, project_folder
from eoengine.platform.db.models import Project
from eoengine.platform.deps import DbSession, Reader, current_caller, find_project, platform_of
from eoengine.platform.imagery import item_bands, project_catalog
from eoengine.platform.projects import CONFIG, validate_config
from eoengine.platform.schemas import ImageryItemOut
from eoengine.platform.subscriptions import SUBSCRIPTIONS_DIR
from eoengine.platform.tiles import (
    INDEX_RAMP,
    BandRef,
    Range,
    blank,
    check_tile,
    colormap_lut,
    colormaps,
    overview,
    percentile_range,
    pixel_value,
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


STRETCH_FIX = ("use stretch=pLO,pHI (percentiles of the item, e.g. p2,p98) or LO,HI (values in the band's units, "
               "e.g. 0,3000), one for all bands or one per band separated by ';' (e.g. 0,3000;0,3000;p1,p99)")
RANGE_FIX = "use range=LO,HI with numbers LO < HI in the index's units, e.g. range=-1,1 (only with recipe=index:NAME)"


@dataclass(frozen=True)
class Stretch:
    """A band's stretch to 0..255: between two percentiles of the item (``percent``), or two values in its units."""

    low: float
    high: float
    percent: bool = True


DEFAULT_STRETCH = Stretch(2.0, 98.0)


@dataclass(frozen=True)
class Recipe:
    """How to render: the bands by common name, the index they make (None: the bands as red, green, blue).

    ``stretch`` holds one :class:`Stretch` per band (or one for the index); ``colormap`` colours an index,
    or the one band of a recipe ``bands:NAME`` given a colour map (its bands then hold that band alone).
    """

    bands: tuple[str, ...]
    index: str | None = None
    stretch: tuple[Stretch, ...] = field(default=(DEFAULT_STRETCH,))
    colormap: str = INDEX_RAMP


def _pair(text: str, name: str, fix: str, percent: bool | None = None) -> Stretch:
    """``LO,HI`` or ``pLO,pHI`` as a Stretch; ``percent`` forces the form (False: values only)."""
    parts = [p.strip() for p in text.split(",")]
    marked = [p[:1].lower() == "p" for p in parts]
    if len(parts) != 2 or marked[0] != marked[1] or (percent is False and marked[0]):
        raise Invalid(f"{name}={text!r} is not a pair LO,HI", fix)
    try:
        low, high = (float(p[1:] if m else p) for p, m in zip(parts, marked, strict=True))
    except ValueError:
        raise Invalid(f"{name}={text!r}: {parts[0]!r} or {parts[1]!r} is not a number", fix) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise Invalid(f"{name}={text!r}: needs finite numbers with LO < HI", fix)
    if marked[0] and not 0 <= low < high <= 100:
        raise Invalid(f"{name}={text!r}: percentiles must lie in 0..100", fix)
    return Stretch(low, high, marked[0])


def parse_stretch(text: str, bands: int) -> tuple[Stretch, ...]:
    """The ``stretch`` parameter: one entry for all bands or one per band.

    Args:
        text: ``pLO,pHI`` or ``LO,HI``, or such entries separated by ``;``.
        bands: How many bands the recipe shows (1 for an index).

    Returns:
        One Stretch per band.

    Raises:
        Invalid: A malformed entry, or a count neither 1 nor ``bands``.

    """
    entries = [_pair(e, "stretch", STRETCH_FIX) for e in text.split(";")]
    if len(entries) not in (1, bands):
        raise Invalid(f"stretch={text!r} has {len(entries)} entries for {bands} band(s)",
                      f"give one entry for all bands or {bands}; " + STRETCH_FIX)
    return tuple(entries * bands if len(entries) == 1 else entries)


def _named(text: str) -> Recipe:
    """The recipe's bands and index from its name (see :func:`parse_recipe`)."""
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


def parse_recipe(text: str, stretch: str | None = None, colormap: str | None = None,
                 value_range: str | None = None) -> Recipe:
    """A render recipe from its name and parameters.

    Args:
        text: ``true-color``, ``false-color``, ``index:NAME`` or ``bands:A,B,C``.
        stretch: The ``stretch`` parameter (default ``p2,p98``).
        colormap: An index's colour map (default ``rdylgn``), or one band's (``bands:NAME``; without: grey).
        value_range: An index's ``range`` (``LO,HI``; default: its stretch).

    Returns:
        The recipe.

    Raises:
        Invalid: Another name, an index spyndex does not know (with the closest names), not one or three bands,
            a bad stretch, colour map or range, a colour map on three bands, a range without an index, or both
            range and stretch.

    """
    recipe = _named(text)
    single = recipe.index is None and text.startswith("bands:") and len(set(recipe.bands)) == 1
    if recipe.index is None and not (single and colormap is not None):
        if colormap is not None or value_range is not None:
            name = "colormap" if colormap is not None else "range"
            raise Invalid(f"{name} applies to an index{' or one band' if name == 'colormap' else ''}, not to {text!r}",
                          "use it with recipe=index:NAME" + (" or one band (bands:NAME)" if name == "colormap" else "")
                          + ", or set the bands' stretch=LO,HI instead")
        return Recipe(recipe.bands, stretch=parse_stretch(stretch, 3) if stretch else (DEFAULT_STRETCH,) * 3)
    if single and value_range is not None:
        raise Invalid(f"range applies to an index, not to the band of {text!r}",
                      "stretch one band with stretch=LO,HI (its units) or stretch=pLO,pHI")
    if value_range is not None and stretch is not None:
        raise Invalid("both range and stretch given for an index", "give one: range=LO,HI or stretch=pLO,pHI")
    chosen = (_pair(value_range, "range", RANGE_FIX, percent=False),) if value_range is not None else (
        parse_stretch(stretch, 1) if stretch else recipe.stretch)
    name = (colormap or INDEX_RAMP).lower()
    colormap_lut(name)
    return Recipe(recipe.bands[:1] if single else recipe.bands, recipe.index, chosen, name)


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
    text = (folder / CONFIG).read_text()
    return project_catalog(_validated(text, folder, platform_of(request).settings.data_roots), text, folder, artifacts)


@lru_cache(maxsize=64)
def _validated(text: str, folder: Path, data_roots: tuple[Path, ...]) -> ProjectConfig:
    """A project's config validated once per text: parsing its YAML took ~20 ms of each tile request (of ~30)."""
    return validate_config(text, folder, data_roots)


def _item(index: CatalogIndex, item_id: str) -> dict[str, Any]:
    found = next((r.item for r in index.records if r.item["id"] == item_id), None)
    if found is None:
        raise NotFound(f"no scene {item_id!r} in the project's imagery", "list it: GET /api/v1/projects/SLUG/imagery")
    return found


def _recipes(bands: dict[str, BandRef]) -> list[str]:
    out = [name for name, needs in COLOURS.items() if set(needs) <= set(bands)]
    return out + [f"index:{i}" for i in LISTED_INDICES if set(parse_recipe(f"index:{i}").bands) <= set(bands)]


class RenderOptions(BaseModel):
    """The render parameters a scene's tiles take, for the web app to offer."""

    stretch: str = Field(default="p2,p98", description="The default stretch; " + STRETCH_FIX)
    colormap: str = Field(default=INDEX_RAMP, description="An index's default colour map")
    colormaps: list[str] = Field(description="The colour maps an index may use (colormap=NAME)")
    range: str = Field(default="LO,HI", description="An index's value range (range=LO,HI; default: its stretch)")
    pixel: str = Field(description="URL of the band values at a point, relative to the API root (add ?lon=&lat=)")


class ImageryListItem(ImageryItemOut):
    """A scene of the project's imagery with the render parameters its tiles take."""

    render: RenderOptions


@router.get("", response_model=list[ImageryListItem])
def list_imagery(access: Reader, request: Request, session: DbSession) -> list[ImageryListItem]:
    """The project's scenes and imagery uploads, with the bands, recipes and render parameters their tiles can use."""
    index = catalog_of(request, access.project, session)
    base, maps = f"/projects/{access.project.slug}/imagery", colormaps()
    out = []
    for r in index.records:
        bands, item_id = item_bands(r.item), r.item["id"]
        out.append(ImageryListItem(id=item_id, collection=r.collection, datetime=r.item["properties"].get("datetime"),
                                   bbox=r.item["bbox"], bands=sorted(bands), recipes=_recipes(bands),
                                   properties=_kept(r.item["properties"]),
                                   tiles=f"{base}/{item_id}/tiles/{{z}}/{{x}}/{{y}}.png",
                                   render=RenderOptions(colormaps=maps, pixel=f"{base}/{item_id}/pixel")))
    return out


def _kept(properties: dict[str, Any]) -> dict[str, Any]:
    """The item's descriptive STAC properties (cloud cover, platform...), without its projection's details."""
    return {k: v for k, v in properties.items() if k != "datetime" and not k.startswith("proj:")}


def index_values(bands: np.ndarray, recipe: Recipe) -> np.ndarray:
    """A recipe's index from its bands, computed by eoengine's index code (spyndex's formula).

    Args:
        bands: (n, h, w) values of the recipe's bands, in its order (named by common name); NaN: no data.
        recipe: An ``index:NAME`` recipe.

    Returns:
        (h, w) float32; NaN where a band has no data or the formula divides by zero.

    """
    assert recipe.index is not None
    common: list[str | None] = list(recipe.bands)
    return compute_indices(bands, [recipe.index], list(recipe.bands), common)[0]


@lru_cache(maxsize=512)
def _stretch(bands: tuple[BandRef, ...], bbox: tuple[float, ...], stamps: tuple[tuple[int, int], ...],
             recipe: Recipe) -> list[Range]:
    """Each shown band's (or the index's) range: its values, or its percentiles over the item's overview."""
    if not any(s.percent for s in recipe.stretch):
        return [(s.low, s.high) for s in recipe.stretch]
    view = overview(bands, bbox)  # type: ignore[arg-type]
    layers = view if recipe.index is None else [index_values(view, recipe)]
    return [percentile_range(v, s.low, s.high) if s.percent else (s.low, s.high)
            for v, s in zip(layers, recipe.stretch, strict=True)]


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
        return rgb_png(tile, ranges) if len(recipe.bands) == 3 else ramp_png(tile[0], ranges[0], recipe.colormap)
    return ramp_png(index_values(tile, recipe), ranges[0], recipe.colormap)


@router.get("/{item}/tiles/{z}/{x}/{y}.png", responses={200: {"content": {"image/png": {}}}}, response_class=Response)
def imagery_tile(item: str, z: int, x: int, y: int, access: Reader, request: Request, session: DbSession,
                 recipe: Annotated[str, Query(description="true-color, false-color, index:NAME or bands:A,B,C")] = "true-color",
                 stretch: Annotated[str | None, Query(description="pLO,pHI (percentiles, default p2,p98) or LO,HI "
                                                      "(band units); one for all bands or A;B;C per band")] = None,
                 colormap: Annotated[str | None, Query(description="An index's rio-tiler colour map "
                                                       f"(default {INDEX_RAMP})")] = None,
                 value_range: Annotated[str | None, Query(alias="range", description="An index's LO,HI")] = None,
                 ) -> Response:
    """A 256 px tile of a scene rendered by a recipe; transparent outside the scene."""
    check_tile(z, x, y)
    chosen = parse_recipe(recipe, stretch, colormap, value_range)
    found = _item(catalog_of(request, access.project, session), item)
    return Response(render(found, chosen, z, x, y), media_type="image/png", headers=TILE_HEADERS)


class BandValue(BaseModel):
    """One band's value at a point: its names, the pixel of its file, and the value in physical units."""

    names: list[str] = Field(description="Its common name, name and position names (b1...) a recipe can use")
    row: int | None = Field(description="The pixel's row in the band's file; null when the point is outside it")
    col: int | None
    value: float | None = Field(description="value * scale + offset; null where the band has no data")


class PixelOut(BaseModel):
    """The bands of a scene at a point (the inspector)."""

    item: str
    lon: float
    lat: float
    bands: list[BandValue]


def check_point(lon: float, lat: float) -> None:
    """Refuse a point that is not a longitude and latitude in degrees.

    Args:
        lon: Longitude.
        lat: Latitude.

    Raises:
        Invalid: Not finite, or outside -180..180 / -90..90.

    """
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise Invalid(f"lon={lon}, lat={lat} is not a point in EPSG:4326",
                      "give lon in -180..180 and lat in -90..90 (degrees)")


def band_values(item: dict[str, Any], lon: float, lat: float) -> list[BandValue]:
    """Each band of an item at a point, read with rasterio from its file (one entry per band, with all its names).

    Args:
        item: A STAC Item of the project catalog.
        lon: Longitude (EPSG:4326).
        lat: Latitude.

    Returns:
        The bands in the item's order; a band whose raster does not hold the point has row, col and value None.

    Raises:
        EOError: A band's file cannot be read.

    """
    names: dict[BandRef, list[str]] = {}
    for name, ref in item_bands(item).items():
        names.setdefault(ref, []).append(name)
    out = []
    for ref, n in names.items():
        v = pixel_value(ref, lon, lat)
        out.append(BandValue(names=n, row=None, col=None, value=None) if v is None else
                   BandValue(names=n, row=v.row, col=v.col, value=v.value))
    return out


@router.get("/{item}/pixel", response_model=PixelOut)
def imagery_pixel(item: str, lon: float, lat: float, access: Reader, request: Request, session: DbSession) -> PixelOut:
    """Each band's value (physical units) at a point of a scene; 422 outside it."""
    check_point(lon, lat)
    found = _item(catalog_of(request, access.project, session), item)
    values = band_values(found, lon, lat)
    if all(v.row is None for v in values):
        west, south, east, north = found["bbox"]
        raise Invalid(f"lon={lon}, lat={lat} is outside scene {item!r}",
                      f"pick a point inside its bbox {west:.5f},{south:.5f},{east:.5f},{north:.5f}")
    return PixelOut(item=item, lon=lon, lat=lat, bands=values)


class ProjectStac:
    """The ASGI app at ``/api/v1/projects/{slug}/stac``: the caller must read the project; then its STAC API answers.

    It serves the project's imagery and, beside it, each subscription's collection of run outputs
    (``subscription-NAME``: a map's Item per run), so a STAC client searches both.
    """

    def __init__(self) -> None:
        self._apps: dict[str, tuple[CatalogIndex, FastAPI]] = {}
        self._joined: dict[str, tuple[CatalogIndex, tuple[tuple[str, int], ...], CatalogIndex]] = {}

    def _index(self, request: Request, slug: str) -> CatalogIndex:
        with platform_of(request).db.request() as session:
            access = find_project(session, slug, current_caller(request, session), "read")
            imagery = catalog_of(request, access.project, session)
            outputs = project_config(request, access.project).output_path / SUBSCRIPTIONS_DIR
        return self._with_subscriptions(imagery, outputs)

    def _with_subscriptions(self, imagery: CatalogIndex, outputs: Path) -> CatalogIndex:
        """The imagery with each subscription's collection of run outputs (re-read when one of them changed)."""
        files = sorted(outputs.glob("*/collection.json"))
        if not files:
            return imagery
        sig = tuple((str(f), f.stat().st_mtime_ns) for f in files)
        cached = self._joined.get(str(outputs))
        if cached is None or cached[0] is not imagery or cached[1] != sig:
            cached = (imagery, sig, imagery.joined(CatalogIndex(outputs)))
            self._joined[str(outputs)] = cached
        return cached[2]

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
