"""Fetch jobs for the STAC API service: ``POST /fetch`` starts one, ``GET /fetch/{id}`` reports it.

A job fetches the chosen bands of the chosen items (by id, or by a search), clipped to an
optional area, into the service's cache, in a background thread; fetched COGs are served
from ``GET /files/{collection}/{item}/{name}``. Anything that writes needs the API key;
reading is open unless the service is started with ``--private``.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from eoengine.errors import EOError, first_line
from eoengine.serving.auth import key_matches
from eoengine.sourcing.catalog import BadQuery, CatalogIndex, parse_bbox


class FetchRequest(BaseModel):
    """What to fetch: items (by ids, or a search), bands, and an optional clip area."""

    ids: list[str] | None = None
    collections: list[str] | None = None
    bbox: list[float] | None = None
    datetime: str | None = None
    bands: list[str] = Field(min_length=1)
    limit: int = Field(default=10, ge=1, le=100)


@dataclass
class Job:
    """A fetch job's state."""

    id: str
    status: str = "queued"
    items: int = 0
    done: int = 0
    files: list[str] = field(default_factory=list)
    error: str = ""


def add_fetch_routes(app: FastAPI, index: CatalogIndex, cache: Path, api_key: str | None) -> None:
    """Register ``POST /fetch``, ``GET /fetch/{id}`` and ``GET /files/...`` on ``app``."""
    from eoengine.sourcing.fetch import fetch_item

    jobs: dict[str, Job] = {}
    lock = threading.Lock()

    def run(job: Job, items: list[pystac.Item], req: FetchRequest) -> None:
        job.status = "running"
        area = parse_bbox(req.bbox) if req.bbox else None
        try:
            for item in items:
                got = fetch_item(item, req.bands, cache, area)
                with lock:
                    job.done += 1
                    if got.path is not None:
                        job.files.append(str(got.path.relative_to(cache)))
            job.status = "succeeded"
        except EOError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a job must end failed, never stay "running"
            job.status, job.error = "failed", f"{type(exc).__name__}: {first_line(exc)}"

    @app.post("/fetch", status_code=202, summary="Start a fetch job (needs the API key)")
    async def start(request: Request, req: FetchRequest) -> Any:
        if not key_matches(request, api_key):
            return JSONResponse({"code": "Unauthorized", "description": "writing needs the API key (X-API-Key)"}, status_code=401)
        try:
            records = index.search(req.collections, req.ids, req.bbox, None, req.datetime)[: req.limit]
        except BadQuery as exc:
            return JSONResponse({"code": "BadRequest", "description": str(exc)}, status_code=400)
        if not records:
            return JSONResponse({"code": "NotFound", "description": "no items match"}, status_code=404)
        items = [pystac.Item.from_dict(r.item) for r in records]
        from eoengine.sourcing.fetch import band_locations

        try:
            for item in items:
                band_locations(item, req.bands)
        except EOError as exc:
            return JSONResponse({"code": "BadRequest", "description": str(exc)}, status_code=400)
        job = Job(uuid.uuid4().hex[:12], items=len(items))
        jobs[job.id] = job
        threading.Thread(target=run, args=(job, items, req), daemon=True).start()
        return {"id": job.id, "status": job.status, "links": [{"rel": "status", "href": f"{request.base_url}fetch/{job.id}"}]}

    @app.get("/fetch/{job_id}", summary="A fetch job's status and files")
    async def status(request: Request, job_id: str) -> Any:
        job = jobs.get(job_id)
        if job is None:
            return JSONResponse({"code": "NotFound", "description": f"no job '{job_id}'"}, status_code=404)
        return {"id": job.id, "status": job.status, "items": job.items, "done": job.done, "error": job.error,
                "files": [f"{request.base_url}files/{f}" for f in job.files]}

    @app.get("/files/{path:path}", summary="A fetched COG")
    async def files(path: str) -> Any:
        if "\0" in path:
            return JSONResponse({"code": "BadRequest", "description": "a file path cannot hold a NUL byte"}, status_code=400)
        target = cached_file(cache, path)
        if target is None:
            return JSONResponse({"code": "NotFound", "description": f"no file '{path[:200]}'"}, status_code=404)
        return FileResponse(target, media_type="image/tiff; application=geotiff; profile=cloud-optimized")


def cached_file(cache: Path, path: str) -> Path | None:
    """The COG at ``path`` under ``cache``, or None if there is none (outside the cache, not a .tif, unnamable).

    ``path`` comes from a URL: a segment longer than the file system allows is no file, not an error.

    Args:
        cache: the service's cache folder.
        path: the path under it, from the request.

    Returns:
        The resolved file, or None.

    """
    try:
        target = (cache / path).resolve()
        found = target.is_relative_to(cache.resolve()) and target.suffix == ".tif" and target.is_file()
    except OSError:  # ENAMETOOLONG and the like: no such file can exist
        return None
    return target if found else None
