"""A project's datasets: versions from the index, each browsed from its folder, and its files served for training elsewhere.

A version is named ``NAME@VERSION`` in its URLs; ``VERSION`` may be the whole content hash or
a prefix of at least :data:`MIN_VERSION` characters (the 12 of the dataset's folder name).
Everything a version shows is read from its folder by :mod:`eoengine.datasets.browse`: the
manifest, class balance per split, band statistics (both cached per version), chip footprints
coloured by split, chip and label previews, a tar archive streamed as it is written, the
leakage check and a STAC Collection.

``/files/{path}`` serves any file of the folder with HTTP range requests (Starlette's file
response), so ``training.dataset: https://HOST/api/v1/projects/SLUG/datasets/NAME@VERSION``
with ``EOENGINE_TOKEN`` trains from it on another machine (:mod:`eoengine.datasets.remote`
reads ``files/manifest.json``, ``files/chips.parquet`` and ``files/data.zarr/…``). A path that
leaves the folder (``..``, absolute, a symlink out) or names a folder is a 404, as a missing
file is: a served dataset lists no folders.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy import select

from eoengine.datasets import browse
from eoengine.datasets.schema import MANIFEST, DatasetManifest
from eoengine.errors import EOError, Invalid, NotFound
from eoengine.platform.browse import CHIP_ID, artifacts_of, inside, project_folder
from eoengine.platform.db.models import Artifact
from eoengine.platform.deps import DbSession, ProjectAccess, Reader
from eoengine.platform.schemas import DatasetDetailOut, DatasetOut

router = APIRouter(prefix="/projects/{slug}/datasets", tags=["datasets"])
MIN_VERSION = 6
DATASET_FIX = "list the project's datasets (GET /api/v1/projects/SLUG/datasets) and name one NAME@VERSION"
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}}}


def _split(ref: str) -> tuple[str, str]:
    name, at, version = ref.rpartition("@")
    if not at or not name or len(version) < MIN_VERSION:
        raise Invalid(f"dataset {ref!r} is not NAME@VERSION", f"{DATASET_FIX} (at least {MIN_VERSION} characters of VERSION)")
    return name, version


def dataset_version(request: Request, access: ProjectAccess, session: Any, ref: str) -> tuple[Artifact, Path]:
    """The indexed dataset version ``ref`` of the project and its folder (the session's transaction ended).

    Args:
        request: The request (for the server's settings).
        access: The project and caller.
        session: The request's database session.
        ref: ``NAME@VERSION`` (a prefix of the version will do).

    Returns:
        The artefact and the dataset folder.

    Raises:
        Invalid: ``ref`` is not NAME@VERSION.
        NotFound: No such version in the project, or its folder is gone.

    """
    name, version = _split(ref)
    query = select(Artifact).where(Artifact.project_id == access.project.id, Artifact.kind == "dataset",
                                   Artifact.name == name, Artifact.version.startswith(version, autoescape=True))
    found = session.scalars(query.order_by(Artifact.id.desc())).first()
    session.commit()
    if found is None:
        raise NotFound(f"no dataset {ref} in project {access.project.slug!r}", DATASET_FIX)
    return found, inside(project_folder(request, access.project), found.path, "dataset")


def _listed(a: Artifact, folder: Path) -> DatasetOut:
    try:
        manifest: DatasetManifest | None = DatasetManifest.read(inside(folder, a.path, "dataset"))
    except EOError:
        manifest = None
    return DatasetOut(id=a.id, name=a.name, version=a.version, ref=f"{a.name}@{a.version[:12]}", path=a.path,
                      created_at=a.created_at, job_id=a.job_id, chips=manifest.n_chips if manifest else None,
                      splits=dict(manifest.splits) if manifest else {})


@router.get("", response_model=list[DatasetOut])
def list_datasets(access: Reader, request: Request, session: DbSession) -> list[DatasetOut]:
    """The project's dataset versions, newest first, with their chips per split (from each manifest)."""
    folder = project_folder(request, access.project)
    return [_listed(a, folder) for a in artifacts_of(session, access.project, "dataset")]


@lru_cache(maxsize=64)
def _summaries(root: str, stamp: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return browse.class_balance(Path(root)).to_json(), browse.band_stats(Path(root)).to_json()


@router.get("/{ref}", response_model=DatasetDetailOut)
def get_dataset(ref: str, access: Reader, request: Request, session: DbSession) -> DatasetDetailOut:
    """One version: its manifest, class balance per split and band statistics (of a sample of its train chips)."""
    found, root = dataset_version(request, access, session, ref)
    manifest = DatasetManifest.read(root)
    balance, stats = _summaries(str(root), (root / MANIFEST).stat().st_mtime_ns)
    return DatasetDetailOut(name=found.name, version=found.version, path=found.path,
                            manifest=manifest.model_dump(mode="json"), class_balance=balance, band_stats=stats)


@router.get("/{ref}/footprints")
def dataset_footprints(ref: str, access: Reader, request: Request, session: DbSession) -> dict[str, Any]:
    """Every chip's footprint (GeoJSON in EPSG:4326) with its split and the split's colour."""
    return browse.footprints(dataset_version(request, access, session, ref)[1])


@router.get("/{ref}/chips/{chip}/preview.png", responses=PNG, response_class=Response)
def chip_preview(ref: str, chip: CHIP_ID, access: Reader, request: Request, session: DbSession,
                 bands: Annotated[str | None, Query(description="Three channels (or one), e.g. red,green,blue")] = None,
                 stretch: Annotated[str, Query(description="p<low>,p<high> percentiles, or <min>,<max>")] = "p2,p98",
                 ) -> Response:
    """A chip's image as a PNG of its size: three channels, stretched, nodata transparent."""
    root = dataset_version(request, access, session, ref)[1]
    return Response(browse.chip_preview_png(root, chip, bands, stretch), media_type="image/png")


@router.get("/{ref}/chips/{chip}/labels.png", responses=PNG, response_class=Response)
def chip_labels(ref: str, chip: CHIP_ID, access: Reader, request: Request, session: DbSession) -> Response:
    """A chip's labels in the classes' colours, unlabelled pixels transparent."""
    root = dataset_version(request, access, session, ref)[1]
    return Response(browse.label_preview_png(root, chip), media_type="image/png")


@router.get("/{ref}/archive", responses={200: {"content": {"application/x-tar": {}, "application/gzip": {}}}},
            response_class=Response)
def dataset_archive(ref: str, access: Reader, request: Request, session: DbSession,
                    gz: Annotated[bool, Query(description="gzip the archive")] = False) -> Response:
    """The whole version as a tar archive, streamed as it is written."""
    found, root = dataset_version(request, access, session, ref)
    name = f"{found.name}@{found.version[:12]}.tar" + (".gz" if gz else "")
    return StreamingResponse(browse.archive_chunks(root, gz), media_type="application/gzip" if gz else "application/x-tar",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{ref}/leakage")
def dataset_leakage(ref: str, access: Reader, request: Request, session: DbSession,
                    threshold_m: Annotated[float, Query(description="A train chip this near (m) counts as near")] = 0.0,
                    ) -> dict[str, Any]:
    """How close train chips come to val and test chips, with a verdict."""
    return browse.leakage(dataset_version(request, access, session, ref)[1], threshold_m).to_json()


@router.get("/{ref}/stac")
def dataset_stac(ref: str, access: Reader, request: Request, session: DbSession) -> dict[str, Any]:
    """The version as a STAC Collection (self link: this URL; assets under ``files/``)."""
    root = dataset_version(request, access, session, ref)[1]
    return browse.stac_collection(root, str(request.url.replace(query="")))


FILES = "/{ref}/files/{path:path}"


@router.get(FILES, response_class=FileResponse,
            responses={200: {"content": {"*/*": {}}, "description": "the file, typed by its name"},
                       206: {"description": "a range"}})
def dataset_file(ref: str, path: str, access: Reader, request: Request, session: DbSession) -> FileResponse:
    """A file of the version's folder; ``Range: bytes=a-b`` answers 206 with those bytes (HEAD: its size)."""
    root = dataset_version(request, access, session, ref)[1]
    target = inside(root, path, "dataset file")
    if not target.is_file():
        raise NotFound(f"no dataset file {path!r}", "name a file (a served dataset lists no folders)")
    return FileResponse(target, headers={"Cache-Control": "private, max-age=3600"})


router.add_api_route(FILES, dataset_file, methods=["HEAD"], response_class=FileResponse, include_in_schema=False)
