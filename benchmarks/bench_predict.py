"""Prediction throughput and memory: end to end against the model's forward pass alone.

For synthetic 6-band uint16 scenes of 2000², 8000² and 16000² pixels, a child process per size runs
``Predictor`` (read + normalise + U-Net + cosine blend + COG write with overviews) and
reports megapixels/s and its peak RSS. The U-Net's forward pass alone (batches of in-memory
tiles) is timed in the same process right before and right after the end-to-end run, and
their mean is scaled to the scene's tile count: this machine's speed drifts by up to 40%
over minutes, so a baseline measured at another time would compare unlike with unlike. The
ratio e2e/forward shows what reading, blending and writing cost; peak RSS across sizes
shows memory staying flat. ``--repeats`` runs each size several times.

    .venv/bin/python benchmarks/bench_predict.py [--sizes 2000 8000 16000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window

from eoengine.inference.predict import PredictOptions, Predictor
from eoengine.inference.tiling import tile_positions
from eoengine.models.package import load_package, save_package
from eoengine.models.registry import build_model
from eoengine.raster.scene import BandSource, SceneReader
from eoengine.runtime import tune_allocator

BANDS, CLASSES, TILE, OVERLAP = 6, 7, 256, 32


def make_scene(path: Path, size: int) -> None:
    profile = {"driver": "GTiff", "width": size, "height": size, "count": BANDS, "dtype": "uint16", "crs": "EPSG:32633",
               "transform": from_origin(500000, 6000000, 10, 10), "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate", "BIGTIFF": "YES", "nodata": 0}
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            dst.write(rng.integers(1, 4000, (BANDS, h, size), dtype=np.uint16), window=Window(0, r0, size, h))


def make_package(folder: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("unet", BANDS, CLASSES, depth=3, base_channels=16)
    meta = {"model": "unet", "model_kwargs": {"depth": 3, "base_channels": 16}, "bands": [f"b{i}" for i in range(BANDS)],
            "band_specs": [{"name": f"b{i}"} for i in range(BANDS)], "indices": [], "index_constants": {},
            "channels": [f"b{i}" for i in range(BANDS)], "normalization": {"mean": [2000.0] * BANDS, "std": [1000.0] * BANDS},
            "patch_size": TILE, "classes": [{"index": i, "name": f"c{i}", "color": "#336699"} for i in range(CLASSES)]}
    return save_package(model, meta, folder / "model", onnx=False)


def forward_batch_s(model: torch.nn.Module, batches: int = 20) -> float:
    """Seconds per batch of 8 in-memory tiles through the model alone."""
    x = torch.randn(8, BANDS, TILE, TILE)
    with torch.inference_mode():
        model(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(batches):
            model(x)
    return (time.perf_counter() - t0) / batches


def child(package: Path, scene: Path, out: Path) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    tune_allocator()  # as Predictor does; the forward-only timings get the same allocator
    pkg = load_package(package)
    with rasterio.open(scene) as ds:
        size = ds.width
    sources = [BandSource(f"b{i}", str(scene), i + 1) for i in range(BANDS)]
    before = forward_batch_s(pkg.model)
    t0 = time.perf_counter()
    with SceneReader(sources) as reader:
        Predictor(pkg, PredictOptions(tile_size=TILE, overlap=OVERLAP, batch_size=8, region_size=1024)).predict(reader, out)
    e2e = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    after = forward_batch_s(pkg.model)
    n_tiles = len(tile_positions(size, TILE, OVERLAP)) ** 2
    fwd = (before + after) / 2 * -(-n_tiles // 8)
    print(json.dumps({"size": size, "e2e_s": e2e, "forward_s": fwd, "tiles": n_tiles, "peak_rss_mb": rss,
                      "batch_before_s": before, "batch_after_s": after}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 16000])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(*(Path(a) for a in args.child))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        package = make_package(folder)
        for size in args.sizes:
            scene = folder / f"scene{size}.tif"
            make_scene(scene, size)
            for _ in range(args.repeats):
                proc = subprocess.run([sys.executable, __file__, "--child", str(package), str(scene), str(folder / f"map{size}.tif")],
                                      capture_output=True, text=True, check=True, env=os.environ | {"EOENGINE_PROGRESS": "0"})
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                (folder / f"map{size}.tif").unlink()
            scene.unlink()
    print(f"U-Net depth 3 / width 16, {BANDS} bands, tiles {TILE} with overlap {OVERLAP}, batch 8, regions 1024 px, {os.cpu_count()} cores")
    print(f"{'scene':>7}{'tiles':>7}{'e2e MP/s':>10}{'forward-only MP/s':>19}{'e2e/forward':>13}{'peak RSS MB':>13}"
          f"{'batch s before/after':>22}")
    for r in rows:
        mp = r["size"] ** 2 / 1e6
        print(f"{r['size']:>6}²{r['tiles']:>7}{mp / r['e2e_s']:>10.2f}{mp / r['forward_s']:>19.2f}"
              f"{r['forward_s'] / r['e2e_s']:>13.2f}{r['peak_rss_mb']:>13.0f}"
              f"{r['batch_before_s']:>14.3f} / {r['batch_after_s']:.3f}")


if __name__ == "__main__":
    main()
