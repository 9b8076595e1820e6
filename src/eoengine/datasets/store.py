"""On-disk layout of a dataset and atomic file helpers.

A dataset folder holds ``manifest.json``, ``chips.parquet`` (GeoParquet index) and
``data.zarr`` with the arrays ``images`` (N, C, P, P) float32, NaN for nodata,
``labels`` (N, P, P) uint8, 255 for unlabelled, and for regression targets ``values``
(N, P, P) float32, NaN where unknown. Array rows are chip ids; rows of candidates
that were filtered out are never written and take no space.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from eoengine.errors import EOError, NotFound
from eoengine.labels import IGNORE

MANIFEST = "manifest.json"
INDEX = "chips.parquet"
ARRAYS = "data.zarr"
MARKERS = "_chips"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def create_arrays(
    root: Path, n: int, channels: int, patch: int, compression: str = "none", values: bool = False
) -> None:
    """Create the (empty) chip arrays for ``n`` candidate chips (``compression``: none or zstd)."""
    group = zarr.open_group(str(root / ARRAYS), mode="w")
    codecs: dict[str, Any] = {} if compression == "zstd" else {"compressors": None}
    group.create_array(
        "images",
        shape=(n, channels, patch, patch),
        chunks=(1, channels, patch, patch),
        dtype="float32",
        fill_value=np.nan,
        dimension_names=("chip", "channel", "y", "x"),
        **codecs,
    )
    group.create_array(
        "labels",
        shape=(n, patch, patch),
        chunks=(1, patch, patch),
        dtype="uint8",
        fill_value=IGNORE,
        dimension_names=("chip", "y", "x"),
        **codecs,
    )
    if values:
        group.create_array(
            "values",
            shape=(n, patch, patch),
            chunks=(1, patch, patch),
            dtype="float32",
            fill_value=np.nan,
            dimension_names=("chip", "y", "x"),
            **codecs,
        )


def open_all_arrays(root: Path, mode: str = "r") -> dict[str, Any]:
    """Every chip array of a dataset folder by name (images, labels and values if any)."""
    group = zarr.open_group(str(root / ARRAYS), mode=mode)  # type: ignore[arg-type]
    return {name: arr for name, arr in group.arrays()}


def open_arrays(root: Path, mode: str = "r") -> tuple[Any, Any]:
    """(images, labels) zarr arrays of a dataset folder."""
    group = zarr.open_group(str(root / ARRAYS), mode=mode)  # type: ignore[arg-type]
    return group["images"], group["labels"]


DATASET_FIX = "pass a folder made by 'eoengine dataset build' or 'eoengine dataset import-tfrecord'"


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of a dataset folder.

    Args:
        root: the dataset folder.

    Returns:
        The manifest.

    Raises:
        NotFound: ``root`` is missing.
        EOError: ``root`` is a file, or a folder without a manifest.

    """
    if not (root / MANIFEST).is_file():
        why = "not found" if not root.exists() else "a file" if not root.is_dir() else f"no {MANIFEST} in it"
        raise (NotFound if why == "not found" else EOError)(f"{root} is not an eoengine dataset ({why})", DATASET_FIX)
    data: dict[str, Any] = json.loads((root / MANIFEST).read_text())
    return data
