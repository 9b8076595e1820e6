"""Serving throughput: requests/s and latency for 256x256 tiles with 1, 4 and 16 concurrent clients.

Starts ``eoengine serve``'s application with uvicorn on 127.0.0.1 (a U-Net, depth 3, width
16, 4 bands) and sends ``POST /v1/models/{name}:predict`` requests, each one 256x256 tile of
raw band values (the Vertex AI / Earth Engine contract), from 1, 4 and 16 client threads.
Concurrent requests are micro-batched by the server. The baseline is the model's forward
pass on the same tile in the same process, without HTTP or JSON.

    .venv/bin/python benchmarks/bench_serve.py [--requests 48]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import serve_in_thread

from eoengine.models.package import load_package, save_package
from eoengine.models.registry import build_model
from eoengine.serving.app import Settings, create_app

BANDS, CLASSES, TILE, KEY = 4, 5, 256, "bench"


def package(folder: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("unet", BANDS, CLASSES, depth=3, base_channels=16)
    names = ["blue", "green", "red", "nir"]
    meta = {"model": "unet", "model_kwargs": {"depth": 3, "base_channels": 16}, "bands": names,
            "band_specs": [{"name": n} for n in names], "indices": [], "index_constants": {}, "channels": names,
            "normalization": {"mean": [1000.0] * BANDS, "std": [500.0] * BANDS}, "patch_size": TILE,
            "classes": [{"index": i, "name": f"c{i}", "color": "#336699"} for i in range(CLASSES)]}
    return save_package(model, meta, folder / "model", onnx=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=48)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkg = load_package(package(Path(tmp)))
        app = create_app(pkg, Settings(api_key=KEY, model_name="m", engine="torch"))
        base, server = serve_in_thread(app)
        tile = np.random.default_rng(0).integers(200, 3000, (BANDS, TILE, TILE)).astype(np.float32)
        body = {"instances": [{"image": tile.tolist()}]}
        url = f"{base}/v1/models/m:predict"
        x = torch.from_numpy((tile - 1000) / 500)[None]
        with torch.inference_mode():
            pkg.model(x)
            start = time.perf_counter()
            for _ in range(5):
                pkg.model(x)
        forward = (time.perf_counter() - start) / 5
        print(f"U-Net depth 3 / width 16, {BANDS} bands, one {TILE}x{TILE} tile per request (JSON), {os.cpu_count()} cores")
        print(f"forward pass alone: {1 / forward:.2f} tiles/s ({1000 * forward:.0f} ms)")
        print(f"{'clients':>8}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'vs forward':>12}{'tiles per pass':>16}{'peak RSS MB':>13}")
        with httpx.Client(timeout=300) as warm:
            warm.post(url, json=body, headers={"X-API-Key": KEY}).raise_for_status()
        for clients in (1, 4, 16):
            batcher = app.state.batcher
            b0, i0 = batcher.batches, batcher.items
            latencies: list[float] = []

            def call(_: int, out: list[float] = latencies) -> None:
                with httpx.Client(timeout=300) as c:
                    t0 = time.perf_counter()
                    c.post(url, json=body, headers={"X-API-Key": KEY}).raise_for_status()
                    out.append(time.perf_counter() - t0)

            n = max(args.requests, clients * 3)
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                list(pool.map(call, range(n)))
            rate = n / (time.perf_counter() - start)
            p50, p99 = np.percentile(latencies, [50, 99]) * 1000
            per_pass = (batcher.items - i0) / max(batcher.batches - b0, 1)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # server and clients: one process
            print(f"{clients:>8}{rate:>12.2f}{p50:>9.0f}{p99:>9.0f}{rate * forward:>12.2f}{per_pass:>16.1f}{rss:>13.0f}")
        server.should_exit = True


if __name__ == "__main__":
    main()
