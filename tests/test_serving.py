"""The model server over real HTTP on 127.0.0.1: routes, auth, errors, batching, tiles, metrics, fuzzing."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import torch
from conftest import OGT, four_band_stack, free_port, serve_in_thread, train_tiny_unet

from eoengine.inference.preprocess import input_spec, model_input
from eoengine.models.package import load_package
from eoengine.raster.cog import is_cog
from eoengine.serving.app import Settings, create_app

KEY = "test-key-123"
AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch) -> dict:
    tmp = tmp_path_factory.mktemp("serve")
    result = train_tiny_unet(tmp)
    stack = four_band_stack(tmp / "scene4.tif")
    with rasterio.open(stack) as ds:
        data = ds.read()
    pkg = load_package(result.model_path)
    monkeypatch_module.setenv("AIP_PREDICT_ROUTE", "/vertex/predict")
    from eoengine.sourcing.scan import scan_folder

    scan_folder(OGT, tmp / "catalog" / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    settings = Settings(api_key=KEY, model_name="landcover", tiles_scene=[str(stack)], engine="torch",
                        predict_route="/vertex/predict", health_route="/vertex/health", max_upload_mb=5,
                        catalog=str(tmp / "catalog"), cache=str(tmp / "cache"))
    app = create_app(pkg, settings)
    url, server = serve_in_thread(app)
    yield {"url": url, "pkg": pkg, "stack": stack, "data": data, "tmp": tmp, "app": app, "model": result.model_path}
    server.should_exit = True  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_health_is_open_everything_else_needs_the_key(served: dict) -> None:
    url = served["url"]
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/vertex/health").status_code == 200
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["ready"] and ready["bands"] == ["blue", "green", "red", "nir"]
    for path in ("/metrics", "/tiles/14/3900/7300.png"):
        r = httpx.get(url + path)
        assert r.status_code == 401 and r.json()["fix"].startswith("send it as")
    r = httpx.post(f"{url}/v1/models/landcover:predict", json={"instances": []}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401
    assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "eoengine model server"


def test_instances_by_band_name_match_the_model(served: dict) -> None:
    url, pkg, data = served["url"], served["pkg"], served["data"]
    chip = data[:, 40:72, 60:92].astype(np.float32)
    instance = {name: chip[i].tolist() for i, name in enumerate(["blue", "green", "red", "nir"])}
    r = httpx.post(f"{url}/v1/models/landcover:predict", json={"instances": [instance, {"image": chip.tolist()}]},
                   headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    with torch.inference_mode():
        expected = pkg.model(torch.from_numpy(model_input(chip, input_spec(pkg.meta)).image)[None])[0].argmax(0).numpy()
    assert np.array_equal(np.array(preds[0]["class"]), expected) and preds[0] == preds[1]
    assert np.array(preds[0]["probability"]).shape == (32, 32)
    vertex = httpx.post(f"{url}/vertex/predict", json={"instances": [instance]}, headers=AUTH)
    assert vertex.status_code == 200 and vertex.json()["predictions"][0]["class"] == preds[0]["class"]


def test_bad_requests_get_json_4xx(served: dict) -> None:
    url = served["url"]
    cases = [
        ("/v1/models/landcover:predict", {"content": b"{not json", "headers": AUTH | {"content-type": "application/json"}}, 422),
        ("/v1/models/landcover:predict", {"json": {"instances": [{"blue": [[1]]}]}, "headers": AUTH}, 400),
        ("/v1/models/landcover:predict", {"json": {"instances": [[[[1.0]]]]}, "headers": AUTH}, 422),
        ("/v1/models/landcover:predict", {"json": {"instances": [np.zeros((3, 4, 4)).tolist()]}, "headers": AUTH}, 422),
        ("/v1/models/other:predict", {"json": {"instances": [np.zeros((4, 4, 4)).tolist()]}, "headers": AUTH}, 404),
        ("/v1/models/landcover:predict", {"json": {"instances": [np.zeros((4, 2, 2)).tolist()] * 65}, "headers": AUTH}, 413),
    ]
    for path, kwargs, status in cases:
        r = httpx.post(url + path, **kwargs)
        assert r.status_code == status, (path, status, r.text)
        assert r.headers["content-type"].startswith("application/json")


def test_geotiff_upload_returns_the_same_map_as_the_cli(served: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import run_cli

    url, tmp = served["url"], served["tmp"]
    with served["stack"].open("rb") as f:
        r = httpx.post(f"{url}/predict", files={"file": ("scene.tif", f, "image/tiff")}, headers=AUTH, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
    got = tmp / "served.tif"
    got.write_bytes(r.content)
    assert is_cog(got)
    code, _, err = run_cli(["predict", str(served["model"]), str(served["stack"]), "--out", str(tmp / "cli.tif"),
                            "--engine", "torch"], capsys)
    assert code == 0, err
    with rasterio.open(got) as a, rasterio.open(tmp / "cli.tif") as b:
        assert np.array_equal(a.read(1), b.read(1)) and a.crs == b.crs
    bad = tmp / "notes.txt"
    bad.write_text("not a raster")
    r = httpx.post(f"{url}/predict", files={"file": ("notes.txt", bad.open("rb"), "text/plain")}, headers=AUTH)
    assert r.status_code == 400 and "not a raster" in r.json()["error"]
    r = httpx.post(f"{url}/predict", files={"file": ("s.tif", (OGT / "LE70220491999322EDC01_stack.gtif").open("rb"))}, headers=AUTH)
    assert r.status_code == 200, r.text  # the training stack, read by its recorded band indexes as the CLI reads it
    big = tmp / "big.bin"
    big.write_bytes(b"\0" * (6 * 2**20))
    r = httpx.post(f"{url}/predict", files={"file": ("big.tif", big.open("rb"))}, headers=AUTH)
    assert r.status_code == 413 and "exceeds 5 MB" in r.json()["error"]
    assert not [p for p in Path("/tmp").glob("eoengine-serve-*") if p.stat().st_mtime > time.time() - 60 and any(p.iterdir())]


def test_tiles_are_predicted_and_cached(served: dict) -> None:
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    url = served["url"]
    with rasterio.open(served["stack"]) as ds:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    t = tms.tile((w + e) / 2, (s + n) / 2, 13)
    r = httpx.get(f"{url}/tiles/{t.z}/{t.x}/{t.y}.png", headers=AUTH, timeout=60)
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    start = time.perf_counter()
    again = httpx.get(f"{url}/tiles/{t.z}/{t.x}/{t.y}.png", headers=AUTH)
    assert again.content == r.content and time.perf_counter() - start < 0.5
    far = tms.tile(w + 10, s, 13)
    assert httpx.get(f"{url}/tiles/{far.z}/{far.x}/{far.y}.png", headers=AUTH).status_code == 404
    low = httpx.get(f"{url}/tiles/2/1/1.png", headers=AUTH)
    assert low.status_code == 404 and "zoom" in low.json()["fix"]


def test_concurrent_requests_are_batched_and_counted(served: dict) -> None:
    url, app = served["url"], served["app"]
    chip = np.asarray(served["data"][:, :16, :16], dtype=np.float32).tolist()
    before = app.state.batcher.items, app.state.batcher.batches

    def call(_: int) -> int:
        return httpx.post(f"{url}/v1/models/landcover:predict", json={"instances": [chip]}, headers=AUTH, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(call, range(48)))
    assert codes == [200] * 48
    items = app.state.batcher.items - before[0]
    batches = app.state.batcher.batches - before[1]
    assert items == 48 and batches < items  # several requests shared a forward pass
    text = httpx.get(f"{url}/metrics", headers=AUTH).text
    assert 'eoengine_requests_total{route="/v1/models/landcover:predict",status="200"}' in text
    assert "eoengine_model_info{" in text and "eoengine_request_seconds_bucket" in text


def test_openapi_fuzzing_finds_no_server_errors(served: dict) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{served['url']}/openapi.json")
    failures: list[tuple[str, str, int, str]] = []
    calls: dict[str, int] = {}
    operations = [op.ok() for op in schema.get_all_operations()]
    for op in operations:

        @given(op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: object) -> None:
            response = case.call(headers=AUTH, timeout=60)  # type: ignore[attr-defined]
            key = f"{case.method} {case.path}"  # type: ignore[attr-defined]
            calls[key] = calls.get(key, 0) + 1
            if response.status_code >= 500:
                failures.append((key, case.formatted_path, response.status_code, response.text[:200]))  # type: ignore[attr-defined]

        check()
    assert not failures, failures
    assert len(calls) == len(operations) >= 7 and sum(calls.values()) > 50, calls


def test_a_model_that_does_not_load_stops_start_up(tmp_path: Path, served: dict) -> None:
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(served["model"], broken)
    (broken / "weights.pt").write_bytes(b"garbage")
    exe = Path(sys.executable).parent / "eoengine"
    run = subprocess.run([str(exe), "serve", str(broken), "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "cannot load model" in run.stderr and "Traceback" not in run.stderr


def test_predict_aoi_sources_the_newest_scene(served: dict) -> None:
    url = served["url"]
    body = {"bbox": [-93.34, 15.70, -93.30, 15.74]}
    r = httpx.post(f"{url}/predict/aoi", json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "image/tiff", r.text
    assert r.headers["x-eoengine-item"] == "LE70220492002106EDC00_stack"  # the newest
    out = served["tmp"] / "aoi.tif"
    out.write_bytes(r.content)
    with rasterio.open(out) as ds:
        assert 100 < ds.width < 160 and ds.crs.to_epsg() == 32615 and (ds.read(1) != 255).mean() > 0.9
    older = httpx.post(f"{url}/predict/aoi", json=body | {"datetime": "1999-01-01T00:00:00Z/2000-01-01T00:00:00Z"},
                       headers=AUTH, timeout=120)
    assert older.status_code == 200 and older.headers["x-eoengine-item"] == "LE70220491999322EDC01_stack"
    for bad, status in (({"bbox": [10, 50, 11, 51]}, 404), ({"bbox": [1, 2, 3]}, 400),
                        ({"bbox": [-93.34, 15.70, -93.30, 15.74], "geometry": {"type": "Point", "coordinates": [0, 0]}}, 400),
                        ({"bbox": [-93.34, 15.70, -93.30, 15.74], "datetime": "later"}, 400)):
        r = httpx.post(f"{url}/predict/aoi", json=bad, headers=AUTH)
        assert r.status_code == status and r.json()["error"], (bad, r.text)


def test_every_route_uses_the_chosen_engine(served: dict) -> None:
    """With --engine onnx the JSON route and the tiles run on ONNX Runtime, and agree with PyTorch."""
    import morecantile

    pkg = load_package(served["model"])
    assert (pkg.path / "model.onnx").exists()
    settings = Settings(api_key=KEY, model_name="landcover", tiles_scene=[str(served["stack"])], engine="onnx")
    app = create_app(pkg, settings)
    calls = []
    engine_forward = app.state.predictor.forward
    app.state.predictor.forward = lambda batch: calls.append(len(batch)) or engine_forward(batch)
    url, server = serve_in_thread(app)
    try:
        assert httpx.get(f"{url}/readyz").json()["engine"] == "onnx"
        chip = served["data"][:, 40:72, 60:92].astype(np.float32)
        body = {"instances": [{"image": chip.tolist()}]}
        onnx_answer = httpx.post(f"{url}/v1/models/landcover:predict", json=body, headers=AUTH).json()
        torch_answer = httpx.post(f"{served['url']}/v1/models/landcover:predict", json=body, headers=AUTH).json()
        assert onnx_answer["predictions"][0]["class"] == torch_answer["predictions"][0]["class"]
        with rasterio.open(served["stack"]) as ds:
            from rasterio.warp import transform_bounds

            w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        t = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, 13)
        assert httpx.get(f"{url}/tiles/{t.z}/{t.x}/{t.y}.png", headers=AUTH, timeout=60).status_code == 200
        assert len(calls) == 2  # one instance batch, one tile: both through the engine
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
