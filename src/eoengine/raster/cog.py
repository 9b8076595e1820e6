"""Writing Cloud-Optimized GeoTIFFs safely.

Maps are first streamed into a tiled GeoTIFF (window by window), then converted with GDAL's
COG driver (which adds overviews and orders the file for HTTP range reads), under a
temporary name that is renamed only when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import rasterio
import rasterio.shutil


def temp_name(final: Path, suffix: str) -> Path:
    """A hidden temporary name beside ``final``, carrying this process's id."""
    return final.with_name(f".{final.name}.{os.getpid()}.{suffix}")


def remove_stale(final: Path) -> list[Path]:
    """Delete the temporary files of ``final`` left by processes that no longer run (killed ones)."""
    removed = []
    for tmp in final.parent.glob(f".{final.name}.*.*"):
        pid = tmp.name[len(final.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        except PermissionError:  # alive, another user's
            continue
    return removed


def finish_cog(tiled: Path, final: Path, resampling: str) -> None:
    """Convert a tiled GeoTIFF to a COG at ``final`` (atomic) and delete the input, also on failure."""
    staging = temp_name(final, "cog.tif")
    try:
        with rasterio.open(tiled) as src:
            side = max(src.width, src.height)
        block = 128 if side <= 512 else 256 if side <= 4096 else 512  # small maps still get overviews
        rasterio.shutil.copy(
            str(tiled), str(staging), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=block,
            OVERVIEW_RESAMPLING=resampling, OVERVIEWS="AUTO", BIGTIFF="IF_SAFER",
        )
        os.replace(staging, final)
    finally:
        staging.unlink(missing_ok=True)
        tiled.unlink(missing_ok=True)
        Path(str(tiled) + ".aux.xml").unlink(missing_ok=True)


def is_cog(path: Path) -> bool:
    """True if GDAL reports the file as a COG layout with the expected structure."""
    with rasterio.open(path) as ds:
        layout = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "")
        return layout.upper() == "COG" and ds.profile.get("tiled", False)
