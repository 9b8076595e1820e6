"""One query model: a config, an HTTP body and CLI flags give one SearchQuery; map_area maps what it finds."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from conftest import OGT, run_cli, save_config, saved_package, serve_in_thread, tiny_config

from eoengine.config.query import BadQuery, SearchQuery

S1999 = "LE70220491999322EDC01_stack"
S2002 = "LE70220492002106EDC00_stack"
AREA = [-93.34, 15.70, -93.30, 15.74]
KEY = "k3y"
AUTH = {"X-API-Key": KEY}
QUERY: dict[str, Any] = {"bbox": AREA, "datetime": "1999-01-01T00:00:00Z/2003-01-01T00:00:00Z", "collections": ["landsat-7"],
                         "query": {"proj:code": {"eq": "EPSG:32615"}}, "limit": 5, "sort": "datetime", "descending": True}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eoengine.sourcing.scan import scan_folder

    root = tmp_path_factory.mktemp("i11query") / "catalog"
    scan_folder(OGT, root / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    return root


@pytest.fixture(scope="module")
def stac(catalog: Path) -> str:
    from eoengine.serving.stac_api import create_stac_app
    from eoengine.sourcing.catalog import CatalogIndex

    url, server = serve_in_thread(create_stac_app(CatalogIndex(catalog), cache=catalog.parent / "stac-cache", api_key=KEY))
    yield url
    server.should_exit = True  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def package(catalog: Path) -> Any:
    from eoengine.models.package import load_package

    return load_package(saved_package(catalog.parent / "model"))


@pytest.fixture(scope="module")
def model_server(catalog: Path, package: Any) -> str:
    from eoengine.serving.app import Settings, create_app

    settings = Settings(api_key=KEY, model_name="m", engine="torch", catalog=str(catalog), cache=str(catalog.parent / "cache"))
    url, server = serve_in_thread(create_app(package, settings))
    yield url
    server.should_exit = True  # type: ignore[attr-defined]


def source_config(tmp: Path, catalog: Path, source: dict[str, Any], name: str = "eoengine.yaml") -> Path:
    cfg = tiny_config(tmp)
    cfg["imagery"]["scenes"] = []
    cfg["imagery"]["source"] = {"catalog": str(catalog)} | source
    return save_config(tmp, cfg, name)


def test_a_config_a_body_and_flags_give_one_query_and_the_same_items(catalog: Path, stac: str, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.cli.source import flags_query
    from eoengine.config.load import load_config
    from eoengine.serving.routes.predict import AOIRequest
    from eoengine.serving.stac_api import SearchBody
    from eoengine.sourcing.search import search

    source = load_config(source_config(tmp_path, catalog, QUERY)).imagery.source  # type: ignore[union-attr]
    assert source is not None
    from_config = source.search_query()
    from_body = SearchBody.model_validate(QUERY).search_query()
    from_aoi_body = AOIRequest.model_validate(QUERY).search_query()
    from_flags = flags_query(bbox=",".join(map(str, AREA)), datetime=QUERY["datetime"], collection=["landsat-7"],
                             query=json.dumps(QUERY["query"]), limit=5, sort="datetime", descending=True)
    assert type(from_config) is SearchQuery and from_config == from_body == from_aoi_body == from_flags

    found = [i.id for i in search(str(catalog), from_config)]
    assert found == [S2002, S1999]  # newest first
    served = httpx.post(f"{stac}/search", json=QUERY).json()
    assert [f["id"] for f in served["features"]] == found
    out = tmp_path / "found.json"
    code, _, err = run_cli(["source", "search", str(catalog), "--bbox", ",".join(map(str, AREA)), "--datetime", QUERY["datetime"],
                            "--collection", "landsat-7", "--query", json.dumps(QUERY["query"]), "--limit", "5",
                            "--descending", "--out", str(out)], capsys)
    assert code == 0, err
    assert [f["id"] for f in json.loads(out.read_text())["features"]] == found
    unsorted = httpx.post(f"{stac}/search", json={k: v for k, v in QUERY.items() if k not in ("sort", "descending")}).json()
    assert [f["id"] for f in unsorted["features"]] == [S1999, S2002]  # no sort asked: the catalog's order, as before
    cloudy = httpx.post(f"{stac}/search", json=QUERY | {"max_cloud": 50}).json()
    assert cloudy["features"] == []  # the scanned items record no eo:cloud_cover, so none is known to be clear


def test_a_fetch_job_takes_the_whole_query(stac: str) -> None:
    import time

    corner = [[-93.34, 15.70], [-93.33, 15.70], [-93.33, 15.71], [-93.34, 15.70]]
    body = {"intersects": {"type": "Polygon", "coordinates": [corner]}, "datetime": "1999-01-01T00:00:00Z/2000-01-01T00:00:00Z",
            "bands": ["red"]}
    started = httpx.post(f"{stac}/fetch", json=body, headers=AUTH)
    assert started.status_code == 202, started.text
    for _ in range(100):
        state = httpx.get(f"{stac}/fetch/{started.json()['id']}").json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert state["status"] == "succeeded" and state["items"] == 1, state
    tif = httpx.get(state["files"][0]).content
    with rasterio.MemoryFile(tif) as mem, mem.open() as ds:
        assert ds.count == 1 and ds.width < 50 and ds.height < 50  # clipped to the triangle's corner of the scene


def test_a_source_config_records_what_it_recorded_before(catalog: Path, tmp_path: Path) -> None:
    """The query fields a source config gained stay out of its dump at their defaults, so dataset versions hold."""
    from eoengine.config.load import load_config
    from eoengine.sourcing.search import search

    before = {"catalog", "collections", "bbox", "aoi", "datetime", "max_cloud", "query", "limit", "cache", "storage"}
    plain = load_config(source_config(tmp_path, catalog, {"bbox": AREA})).imagery.source  # type: ignore[union-attr]
    assert plain is not None and set(plain.model_dump(mode="json")) == before
    chosen = load_config(source_config(tmp_path, catalog, {"ids": [S1999], "descending": True}, "ids.yaml")).imagery.source  # type: ignore[union-attr]
    assert chosen is not None and set(chosen.model_dump(mode="json")) == before | {"ids", "descending"}
    assert [i.id for i in search(str(catalog), chosen.search_query())] == [S1999]


BAD = [
    ({"bbox": [-93.34, 15.70, -93.30]}, ["--bbox", "-93.34,15.70,-93.30"], "bbox must be 4 (or 6) numbers, got 3"),
    ({"bbox": AREA, "query": {"platform": {"like": "landsat"}}}, ["--bbox", ",".join(map(str, AREA)), "--query",
     '{"platform": {"like": "landsat"}}'], "unknown query operator(s) ['like'] for 'platform'"),
    ({"bbox": AREA, "intersects": {"type": "Point", "coordinates": [-93.3, 15.7]}},
     ["--bbox", ",".join(map(str, AREA)), "--aoi", '{"type": "Point", "coordinates": [-93.3, 15.7]}'], None),
]


@pytest.mark.parametrize(("body", "flags", "message"), BAD, ids=["bbox", "operator", "two areas"])
def test_a_bad_query_is_the_same_clear_error_in_every_route(body: dict[str, Any], flags: list[str], message: str | None,
                                                            catalog: Path, stac: str, model_server: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.config.load import load_config
    from eoengine.errors import ConfigError

    message = message or "give bbox or intersects, not both"
    with pytest.raises(BadQuery, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        SearchQuery.of(body)
    with pytest.raises(ConfigError) as raised:
        load_config(source_config(tmp_path, catalog, body))
    assert any(message in p for p in raised.value.problems), raised.value.problems
    code, _, err = run_cli(["source", "search", str(catalog), *flags], capsys)
    assert code == 2 and (message in err or "give one of --bbox, --aoi and --place" in err), err
    for route, answer in (("/search", httpx.post(f"{stac}/search", json=body)),
                          ("/fetch", httpx.post(f"{stac}/fetch", json=body | {"bands": ["red"]}, headers=AUTH))):
        assert answer.status_code == 400 and answer.json()["description"].startswith(message), (route, answer.text)
    if "intersects" not in body:  # /predict/aoi calls the geometry 'geometry' and refuses two areas itself
        aoi = httpx.post(f"{model_server}/predict/aoi", json=body, headers=AUTH)
        assert aoi.status_code == 400 and aoi.json()["error"].startswith(message) and aoi.json()["fix"], aoi.text


def test_map_area_maps_the_newest_or_the_chosen_scene(catalog: Path, package: Any, model_server: str, tmp_path: Path) -> None:
    from eoengine.inference.area import NoImagery, map_area
    from eoengine.inference.predict import Predictor

    model = Predictor(package, engine="torch")
    cache = catalog.parent / "cache"
    held = []

    @contextmanager
    def slot() -> Any:
        held.append("in")
        yield
        held.append("out")

    newest = map_area(SearchQuery(bbox=AREA), model, str(catalog), cache, tmp_path / "newest.tif", slot=slot)
    assert newest.scene_ids == [S2002] and newest.datetimes == ["2002-04-16T00:00:00+00:00"] and held == ["in", "out"]
    with rasterio.open(newest.map) as ds:
        assert ds.crs.to_epsg() == 32615 and 100 < ds.width < 160 and (ds.read(1) != 255).mean() > 0.9
        pixels = ds.read()
    older = map_area(SearchQuery(bbox=AREA, datetime="1999-01-01T00:00:00Z/2000-01-01T00:00:00Z"), model, str(catalog), cache,
                     tmp_path / "older.tif")
    chosen = map_area(SearchQuery(bbox=AREA, ids=[S1999]), model, str(catalog), cache, tmp_path / "chosen.tif")
    assert older.scene_ids == chosen.scene_ids == [S1999] and older.scenes == chosen.scenes
    with pytest.raises(NoImagery, match="no imagery for that area"):
        map_area(SearchQuery(bbox=[10, 50, 11, 51]), model, str(catalog), cache, tmp_path / "none.tif")
    with pytest.raises(NoImagery, match=r"no scene \['nope'\]"):
        map_area(SearchQuery(bbox=AREA, ids=["nope"]), model, str(catalog), cache, tmp_path / "none.tif")
    with pytest.raises(BadQuery, match=r"takes 1 date\(s\); the request gives 2"):
        map_area(SearchQuery(bbox=AREA), model, str(catalog), cache, tmp_path / "none.tif", datetimes=["2000", "2001"])
    with pytest.raises(BadQuery, match="unknown collection"):
        map_area(SearchQuery(bbox=AREA, collections=["nope"]), model, str(catalog), cache, tmp_path / "none.tif")
    assert not (tmp_path / "none.tif").exists()

    answer = httpx.post(f"{model_server}/predict/aoi", json={"bbox": AREA}, headers=AUTH, timeout=120)
    assert answer.status_code == 200 and answer.headers["x-eoengine-item"] == S2002, answer.text
    (tmp_path / "http.tif").write_bytes(answer.content)
    with rasterio.open(tmp_path / "http.tif") as ds:
        assert np.array_equal(ds.read(), pixels)  # the route is map_area
    picked = httpx.post(f"{model_server}/predict/aoi", json={"bbox": AREA, "ids": [S1999]}, headers=AUTH, timeout=120)
    assert picked.status_code == 200 and picked.headers["x-eoengine-item"] == S1999, picked.text


def test_area_maps_and_uploads_share_the_map_slots_without_waiting_on_each_other(catalog: Path, package: Any,
                                                                                 tmp_path: Path) -> None:
    """With one map slot, many /predict/aoi requests waiting for it do not stop an upload that holds it."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import four_band_stack

    from eoengine.serving.app import Settings, create_app

    settings = Settings(api_key=KEY, model_name="m", engine="torch", catalog=str(catalog), cache=str(catalog.parent / "cache"),
                        max_concurrent_maps=1)
    url, server = serve_in_thread(create_app(package, settings))
    stack = four_band_stack(tmp_path / "scene4.tif").read_bytes()
    try:
        def aoi(_: int) -> int:
            return httpx.post(f"{url}/predict/aoi", json={"bbox": AREA}, headers=AUTH, timeout=120).status_code

        def upload(_: int) -> int:
            return httpx.post(f"{url}/predict", files={"file": ("s.tif", stack)}, headers=AUTH, timeout=120).status_code

        assert aoi(0) == 200  # the scene is in the cache: concurrent fetches of one uncached scene race (fetch_item)
        with ThreadPoolExecutor(24) as pool:  # more waiting than the loop's default thread pool holds
            answers = [pool.submit(aoi, i) for i in range(20)]
            uploads = [pool.submit(upload, i) for i in range(4)]
            assert [a.result(timeout=120) for a in answers + uploads] == [200] * 24
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
