"""Uploads: imagery and label files streamed into a project's ``uploads/`` folder, checked, and indexed.

The multipart body is parsed as it arrives (python-multipart's streaming parser), the file
part written straight to a hidden temporary file in ``uploads/`` and hashed on the way, so a
large upload is never held in memory nor copied from a system temporary folder; the app's
body cap (``app.body_limit``: ``max_upload_mb`` for paths ending in ``/uploads``) stops it
with a 413 while it streams, and the partial file is removed. Only then is the file checked:
imagery must open with rasterio and have a CRS; labels must be a raster with a CRS or a vector
file pyogrio reads (GeoJSON, GeoPackage, a zipped Shapefile ...). A file that fails is removed
and answered with a 422. The stored name is the upload's file name without folders, reduced to
safe characters; a name the project has already is a 409 (the file is linked into place, so of
two uploads of one name at once one wins and the other is refused).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from eoengine.errors import Conflict, Invalid
from eoengine.platform.browse import artifacts_of, project_folder
from eoengine.platform.db.models import Artifact
from eoengine.platform.deps import DbSession, ProjectAccess, Reader, Runner
from eoengine.platform.events import record
from eoengine.platform.routes.projects import artifact_out
from eoengine.platform.schemas import ArtifactOut
from eoengine.raster.footprint import footprint_wgs84

router = APIRouter(prefix="/projects/{slug}/uploads", tags=["uploads"])
UPLOADS = "uploads"
KINDS = ("imagery", "labels")
RASTER_SUFFIXES = (".tif", ".tiff", ".gtif", ".gtiff", ".geotiff", ".jp2")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".fgb", ".zip", ".parquet")
RASTER_DRIVERS = frozenset({"GTiff", "COG", "JP2OpenJPEG"})
VECTOR_DRIVERS = frozenset({"GeoJSON", "GeoJSONSeq", "GPKG", "FlatGeobuf", "ESRI Shapefile", "Parquet"})
"""What an upload may be: a file with one of these names and formats (not, e.g., a VRT naming files elsewhere)."""
MAX_FIELD = 1024
"""Largest value of a form field other than the file."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
FORM_FIX = "send multipart/form-data with a 'file' part and a 'kind' field (imagery or labels)"
OPENAPI_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "kind"],
    "properties": {"file": {"type": "string", "format": "binary"}, "kind": {"type": "string", "enum": list(KINDS)}}}}}}}


def safe_name(filename: str) -> str:
    """An upload's stored name: its last path part, runs of characters other than letters, digits, ``.-_`` as ``_``.

    Args:
        filename: The name the client sent.

    Returns:
        The name (at most 200 characters).

    Raises:
        Invalid: Nothing of it is left.

    """
    name = _UNSAFE.sub("_", PurePosixPath(filename.replace("\\", "/")).name).strip("._")[-200:]
    if not name:
        raise Invalid(f"file name {filename!r} has no usable characters", "name the file with letters or digits")
    return name


@dataclass
class Received:
    """What a multipart body held: its small fields, and the file part written to ``temp``."""

    folder: Path
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    temp: Path | None = None
    size: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    _part: dict[str, Any] = field(default_factory=dict)
    _out: IO[bytes] | None = None

    def begin(self, headers: dict[bytes, bytes]) -> None:
        """A part begins: the file part opens a temporary file in the folder; another is a field.

        Args:
            headers: The part's headers, names lowercased.

        """
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part = {"name": name, "value": bytearray()}
        if name == "file" and b"filename" in options and self.temp is None:
            self.filename = options[b"filename"].decode("utf-8", "replace")
            handle, path = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=self.folder)
            self.temp, self._out = Path(path), os.fdopen(handle, "wb")

    def data(self, chunk: bytes) -> None:
        """Bytes of the current part: written (and hashed) for the file, kept for a field.

        Args:
            chunk: The bytes.

        Raises:
            Invalid: A field passes :data:`MAX_FIELD` bytes.

        """
        if self._out is not None:
            self._out.write(chunk)
            self.sha256.update(chunk)
            self.size += len(chunk)
            return
        value = self._part.setdefault("value", bytearray())
        value += chunk
        if len(value) > MAX_FIELD:
            raise Invalid(f"form field {self._part.get('name')!r} is longer than {MAX_FIELD} bytes", FORM_FIX)

    def end(self) -> None:
        """The current part ends: the file is closed, a field's value kept."""
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._part.get("name"):
            self.fields[self._part["name"]] = bytes(self._part["value"]).decode("utf-8", "replace")
        self._part = {}

    def discard(self) -> None:
        """Remove the temporary file (an upload that failed)."""
        if self._out is not None:
            self._out.close()
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)


async def receive(request: Request, folder: Path) -> Received:
    """Stream a multipart body into ``folder``: the file part to a temporary file there, the fields in memory.

    Args:
        request: The request.
        folder: Where the file part is written.

    Returns:
        What was received (the caller removes ``temp`` when it does not keep it).

    Raises:
        Invalid: Not multipart/form-data, malformed, or a field too long.
        BodyTooLarge: The body passed the upload cap (413; from the app's body cap).

    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise Invalid("an upload must be multipart/form-data", FORM_FIX)
    got = Received(folder)
    header: dict[str, bytes] = {"field": b"", "value": b""}
    headers: dict[bytes, bytes] = {}

    def on_header_end() -> None:
        headers[header["field"].lower()] = header["value"]
        header.update(field=b"", value=b"")

    callbacks: Any = {
        "on_part_begin": headers.clear,
        "on_header_field": lambda d, s, e: header.update(field=header["field"] + d[s:e]),
        "on_header_value": lambda d, s, e: header.update(value=header["value"] + d[s:e]),
        "on_header_end": on_header_end,
        "on_headers_finished": lambda: got.begin(dict(headers)),
        "on_part_data": lambda d, s, e: got.data(bytes(d[s:e])),
        "on_part_end": got.end,
    }
    parser = MultipartParser(options[b"boundary"], callbacks)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        got.discard()
        raise Invalid(f"the multipart body is malformed ({exc})", FORM_FIX) from None
    except BaseException:
        got.discard()
        raise
    return got


def inspect_upload(path: Path, kind: str, name: str) -> dict[str, Any]:
    """Check an uploaded file is what its kind says, and describe it.

    Args:
        path: The file.
        kind: ``imagery`` or ``labels``.
        name: Its name (for messages).

    Returns:
        Its meta: CRS, bands (rasters) or features and geometry type (vectors), footprint (EPSG:4326).

    Raises:
        Invalid: Imagery that is not a raster with a CRS; labels that are neither that nor a vector file.

    """
    import rasterio
    from rasterio.errors import RasterioIOError

    suffixes = RASTER_SUFFIXES + (VECTOR_SUFFIXES if kind == "labels" else ())
    if not name.lower().endswith(suffixes):
        raise Invalid(f"{name} does not end in a suffix that {kind} uploads take", f"name it with one of: {', '.join(suffixes)}")
    try:
        with rasterio.open(path) as ds:
            crs, bands, driver = ds.crs, [d or f"b{i + 1}" for i, d in enumerate(ds.descriptions)], ds.driver
            size = {"width": ds.width, "height": ds.height, "dtype": ds.dtypes[0]}
    except RasterioIOError:
        if kind == "labels":
            return _vector(path, name)
        raise Invalid(f"{name} is not a raster rasterio can open", "upload a GeoTIFF, COG or JP2") from None
    if driver not in RASTER_DRIVERS:
        raise Invalid(f"{name} is a {driver} raster, which an upload may not be", "upload a GeoTIFF, COG or JP2")
    if crs is None:
        raise Invalid(f"{name} has no CRS", "assign one (gdal_edit.py -a_srs EPSG:...) and upload it again")
    return {"format": "raster", "crs": crs.to_string(), "bands": bands, **size, "footprint": footprint_wgs84(path)}


def _vector(path: Path, name: str) -> dict[str, Any]:
    import pyogrio
    from pyproj import CRS
    from rasterio.warp import transform_geom
    from shapely.geometry import box, mapping

    try:
        info = pyogrio.read_info(path)
    except Exception:  # noqa: BLE001 - pyogrio raises its own DataSourceError and GDAL's
        raise Invalid(f"{name} is not a raster (rasterio) nor a vector file (pyogrio)",
                      "upload a GeoTIFF, GeoJSON, GeoPackage or zipped Shapefile") from None
    if info.get("driver") not in VECTOR_DRIVERS:
        raise Invalid(f"{name} is a {info.get('driver')} vector file, which an upload may not be",
                      "upload a GeoJSON, GeoPackage, FlatGeobuf, GeoParquet or zipped Shapefile")
    if not info.get("crs"):
        raise Invalid(f"{name} has no CRS", "save it with a CRS (e.g. EPSG:4326) and upload it again")
    crs = CRS.from_user_input(info["crs"])
    bounds = info.get("total_bounds")
    footprint = transform_geom(crs.to_wkt(), "EPSG:4326", mapping(box(*bounds)), precision=7) if bounds is not None else None
    return {"format": "vector", "crs": crs.to_string(), "features": int(info.get("features", 0)),
            "geometry_type": info.get("geometry_type"), "fields": [str(f) for f in info.get("fields", [])],
            "footprint": footprint}


def _place(got: Received, folder: Path, name: str) -> Path:
    """Link the temporary file to its name (refusing a name that exists), then drop the temporary name."""
    assert got.temp is not None
    final = folder / name
    try:
        os.link(got.temp, final)
    except FileExistsError:
        raise Conflict(f"the project has an upload {name!r} already", "rename the file, or use the existing upload") from None
    finally:
        got.discard()
    return final


def _store(session: Session, access: ProjectAccess, got: Received, name: str, kind: str, meta: dict[str, Any]) -> Artifact:
    """Put a checked upload in place and index it, with its event (refusing a name the project has)."""
    if any(a.name == name for a in artifacts_of(session, access.project, "upload")):
        raise Conflict(f"the project has an upload {name!r} already", "rename the file, or use the existing upload")
    final = _place(got, got.folder, name)
    meta |= {"kind": kind, "size": got.size, "sha256": got.sha256.hexdigest(), "filename": got.filename}
    row = Artifact(project_id=access.project.id, kind="upload", name=name, path=f"{UPLOADS}/{final.name}", meta=meta,
                   created_by=access.user_id)
    session.add(row)
    session.flush()
    record(session, "upload.create", "upload", row.id, actor_id=access.user_id, project_id=access.project.id,
           data={"name": name, "kind": kind, "size": got.size, "sha256": meta["sha256"]})
    return row


@router.post("", response_model=ArtifactOut, status_code=201, openapi_extra=OPENAPI_BODY)
async def upload(access: Runner, request: Request, session: DbSession) -> ArtifactOut:
    """Upload an imagery or labels file (multipart ``file`` and ``kind``); it is checked, stored and indexed."""
    folder = project_folder(request, access.project) / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    got = await receive(request, folder)
    try:
        kind = got.fields.get("kind", "")
        if got.temp is None or got.filename is None:
            raise Invalid("the upload has no 'file' part with a file name", FORM_FIX)
        if kind not in KINDS:
            raise Invalid(f"kind {kind!r} is not one of {', '.join(KINDS)}", FORM_FIX)
        name = safe_name(got.filename)
        meta = await run_in_threadpool(inspect_upload, got.temp, kind, name)
        row = await run_in_threadpool(_store, session, access, got, name, kind, meta)
    finally:
        got.discard()
    return artifact_out(row)


@router.get("", response_model=list[ArtifactOut])
def list_uploads(access: Reader, session: DbSession) -> list[ArtifactOut]:
    """The project's uploads, newest first."""
    return [artifact_out(a) for a in artifacts_of(session, access.project, "upload")]
