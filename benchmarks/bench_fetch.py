"""Fetching clipped scenes from a local STAC API over HTTP on 127.0.0.1.

Writes N synthetic 4-band uint16 COGs (2048², 512 px blocks), scans them into a catalog whose
assets are served over HTTP (with range requests) by the same FastAPI app that serves the
STAC API, searches it with pystac-client, and fetches a 1024² window of every scene with
``eoengine source fetch`` logic, one item at a time and with 4 at once. The baseline reads
the same windows from the same URLs with plain rasterio, one after another. Prints seconds
per scene and MB/s (decoded pixels) for each.

    .venv/bin/python benchmarks/bench_fetch.py [--scenes 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import rasterio
import uvicorn
from fastapi.staticfiles import StaticFiles
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from shapely.geometry import box

from eoengine.serving.stac_api import create_stac_app
from eoengine.sourcing.catalog import CatalogIndex
from eoengine.sourcing.fetch import fetch
from eoengine.sourcing.scan import scan_folder
from eoengine.sourcing.search import search

SIZE, WIN, BANDS = 2048, 1024, 4


def make_scenes(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        profile = {"driver": "COG", "width": SIZE, "height": SIZE, "count": BANDS, "dtype": "uint16", "crs": "EPSG:32633", "nodata": 0,
                   "transform": from_origin(300000 + i * 1000, 5800000, 10, 10), "compress": "deflate", "blocksize": 512}
        data = rng.integers(0, 4000, (BANDS, SIZE, SIZE), dtype=np.uint16)
        with rasterio.open(folder / f"S{i:02d}_2024060{1 + i % 9}.tif", "w", **profile) as dst:
            dst.write(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--serve", nargs=2)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "imagery").mkdir()
        make_scenes(t / "imagery", args.scenes)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        scan_folder(t / "imagery", t / "catalog" / "synthetic", "synthetic", band_names=["blue", "green", "red", "nir"])
        for f in (t / "catalog" / "synthetic").rglob("*.json"):  # assets by URL, not by path
            doc = json.loads(f.read_text())
            for asset in doc.get("assets", {}).values():
                asset["href"] = f"{base}/imagery/{Path(asset['href']).name}"
            f.write_text(json.dumps(doc))
        # the server runs in its own process, as a real service would (GDAL holds the GIL while it waits on HTTP)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(t), str(port)])
        for _ in range(200):
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        os.environ.update(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif")
        items = list(search(base, limit=args.scenes))
        # the AOI: the middle 1024 x 1024 px of the first scene, in degrees; every scene overlaps it by 1024 - 100*i px
        b = items[0].properties["proj:bbox"]
        mid = (b[0] + SIZE * 5, b[3] - SIZE * 5)
        aoi_utm = (mid[0] - WIN * 5, mid[1] - WIN * 5, mid[0] + WIN * 5, mid[1] + WIN * 5)
        aoi = box(*transform_bounds("EPSG:32633", "EPSG:4326", *aoi_utm))
        mb = 0.0
        start = time.perf_counter()
        for item in items:
            with rasterio.open(item.assets["data"].href) as ds:
                win = from_bounds(*aoi_utm, transform=ds.transform).round_offsets().round_lengths()
                win = win.intersection(Window(0, 0, ds.width, ds.height))
                mb += ds.read(window=win).nbytes / 2**20
        plain = time.perf_counter() - start
        rows = [("plain rasterio window reads (sequential)", plain, mb)]
        for label, workers in (("eoengine fetch, sequential", 1), ("eoengine fetch, 4 at once", 4)):
            cache = t / f"cache{workers}"
            start = time.perf_counter()
            results = fetch(items, ["blue", "green", "red", "nir"], cache, aoi, workers=workers)
            took = time.perf_counter() - start
            got = sum(rasterio.open(r.path).read().nbytes for r in results if r.path) / 2**20
            rows.append((label, took, got))
            shutil.rmtree(cache)
        fetch(items, ["blue", "green", "red", "nir"], t / "cache-again", aoi, workers=4)
        cached_start = time.perf_counter()
        fetch(items, ["blue", "green", "red", "nir"], t / "cache-again", aoi, workers=4)
        print(f"{args.scenes} scenes of {BANDS}x{SIZE}² uint16 COG over HTTP on 127.0.0.1, window ~{WIN}² px, {os.cpu_count()} cores")
        print(f"{'path':<44}{'s/scene':>9}{'MB/s':>8}{'vs plain':>10}")
        for label, secs, size in rows:
            print(f"{label:<44}{secs / len(items):>9.3f}{size / secs:>8.1f}{plain / secs:>10.2f}")
        print(f"(the same request again is served from the cache: {time.perf_counter() - cached_start:.2f} s for all scenes)")
        server.terminate()


def serve(root: Path, port: int) -> None:
    """The STAC API plus the imagery as static files (with range requests)."""
    app = create_stac_app(CatalogIndex(root / "catalog"))
    app.mount("/imagery", StaticFiles(directory=root / "imagery"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


if __name__ == "__main__":
    main()
