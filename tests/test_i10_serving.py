"""Issue 10: the model server on requests nobody tried — body caps, one error body, memory."""

from __future__ import annotations

import gc
import json
import select
import socket
import tempfile
import tracemalloc
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import serve_in_thread, train_tiny_unet

from eoengine.models.package import load_package
from eoengine.serving.app import Settings, create_app

KEY = "i10-key"
AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(train_tiny_unet(tmp_path_factory.mktemp("i10serve")).model_path)


@pytest.fixture(scope="module")
def server(model: Path) -> str:
    settings = Settings(api_key=KEY, model_name="m", engine="torch", max_upload_mb=5, max_json_mb=1)
    url, srv = serve_in_thread(create_app(load_package(model), settings))
    yield url
    srv.should_exit = True  # type: ignore[attr-defined]


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder the server (in this process) spools to."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _raw(url: str, head: str, chunks: int, chunk: bytes) -> tuple[int, dict, int]:
    """Send ``head``, then up to ``chunks`` chunked-encoded pieces, stopping when the server answers.

    Returns (status, JSON body, body bytes sent before the answer came).
    """
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode())
        for _ in range(chunks):
            if select.select([s], [], [], 0)[0]:
                break
            try:
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except OSError:
                break
            sent += len(chunk)
        else:
            s.sendall(b"0\r\n\r\n")
        status, body = _answer(s)
    return status, body, sent


def _answer(s: socket.socket) -> tuple[int, dict]:
    """Read one HTTP answer (status, JSON body) from ``s``."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        more = s.recv(65536)
        if not more:
            break
        data += more
    header, body = data.split(b"\r\n\r\n", 1)
    return int(header.split()[1]), json.loads(body[:_length(data)])


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def _head(path: str, extra: str) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n{extra}\r\n"


def test_an_upload_declared_over_the_limit_is_refused_before_its_body(server: str, spool: Path) -> None:
    head = _head("/predict", "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 314572800\r\n")
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode() + b"--b\r\n" + b"\0" * 4096)  # 4 KB of the declared 300 MB
        status, body = _answer(s)  # times out if the server waits for the body
    assert status == 413
    assert set(body) == {"error", "fix"} and "300.0 MB exceeds 5 MB, the upload limit" in body["error"]
    assert not list(spool.iterdir())


def test_a_streamed_upload_stops_at_the_limit(server: str, spool: Path) -> None:
    head = _head("/predict", "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n")
    piece = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.tif\"\r\n\r\n".ljust(2**16, b"\0")
    status, body, sent = _raw(server, head, 300 * 16, piece)  # up to 300 MB
    assert status == 413 and set(body) == {"error", "fix"} and "exceeds 5 MB, the upload limit" in body["error"]
    assert sent < 40 * 2**20  # the server stopped reading near 5 MB, not after 300
    assert not list(spool.iterdir())


def test_json_bodies_are_capped_declared_or_streamed(server: str) -> None:
    big = {"instances": [np.full((4, 256, 256), 1234.5678).tolist()]}  # about 2.9 MB of JSON; the cap is 1 MB
    r = httpx.post(f"{server}/v1/models/m:predict", json=big, headers=AUTH)
    assert r.status_code == 413 and "exceeds 1 MB, the limit for JSON bodies" in r.json()["error"] and "--max-json-mb" in r.json()["fix"]
    head = _head("/v1/models/m:predict", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
    status, body, sent = _raw(server, head, 2000, b'{"instances": [' + b"1.0, " * 13000)
    assert status == 413 and "1 MB, the limit for JSON bodies" in body["error"] and sent < 20 * 2**20
    small = {"instances": [np.full((4, 16, 16), 1234.5).tolist()]}
    assert httpx.post(f"{server}/v1/models/m:predict", json=small, headers=AUTH).status_code == 200


def test_a_large_json_request_leaves_nothing_behind(model: Path) -> None:
    settings = Settings(api_key=KEY, model_name="m", engine="torch", max_json_mb=20)
    url, srv = serve_in_thread(create_app(load_package(model), settings))
    try:
        body = json.dumps({"instances": [np.full((4, 512, 512), 1234.5).tolist()]})  # 8 MB of JSON
        headers = AUTH | {"content-type": "application/json"}
        httpx.post(f"{url}/v1/models/m:predict", content=json.dumps({"instances": [[[[1.0]]] * 4]}), headers=headers)
        tracemalloc.start()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        r = httpx.post(f"{url}/v1/models/m:predict", content=body, headers=headers, timeout=120)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1
        del r
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert kept < 2**20, f"{kept / 2**20:.1f} MB still held after the request"
    finally:
        srv.should_exit = True  # type: ignore[attr-defined]


def test_every_error_is_one_json_body_with_its_documented_code(server: str) -> None:
    chip = np.zeros((4, 8, 8)).tolist()
    cases = [
        ("GET", "/nowhere", {"headers": AUTH}, 404),
        ("GET", "/predict", {"headers": AUTH}, 405),
        ("DELETE", "/healthz", {}, 405),
        ("GET", "/readyz", {"headers": {}}, 200),
        ("GET", "/metrics", {}, 401),
        ("POST", "/v1/models/m:predict", {"content": b"{not json", "headers": AUTH | {"content-type": "application/json"}}, 422),
        ("POST", "/v1/models/m:predict", {"json": {"nothing": 1}, "headers": AUTH}, 422),
        ("POST", "/v1/models/m:predict", {"json": {"instances": [np.zeros((3, 8, 8)).tolist()]}, "headers": AUTH}, 422),
        ("POST", "/v1/models/m:predict", {"json": {"instances": [{"blue": [[1]]}]}, "headers": AUTH}, 400),
        ("POST", "/v1/models/m:predict", {"json": {"instances": [chip] * 65}, "headers": AUTH}, 413),
        ("POST", "/v1/models/x:predict", {"json": {"instances": [chip]}, "headers": AUTH}, 404),
        ("POST", "/predict", {"data": {"other": "1"}, "headers": AUTH}, 422),
        ("POST", "/predict", {"content": b"--x\r\nbroken", "headers": AUTH | {"content-type": "multipart/form-data; boundary=x"}}, 422),
        ("POST", "/predict/aoi", {"json": {"bbox": "west"}, "headers": AUTH}, 422),
    ]
    for method, path, kwargs, status in cases:
        r = httpx.request(method, server + path, **kwargs)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        if status >= 400:
            body = r.json()
            assert set(body) == {"error", "fix"} and body["error"] and body["fix"], (path, body)
    assert httpx.get(f"{server}/predict", headers=AUTH).headers["allow"] == "POST"


def _colour_fractions(rgba: np.ndarray, keep: np.ndarray) -> dict[tuple[int, ...], float]:
    colours, counts = np.unique(rgba[:3, keep].T, axis=0, return_counts=True)
    return {tuple(int(v) for v in c): n / keep.sum() for c, n in zip(colours, counts, strict=True)}


def test_a_zoomed_out_tile_shows_the_full_resolution_map(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import morecantile
    import rasterio
    from conftest import four_band_stack, run_cli
    from rasterio.io import MemoryFile
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, reproject, transform_bounds
    from rio_tiler.io import Reader

    stack = four_band_stack(tmp_path / "scene4.tif")
    code, _, err = run_cli(["predict", str(model), str(stack), "--out", str(tmp_path / "map.tif"), "--engine", "torch"], capsys)
    assert code == 0, err
    settings = Settings(api_key=KEY, model_name="m", engine="torch", tiles_scene=[str(stack)])
    url, srv = serve_in_thread(create_app(load_package(model), settings))
    try:
        with rasterio.open(stack) as ds:
            w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        with Reader(str(stack)) as r:
            z = r.maxzoom - 2  # two levels out: 4x4 native pixels per tile pixel
        tms = morecantile.tms.get("WebMercatorQuad")
        t = tms.tile((w + e) / 2, (s + n) / 2, z)
        got = httpx.get(f"{url}/tiles/{z}/{t.x}/{t.y}.png", headers=AUTH, timeout=300)
        assert got.status_code == 200, got.text
        with MemoryFile(got.content) as mem, mem.open() as png:
            tile = png.read()
        with rasterio.open(tmp_path / "map.tif") as ds:
            cmap, values, nodata = ds.colormap(1), ds.read(1), ds.nodata
            ref = np.full((256, 256), nodata, dtype=values.dtype)
            b = tms.xy_bounds(t)
            reproject(values, ref, src_transform=ds.transform, src_crs=ds.crs, src_nodata=nodata, dst_nodata=nodata,
                      dst_transform=from_bounds(b.left, b.bottom, b.right, b.top, 256, 256), dst_crs="EPSG:3857",
                      resampling=Resampling.mode)
        expected = np.moveaxis(np.array([cmap[int(v)] for v in ref.ravel()]).reshape(256, 256, 4), -1, 0)
        keep = (tile[3] == 255) & (ref != nodata)
        assert keep.sum() > 2000  # the scene covers a good part of the tile
        have, want = _colour_fractions(tile, keep), _colour_fractions(expected, keep)
        for colour in set(have) | set(want):
            assert abs(have.get(colour, 0) - want.get(colour, 0)) < 0.05, (colour, have, want)
        too_far = httpx.get(f"{url}/tiles/{z - 2}/{t.x // 4}/{t.y // 4}.png", headers=AUTH)
        assert too_far.status_code == 404 and "native pixels per tile pixel" in too_far.json()["error"]
    finally:
        srv.should_exit = True  # type: ignore[attr-defined]


S1999 = "LE70220491999322EDC01_stack"
S2002 = "LE70220492002106EDC00_stack"
AREA = [-93.34, 15.70, -93.30, 15.74]


@pytest.fixture(scope="module")
def two_date_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model trained on two dates of the sample scene, and a catalog of both dates."""
    from conftest import OGT, save_config, tiny_config

    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.sourcing.scan import scan_folder
    from eoengine.training.train import train

    tmp = tmp_path_factory.mktemp("i10dates")
    dates = [{"datetime": d, "stack": str(OGT / f"{s}.gtif"), "stack_indexes": [1, 2, 3, 4]}
             for d, s in (("1999-11-18", S1999), ("2002-04-16", S2002))]
    cfg = load_config(save_config(tmp, tiny_config(tmp, **{"imagery.scenes": [{"id": "pair", "timesteps": dates}],
                                                           "features": {"indices": []}})))
    build_dataset(cfg)
    model = Path(train(cfg).model_path)
    scan_folder(OGT, tmp / "catalog" / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    return model, tmp


def test_predict_aoi_maps_one_scene_per_date_for_a_multi_date_model(two_date_catalog: tuple[Path, Path]) -> None:
    model, tmp = two_date_catalog
    pkg = load_package(model)
    assert pkg.meta["timesteps"] == 2
    settings = Settings(api_key=KEY, model_name="m", engine="torch", catalog=str(tmp / "catalog"), cache=str(tmp / "cache"))
    url, srv = serve_in_thread(create_app(pkg, settings))
    try:
        windows = ["1999-01-01T00:00:00Z/2000-01-01T00:00:00Z", "2002-01-01T00:00:00Z/2003-01-01T00:00:00Z"]
        r = httpx.post(f"{url}/predict/aoi", json={"bbox": AREA, "datetimes": windows}, headers=AUTH, timeout=300)
        assert r.status_code == 200, r.text
        assert r.headers["x-eoengine-item"] == f"{S1999},{S2002}"  # the newest scene of each window, in date order
        (tmp / "pair.tif").write_bytes(r.content)
        import rasterio

        with rasterio.open(tmp / "pair.tif") as ds:
            assert ds.crs.to_epsg() == 32615 and (ds.read(1) != 255).mean() > 0.9
        one = httpx.post(f"{url}/predict/aoi", json={"bbox": AREA}, headers=AUTH, timeout=60)
        assert one.status_code == 400 and "takes 2 date(s)" in one.json()["error"] and "datetimes" in one.json()["fix"]
        assert "upload" not in one.text
        empty = httpx.post(f"{url}/predict/aoi", json={"bbox": AREA, "datetimes": [windows[0], "2010-01-01T00:00:00Z/2011-01-01T00:00:00Z"]},
                           headers=AUTH, timeout=120)
        assert empty.status_code == 404 and "in 2010-01-01" in empty.json()["error"]
    finally:
        srv.should_exit = True  # type: ignore[attr-defined]


def test_tiles_read_the_bands_the_package_records(model: Path, tmp_path: Path) -> None:
    """A model whose bands are bands 5-8 of a stack gets tiles from those bands, as predict reads them."""
    import json
    import shutil

    import morecantile
    import rasterio
    from conftest import four_band_stack
    from rasterio.io import MemoryFile
    from rasterio.warp import transform_bounds
    from rio_tiler.io import Reader

    from eoengine.models.package import META

    four = four_band_stack(tmp_path / "four.tif")
    with rasterio.open(four) as ds:
        profile, data = ds.profile | {"count": 8}, ds.read()
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    first, last = tmp_path / "first.tif", tmp_path / "last.tif"  # the model's bands as bands 1-4, or as 5-8
    for path, bands in ((first, [data, data[::-1]]), (last, [data[::-1], data])):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.concatenate(bands))
    moved = tmp_path / "moved"
    shutil.copytree(model, moved)
    meta = json.loads((moved / META).read_text())
    assert meta["stack_indexes"] == [1, 2, 3, 4]
    (moved / META).write_text(json.dumps(meta | {"stack_indexes": [5, 6, 7, 8]}))
    with Reader(str(four)) as r:
        z = r.maxzoom
    t = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, z)
    tiles = []
    for pkg, scene in ((model, first), (moved, last)):
        settings = Settings(api_key=KEY, model_name="m", engine="torch", tiles_scene=[str(scene)])
        url, srv = serve_in_thread(create_app(load_package(pkg), settings))
        try:
            got = httpx.get(f"{url}/tiles/{z}/{t.x}/{t.y}.png", headers=AUTH, timeout=300)
            assert got.status_code == 200, got.text
            with MemoryFile(got.content) as mem, mem.open() as img:
                tiles.append(img.read())
        finally:
            srv.should_exit = True  # type: ignore[attr-defined]
    assert tiles[0][3].mean() > 80 and (tiles[0] == tiles[1]).all()  # a tile with the scene in it (37% of it), the same map
