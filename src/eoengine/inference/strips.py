"""Prediction split by rows of regions, so several workers share one large scene.

A strip is a run of region rows. Its worker first computes the region row just above it
(without writing it): the tiles of that row spill into the strip's first row, and those
spills depend on that row's tiles alone, so the strip comes out exactly as a whole-scene
run would write it. Each strip is written to its own sparse tiled GeoTIFF (renamed into
place when complete, so a rerun skips finished strips); ``join_strips`` copies them into one
COG with the class colours and tags. A strip or map that cannot be written (a full disk) is
the same one-line error as a single-scene map's, and its half-written file is deleted.
"""

from __future__ import annotations

import json
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from eoengine.inference.output import describe_map, map_profile, map_tags
from eoengine.inference.predict import Carry, Predictor
from eoengine.inference.regions import regions
from eoengine.raster.cog import finish_cog, temp_name, unwritable
from eoengine.raster.scene import SceneReader


def region_rows(predictor: Predictor, reader: SceneReader) -> int:
    """How many rows of regions the scene has."""
    grid = reader.grid
    return regions(grid.height, grid.width, predictor.tile, predictor.overlap, predictor.opts.region_size)[-1].i + 1


def _profile(predictor: Predictor, reader: SceneReader) -> dict[str, object]:
    return map_profile(reader.grid, predictor.coding) | {"SPARSE_OK": True}


def predict_strip(predictor: Predictor, reader: SceneReader, first: int, last: int, out: Path,
                  scratch: Path | None = None) -> Path:
    """Predict region rows ``first``..``last`` (inclusive) of the scene into the sparse GeoTIFF ``out``.

    Args:
        predictor: The loaded model and prediction options.
        reader: The scene.
        first: The first region row of the strip.
        last: The last region row of the strip (inclusive).
        out: The strip's file; when it exists the strip is finished and not predicted again.
        scratch: The folder (on ``out``'s file system) of the temporary file, renamed to ``out`` when
            complete; default: beside ``out``. Once the folder is deleted, no strip can appear.

    Returns:
        ``out``.

    Raises:
        EOError: The strip cannot be written (a full disk, its scratch folder deleted).

    """
    if out.exists():
        return out
    grid = reader.grid
    layout = regions(grid.height, grid.width, predictor.tile, predictor.overlap, predictor.opts.region_size)
    carry = Carry(predictor.n_out + 1, predictor.overlap, grid.height, grid.width)
    tmp = temp_name(out if scratch is None else scratch / out.name, "strip.tif")
    try:
        with rasterio.Env(GDAL_CACHEMAX=256), rasterio.open(tmp, "w", **_profile(predictor, reader)) as dst:  # type: ignore[arg-type]
            for reg in layout:
                if not max(first - 1, 0) <= reg.i <= last:
                    continue
                _, data, nodata = predictor._read(reader, reg)
                acc = carry.settle(reg, predictor._compute(reg, data))
                if reg.i < first:
                    continue  # the row above: computed for what it spills into this strip
                out_arr, _ = predictor.finish_region(acc, nodata, probabilities=False)
                dst.write(out_arr, 1, window=Window(reg.x0, reg.y0, reg.x1 - reg.x0, reg.y1 - reg.y0))
        tmp.replace(out)
    except (OSError, RasterioError) as exc:
        raise unwritable(out, exc) from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def join_strips(predictor: Predictor, reader: SceneReader, strips: list[tuple[int, int, Path]], out: Path,
                inputs: list[str]) -> Path:
    """Copy each strip's rows into one COG at ``out`` with colours and tags."""
    grid = reader.grid
    layout = regions(grid.height, grid.width, predictor.tile, predictor.overlap, predictor.opts.region_size)
    tiled = temp_name(out, "tiled.tif")
    try:
        with rasterio.open(tiled, "w", **_profile(predictor, reader)) as dst:  # type: ignore[arg-type]
            for first, last, path in strips:
                y0 = min(r.y0 for r in layout if r.i == first)
                y1 = max(r.y1 for r in layout if r.i == last)
                with rasterio.open(path) as src:
                    for r0 in range(y0, y1, 512):
                        window = Window(0, r0, grid.width, min(512, y1 - r0))
                        dst.write(src.read(1, window=window), 1, window=window)
            describe_map(dst, predictor.pkg, predictor.coding, predictor._value_name())
            dst.update_tags(**map_tags(predictor.pkg, inputs), EOENGINE_ENGINE=predictor.engine,
                            EOENGINE_STRIPS=json.dumps([[a, b] for a, b, _ in strips]))
        finish_cog(tiled, out, "AVERAGE" if predictor.regression else "MODE")
    except (OSError, RasterioError) as exc:
        raise unwritable(out, exc) from None
    finally:
        tiled.unlink(missing_ok=True)
    return out
