"""Issue 10: ``source serve`` on unusual requests — odd ``/files/`` paths, and the query extension."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import httpx
import pystac
import pytest
from conftest import serve_in_thread

from eoengine.serving.stac_api import create_stac_app
from eoengine.sourcing.catalog import CatalogIndex

CLOUDS = {"clear": 5.0, "hazy": 30.0, "cloudy": 80.0}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("i10stac")
    extent = pystac.Extent(pystac.SpatialExtent([[10, 50, 11, 51]]),
                           pystac.TemporalExtent([[datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)]]))
    col = pystac.Collection("scenes", "three scenes with cloud cover", extent, license="other")
    geom = {"type": "Polygon", "coordinates": [[[10, 50], [11, 50], [11, 51], [10, 51], [10, 50]]]}
    for day, (name, cloud) in enumerate(CLOUDS.items(), start=1):
        col.add_item(pystac.Item(name, geom, [10, 50, 11, 51], datetime(2024, 1, day, tzinfo=UTC),
                                 {"eo:cloud_cover": cloud, "platform": f"sat-{name}"}))
    col.normalize_hrefs(str(root / "scenes"))
    col.save(pystac.CatalogType.SELF_CONTAINED)
    cache = root / "cache"
    (cache / "scenes" / "clear").mkdir(parents=True)
    url, server = serve_in_thread(create_stac_app(CatalogIndex(root), cache=cache, api_key="k3y"))
    yield url
    server.should_exit = True  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/files/a%00b.tif", "/files/scenes/%00/x.tif", "/files/" + "a" * 300 + ".tif",
                                  "/files/scenes/" + "b" * 5000 + "/x.tif"])
def test_odd_file_paths_are_json_4xx(api: str, path: str) -> None:
    r = httpx.get(api + path)
    assert r.status_code in (400, 404), (path, r.status_code, r.text[:200])
    assert r.json()["description"]


def test_pystac_client_queries_without_a_conformance_warning(api: str) -> None:
    from pystac_client import Client

    client = Client.open(api)
    assert client.conforms_to("QUERY")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # DoesNotConformTo would fail the test
        for method in ("GET", "POST"):
            low = client.search(query={"eo:cloud_cover": {"lte": 30}}, method=method)
            assert [i.id for i in low.items()] == ["clear", "hazy"]
            assert [i.id for i in client.search(query=["eo:cloud_cover>50"], method=method).items()] == ["cloudy"]
            named = client.search(query={"platform": {"in": ["sat-clear", "sat-cloudy"]}}, method=method)
            assert [i.id for i in named.items()] == ["clear", "cloudy"]


def test_query_paging_keeps_the_filter_and_bad_queries_are_400(api: str) -> None:
    body = {"query": {"eo:cloud_cover": {"gte": 10}}, "limit": 1}
    first = httpx.post(f"{api}/search", json=body).json()
    assert first["numberMatched"] == 2 and [f["id"] for f in first["features"]] == ["hazy"]
    nxt = next(link for link in first["links"] if link["rel"] == "next")
    second = httpx.post(nxt["href"], json=nxt["body"]).json()
    assert [f["id"] for f in second["features"]] == ["cloudy"]
    for params in ({"query": "{oops"}, {"query": '{"eo:cloud_cover": {"below": 3}}'}, {"query": "[1]"}):
        r = httpx.get(f"{api}/search", params=params)
        assert r.status_code == 400 and r.json()["description"], r.text


def test_the_search_cli_filters_cloud_cover_on_the_served_api(api: str, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import run_cli

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = run_cli(["source", "search", api, "--max-cloud", "30"], capsys)
    assert code == 0, err
    assert "2 item(s)" in out and "cloudy" not in out
