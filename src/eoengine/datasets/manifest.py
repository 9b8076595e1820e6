"""What a dataset records about itself: the config that made it, its chip index, statistics."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from eoengine.config.schema import BuildConfig

if TYPE_CHECKING:
    import geopandas as gpd

    from eoengine.datasets.plan import BuildPlan

_RUN_ONLY = {"runner", "num_workers", "running_mode"}


def dataset_config(cfg: BuildConfig) -> dict[str, Any]:
    """The parts of the config that decide a dataset's content (not paths, not runners)."""
    imagery = cfg.imagery.model_dump(mode="json")
    for scene in imagery["scenes"]:
        for entry in [scene, *(scene.get("timesteps") or [])]:
            for k in ("files", "stack", "stac_item", "labels"):
                entry.pop(k, None)
    if imagery.get("source"):
        imagery["source"].pop("storage", None)  # credentials: never recorded, and they do not change the data
    labels = cfg.labels.model_dump(mode="json")
    labels.pop("path", None)
    labels.pop("labelled_area", None)
    if labels.get("values"):
        labels["values"].pop("path", None)
    split = cfg.dataset.split.model_dump(mode="json")
    split.pop("path", None)
    dataset = {k: v for k, v in cfg.dataset.model_dump(mode="json").items() if k not in _RUN_ONLY}
    dataset["split"] = split
    return {
        "imagery": imagery,
        "labels": labels,
        "classes": [c.model_dump(mode="json") for c in cfg.classes],
        "features": cfg.features.model_dump(mode="json"),
        "dataset": dataset,
        "multilabel_threshold": cfg.task.multilabel_threshold,
    }


def combine_stats(records: list[dict[str, Any]], channels: list[str]) -> dict[str, list[float]]:
    """Per-channel mean/std/min/max over the given chips (in chip order, so deterministic)."""
    n = len(channels)
    count, total, sq = [0.0] * n, [0.0] * n, [0.0] * n
    lo, hi = [math.inf] * n, [-math.inf] * n
    for r in sorted(records, key=lambda r: r["chip_id"]):
        s = r["stats"]
        for i in range(n):
            if s["count"][i] > 0:
                count[i] += s["count"][i]
                total[i] += s["sum"][i]
                sq[i] += s["sumsq"][i]
                lo[i] = min(lo[i], s["min"][i])
                hi[i] = max(hi[i], s["max"][i])
    mean = [t / c if c else 0.0 for t, c in zip(total, count, strict=True)]
    std = [
        math.sqrt(max(q / c - m * m, 0.0)) if c else 1.0
        for q, c, m in zip(sq, count, mean, strict=True)
    ]
    std = [s if s > 1e-12 else 1.0 for s in std]
    return {
        "mean": mean,
        "std": std,
        "min": [v if math.isfinite(v) else 0.0 for v in lo],
        "max": [v if math.isfinite(v) else 0.0 for v in hi],
        "count": count,
    }


def build_index(
    records: list[dict[str, Any]], plan: BuildPlan, class_names: list[str], present_above: float = 0.05
) -> gpd.GeoDataFrame:
    """The GeoParquet chip index: footprint (EPSG:4326), scene, window, split and targets.

    Per class: its pixel count (``count_<name>``) and whether it covers more than
    ``present_above`` of the chip's labelled pixels (``present_<name>``, the multi-label
    target); ``label`` is the majority class (the scene classification target), -1 if none.
    """
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    p = plan.patch_size
    frames = []
    rows = sorted(records, key=lambda r: r["chip_id"])
    for scene_id, sp in plan.scenes.items():
        mine = [r for r in rows if r["scene"] == scene_id]
        if not mine:
            continue
        geoms = [box(*sp.grid.window_bounds(r["row"], r["col"], p, p)) for r in mine]
        table = pd.DataFrame(
            {
                "chip_id": [r["chip_id"] for r in mine],
                "scene": scene_id,
                "datetime": sp.datetime,
                "row": [r["row"] for r in mine],
                "col": [r["col"] for r in mine],
                "split": [r["split"] for r in mine],
                "nodata_fraction": [r["nodata_fraction"] for r in mine],
                "labelled_fraction": [r["labelled_fraction"] for r in mine],
            }
        )
        counts = np.array([r["class_counts"] for r in mine], dtype=np.int64).reshape(len(mine), len(class_names))
        labelled = counts.sum(axis=1, keepdims=True)
        for k, name in enumerate(class_names):
            table[f"count_{name}"] = counts[:, k]
            table[f"present_{name}"] = counts[:, k] > present_above * labelled[:, 0]
        table["label"] = np.where(labelled[:, 0] > 0, counts.argmax(axis=1) if class_names else -1, -1)
        frame = gpd.GeoDataFrame(table, geometry=geoms, crs=sp.grid.crs_wkt).to_crs("EPSG:4326")
        frames.append(frame)
    index = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
    return index.sort_values("chip_id").reset_index(drop=True)
