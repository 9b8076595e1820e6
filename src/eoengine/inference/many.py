"""Prediction over many scenes: one COG per scene, or one mosaic COG of them all.

Each scene is predicted by the same :class:`Predictor` (engine chosen once). A scene whose
map already exists with the same model run and inputs is not predicted again, so an
interrupted batch continues where it stopped. The mosaic reprojects every scene's map to the
first scene's CRS (nearest neighbour for classes, bilinear for values), keeps the first map's
value where scenes overlap, and is written window by window, so memory stays bounded. A
scene map or mosaic that cannot be written is the same one-line error as a single-scene map's;
the failed run leaves no half-written file and no working folder (see :func:`output_folder`).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.merge import merge
from rasterio.vrt import WarpedVRT

from eoengine.errors import EOError
from eoengine.inference.predict import Predictor
from eoengine.inference.sources import sources_for_package
from eoengine.models.package import ModelPackage
from eoengine.raster.cog import finish_cog, temp_name, unwritable
from eoengine.raster.scene import SceneReader


def scene_name(files: list[str]) -> str:
    """A file-name-safe name for a scene from its first file."""
    return re.sub(r"[^\w\-.]+", "_", Path(files[0]).stem)


def is_done(path: Path, run: str, inputs: list[str]) -> bool:
    """Whether ``path`` is a finished map of the same model run and inputs."""
    if not path.exists():
        return False
    with rasterio.open(path) as ds:
        tags = ds.tags()
    return tags.get("EOENGINE_MODEL_RUN") == run and json.loads(tags.get("EOENGINE_INPUTS", "[]")) == inputs


@contextmanager
def output_folder(folder: Path, hidden: bool) -> Iterator[Path]:
    """Create the folder of scene maps; when the run fails on a bad input or output, tidy it.

    A hidden working folder (a mosaic's scene maps) is removed; a user's ``--out-dir`` keeps
    the maps finished before the failure and is removed only if this run created it and it
    is empty. An interrupted run (Ctrl-C, a kill) keeps everything, so a rerun continues.

    Args:
        folder: The folder.
        hidden: Whether it is the mosaic's working folder rather than the user's.

    Yields:
        The folder, created.

    Raises:
        EOError: It cannot be created, or the run failed (re-raised after tidying).

    """
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(folder, exc) from None
    try:
        yield folder
    except EOError:
        if hidden:
            shutil.rmtree(folder, ignore_errors=True)
        elif created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def predict_scenes(predictor: Predictor, scenes: list[list[str]], out_dir: Path) -> list[Path]:
    """Predict each scene (its band files or stack) to ``out_dir/<scene>.tif`` (a folder that exists); skips finished ones."""
    pkg: ModelPackage = predictor.pkg
    names = [scene_name(s) for s in scenes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EOError(f"several scenes would write the same map name: {dupes}", "give the scenes distinct file names")
    maps = []
    for files, name in zip(scenes, names, strict=True):
        sources = sources_for_package(pkg.meta, files)
        path = out_dir / f"{name}.tif"
        if not is_done(path, str(pkg.meta.get("run_id", "")), files):
            with SceneReader(sources, pkg.meta.get("resampling", "bilinear")) as reader:
                predictor.predict(reader, path, None, files)
        maps.append(path)
    return maps


def mosaic(maps: list[Path], out: Path, values: bool) -> Path:
    """Merge scene maps into one COG on the first map's CRS and finest resolution."""
    with rasterio.open(maps[0]) as first:
        paletted = not values and first.dtypes[0] in ("uint8", "uint16")  # signed class maps have no colour table
        crs, colormap, tags = first.crs, first.colormap(1) if paletted else None, first.tags()
        description = first.descriptions[0]
    opened = [rasterio.open(m) for m in maps]
    warped = [ds if ds.crs == crs else WarpedVRT(ds, crs=crs, resampling=Resampling.bilinear if values else Resampling.nearest)
              for ds in opened]
    res = min(min(abs(d.res[0]), abs(d.res[1])) for d in warped)
    tiled = temp_name(out, "tiled.tif")
    try:
        merge(warped, res=res, method="first", dst_path=str(tiled), mem_limit=256,
              dst_kwds={"tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER"})
        with rasterio.open(tiled, "r+") as dst:
            if colormap:
                dst.write_colormap(1, colormap)
            dst.update_tags(**(tags | {"EOENGINE_INPUTS": json.dumps([str(m) for m in maps]), "EOENGINE_MOSAIC_OF": str(len(maps))}))
            dst.set_band_description(1, description or ("value" if values else "class"))
        finish_cog(tiled, out, "AVERAGE" if values else "MODE")
    except (OSError, RasterioError) as exc:
        raise unwritable(out, exc) from None
    finally:
        for d in warped + opened:
            d.close()
        tiled.unlink(missing_ok=True)
    return out


def predict_many(predictor: Predictor, scenes: list[list[str]], out: Path | None, out_dir: Path | None) -> list[Path]:
    """Per-scene COGs in ``out_dir``, and/or one mosaic at ``out`` (scene maps kept beside it until done)."""
    if out is None and out_dir is None:
        raise EOError("many scenes need --out (one mosaic) or --out-dir (one map per scene)", "add one of them")
    work = out_dir or out.with_name(f".{out.name}.scenes")  # type: ignore[union-attr]
    with output_folder(work, out_dir is None):
        maps = predict_scenes(predictor, scenes, work)
        if out is None:
            return maps
        mosaic(maps, out, predictor.regression)
    if out_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return [out]
