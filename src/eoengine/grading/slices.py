"""Slice keys: which slice of each dimension every graded pixel (or chip) falls in.

A dimension is a :class:`SliceKeys`: a key per pixel (N, h, w), ``-1`` for none, and a label per key. Chip
slices (scene, spatial block, month, season, year, input-statistic bins) give every pixel of a chip its
chip's key; ``class`` is scored from the confusion matrix itself (per-class IoU, precision, recall), so it has
no keys here. Regions, strata rasters and scene properties come from :mod:`eoengine.grading.zones`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from eoengine.errors import EOError
from eoengine.features.indices import compute_indices
from eoengine.grading.chips import GradedChips

SEASONS = ("DJF", "MAM", "JJA", "SON")
"""Meteorological seasons by month (hemisphere-neutral names)."""
NODATA_EDGES = (0.0, 1e-9, 0.1, 0.5, 1.0)
"""Bins of a chip's nodata share: none, up to 10 %, up to half, more."""


@dataclass
class SliceKeys:
    """One slice dimension: a key per pixel (N, h, w) (-1: in no slice) and each key's label."""

    name: str
    keys: np.ndarray
    labels: list[str]


def per_chip(name: str, chip_keys: np.ndarray, labels: list[str], shape: tuple[int, ...]) -> SliceKeys:
    """A dimension whose key is the same for all pixels of a chip.

    Args:
        name: The dimension's name.
        chip_keys: One key per chip (N,), -1 for none.
        labels: Each key's label.
        shape: The graded maps' shape (N, h, w).

    Returns:
        The keys broadcast to every pixel.

    """
    keys = np.broadcast_to(chip_keys.astype(np.int32)[:, None, None], shape)
    return SliceKeys(name, keys, labels)


def categorical(name: str, values: list[str], shape: tuple[int, ...]) -> SliceKeys:
    """A chip dimension from one label per chip (sorted labels, ``"unknown"`` kept as a slice)."""
    labels = sorted(set(values))
    lookup = {v: i for i, v in enumerate(labels)}
    return per_chip(name, np.array([lookup[v] for v in values]), labels, shape)


def quantile_bins(name: str, values: np.ndarray, bins: int, shape: tuple[int, ...], fmt: str = "{:.3g}") -> SliceKeys:
    """A chip dimension from a number per chip, cut at its quantiles (NaN: no slice).

    Args:
        name: The dimension's name.
        values: One number per chip.
        bins: How many quantile bins (fewer when values repeat).
        shape: The graded maps' shape.
        fmt: How bin edges are written in labels.

    Returns:
        Keys by bin, labelled ``[low, high)`` (the last bin closed).

    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return per_chip(name, np.full(len(values), -1), [], shape)
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    return binned(name, values, edges, shape, fmt)


def binned(name: str, values: np.ndarray, edges: np.ndarray | tuple[float, ...], shape: tuple[int, ...],
           fmt: str = "{:.3g}") -> SliceKeys:
    """A chip dimension from a number per chip cut at given edges (values outside: no slice)."""
    edges = np.asarray(edges, dtype=np.float64)
    inner = edges[1:-1]
    keys = np.searchsorted(inner, values, side="right")
    keys = np.where(np.isfinite(values) & (values >= edges[0]) & (values <= edges[-1]), keys, -1)
    labels = [f"[{fmt.format(lo)}, {fmt.format(hi)}{']' if k == len(edges) - 2 else ')'}"
              for k, (lo, hi) in enumerate(itertools.pairwise(edges))]
    return per_chip(name, keys, labels, shape)


def _when(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def date_slices(graded: GradedChips, name: str) -> SliceKeys:
    """Chips by their scene's acquisition month, season or year (``unknown`` without a date).

    Args:
        graded: The graded chips.
        name: ``month``, ``season`` or ``year``.

    Returns:
        The dimension.

    """
    labels = []
    for value in graded.rows["datetime"].tolist():
        when = _when(value)
        if when is None:
            labels.append("unknown")
        elif name == "month":
            labels.append(f"{when.month:02d}")
        elif name == "season":
            labels.append(SEASONS[when.month % 12 // 3])
        else:
            labels.append(str(when.year))
    return categorical(name, labels, graded.truth.shape)


def block_slices(graded: GradedChips, block: int) -> SliceKeys:
    """Chips by square spatial blocks of ``block`` pixels of their scene (by the chip's top-left pixel)."""
    rows = graded.rows
    labels = [f"{s}:{r // block},{c // block}"
              for s, r, c in zip(rows["scene"].tolist(), rows["row"].tolist(), rows["col"].tolist(), strict=True)]
    return categorical("block", labels, graded.truth.shape)


def _band_channels(graded: GradedChips) -> list[int]:
    m = graded.manifest
    per_date = len(m.bands) + len(m.indices)
    return [t * per_date + b for t in range(m.timesteps) for b in range(len(m.bands))]


def brightness(graded: GradedChips) -> np.ndarray:
    """Each chip's mean over its band channels of the train-standardised values (0 = the train mean)."""
    stats = graded.manifest.statistics.train
    idx = _band_channels(graded)
    mean = np.asarray(stats.mean, np.float64)[idx][None, :, None, None]
    std = np.asarray(stats.std, np.float64)[idx][None, :, None, None]
    z = (graded.raw[:, idx] - mean) / np.where(std > 0, std, 1.0)
    with _quiet():
        return np.nanmean(z.reshape(len(z), -1), axis=1)


def ndvi_range(graded: GradedChips) -> np.ndarray:
    """Each chip's NDVI spread (95th minus 5th percentile over its valid pixels), from the first date.

    Raises:
        EOError: The model has no NDVI channel and no bands with the common names red and nir.

    """
    m = graded.manifest
    if "NDVI" in m.indices:
        ndvi = graded.raw[:, len(m.bands) + m.indices.index("NDVI")]
    else:
        common = [b.common_name for b in m.band_specs]
        if not {"red", "nir"} <= set(common):
            raise EOError("slice 'ndvi_range' needs NDVI: the model has no NDVI channel and no red and nir bands",
                          "drop ndvi_range from slices.by, or set common_name red/nir on the dataset's bands")
        first = graded.raw[:, : len(m.bands)]
        ndvi = np.stack([compute_indices(chip, ["NDVI"], m.bands, common, m.index_constants)[0] for chip in first])
    flat = ndvi.reshape(len(ndvi), -1)
    with _quiet():
        hi, lo = np.nanpercentile(flat, 95, axis=1), np.nanpercentile(flat, 5, axis=1)
    return np.asarray(hi - lo, dtype=np.float64)


@contextmanager
def _quiet() -> Iterator[None]:
    """All-NaN chips (all nodata) give NaN statistics, without numpy's warnings."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def builtin_slices(graded: GradedChips, names: list[str], block: int, bins: int) -> list[SliceKeys]:
    """The built-in chip dimensions asked for (``class`` is scored from the confusion matrix, not here).

    Args:
        graded: The graded chips.
        names: Dimension names (see :data:`eoengine.grading.suite.SLICES`).
        block: Spatial block side in pixels.
        bins: Quantile bins of input statistics.

    Returns:
        One :class:`SliceKeys` per name other than ``class``.

    """
    shape = graded.truth.shape
    out = []
    for name in names:
        if name == "scene":
            out.append(categorical("scene", [str(s) for s in graded.rows["scene"].tolist()], shape))
        elif name == "block":
            out.append(block_slices(graded, block))
        elif name in ("month", "season", "year"):
            out.append(date_slices(graded, name))
        elif name == "brightness":
            out.append(quantile_bins(name, brightness(graded), bins, shape, "{:+.2f}"))
        elif name == "ndvi_range":
            out.append(quantile_bins(name, ndvi_range(graded), bins, shape, "{:.2f}"))
        elif name == "nodata_share":
            share = graded.rows["nodata_fraction"].to_numpy(dtype=np.float64)
            out.append(binned(name, share, NODATA_EDGES, shape, "{:.0%}"))
    return out
