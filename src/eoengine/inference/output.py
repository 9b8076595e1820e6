"""Writing prediction maps.

A class map (and optional probabilities) is streamed window by window into tiled GeoTIFFs,
then turned into COGs with overviews under their final names.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from eoengine.datasets.store import atomic_write_json
from eoengine.deploy.package import ModelPackage
from eoengine.inference.regions import Region
from eoengine.labels.vector import IGNORE
from eoengine.raster.cog import finish_cog
from eoengine.raster.scene import Grid


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` as (r, g, b) integers."""
    h = color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def colormap(classes: list[dict[str, Any]]) -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table from class colours; nodata is transparent."""
    cmap = {}
    for c in classes:
        cmap[int(c["index"])] = (*hex_rgb(c["color"]), 255)
    cmap[IGNORE] = (0, 0, 0, 0)
    return cmap


def map_tags(pkg: ModelPackage, inputs: list[str]) -> dict[str, str]:
    """Tags naming the model, its run, the dataset version, the inputs and the classes."""
    meta = pkg.meta
    return {
        "EOENGINE_MODEL": f"{meta['model']} ({pkg.path})",
        "EOENGINE_MODEL_RUN": str(meta.get("run_id", "")),
        "EOENGINE_DATASET_VERSION": str(meta.get("dataset", {}).get("version", "")),
        "EOENGINE_INPUTS": json.dumps(inputs),
        "EOENGINE_CLASSES": json.dumps([c["name"] for c in meta["classes"]]),
        "EOENGINE_CREATED": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class MapWriter:
    """Context manager: write regions into partial GeoTIFFs, publish COGs on success.

    After each completed row of regions the partial files are flushed and a checkpoint (the
    rows done and the overlap strip carried into the next row) is saved beside them. If the
    job stops, a rerun with the same model, inputs and options (same ``key``) continues from
    that row; a rerun with anything different starts over.
    """

    def __init__(
        self, pkg: ModelPackage, grid: Grid, out: Path, probabilities: Path | None, inputs: list[str], key: str,
        values: str | None = None,
    ) -> None:
        self.pkg, self.grid, self.out, self.probabilities, self.key = pkg, grid, out, probabilities, key
        self.values = values  # name of the predicted quantity for value maps; None for class maps
        self.tags = map_tags(pkg, inputs)
        self._tmp = [out.with_name(f".{out.name}.partial.tif")]
        if probabilities:
            self._tmp.append(probabilities.with_name(f".{probabilities.name}.partial.tif"))
        self._state = out.with_name(f".{out.name}.partial.json")
        self._carry = out.with_name(f".{out.name}.partial.npy")
        self._dst: list[Any] = []
        self.rows_done = 0
        self.carried: np.ndarray | None = None

    def __enter__(self) -> MapWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self._resumable():
                self._dst = [rasterio.open(t, "r+") for t in self._tmp]
            else:
                self._create()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _resumable(self) -> bool:
        if not (self._state.exists() and self._carry.exists() and all(t.exists() for t in self._tmp)):
            return False
        state = json.loads(self._state.read_text())
        if state.get("key") != self.key:
            return False
        self.rows_done = int(state["rows_done"])
        self.carried = np.load(self._carry)
        return True

    def _create(self) -> None:
        self._state.unlink(missing_ok=True)
        profile = {
            "driver": "GTiff", "width": self.grid.width, "height": self.grid.height, "crs": self.grid.crs_wkt,
            "transform": self.grid.affine, "tiled": True, "blockxsize": 512, "blockysize": 512,
            "compress": "deflate", "BIGTIFF": "IF_SAFER",
        }
        if self.values:
            cls = rasterio.open(self._tmp[0], "w", **profile, count=1, dtype="float32", nodata=np.nan)
            cls.set_band_description(1, self.values)
        else:
            cls = rasterio.open(self._tmp[0], "w", **profile, count=1, dtype="uint8", nodata=IGNORE)
            cls.write_colormap(1, colormap(self.pkg.meta["classes"]))
            cls.set_band_description(1, "class")
        self._dst.append(cls)
        cls.update_tags(**self.tags)
        if self.probabilities:
            n = len(self.pkg.meta["classes"])
            prob = rasterio.open(self._tmp[1], "w", **profile, count=n, dtype="float32", nodata=np.nan)
            self._dst.append(prob)
            prob.update_tags(**self.tags)
            for k, name in enumerate(self.pkg.class_names):
                prob.set_band_description(k + 1, name)

    def write(self, reg: Region, classes: np.ndarray, probs: np.ndarray | None) -> None:
        """Write one region's classes or values (and probabilities)."""
        window = Window(reg.x0, reg.y0, reg.x1 - reg.x0, reg.y1 - reg.y0)
        self._dst[0].write(classes, 1, window=window)
        if probs is not None and len(self._dst) > 1:
            self._dst[1].write(probs, window=window)

    def checkpoint(self, rows_done: int, carried: np.ndarray) -> None:
        """Flush the partial files, then record the rows done and the carried strip."""
        for k, d in enumerate(self._dst):
            d.close()
            self._dst[k] = rasterio.open(self._tmp[k], "r+")
        tmp = self._carry.with_name(self._carry.name + ".tmp.npy")
        np.save(tmp, carried)
        os.replace(tmp, self._carry)
        atomic_write_json(self._state, {"key": self.key, "rows_done": rows_done})

    def __exit__(self, exc_type: object, *rest: object) -> None:
        for d in self._dst:
            d.close()
        if exc_type is not None:
            return  # keep the partial files and checkpoint: a rerun resumes
        try:
            finish_cog(self._tmp[0], self.out, "AVERAGE" if self.values else "MODE")
            if self.probabilities:
                finish_cog(self._tmp[1], self.probabilities, "AVERAGE")
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        for d in self._dst:
            if not d.closed:
                d.close()
        for t in [*self._tmp, self._state, self._carry]:
            t.unlink(missing_ok=True)
