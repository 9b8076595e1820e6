"""What a dataset holds: pixels per class and split, channel statistics, chip footprints."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import mapping

from eoengine.datasets.browse.folder import Result, batches, open_dataset, split_names
from eoengine.errors import Invalid

SPLIT_COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
"""The colour of each split's chips on a map."""


@dataclass(frozen=True)
class ClassPixels(Result):
    """One class's labelled pixels in a split: its index (the value in the labels array), value, name, colour."""

    index: int
    value: int | str | None
    name: str
    color: str
    pixels: int


@dataclass(frozen=True)
class SplitBalance(Result):
    """A split's chips and pixels: per class, and unlabelled (every pixel no class holds)."""

    split: str
    chips: int
    pixels: int
    unlabelled: int
    classes: tuple[ClassPixels, ...]


@dataclass(frozen=True)
class ClassBalance(Result):
    """Pixels per class and split of a dataset."""

    dataset: str
    splits: tuple[SplitBalance, ...]


def class_balance(root: Path) -> ClassBalance:
    """Count the labelled pixels of every class in every split, from the labels array.

    Args:
        root: The dataset folder.

    Returns:
        Per split (train, val, test, then any other): its chips, pixels, pixels per class and unlabelled pixels.

    Raises:
        NotFound: ``root`` is not a dataset folder.

    """
    ds = open_dataset(root)
    labels = ds.reader("labels")
    p = ds.manifest.patch_size
    splits = []
    for split in split_names(ds):
        ids = ds.chip_ids(split)
        counts = np.zeros(256, dtype=np.int64)
        for batch in batches(ids, p * p):
            counts += np.bincount(np.stack([labels[i] for i in batch]).ravel(), minlength=256)
        classes = tuple(ClassPixels(c.index, c.value, c.name, c.color, int(counts[c.index])) for c in ds.manifest.classes)
        total = len(ids) * p * p
        splits.append(SplitBalance(split, len(ids), total, total - sum(c.pixels for c in classes), classes))
    return ClassBalance(ds.ref, tuple(splits))


@dataclass(frozen=True)
class ChannelSummary(Result):
    """One channel's values over the sampled chips (None when it has no valid value)."""

    name: str
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    p2: float | None
    p98: float | None
    nodata_share: float


@dataclass(frozen=True)
class BandStats(Result):
    """Per-channel statistics of a sample of the train chips."""

    dataset: str
    split: str
    chips: int
    sampled: int
    channels: tuple[ChannelSummary, ...]


def evenly(ids: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of ``ids``, spread evenly from the first to the last (all of them when few enough)."""
    if len(ids) <= most:
        return ids
    return ids[np.linspace(0, len(ids) - 1, most).round().astype(np.int64)]


def band_stats(root: Path, max_chips: int = 512, max_values: int = 1 << 20) -> BandStats:
    """Mean, standard deviation, range, 2nd and 98th percentiles and nodata share of every channel.

    Computed over a deterministic sample of the train chips (spread evenly over their ids), so
    mean, std, min and max equal the manifest's train statistics when every chip is sampled.

    Args:
        root: The dataset folder.
        max_chips: Most train chips to read.
        max_values: Most values per channel the percentiles are taken over (evenly strided).

    Returns:
        The statistics, one entry per channel in dataset order.

    Raises:
        NotFound: ``root`` is not a dataset folder.
        Invalid: ``max_chips`` or ``max_values`` is below 1.

    """
    if max_chips < 1 or max_values < 1:
        raise Invalid(f"band statistics need at least one chip and value (max_chips={max_chips}, max_values={max_values})",
                      "pass max_chips and max_values of 1 or more")
    ds = open_dataset(root)
    channels, p = ds.manifest.channels, ds.manifest.patch_size
    train = ds.chip_ids("train")
    picked = evenly(train, max_chips)
    step = max(1, math.ceil(len(picked) * p * p / max_values))
    n, total, squares = (np.zeros(len(channels)) for _ in range(3))
    lo, hi = np.full(len(channels), np.inf), np.full(len(channels), -np.inf)
    kept = []
    images = ds.reader("images")
    for batch in batches(picked, len(channels) * p * p * 4):
        x = np.moveaxis(np.stack([images[i] for i in batch]), 1, 0).reshape(len(channels), -1)
        valid = np.isfinite(x)
        n += valid.sum(axis=1)
        total += np.nansum(x, axis=1, dtype=np.float64)
        squares += np.nansum(np.square(x, dtype=np.float64), axis=1)
        lo = np.minimum(lo, np.where(valid, x, np.inf).min(axis=1))
        hi = np.maximum(hi, np.where(valid, x, -np.inf).max(axis=1))
        kept.append(x[:, ::step].copy())  # a copy: a view would keep the whole batch in memory
    sample = np.concatenate(kept, axis=1) if kept else np.empty((len(channels), 0), np.float32)
    out = []
    for c, name in enumerate(channels):
        values = sample[c][np.isfinite(sample[c])]
        mean = total[c] / n[c] if n[c] else None
        std = math.sqrt(max(squares[c] / n[c] - mean * mean, 0.0)) if mean is not None else None
        p2, p98 = (float(v) for v in np.percentile(values, [2, 98])) if values.size else (None, None)
        pixels = len(picked) * p * p
        out.append(ChannelSummary(name, mean, std, float(lo[c]) if n[c] else None, float(hi[c]) if n[c] else None,
                                  p2, p98, 1.0 - n[c] / pixels if pixels else 0.0))
    return BandStats(ds.ref, "train", len(train), len(picked), tuple(out))


def footprints(root: Path) -> dict[str, Any]:
    """Every chip's footprint as a GeoJSON FeatureCollection in EPSG:4326.

    Args:
        root: The dataset folder.

    Returns:
        One Feature per chip by chip id (``id`` = chip id), properties ``chip``, ``split``, ``scene``
        and ``color`` (the split's, :data:`SPLIT_COLORS`); geometry null where the dataset
        records none (a TFRecord import).

    Raises:
        NotFound: ``root`` is not a dataset folder.

    """
    ds = open_dataset(root)
    index = ds.index
    features = [
        {"type": "Feature", "id": int(chip),
         "geometry": None if geom is None or geom.is_empty else mapping(geom),
         "properties": {"chip": int(chip), "split": split, "scene": scene, "color": SPLIT_COLORS.get(split, "#7f7f7f")}}
        for chip, split, scene, geom in zip(index["chip_id"], index["split"], index["scene"], index.geometry, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}
