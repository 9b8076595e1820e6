"""Writing Cloud-Optimized GeoTIFFs safely.

Maps are first streamed into a tiled GeoTIFF (window by window), then converted with GDAL's
COG driver (which adds overviews and orders the file for HTTP range reads), under a
temporary name that is renamed only when complete. A process killed meanwhile leaves its
staging files; the next conversion to the same name deletes them. Where an output cannot be
written (a file in its path, a folder one may not write, a full disk), the error names the
output rather than surfacing GDAL's traceback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import rasterio
import rasterio.shutil

from eoengine.errors import EOError, first_line


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


def unwritable(path: Path, exc: BaseException) -> EOError:
    """The error for an output that could not be written, naming it and the reason."""
    return EOError(f"cannot write {path}: {first_line(exc)}",
                   "choose an output in a folder you may write to, with enough free space")


def check_writable(path: Path) -> None:
    """Check that a file can be created at ``path`` (its missing folders too), creating nothing.

    Args:
        path: The output file.

    Raises:
        EOError: ``path`` is a folder, a file stands where a folder should, or the nearest
            existing folder refuses new files.

    """
    path = Path(path)
    if path.is_dir():
        raise EOError(f"{path} is a folder", f"give a file name, e.g. {path / 'map.tif'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise EOError(f"cannot write {path}: {folder} is a file, not a folder", "choose an output in a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".eoengine-probe-"):
            pass
    except OSError as exc:
        raise unwritable(path, exc) from None


def finish_cog(tiled: Path, final: Path, resampling: str) -> None:
    """Convert a tiled GeoTIFF to a COG at ``final`` (atomic) and delete the input, also on failure.

    Staging files of ``final`` left by killed processes are deleted first.
    """
    remove_stale(final)
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
