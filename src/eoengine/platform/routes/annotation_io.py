"""Annotation in and out: export a set (GeoJSON, GeoPackage, label raster, STAC), snapshot it, build it, import labels.

All under ``/api/v1/projects/{slug}/annotation``. Exports and snapshot lists need the read role
(without the review role an export leaves out gold tasks, the known answers that measure
annotators); taking, downloading and building a snapshot need the review role; an import writes into primary tasks where the
caller may import (``importing.may_import``: an annotator's own open, in-progress or rejected tasks;
a reviewer's any task not accepted).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from eoengine.errors import Invalid
from eoengine.platform.annotation import export as out
from eoengine.platform.annotation.importing import check_import, read_import, store_import
from eoengine.platform.annotation.schemas import ImportOut, ImportRefused, SnapshotOut
from eoengine.platform.annotation.snapshots import (
    Snapshot,
    find_snapshot,
    project_mapping,
    set_snapshots,
    snapshot_config,
    snapshot_zip,
    take_snapshot,
)
from eoengine.platform.annotation.store import get_set
from eoengine.platform.browse import project_config, project_folder
from eoengine.platform.db.models import AnnotationSet, AnnotationTask
from eoengine.platform.deps import Annotator, DbSession, ProjectAccess, Reader, Reviewer, RowId
from eoengine.platform.projects import CONFIG
from eoengine.platform.routes.annotation import _grids, _items
from eoengine.platform.routes.jobs import submit_job
from eoengine.platform.routes.uploads import receive, safe_name
from eoengine.platform.schemas import JobIn, JobOut
from eoengine.serving.errors import error_body

router = APIRouter(prefix="/projects/{slug}/annotation", tags=["annotation"])
MEDIA = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3", "raster": "image/tiff",
         "stac": "application/zip"}
SUFFIX = {"geojson": "geojson", "gpkg": "gpkg", "raster": "tif", "stac": "zip"}
IMPORT_FIX = "send multipart/form-data with a 'file' part: GeoJSON, GeoPackage, zipped Shapefile or a label raster"
IMPORT_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


def _change_items(request: Request, access: ProjectAccess, session: Session,
                  aset: AnnotationSet) -> dict[str, dict[str, Any]]:
    """The project catalog's items for a change set's build (its two dates); none for a class set, which needs none."""
    return _items(request, access, session) if aset.kind == "change" else {}


def _sources(request: Request, access: ProjectAccess, session: Session, aset: AnnotationSet) -> dict[str, dict[str, Any]]:
    """The set's imagery items: a link to each in the project's STAC API, and its datetime."""
    base = str(request.base_url).rstrip("/") + f"/api/v1/projects/{access.project.slug}/stac"
    items = _items(request, access, session)
    return {i: {"href": f"{base}/collections/{items[i]['collection']}/items/{i}",
                "datetime": items[i]["properties"].get("datetime")} for i in aset.items if i in items}


def _shown(access: ProjectAccess, labels: out.SetLabels) -> out.SetLabels:
    """The labels a caller may export: without the review role, gold tasks' known answers are left out."""
    if access.allows("review"):
        return labels
    tasks = [t for t in labels.tasks if not t.gold]
    kept = {t.id for t in tasks}
    return replace(labels, tasks=tasks, features=[f for f in labels.features if f.task_id in kept])


@router.get("/sets/{set_id}/export", response_class=Response,
            responses={200: {"content": {m: {} for m in MEDIA.values()}, "description": "the export"}})
def export_set(set_id: RowId, access: Reader, request: Request, session: DbSession,
               format: out.Format = "geojson", state: out.State = "accepted") -> Response:
    """A set's labels as GeoJSON, GeoPackage, a label raster COG (its grid, 255 unknown) or a STAC Collection (zip)."""
    aset = get_set(session, access.project.id, set_id)
    labels = _shown(access, out.set_labels(session, aset, state))
    name = f"{aset.name}-{state}.{SUFFIX[format]}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "geojson":
        body = out.canonical_text(out.export_geojson(session, labels)).encode()
    elif format == "stac":
        body = out.export_stac(session, labels, _sources(request, access, session, aset))
    else:
        with tempfile.TemporaryDirectory(prefix="eoengine-export-") as scratch:
            path = Path(scratch) / name
            if format == "gpkg":
                out.export_gpkg(out.export_geojson(session, labels), path)
            else:
                cfg = project_config(request, access.project)
                out.export_raster(labels, path, bool(cfg.labels and cfg.labels.all_touched))
            body = path.read_bytes()
    return Response(body, media_type=MEDIA[format], headers=headers)


@router.post("/sets/{set_id}/snapshots", response_model=SnapshotOut, status_code=201,
             responses={200: {"model": SnapshotOut, "description": "the same labels were frozen before: that snapshot"}})
def snapshot_set(set_id: RowId, access: Reviewer, request: Request, response: Response,
                 session: DbSession) -> SnapshotOut:
    """Freeze the set's accepted labels into ``labels/snapshots/<hash>/`` (200 with the existing one for the same labels).

    A change set's two items must make a change_detection scene (overlap, the config's bands), else 422 and no snapshot.
    """
    aset = get_set(session, access.project.id, set_id)
    folder = project_folder(request, access.project)
    project_mapping(aset, _change_items(request, access, session, aset), folder, (folder / CONFIG).read_text())  # buildable?
    snap, made = take_snapshot(session, aset, folder, access.user_id)
    if not made:
        response.status_code = 200
    return SnapshotOut(**snap.__dict__)


@router.get("/sets/{set_id}/snapshots", response_model=list[SnapshotOut])
def list_snapshots(set_id: RowId, access: Reader, session: DbSession) -> list[SnapshotOut]:
    """The set's snapshots, newest first."""
    aset = get_set(session, access.project.id, set_id)
    return [SnapshotOut(**Snapshot.of(row).__dict__) for row in set_snapshots(session, aset)]


@router.post("/sets/{set_id}/snapshots/{digest}/build", response_model=JobOut, status_code=201)
def build_snapshot(set_id: RowId, digest: str, access: Reviewer, request: Request, session: DbSession) -> JobOut:
    """Queue a dataset-build job from a snapshot (its config written beside it); the dataset's lineage includes it."""
    aset = get_set(session, access.project.id, set_id)
    snapshot = find_snapshot(session, aset, digest)
    folder = project_folder(request, access.project)
    items = _change_items(request, access, session, aset)
    config = snapshot_config(aset, snapshot, folder, (folder / CONFIG).read_text(), items)
    return submit_job(JobIn(spec={"kind": "build", "config": config.as_posix()}), access, request, session)


@router.get("/sets/{set_id}/snapshots/{digest}/download", response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "the snapshot's files and config"}})
def download_snapshot(set_id: RowId, digest: str, access: Reviewer, request: Request, session: DbSession) -> Response:
    """A snapshot as a zip: its label files and an ``eoengine.yaml`` that builds the same dataset version anywhere."""
    aset = get_set(session, access.project.id, set_id)
    snapshot = find_snapshot(session, aset, digest)
    folder = project_folder(request, access.project)
    body = snapshot_zip(aset, snapshot, folder, (folder / CONFIG).read_text(), _change_items(request, access, session, aset))
    headers = {"Content-Disposition": f'attachment; filename="{aset.name}-{digest[:12]}.zip"'}
    return Response(body, media_type="application/zip", headers=headers)


def _import(session: Session, access: ProjectAccess, request: Request, set_id: int, path: Path) -> ImportOut:
    aset = get_set(session, access.project.id, set_id)
    tasks = list(session.scalars(select(AnnotationTask).where(AnnotationTask.set_id == aset.id,
                                                              AnnotationTask.copy_kind == "")))
    pieces = check_import(read_import(path, aset.classes), access, aset, tasks, _grids(request, access, session, aset))
    return ImportOut(**store_import(session, access, pieces))


@router.post("/sets/{set_id}/import", response_model=ImportOut, openapi_extra=IMPORT_BODY,
             responses={422: {"description": "bad features: {error, fix, problems: [{index, reason}]}; nothing stored"}})
async def import_labels(set_id: RowId, access: Annotator, request: Request, session: DbSession) -> Any:
    """Import labels (GeoJSON, GeoPackage, zipped Shapefile, label raster or class map) into the set's tasks, all or none."""
    with tempfile.TemporaryDirectory(prefix="eoengine-import-") as scratch:
        got = await receive(request, Path(scratch))
        if got.temp is None or got.filename is None:
            got.discard()
            raise Invalid("the import has no 'file' part with a file name", IMPORT_FIX)
        path = got.temp.rename(Path(scratch) / safe_name(got.filename))
        try:
            return await run_in_threadpool(_import, session, access, request, set_id, path)
        except ImportRefused as refused:
            return JSONResponse(error_body(422, refused.problem, refused.fix or "") | {"problems": refused.problems}, 422)
