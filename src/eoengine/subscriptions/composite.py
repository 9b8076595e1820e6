"""The per-pixel median of a period's scenes: one stack the model predicts once.

The fetched stacks (the model's bands, clipped to the area) are put on the first stack's grid
(others are warped onto it), then each band's median is taken pixel by pixel over the scenes that
have data there (nodata is left out; a pixel no scene covers stays nodata). Blocks of the output
are computed one at a time, so memory holds one block of every scene, not whole scenes. The result
is written under a temporary name and renamed, so a crash never leaves a half composite.
"""

from __future__ import annotations

import os
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

NODATA = -9999.0


def median_composite(stacks: list[Path], out: Path) -> Path:
    """Write the per-pixel, per-band median of ``stacks`` (float32) to ``out``, on the first stack's grid.

    Args:
        stacks: fetched stacks of the same bands, in the same order.
        out: the composite GeoTIFF to write.

    Returns:
        ``out``.

    """
    import rasterio
    from rasterio.vrt import WarpedVRT

    with ExitStack() as stack:
        first = stack.enter_context(rasterio.open(stacks[0]))
        grid = {"crs": first.crs, "transform": first.transform, "width": first.width, "height": first.height}
        sources = [first] + [stack.enter_context(WarpedVRT(stack.enter_context(rasterio.open(p)), **grid))
                             for p in stacks[1:]]
        profile = first.profile | {"driver": "GTiff", "dtype": "float32", "nodata": NODATA, "tiled": True,
                                   "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
        profile.pop("photometric", None)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        out.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(tmp, "w", **profile) as dst:
            descriptions = first.descriptions
            for band, name in enumerate(descriptions, 1):
                if name:
                    dst.set_band_description(band, name)
            dst.update_tags(**first.tags())
            for _, window in dst.block_windows(1):
                dst.write(_median(sources, window), window=window)
        os.replace(tmp, out)
    return out


def _median(sources: list[Any], window: Any) -> np.ndarray:
    """The nodata-aware median of one window of every source (bands × rows × cols)."""
    layers = []
    for src in sources:
        data = src.read(window=window, masked=True).astype("float32")
        layers.append(np.ma.filled(data, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-nodata pixel: NaN, written as nodata
        median = np.nanmedian(np.stack(layers), axis=0)
    return np.where(np.isnan(median), NODATA, median).astype("float32")
