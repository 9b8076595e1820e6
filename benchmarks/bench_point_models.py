"""Point data: the pixel DNN vs a 500-tree random forest vs gradient boosting, on the same split.

Builds a point dataset the way Earth Engine point exports arrive: the 1,000 points of
``examples/nc_landsat7_landclass96/data/landsat96_points.shp`` sample the six Landsat 7 band
files (nodata -> NaN), are split at random (seeded) 60/20/20 into train/val/test, written as
TFRecord files and imported with ``dataset import-tfrecord`` (1×1 chips, 7 classes). Every
model then trains through ``eoengine.training.train.train`` (the ``eoengine train`` path),
tracked in MLflow. Settings are chosen on the validation split only (the DNN's epoch by early
stopping on ``val_accuracy`` too); the chosen setting is then trained with 3 seeds and its
test-split accuracy reported as mean ± std. The DNN uses the 1×1 defaults (batch 256, no
geometric augmentation). Prints a table and the ratio of each model's accuracy to the forest's.

    .venv/bin/python benchmarks/bench_point_models.py [--seeds 3] [--epochs 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import yaml

os.environ.setdefault("EOENGINE_PROGRESS", "0")

from eoengine.config.load import load_config
from eoengine.datasets.tfrecord import encode_example, write_records
from eoengine.datasets.tfrecord_import import import_tfrecords
from eoengine.training.train import train

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nc_landsat7_landclass96"
BANDS = {"blue": "lsat7_2000_10.tif", "green": "lsat7_2000_20.tif", "red": "lsat7_2000_30.tif",
         "nir": "lsat7_2000_40.tif", "swir1": "lsat7_2000_50.tif", "swir2": "lsat7_2000_70.tif"}
CLASSES = ["developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment"]
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}

DNN_GRID = [{"lr": lr, "class_weights": w} for lr in (0.003, 0.01) for w in ("none", "inverse_sqrt")]
FOREST_GRID = [{"max_features": f} for f in ("sqrt", 0.5)]
BOOSTING_GRID = [{"learning_rate": lr} for lr in (0.05, 0.1)]


def point_dataset(work: Path, seed: int = 0) -> Path:
    """Sample the bands at the points, split them, write TFRecords and import them."""
    points = gpd.read_file(EXAMPLE / "data" / "landsat96_points.shp")
    xy = list(zip(points.geometry.x, points.geometry.y, strict=True))
    values = []
    for name in BANDS.values():
        with rasterio.open(EXAMPLE / "data" / name) as ds:
            sampled = np.ma.array(list(ds.sample(xy, masked=True)))[:, 0].astype(np.float32)
            values.append(np.ma.filled(sampled, np.nan))
    bands = np.stack(values, axis=1)
    classes = points["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy(dtype=np.float32)
    order = np.random.default_rng(seed).permutation(len(points))
    cuts = np.cumsum([round(r * len(points)) for r in SPLITS.values()])[:-1]
    files: dict[str, list[str]] = {}
    for split, part in zip(SPLITS, np.split(order, cuts), strict=True):
        records = [encode_example({b: bands[i, j:j + 1] for j, b in enumerate(BANDS)} | {"class": classes[i:i + 1]})
                   for i in part]
        path = work / f"points-{split}.tfrecord.gz"
        write_records(path, records)
        files[split] = [str(path)]
    return import_tfrecords(files, work / "points", list(BANDS), class_names=CLASSES).path


def config(work: Path, dataset: Path, model: dict[str, Any], training: dict[str, Any], name: str) -> Path:
    """The example project's config on the point dataset, with the given model and training settings."""
    cfg = yaml.safe_load((EXAMPLE / "eoengine.yaml").read_text())
    for key in ("batch_size", "augmentation", "scheduler", "loss", "early_stopping"):
        cfg["training"].pop(key)  # the 1x1 defaults and plain cross-entropy apply
    cfg["imagery"]["scenes"][0]["files"] = {b: str(EXAMPLE / "data" / f) for b, f in BANDS.items()}
    cfg["labels"]["path"] = str(EXAMPLE / "data" / "strata.tif")
    cfg["dataset"]["split"]["path"] = str(EXAMPLE / "split_halves.geojson")
    cfg["features"]["indices"] = []
    cfg["output_dir"] = str(work / "out")
    cfg["model"] = model
    cfg["training"] = cfg["training"] | {"dataset": str(dataset)} | training
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def dnn(setting: dict[str, Any], seed: int, epochs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model and training settings of the pixel DNN for one grid point."""
    training = {"epochs": epochs, "seed": seed, "optimizer": {"name": "AdamW", "kwargs": {"lr": setting["lr"]}},
                "loss": {"class_weights": setting["class_weights"]},
                "early_stopping": {"monitor": "val_accuracy", "patience": max(20, epochs // 5)}}
    return {"name": "pixel_dnn", "kwargs": {"hidden": [64, 64, 32]}}, training


def trees(name: str, setting: dict[str, Any], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model and training settings of a classical model for one grid point."""
    base = {"random_forest": {"n_estimators": 500, "n_jobs": 2}, "gradient_boosting": {"max_iter": 200}}[name]
    return {"name": name, "kwargs": base | setting}, {"seed": seed}


def fit(work: Path, dataset: Path, spec: tuple[dict[str, Any], dict[str, Any]], tag: str) -> tuple[float, float]:
    """(val accuracy, test accuracy) of one training run."""
    result = train(load_config(config(work, dataset, spec[0], spec[1], tag)))
    return float(result.val["accuracy"]), float(result.test["accuracy"])


def compare(work: Path, seeds: int, epochs: int) -> dict[str, dict[str, Any]]:
    """Choose each model's setting on val (seed 0), then its test accuracy over ``seeds`` seeds."""
    dataset = point_dataset(work)
    Spec = tuple[dict[str, Any], dict[str, Any]]
    makers: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any], int], Spec]]] = {
        "pixel_dnn": (DNN_GRID, lambda s, seed: dnn(s, seed, epochs)),
        "random_forest": (FOREST_GRID, lambda s, seed: trees("random_forest", s, seed)),
        "gradient_boosting": (BOOSTING_GRID, lambda s, seed: trees("gradient_boosting", s, seed)),
    }
    report: dict[str, dict[str, Any]] = {}
    for name, (grid, make) in makers.items():
        start = time.perf_counter()
        val = [fit(work, dataset, make(s, 0), f"{name}-select-{i}")[0] for i, s in enumerate(grid)]
        chosen = grid[int(np.argmax(val))]
        tests = [fit(work, dataset, make(chosen, seed), f"{name}-seed-{seed}")[1] for seed in range(1, seeds + 1)]
        report[name] = {"setting": chosen, "val": max(val), "tests": tests, "mean": statistics.mean(tests),
                        "std": statistics.stdev(tests) if len(tests) > 1 else 0.0, "seconds": time.perf_counter() - start}
    return report


def main() -> None:
    """Run the comparison and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="eoengine-points-") as tmp:
        report = compare(Path(tmp), args.seeds, args.epochs)
    forest = report["random_forest"]["mean"]
    print(f"\npoint dataset: {EXAMPLE.name} points, random 60/20/20 split; test accuracy over {args.seeds} seeds")
    print("| model | setting (chosen on val) | val accuracy | test accuracy (mean ± std) | vs forest | seconds |")
    print("|---|---|---|---|---|---|")
    for name, r in report.items():
        setting = ", ".join(f"{k}={v}" for k, v in r["setting"].items())
        print(f"| {name} | {setting} | {r['val']:.3f} | {r['mean']:.3f} ± {r['std']:.3f} | "
              f"{r['mean'] / forest:.3f} | {r['seconds']:.0f} |")
    best = max(report, key=lambda k: report[k]["mean"])
    print(f"best: {best}, {report[best]['mean'] / forest:.3f}x the random forest's test accuracy")


if __name__ == "__main__":
    main()
