"""Chip windows and train/val/test splits that do not leak across space.

Neighbouring chips share pixels (and, on real land, texture), so a random chip split lets
the test set peek at training data. The default ``blocks`` method assigns whole square
blocks of the scene to a split and drops chips that straddle blocks of different splits.
``regions`` takes user polygons with a split column; ``column`` takes the split from the
label features a chip covers; ``random`` is chip-level (leaks; for comparison only).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator

import geopandas as gpd
import numpy as np
from shapely.geometry import box
from shapely.strtree import STRtree

from eoengine.raster.scene import Grid
from eoengine.raster.windows import grid_positions

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
Window4 = tuple[int, int, int, int]  # row, col, height, width


def grid_windows(height: int, width: int, size: int, stride: int) -> Iterator[tuple[int, int]]:
    """(row, col) of every grid window of ``size`` with ``stride`` in a height x width grid."""
    for r in grid_positions(height, size, stride):
        for c in grid_positions(width, size, stride):
            yield r, c


def random_windows(height: int, width: int, size: int, n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` seeded random window positions (duplicates removed, order kept)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, height - size + 1, size=n)
    cols = rng.integers(0, width - size + 1, size=n)
    return list(dict.fromkeys(zip(rows.tolist(), cols.tolist(), strict=True)))


def stable_seed(seed: int, key: str) -> int:
    """A seed derived from ``seed`` and a text key, stable across processes and runs."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**32)


def assign_counts(n: int, ratios: dict[str, float]) -> list[str]:
    """A list of ``n`` split names in the given ratios (largest-remainder rounding).

    When ``n`` allows it, every split with a positive ratio gets at least one: rounding 4
    blocks at 0.7/0.15/0.15 must not leave the test split empty.
    """
    names = [s for s in SPLITS if ratios.get(s, 0) > 0]
    exact = np.array([ratios[s] * n for s in names])
    counts = np.floor(exact).astype(int)
    if n >= len(names):
        counts = np.maximum(counts, 1)
    for i in np.argsort(-(exact - counts), kind="stable")[: max(0, n - counts.sum())]:
        counts[i] += 1
    while counts.sum() > n:  # the minimum of one took from the largest
        counts[int(np.argmax(counts))] -= 1
    return [name for name, k in zip(names, counts, strict=True) for _ in range(k)]


MIN_SPLIT_CHIPS = 2
"""Fewest chips a split with a positive ratio may hold: one chip is no validation or test set."""


def block_sizes(patch: int, configured: int | None) -> list[int]:
    """Block sizes to try, largest first: the configured one, else 4, 3, 2 and 1 x ``patch``."""
    return [configured] if configured else [k * patch for k in (4, 3, 2, 1)]


def short_splits(placed: list[str], ratios: dict[str, float]) -> dict[str, int]:
    """Splits with a positive ratio that hold fewer than :data:`MIN_SPLIT_CHIPS` of ``placed`` chips."""
    counts = {s: placed.count(s) for s in SPLITS if ratios.get(s, 0) > 0}
    return {s: n for s, n in counts.items() if n < MIN_SPLIT_CHIPS}


def split_warnings(
    chips: dict[str, int], freq: dict[str, list[int]], ratios: dict[str, float], names: list[str]
) -> list[str]:
    """What makes a built dataset's val or test split say less than it seems to.

    A split with a positive ratio but fewer than :data:`MIN_SPLIT_CHIPS` chips (the chips a
    build planned may since have been filtered out), or without any pixel of a class the
    train split has: its scores say little or nothing.

    Args:
        chips: chips kept per split.
        freq: labelled pixels per class, per split (the manifest's ``class_frequencies``).
        ratios: the configured split ratios.
        names: the class names, in class order.

    Returns:
        One message per degenerate split (empty when every split covers train's classes).

    """
    train = freq.get("train", [])
    found = []
    for split in SPLITS[1:]:
        n = chips.get(split, 0)
        if n < MIN_SPLIT_CHIPS and ratios.get(split, 0) > 0:
            found.append(f"the {split} split has no chips: it cannot score the model" if not n else
                         f"the {split} split has only {n} chip{'s' * (n != 1)} (each split needs {MIN_SPLIT_CHIPS}): "
                         "its scores rest on too few pixels to trust")
        if not n:
            continue
        pixels = freq.get(split, [0] * len(names))
        missing = [name for name, t, v in zip(names, train, pixels, strict=True) if t and not v]
        if missing:
            found.append(f"the {split} split has no pixels of {', '.join(missing)} (train has): "
                         f"its scores say nothing about {'that class' if len(missing) == 1 else 'those classes'}")
    return found


def warn_empty_classes(names: list[str], freq: dict[str, list[int]], fix: str) -> list[str]:
    """Warn about each class with no labelled pixel in the dataset (a model cannot learn it).

    Args:
        names: the class names, in index order.
        freq: labelled pixels per class, per split.
        fix: what to do about it, for the dataset's source.

    Returns:
        The names of the classes without pixels.

    """
    empty = [n for i, n in enumerate(names) if not any(counts[i] for counts in freq.values())]
    for name in empty:
        log.warning("class '%s' has no labelled pixels in the dataset, so no model can learn it — %s", name, fix)
    return empty


def warn_dataset(
    chips: dict[str, int], freq: dict[str, list[int]], ratios: dict[str, float], names: list[str],
    split_fix: str, class_fix: str,
) -> None:
    """Log what a finished dataset's splits and classes lack (every way of making one calls this).

    Args:
        chips: chips per split (the manifest's ``splits``).
        freq: labelled pixels per class, per split (the manifest's ``class_frequencies``).
        ratios: the split ratios asked for (a split at 0 may be empty).
        names: the class names, in class order.
        split_fix: what to do about a short split, for the dataset's source.
        class_fix: what to do about a class without pixels, for the dataset's source.

    """
    for problem in split_warnings(chips, freq, ratios, names):
        log.warning("%s — %s", problem, split_fix)
    warn_empty_classes(names, freq, class_fix)


SplitFn = Callable[[int, int, int], str | None]
"""(row, col, size) → split name, or None to drop the chip."""


def block_splitter(grid: Grid, block: int, ratios: dict[str, float], seed: int, scene: str) -> SplitFn:
    """Assign square blocks of ``block`` pixels to splits; a chip takes its blocks' split."""
    nbr, nbc = -(-grid.height // block), -(-grid.width // block)
    labels = assign_counts(nbr * nbc, ratios)
    rng = np.random.default_rng(stable_seed(seed, scene))
    order = rng.permutation(nbr * nbc)
    table = np.empty(nbr * nbc, dtype=object)
    table[order] = labels
    grid2d = table.reshape(nbr, nbc)

    def split(row: int, col: int, size: int) -> str | None:
        touched = grid2d[row // block : (row + size - 1) // block + 1, col // block : (col + size - 1) // block + 1]
        first = touched.flat[0]
        return str(first) if np.all(touched == first) else None

    return split


def random_splitter(ratios: dict[str, float], seed: int, scene: str) -> SplitFn:
    """Chip-level random split (neighbouring chips may land in different splits)."""
    names = [s for s in SPLITS if ratios.get(s, 0) > 0]
    probs = np.array([ratios[s] for s in names])

    def split(row: int, col: int, size: int) -> str | None:
        rng = np.random.default_rng(stable_seed(seed, f"{scene}:{row}:{col}"))
        return str(rng.choice(names, p=probs / probs.sum()))

    return split


def geometry_splitter(grid: Grid, frame: gpd.GeoDataFrame, column: str, contain: bool) -> SplitFn:
    """Split from polygons with a split column.

    A chip takes the split of the polygons it lies inside (regions) or touches (label column),
    and is dropped when that is not exactly one split.
    """
    if contain:  # one polygon per split, so a chip spanning two same-split polygons is inside
        frame = frame[[column, "geometry"]].assign(**{column: frame[column].astype(str)})
        frame = frame.dissolve(by=column).reset_index()
    geoms = np.asarray(frame.geometry.values)
    values = frame[column].astype(str).to_numpy()
    tree = STRtree(geoms)

    eps = grid.res * 0.01

    def split(row: int, col: int, size: int) -> str | None:
        chip = box(*grid.window_bounds(row, col, size, size))
        if contain:
            hits = tree.query(chip.buffer(-eps), predicate="within")
        else:
            hits = tree.query(chip, predicate="intersects")
        found = {values[i] for i in hits} & set(SPLITS)
        return found.pop() if len(found) == 1 else None

    return split
