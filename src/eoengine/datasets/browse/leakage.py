"""How close train chips come to val and test chips, in metres: STRtree queries, never all pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS

from eoengine.datasets.browse.folder import Dataset, Result, open_dataset
from eoengine.errors import Invalid
from eoengine.raster.scene import Grid


@dataclass(frozen=True)
class SplitDistance(Result):
    """How close the train chips come to one other split's chips.

    ``nearest`` is (train chip, other chip) of the closest pair; ``within`` counts the train chips
    at most the threshold away from a chip of the split (touching counts at threshold 0);
    ``overlapping`` counts the train chips that share pixels with one.
    """

    split: str
    chips: int
    min_distance_m: float | None
    nearest: tuple[int, int] | None
    within: int
    overlapping: int


@dataclass(frozen=True)
class Leakage(Result):
    """Distances between the train split and the val and test splits, and what they mean."""

    dataset: str
    crs: str
    threshold_m: float
    train_chips: int
    splits: tuple[SplitDistance, ...]
    verdict: str
    """``overlap`` (train chips share pixels with evaluation chips), ``near`` (within the threshold),
    ``separated``, or ``unknown`` (nothing to compare)."""
    summary: str


def _metric_footprints(ds: Dataset) -> tuple[np.ndarray, str, float]:
    """Chip footprints in a projected CRS, its name, and metres per unit of that CRS.

    The scenes' own grid when they share one projected CRS (exact: touching chips touch),
    else the index's EPSG:4326 footprints in the local UTM zone.
    """
    index, p = ds.index, ds.manifest.patch_size
    wkts = {s.grid.crs_wkt for s in ds.manifest.scenes}
    if len(wkts) == 1 and CRS.from_wkt(next(iter(wkts))).is_projected and {"row", "col"} <= set(index.columns):
        crs = CRS.from_wkt(next(iter(wkts)))
        grids = {s.id: Grid(**s.grid.model_dump(include={"crs_wkt", "transform", "width", "height"})) for s in ds.manifest.scenes}
        bounds = np.array([grids[s].window_bounds(r, c, p, p) for s, r, c in zip(index["scene"], index["row"], index["col"], strict=True)])
        geoms = shapely.box(*bounds.T) if len(bounds) else np.empty(0, dtype=object)
        return geoms, _crs_label(crs), float(crs.axis_info[0].unit_conversion_factor)
    if len(index) and index.geometry.isna().any():
        raise Invalid(f"dataset {ds.ref} records no chip footprints (a TFRecord import), so distances cannot be measured",
                      "check leakage on a dataset made by 'eoengine dataset build'")
    utm = index.estimate_utm_crs() if len(index) else CRS.from_epsg(3857)
    return index.geometry.to_crs(utm).to_numpy(), _crs_label(utm), 1.0


def _crs_label(crs: CRS) -> str:
    """``EPSG:<code> (<name>)``, or the name alone, or "the scenes' CRS" for an unnamed one."""
    name = crs.name if crs.name and crs.name != "unnamed" else "the scenes' CRS"
    code = crs.to_epsg()
    return f"EPSG:{code} ({name})" if code else name


def _distances(train: np.ndarray, train_ids: np.ndarray, other: np.ndarray, other_ids: np.ndarray, split: str,
               metres: float, threshold_m: float) -> SplitDistance:
    """How close ``train`` footprints come to ``other`` ones (STRtree queries, not all pairs)."""
    if not len(train) or not len(other):
        return SplitDistance(split, len(other), None, None, 0, 0)
    tree = shapely.STRtree(other)
    (near_train, near_other), dist = tree.query_nearest(train, return_distance=True, all_matches=False)
    dist = dist * metres
    best = int(np.argmin(dist))
    pairs = tree.query(train, predicate="intersects")
    shared = shapely.area(shapely.intersection(train[pairs[0]], other[pairs[1]])) > 1e-6 * shapely.area(train).min()
    return SplitDistance(split, len(other), float(dist[best]), (int(train_ids[near_train[best]]), int(other_ids[near_other[best]])),
                         int((dist <= threshold_m).sum()), len(np.unique(pairs[0][shared])))


def _train(n: int) -> str:
    return f"{n} train chip{'' if n == 1 else 's'}"


def _verdict(results: tuple[SplitDistance, ...], threshold_m: float) -> tuple[str, str]:
    """The verdict code and a one-line summary naming the splits, counts and what to do."""
    measured = [r for r in results if r.min_distance_m is not None]
    if not measured:
        return "unknown", "nothing to compare: the dataset has no train chips, or no val and no test chips"
    if any(r.overlapping for r in measured):
        parts = [f"{r.split}: {_train(r.overlapping)} sharing pixels with its chips" for r in measured if r.overlapping]
        return "overlap", "; ".join(parts) + " — its scores are optimistic; rebuild with dataset.split method blocks or regions"
    if any(r.within for r in measured):
        how = "touching its chips" if threshold_m == 0 else f"within {threshold_m:g} m of its chips"
        parts = [f"{r.split}: {_train(r.within)} {how}" for r in measured if r.within]
        return "near", "; ".join(parts) + " (no shared pixels) — neighbours look alike; a larger block size keeps them apart"
    nearest = min(measured, key=lambda r: r.min_distance_m or 0.0)
    return "separated", f"train chips are at least {nearest.min_distance_m:.0f} m from the {nearest.split} chips"


def leakage(root: Path, threshold_m: float = 0.0) -> Leakage:
    """Measure how close train chips come to val and test chips: nearest distance, chips near, chips overlapping.

    Args:
        root: The dataset folder.
        threshold_m: A train chip at most this far (metres) from a val/test chip counts as near.

    Returns:
        Per split (val, test): its chips, the smallest distance and the closest pair, the train
        chips within the threshold and those sharing pixels; a verdict and a one-line summary.

    Raises:
        NotFound: ``root`` is not a dataset folder.
        Invalid: ``threshold_m`` is negative or not finite, or the dataset records no footprints.

    """
    if not (math.isfinite(threshold_m) and threshold_m >= 0):
        raise Invalid(f"leakage threshold {threshold_m} m is not a distance", "give a threshold of 0 or more metres")
    ds = open_dataset(root)
    geoms, crs, metres = _metric_footprints(ds)
    splits, ids = ds.index["split"].to_numpy(), ds.index["chip_id"].to_numpy()
    train = splits == "train"
    results = tuple(_distances(geoms[train], ids[train], geoms[splits == s], ids[splits == s], s, metres, threshold_m)
                    for s in ("val", "test"))
    verdict, summary = _verdict(results, threshold_m)
    return Leakage(ds.ref, crs, threshold_m, int(train.sum()), results, verdict, summary)
