"""Dataset-build throughput against the decode limit.

Makes a synthetic 8-band uint16 COG of SIZE x SIZE pixels (default 10000) and a label
raster on the same grid, then measures side by side:

- ``eoengine dataset build`` (Apache Beam, DirectRunner, 2 worker processes): reading, label
  lookup, filtering, statistics, writing chips and the versioned dataset;
- a plain rasterio loop reading the same 256x256 windows (8 bands + labels) and nothing else.

Prints chips/s, MB/s of decoded input, and the ratio.

    .venv/bin/python benchmarks/bench_build.py [--size 10000] [--patch 256]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import yaml
from rasterio.transform import from_origin
from rasterio.windows import Window

from eoengine.config.load import load_config
from eoengine.datasets.build import build_dataset
from eoengine.datasets.split import grid_windows

BANDS = 8


def make_scene(folder: Path, size: int) -> tuple[Path, Path]:
    """A smooth-plus-noise 8-band COG and a 4-class label raster, written in strips."""
    profile = {"driver": "GTiff", "width": size, "height": size, "crs": "EPSG:32633",
               "transform": from_origin(500000, 6000000, 10, 10), "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "deflate", "BIGTIFF": "YES"}
    tmp, labels = folder / "tmp.tif", folder / "labels.tif"
    rng = np.random.default_rng(0)
    xs = np.linspace(0, 20, size, dtype=np.float32)
    with rasterio.open(tmp, "w", **profile, count=BANDS, dtype="uint16") as img, \
            rasterio.open(labels, "w", **profile, count=1, dtype="uint8") as lab:
        for r0 in range(0, size, 1024):
            h = min(1024, size - r0)
            ys = np.linspace(r0 / size * 20, (r0 + h) / size * 20, h, dtype=np.float32)[:, None]
            field = np.sin(xs[None, :] + ys) * np.cos(ys * 0.7)
            block = np.stack([(field * (b + 1) * 800 + 3000 + rng.normal(0, 50, (h, size))).astype(np.uint16) for b in range(BANDS)])
            img.write(block, window=Window(0, r0, size, h))
            lab.write(np.digitize(field, [-0.5, 0, 0.5]).astype(np.uint8)[None], window=Window(0, r0, size, h))
    cog = folder / "scene.tif"
    rasterio.shutil.copy(tmp, cog, driver="COG", COMPRESS="DEFLATE", OVERVIEWS="NONE", BLOCKSIZE=512, BIGTIFF="YES")
    tmp.unlink()
    return cog, labels


def plain_loop(cog: Path, labels: Path, windows: list[tuple[int, int]], patch: int) -> float:
    start = time.perf_counter()
    with rasterio.open(cog) as img, rasterio.open(labels) as lab:
        for r, c in windows:
            w = Window(c, r, patch, patch)
            img.read(window=w)
            lab.read(1, window=w)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--patch", type=int, default=256)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="eoengine-bench-build-"))
    try:
        t0 = time.perf_counter()
        cog, labels = make_scene(folder, args.size)
        print(f"made {args.size}x{args.size} 8-band COG in {time.perf_counter() - t0:.0f} s")
        cfg = {
            "name": "bench", "output_dir": str(folder / "out"),
            "imagery": {"bands": [{"name": f"b{i + 1}"} for i in range(BANDS)], "scenes": [{"id": "s", "stack": str(cog)}]},
            "labels": {"type": "raster", "path": str(labels)},
            "classes": [{"value": v, "name": f"c{v}"} for v in range(4)],
            "dataset": {"patch_size": args.patch, "min_labelled_fraction": 0.0, "max_nodata_fraction": 1.0,
                        "split": {"method": "blocks", "block_size": args.patch * 4}, "num_workers": 2},
        }
        (folder / "cfg.yaml").write_text(yaml.safe_dump(cfg))
        config = load_config(folder / "cfg.yaml")
        windows = list(grid_windows(args.size, args.size, args.patch, args.patch))
        mb_per_chip = BANDS * args.patch * args.patch * 2 / 1e6 + args.patch * args.patch / 1e6
        os.environ["EOENGINE_PROGRESS"] = "0"
        plain_loop(cog, labels, windows[:50], args.patch)  # warm the page cache for both
        t_plain = plain_loop(cog, labels, windows, args.patch)
        t0 = time.perf_counter()
        result = build_dataset(config)
        t_build = time.perf_counter() - t0
        n = result.manifest.n_chips
        print(f"{len(windows)} windows of {args.patch}x{args.patch}; dataset kept {n} chips (all splits)")
        print(f"{'path':<44}{'seconds':>9}{'chips/s':>10}{'MB/s':>8}{'ratio':>8}")
        print(f"{'plain rasterio windowed reads (1 process)':<44}{t_plain:>9.1f}{len(windows) / t_plain:>10.1f}"
              f"{len(windows) * mb_per_chip / t_plain:>8.1f}{1:>8.2f}")
        rate = len(windows) / t_build
        print(f"{'eoengine dataset build (Beam, 2 workers)':<44}{t_build:>9.1f}{rate:>10.1f}"
              f"{len(windows) * mb_per_chip / t_build:>8.1f}{rate / (len(windows) / t_plain):>8.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
