"""A dataset folder as the browsing functions read it: checked, then its manifest and chip index, cached.

:func:`open_dataset` checks that a folder holds a dataset (manifest, chip index and arrays)
and reads the manifest and the index once per change of either file. :class:`Result` is
the base of every result: a frozen dataclass with ``to_json()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from eoengine.datasets.chunks import ChunkReader
from eoengine.datasets.schema import DATASET_FIX, MANIFEST, DatasetManifest
from eoengine.datasets.split import SPLITS
from eoengine.datasets.store import ARRAYS, INDEX, open_all_arrays
from eoengine.errors import NotFound

BATCH_BYTES = 1 << 25
"""Most bytes of chips read into memory at once (32 MiB)."""


@dataclass(frozen=True)
class Result:
    """A browsing result: a frozen dataclass that converts to JSON-ready dicts."""

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (nested results as dicts, tuples as lists when serialised).

        Returns:
            The fields by name.

        """
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset folder as read: its manifest, its chip index by chip id, and the set of chip ids."""

    root: Path
    manifest: DatasetManifest
    index: gpd.GeoDataFrame
    ids: frozenset[int]

    @property
    def ref(self) -> str:
        """``name@version`` as the dataset's folder and routes spell it (12 characters of the version)."""
        return f"{self.manifest.name}@{self.manifest.version[:12]}"

    def chip_ids(self, split: str) -> np.ndarray:
        """The chip ids of a split, ascending."""
        return self.index.loc[self.index["split"] == split, "chip_id"].to_numpy(dtype=np.int64)

    def reader(self, array: str) -> ChunkReader:
        """A reader of whole chips of one array (``images``, ``labels`` or ``values``)."""
        return ChunkReader(self.root / ARRAYS / array, open_all_arrays(self.root)[array])

    def check_chip(self, chip: int) -> None:
        """Raise :class:`NotFound` unless ``chip`` is one of the dataset's chips."""
        if chip not in self.ids:
            span = f"ids run from {min(self.ids)} to {max(self.ids)}" if self.ids else "it has no chips"
            raise NotFound(f"chip {chip} is not in dataset {self.ref}",
                           f"use a chip id from the dataset's footprints (property 'chip'); {span}")


def open_dataset(root: Path) -> Dataset:
    """The manifest and chip index of a dataset folder (cached until either file changes).

    Args:
        root: The dataset folder.

    Returns:
        The dataset as read; callers must not modify its index.

    Raises:
        NotFound: ``root`` is missing, or is not a dataset folder (no manifest, chip index or arrays).
        EOError: the manifest is of another format or does not validate.

    """
    root = Path(root)
    missing = next((part for part in (MANIFEST, INDEX, ARRAYS) if not (root / part).exists()), None)
    if missing is not None:
        why = "not found" if not root.exists() else "a file" if not root.is_dir() else f"no {missing} in it"
        raise NotFound(f"{root} is not an eoengine dataset ({why})", DATASET_FIX)
    return _read(str(root.resolve()), (root / MANIFEST).stat().st_mtime_ns, (root / INDEX).stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _read(root: str, manifest_mtime: int, index_mtime: int) -> Dataset:
    path = Path(root)
    manifest = DatasetManifest.read(path)
    index = gpd.read_parquet(path / INDEX).sort_values("chip_id").reset_index(drop=True)
    return Dataset(path, manifest, index, frozenset(index["chip_id"].tolist()))


def batches(ids: np.ndarray, chip_bytes: int) -> Iterator[np.ndarray]:
    """``ids`` in runs of at most :data:`BATCH_BYTES` of chips."""
    size = max(1, BATCH_BYTES // max(chip_bytes, 1))
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def split_names(ds: Dataset) -> list[str]:
    """train, val, test, then any other split the index names."""
    return [*SPLITS, *sorted(set(ds.index["split"]) - set(SPLITS))]
