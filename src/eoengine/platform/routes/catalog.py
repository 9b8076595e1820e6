"""The model catalog: a card per registered model version, filterable by task, class and area (readers).

A card joins what the registry says of a version (aliases, grade tags written by ``eoengine grade``,
see :mod:`eoengine.grading.record`) with what its package and training dataset say (task, classes
and colours, bands with common names, pixel size, and the chips' dissolved footprint in lon/lat).
Versions whose package files are not on this machine are left out: there is nothing to describe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from eoengine.config.query import parse_bbox
from eoengine.datasets.footprint import training_footprint
from eoengine.datasets.schema import BandInfo, ClassInfo, DatasetManifest
from eoengine.errors import EOError
from eoengine.platform.deps import DbSession, Reader
from eoengine.platform.routes.runs import project_store
from eoengine.tracking.browse import ModelVersionInfo, list_models

router = APIRouter(prefix="/projects/{slug}/catalog", tags=["catalog"])
GRADE_TAG = "eoengine.grade"


class CatalogCard(BaseModel):
    """One registered model version as the catalog shows it."""

    name: str
    version: str
    ref: str
    aliases: list[str]
    task: str
    classes: list[ClassInfo]
    bands: list[BandInfo]
    resolution: float | None
    footprint: dict[str, Any] | None
    grade: str | None
    """The overall letter of the newest grading, None: not graded."""
    capabilities: dict[str, str]
    """Capability → ``pass`` or ``fail`` (from the version's ``eoengine.grade.*`` tags)."""


def _bands(dataset: str, names: list[str]) -> list[BandInfo]:
    """The model's bands with their common names, from its training dataset's manifest when it is here."""
    root = Path(dataset) if dataset else None
    if root is not None and (root / "manifest.json").is_file():
        try:
            return DatasetManifest.read(root).band_specs
        except EOError:
            pass
    return [BandInfo(name=n) for n in names]


def _footprint(dataset: str) -> dict[str, Any] | None:
    try:
        return training_footprint(Path(dataset)) if dataset else None
    except EOError:
        return None


def card(version: ModelVersionInfo) -> CatalogCard | None:
    """The catalog card of a registered version; None when its package is not on this machine.

    Args:
        version: The version as the registry browser describes it.

    Returns:
        The card.

    """
    pkg = version.package
    if pkg is None:
        return None
    prefix = GRADE_TAG + "."
    return CatalogCard(
        name=version.name, version=version.version, ref=version.ref, aliases=version.aliases, task=pkg.task,
        classes=pkg.classes, bands=_bands(pkg.dataset.path, pkg.bands), resolution=pkg.resolution,
        footprint=_footprint(pkg.dataset.path), grade=version.tags.get(GRADE_TAG),
        capabilities={k.removeprefix(prefix): v for k, v in sorted(version.tags.items()) if k.startswith(prefix)},
    )


def _matches(c: CatalogCard, task: str | None, klass: str | None, area: Any) -> bool:
    from shapely.geometry import shape

    if task is not None and c.task != task:
        return False
    if klass is not None and all(k.name != klass for k in c.classes):
        return False
    return area is None or (c.footprint is not None and shape(c.footprint).intersects(area))


@router.get("", response_model=list[CatalogCard])
def catalog(access: Reader, request: Request, session: DbSession,
            task: Annotated[str | None, Query(description="Only this task, e.g. segmentation")] = None,
            klass: Annotated[str | None, Query(alias="class", description="Only models with this class name")] = None,
            bbox: Annotated[str | None, Query(description="Only models trained over w,s,e,n (degrees)")] = None,
            ) -> list[CatalogCard]:
    """The project's registered model versions as cards, newest version first per model, filtered."""
    area = parse_bbox(bbox) if bbox is not None else None
    uri, _, exists = project_store(request, access, session)
    if not exists:
        return []
    cards = [c for m in list_models(uri) for v in m.versions if (c := card(v)) is not None]
    return [c for c in cards if _matches(c, task, klass, area)]
