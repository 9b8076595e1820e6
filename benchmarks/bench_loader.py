"""Training-loader throughput: batches of 32 random 256x256 chips.

Compares, on the same chips (8 channels float32, 2 MiB each), the eoengine loader
(``ChipDataset`` over the dataset's zarr arrays, normalised, through a torch DataLoader)
with zarr compression on (zstd, the default) and off, against the memory limit: a raw numpy
memmap random read of the same bytes. Files are read once first so all runs read from the
page cache. Prints samples/s and the ratio to the memmap baseline.

    .venv/bin/python benchmarks/bench_loader.py [--chips 512] [--batches 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from eoengine.datasets.schema import MANIFEST
from eoengine.datasets.store import ARRAYS, INDEX, create_arrays, open_arrays
from eoengine.training import data as data_mod

C, P, BATCH = 8, 256, 32


def make_dataset(root: Path, chips: np.ndarray, compress: bool) -> None:
    n = len(chips)
    create_arrays(root, n, C, P, "zstd" if compress else "none")
    images, labels = open_arrays(root, "r+")
    for i in range(n):
        images[i] = chips[i]
        labels[i] = (chips[i, 0] > 0.5).astype(np.uint8)
    gpd.GeoDataFrame({"chip_id": np.arange(n), "split": "train"}, geometry=[None] * n, crs="EPSG:4326").to_parquet(root / INDEX)
    stats = {"mean": [0.5] * C, "std": [0.25] * C}
    (root / MANIFEST).write_text(json.dumps({"statistics": {"train": stats}, "channels": [f"b{i}" for i in range(C)], "patch_size": P}))


def bench_loader(root: Path, batches: int, workers: int = 0) -> float:
    data_mod.IN_MEMORY_LIMIT = 0  # measure reading from disk, not a cache
    ds = data_mod.ChipDataset(root, "train")
    sampler = RandomSampler(ds, replacement=True, num_samples=BATCH * batches)
    loader = DataLoader(ds, batch_size=BATCH, sampler=sampler, num_workers=workers)
    start = time.perf_counter()
    for x, _ in loader:
        assert x.shape == (BATCH, C, P, P)
    return BATCH * batches / (time.perf_counter() - start)


def bench_memmap(path: Path, n: int, batches: int) -> float:
    arr = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(batches):
        idx = np.sort(rng.integers(0, n, BATCH))
        batch = torch.from_numpy(np.ascontiguousarray(arr[idx]))
        assert batch.shape == (BATCH, C, P, P)
    return BATCH * batches / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chips", type=int, default=512)
    ap.add_argument("--batches", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    base = np.linspace(0, 1, P * P, dtype=np.float32).reshape(P, P)
    chips = np.stack([base[None] * rng.random((C, 1, 1), dtype=np.float32) + rng.random((C, P, P), dtype=np.float32) * 0.05
                      for _ in range(args.chips)]).astype(np.float32)
    mib = chips.nbytes / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        np.save(t / "chips.npy", chips)
        results = {}
        for name, compress in (("zarr zstd", True), ("zarr raw", False)):
            make_dataset(t / name.replace(" ", "_"), chips, compress)
            bench_loader(t / name.replace(" ", "_"), 5)  # warm the page cache
            results[name] = bench_loader(t / name.replace(" ", "_"), args.batches)
            results[name + ", 2 workers"] = bench_loader(t / name.replace(" ", "_"), args.batches, 2)
        bench_memmap(t / "chips.npy", args.chips, 5)
        base_rate = bench_memmap(t / "chips.npy", args.chips, args.batches)
        sizes = {n: sum(f.stat().st_size for f in (t / n.split(",")[0].replace(" ", "_") / ARRAYS).rglob("*") if f.is_file()) / 2**20
                 for n in results}
    print(f"{args.chips} chips of {C}x{P}x{P} float32 ({mib:.0f} MiB), batches of {BATCH}, {args.batches} batches")
    print(f"{'loader':<44}{'samples/s':>12}{'MiB/s':>10}{'on disk MiB':>13}{'vs memmap':>11}")
    print(f"{'numpy memmap random read':<44}{base_rate:>12.0f}{base_rate * 2:>10.0f}{mib:>13.0f}{1:>11.2f}")
    for name, rate in results.items():
        print(f"{'eoengine ChipDataset, ' + name:<44}{rate:>12.0f}{rate * 2:>10.0f}{sizes[name]:>13.0f}{rate / base_rate:>11.2f}")


if __name__ == "__main__":
    main()
