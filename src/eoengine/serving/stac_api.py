"""A STAC API over a local catalog (``eoengine source serve``): core, collections, item search.

Implements STAC API 1.0 landing page, conformance, ``/collections``, items per collection,
single items, and ``/search`` by GET and POST (bbox, intersects, datetime, collections,
ids, limit, and ``query`` on item properties — the query extension, so clients such as
pystac-client send ``--max-cloud`` filters without a conformance warning) with ``next`` links that carry a page token. Every bad parameter is a 400;
unknown collections and items are 404. Errors are the one body of ``serving/errors.py``,
``{"error", "fix"}``, with the STAC API's ``code`` and ``description`` added. Results per
page are capped at ``max_limit``. With ``private``, reading needs the API key too
(``serving/auth.py``); the OpenAPI pages stay open.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.routing import APIRoute

from eoengine.config.query import BadQuery, SearchFields, SearchQuery
from eoengine.errors import NotFound
from eoengine.serving.auth import KeyedRoute
from eoengine.serving.errors import ErrorMapper, error_body
from eoengine.sourcing.catalog import CatalogIndex, in_asked_order

STAC_VERSION = "1.0.0"
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0-rc.1/item-search#query",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
GEOJSON = "application/geo+json"


class SearchBody(SearchFields):
    """The body of ``POST /search``: a search query (``limit`` is the page size) and the page token.

    Items come in the catalog's order (datetime, then id) unless ``sort`` or ``descending`` is given.
    """

    token: str | None = None


def stac_error_body(status: int, problem: str, fix: str) -> dict[str, Any]:
    """The error body: ``{"error", "fix"}`` with the STAC API's ``code`` (e.g. ``BadRequest``) and ``description``.

    Args:
        status: The HTTP status.
        problem: What is wrong.
        fix: What to do about it.

    Returns:
        The body.

    """
    return error_body(status, problem, fix) | {"code": HTTPStatus(status).phrase.replace(" ", ""), "description": problem}


def _token(token: str | None) -> int:
    if token is None:
        return 0
    if not token.startswith("next:") or not token[5:].isdigit():
        raise BadQuery(f"token '{token}' is not one this server issued")
    return int(token[5:])


def create_stac_app(index: CatalogIndex, title: str = "eoengine STAC API", max_limit: int = 1000,
                    cache: Path | None = None, api_key: str | None = None, private: bool = False) -> FastAPI:
    """The STAC API application over ``index``; with ``cache``, fetch jobs too.

    Args:
        index: The catalog to serve.
        title: The landing page's title.
        max_limit: The most items a page holds.
        cache: Where fetch jobs write (None: no fetch jobs).
        api_key: The key writes need (None: writes are refused).
        private: Reading needs the key as well.

    Returns:
        The application.

    """
    app = FastAPI(title=title, version=STAC_VERSION, description="STAC API over a local catalog (eoengine)")
    app.state.api_key = api_key
    ErrorMapper(invalid_status=400, body=stac_error_body).install(app)
    reads = APIRouter(route_class=KeyedRoute if private else APIRoute)
    if cache is not None:
        from eoengine.serving.fetch_jobs import fetch_routers

        for router in fetch_routers(index, cache, reads.route_class):
            app.include_router(router)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def item_links(request: Request, item: dict[str, Any], collection: str) -> dict[str, Any]:
        b = base(request)
        return item | {"collection": collection, "links": [
            {"rel": "self", "href": f"{b}/collections/{collection}/items/{item['id']}", "type": GEOJSON},
            {"rel": "parent", "href": f"{b}/collections/{collection}", "type": "application/json"},
            {"rel": "collection", "href": f"{b}/collections/{collection}", "type": "application/json"},
            {"rel": "root", "href": f"{b}/", "type": "application/json"}]}

    def collection_doc(request: Request, cid: str) -> dict[str, Any]:
        b = base(request)
        return index.collections[cid] | {"links": [
            {"rel": "self", "href": f"{b}/collections/{cid}", "type": "application/json"},
            {"rel": "items", "href": f"{b}/collections/{cid}/items", "type": GEOJSON},
            {"rel": "parent", "href": f"{b}/", "type": "application/json"},
            {"rel": "root", "href": f"{b}/", "type": "application/json"}]}

    def page(request: Request, records: list[Any], limit: int, token: str | None, post_body: dict[str, Any] | None) -> dict[str, Any]:
        if limit < 1:
            raise BadQuery("limit must be at least 1")
        limit = min(limit, max_limit)
        start = _token(token)
        chosen = records[start:start + limit]
        links: list[dict[str, Any]] = [{"rel": "root", "href": f"{base(request)}/", "type": "application/json"}]
        if start + limit < len(records):
            nxt = f"next:{start + limit}"
            if post_body is None:
                query = dict(request.query_params) | {"token": nxt}
                links.append({"rel": "next", "href": f"{str(request.url).split('?')[0]}?{urlencode(query)}", "type": GEOJSON,
                              "method": "GET"})
            else:
                links.append({"rel": "next", "href": str(request.url), "type": GEOJSON, "method": "POST",
                              "body": post_body | {"token": nxt}, "merge": False})
        return {"type": "FeatureCollection", "features": [item_links(request, r.item, r.collection) for r in chosen],
                "links": links, "numberMatched": len(records), "numberReturned": len(chosen)}

    @reads.get("/", summary="Landing page")
    async def landing(request: Request) -> dict[str, Any]:
        b = base(request)
        links = [{"rel": "self", "href": f"{b}/", "type": "application/json"},
                 {"rel": "root", "href": f"{b}/", "type": "application/json"},
                 {"rel": "conformance", "href": f"{b}/conformance", "type": "application/json"},
                 {"rel": "data", "href": f"{b}/collections", "type": "application/json"},
                 {"rel": "search", "href": f"{b}/search", "type": GEOJSON, "method": "GET"},
                 {"rel": "search", "href": f"{b}/search", "type": GEOJSON, "method": "POST"},
                 {"rel": "service-desc", "href": f"{b}/openapi.json", "type": "application/vnd.oai.openapi+json;version=3.0"}]
        links += [{"rel": "child", "href": f"{b}/collections/{c}", "type": "application/json"} for c in index.collections]
        return {"type": "Catalog", "stac_version": STAC_VERSION, "id": "eoengine", "title": title,
                "description": f"{len(index.records)} items in {len(index.collections)} collection(s)",
                "conformsTo": CONFORMANCE, "links": links}

    @reads.get("/conformance", summary="Conformance classes")
    async def conformance() -> dict[str, Any]:
        return {"conformsTo": CONFORMANCE}

    @reads.get("/collections", summary="Collections")
    async def collections(request: Request) -> dict[str, Any]:
        return {"collections": [collection_doc(request, c) for c in index.collections],
                "links": [{"rel": "self", "href": f"{base(request)}/collections", "type": "application/json"}]}

    @reads.get("/collections/{cid}", summary="One collection")
    async def collection(request: Request, cid: str) -> Any:
        if cid not in index.collections:
            raise NotFound(f"no collection '{cid}'", "see /collections for the collections")
        return collection_doc(request, cid)

    @reads.get("/collections/{cid}/items", summary="Items of a collection")
    async def items(request: Request, cid: str, bbox: str | None = None, datetime: str | None = None,
                    limit: int = Query(10), token: str | None = None) -> Any:
        if cid not in index.collections:
            raise NotFound(f"no collection '{cid}'", "see /collections for the collections")
        found = index.search(SearchQuery.of({"collections": [cid], "bbox": bbox, "datetime": datetime}))
        return page(request, found, limit, token, None)

    @reads.get("/collections/{cid}/items/{iid}", summary="One item")
    async def item(request: Request, cid: str, iid: str) -> Any:
        found = index.item(cid, iid) if cid in index.collections else None
        if found is None:
            raise NotFound(f"no item '{iid}' in collection '{cid}'", f"search for items: /collections/{cid}/items or /search")
        return item_links(request, found, cid)

    @reads.get("/search", summary="Item search (GET)")
    async def search_get(request: Request, collections: str | None = None, ids: str | None = None, bbox: str | None = None,
                         intersects: str | None = None, datetime: str | None = None, limit: int = Query(10),
                         token: str | None = None, query: str | None = None) -> Any:
        wanted = SearchQuery.of({"collections": collections, "ids": ids, "bbox": bbox, "intersects": intersects,
                                 "datetime": datetime, "query": query})
        return page(request, index.search(wanted), limit, token, None)

    @reads.post("/search", summary="Item search (POST)")
    async def search_post(request: Request, body: SearchBody) -> Any:
        found = in_asked_order(index.search(body.search_query()), body)
        again = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"token"}) | {"limit": body.limit}
        return page(request, found, body.limit, body.token, again)

    app.include_router(reads)
    return app
