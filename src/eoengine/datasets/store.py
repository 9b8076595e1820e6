"""On-disk layout of a dataset.

A dataset folder holds ``manifest.json``, ``chips.parquet`` (GeoParquet index) and
``data.zarr`` with the arrays ``images`` (N, C, P, P) float32, NaN for nodata,
``labels`` (N, P, P) uint8, 255 for unlabelled, and for regression targets ``values``
(N, P, P) float32, NaN where unknown. Array rows are chip ids; rows of candidates
that were filtered out are never written and take no space.

A folder with ``remote.json`` caches a dataset served over HTTP(S): its arrays are read from
the server through a local chunk cache (:mod:`eoengine.datasets.remote`), the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from eoengine.datasets.location import REMOTE
from eoengine.labels import IGNORE

INDEX = "chips.parquet"
ARRAYS = "data.zarr"
MARKERS = "_chips"
ARRAY_NAMES = ("images", "labels", "values")
"""The chip arrays a dataset may hold (``values`` only with regression targets)."""


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


def open_group(root: Path, mode: str = "r") -> Any:
    """The zarr group of a dataset folder's chip arrays.

    Args:
        root: The dataset folder (or the cache folder of a dataset served over HTTP(S)).
        mode: zarr's mode (``r``, ``r+``, ...); a served dataset is read-only.

    Returns:
        The opened group.

    Raises:
        Invalid: A served dataset opened for writing.
        EOError: A served dataset's server refused the token, or cannot be reached (as
            :func:`eoengine.datasets.remote.remote_group` says).

    """
    if (root / REMOTE).is_file():
        from eoengine.datasets.remote import remote_group  # fsspec and aiohttp load only for served datasets

        return remote_group(root, mode)
    return zarr.open_group(str(root / ARRAYS), mode=mode)  # type: ignore[arg-type]


def open_all_arrays(root: Path, mode: str = "r") -> dict[str, Any]:
    """Every chip array of a dataset folder by name (images, labels and values if any)."""
    group = open_group(root, mode)
    return {name: group[name] for name in ARRAY_NAMES if name in group}  # by name: a server lists no folders


def open_arrays(root: Path, mode: str = "r") -> tuple[Any, Any]:
    """(images, labels) zarr arrays of a dataset folder."""
    group = open_group(root, mode)
    return group["images"], group["labels"]
