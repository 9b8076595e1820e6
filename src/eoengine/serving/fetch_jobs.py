"""Fetch jobs for the STAC API service: ``POST /fetch`` starts one, ``GET /fetch/{id}`` reports it.

A job fetches the chosen bands of the chosen items (by id, or by a search), clipped to an
optional area, into the service's cache, in a background thread; fetched COGs are served
from ``GET /files/{collection}/{item}/{name}``. Anything that writes needs the API key;
reading is open unless the service is started with ``--private`` (``serving/auth.py``).
Errors are answered by their kind (``serving/errors.py``): a bad request 400, no such item,
job or file 404.
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from pydantic import Field

from eoengine.config.query import SearchFields, SearchQuery
from eoengine.errors import EOError, Invalid, NotFound, first_line
from eoengine.serving.auth import KeyedRoute
from eoengine.sourcing.catalog import CatalogIndex, in_asked_order


class FetchRequest(SearchFields):
    """What to fetch: the items a search finds (by ids, or any filter), bands; the search's area clips them."""

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


def fetch_routers(index: CatalogIndex, cache: Path, read_route: type[APIRoute] = APIRoute) -> list[APIRouter]:
    """The fetch job routes: ``POST /fetch`` (needs the API key), ``GET /fetch/{id}`` and ``GET /files/...``.

    Args:
        index: The catalog jobs fetch items of.
        cache: Where jobs write their COGs.
        read_route: The route class of the reading routes (``KeyedRoute`` for a private service).

    Returns:
        The routers: writes, then reads.

    """
    from eoengine.sourcing.fetch import fetch_item

    jobs: dict[str, Job] = {}
    lock = threading.Lock()
    writes, reads = APIRouter(route_class=KeyedRoute), APIRouter(route_class=read_route)

    def run(job: Job, items: list[pystac.Item], bands: list[str], query: SearchQuery) -> None:
        job.status = "running"
        area = query.area()
        try:
            for item in items:
                got = fetch_item(item, bands, cache, area)
                with lock:
                    job.done += 1
                    if got.path is not None:
                        job.files.append(str(got.path.relative_to(cache)))
            job.status = "succeeded"
        except EOError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a job must end failed, never stay "running"
            job.status, job.error = "failed", f"{type(exc).__name__}: {first_line(exc)}"

    @writes.post("/fetch", status_code=202, summary="Start a fetch job (needs the API key)")
    async def start(request: Request, req: FetchRequest) -> Any:
        query = req.search_query()  # a BadQuery is a 400
        records = in_asked_order(index.search(query), req)[: query.limit]
        if not records:
            raise NotFound("no items match", "check the ids, collections, bbox and datetime (see /search)")
        items = [pystac.Item.from_dict(r.item) for r in records]
        from eoengine.sourcing.fetch import band_locations

        for item in items:
            band_locations(item, req.bands)  # an item without a band: its EOError is a 400
        job = Job(uuid.uuid4().hex[:12], items=len(items))
        jobs[job.id] = job
        # the job reports its progress to the server's reporter, as a request's thread does
        threading.Thread(target=contextvars.copy_context().run, args=(run, job, items, req.bands, query), daemon=True).start()
        return {"id": job.id, "status": job.status, "links": [{"rel": "status", "href": f"{request.base_url}fetch/{job.id}"}]}

    @reads.get("/fetch/{job_id}", summary="A fetch job's status and files")
    async def status(request: Request, job_id: str) -> Any:
        job = jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job '{job_id}'", "start one with POST /fetch; jobs last as long as the service")
        return {"id": job.id, "status": job.status, "items": job.items, "done": job.done, "error": job.error,
                "files": [f"{request.base_url}files/{f}" for f in job.files]}

    @reads.get("/files/{path:path}", summary="A fetched COG")
    async def files(path: str) -> Any:
        if "\0" in path:
            raise Invalid("a file path cannot hold a NUL byte", "use the file links of GET /fetch/{id}")
        target = cached_file(cache, path)
        if target is None:
            raise NotFound(f"no file '{path[:200]}'", "use the file links of GET /fetch/{id}")
        return FileResponse(target, media_type="image/tiff; application=geotiff; profile=cloud-optimized")

    return [writes, reads]


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
