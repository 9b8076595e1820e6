"""Writing prediction maps.

A class map (and optional probabilities) is streamed window by window into tiled GeoTIFFs,
then turned into COGs with overviews under their final names. :class:`ClassCoding` is the
one place that decides what a class map's pixels hold: by default each class's configured
value (a map then compares directly with the label raster it was trained from), with a
nodata value that is no class's value and the colour table keyed by those values. The tags
hold no creation time, so the same inputs give byte-identical maps.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from eoengine.datasets.schema import ClassInfo
from eoengine.errors import EOError
from eoengine.files import atomic_write_json
from eoengine.inference.regions import Region
from eoengine.labels import IGNORE
from eoengine.models.package import ModelPackage
from eoengine.raster.cog import finish_cog, unwritable
from eoengine.raster.scene import Grid


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` as (r, g, b) integers."""
    h = color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


_DTYPES = {"uint8": (0, 255), "uint16": (0, 65535), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1)}
CLASS_CODES = ("values", "positions")


def _integer(value: Any) -> int | None:
    """A class value as an integer pixel code, or None (a text value such as 'forest')."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


@dataclass(frozen=True)
class ClassCoding:
    """What a class map's pixels hold: a code per class (by position), and a nodata code.

    ``kind`` is ``values`` (each class's configured value) or ``positions`` (0..n-1, as the
    model's outputs are ordered). Classes without integer values are written as positions.
    """

    codes: tuple[int, ...]
    nodata: int
    dtype: str
    kind: str

    @classmethod
    def of(cls, classes: list[ClassInfo], kind: str = "values") -> ClassCoding:
        """The coding of ``classes`` (a package's ``classes``) for ``kind`` (values or positions).

        Args:
            classes: The package's classes, in position order (``value`` may be missing: the position then).
            kind: ``values`` or ``positions``.

        Returns:
            The codes, the smallest dtype that holds them with a free nodata code, and that code.

        """
        values = [_integer(c.value if c.value is not None else c.index) for c in classes]
        if kind == "positions" or any(v is None for v in values):
            values, kind = list(range(len(classes))), "positions"
        codes = tuple(int(v) for v in values)  # type: ignore[arg-type]
        for dtype, (low, high) in _DTYPES.items():
            if low <= min(codes, default=0) and max(codes, default=0) <= high:
                free = next((n for n in chain((high, low), range(low, high)) if n not in codes), None)
                if free is not None:
                    return cls(codes, free, dtype, kind)
        raise EOError(f"class values {codes} do not fit a 32-bit map", "give the classes values between -2^31 and 2^31-1")

    def encode(self, positions: np.ndarray, nodata: np.ndarray) -> np.ndarray:
        """Class positions (h, w) as this coding's codes, nodata where ``nodata`` is set."""
        lut = np.asarray(self.codes, dtype=self.dtype)
        out = lut[positions]
        out[nodata] = self.nodata
        return out

    def positions(self, codes: np.ndarray) -> np.ndarray:
        """A map's codes back to class positions (uint8), :data:`IGNORE` for nodata or unknown codes."""
        out = np.full(codes.shape, IGNORE, dtype=np.uint8)
        for i, code in enumerate(self.codes):
            out[codes == code] = i
        return out

    def colormap(self, classes: list[ClassInfo]) -> dict[int, tuple[int, int, int, int]] | None:
        """GDAL colour table keyed by code (nodata transparent); None where GDAL has none (signed maps).

        Args:
            classes: The package's classes, in position order (their colours).

        Returns:
            Code → RGBA, or None.

        """
        if self.dtype not in ("uint8", "uint16"):
            return None
        cmap = {code: (*hex_rgb(c.color), 255) for code, c in zip(self.codes, classes, strict=True)}
        cmap[self.nodata] = (0, 0, 0, 0)
        return cmap

    def tags(self, classes: list[ClassInfo]) -> dict[str, str]:
        """Tags saying what the pixels hold: ``{code: class name}`` and the kind of code.

        Args:
            classes: The package's classes, in position order (their names).

        Returns:
            The GeoTIFF tags.

        """
        return {"EOENGINE_CLASS_CODES": self.kind,
                "EOENGINE_CLASS_VALUES": json.dumps({str(k): c.name for k, c in zip(self.codes, classes, strict=True)})}


def map_profile(grid: Grid, coding: ClassCoding | None) -> dict[str, Any]:
    """The tiled GeoTIFF profile of a map on ``grid``: a class map of ``coding``, or float32 values (None)."""
    dtype, nodata = ("float32", np.nan) if coding is None else (coding.dtype, coding.nodata)
    return {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": dtype, "nodata": nodata,
            "crs": grid.crs_wkt, "transform": grid.affine, "tiled": True, "blockxsize": 512, "blockysize": 512,
            "compress": "deflate", "BIGTIFF": "IF_SAFER"}


def describe_map(dst: Any, pkg: ModelPackage, coding: ClassCoding | None, values: str | None) -> None:
    """Give an open map its band description, and for class maps its colour table and class tags."""
    if coding is None:
        dst.set_band_description(1, values or "value")
        return
    classes = pkg.meta.classes
    cmap = coding.colormap(classes)
    if cmap is not None:
        dst.write_colormap(1, cmap)
    dst.set_band_description(1, "class")
    dst.update_tags(**coding.tags(classes))


def map_tags(pkg: ModelPackage, inputs: list[str]) -> dict[str, str]:
    """Tags naming the model, its run, the dataset version, the inputs and the classes."""
    meta = pkg.meta
    return {
        "EOENGINE_MODEL": f"{meta.model} ({pkg.path})",
        "EOENGINE_MODEL_RUN": str(meta.run_id or ""),
        "EOENGINE_DATASET_VERSION": meta.dataset.version,
        "EOENGINE_INPUTS": json.dumps(inputs),
        "EOENGINE_CLASSES": json.dumps(pkg.class_names),
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
        coding: ClassCoding | None, values: str | None = None,
    ) -> None:
        self.pkg, self.grid, self.out, self.probabilities, self.key = pkg, grid, out, probabilities, key
        self.coding = coding  # what class pixels hold; None for value maps
        self.values = values  # name of the predicted quantity for value maps
        self.tags = map_tags(pkg, inputs)
        self._tmp = [out.with_name(f".{out.name}.partial.tif")]
        if probabilities:
            self._tmp.append(probabilities.with_name(f".{probabilities.name}.partial.tif"))
        self._state = out.with_name(f".{out.name}.partial.json")
        self._carry = out.with_name(f".{out.name}.partial.npy")
        self._carry_tmp = self._carry.with_name(self._carry.name + ".tmp.npy")
        self._dst: list[Any] = []
        self.rows_done = 0
        self.carried: np.ndarray | None = None

    def __enter__(self) -> MapWriter:
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            if self._resumable():
                self._dst = [rasterio.open(t, "r+") for t in self._tmp]
            else:
                self._create()
        except (OSError, RasterioError) as exc:
            self._cleanup()
            raise unwritable(self.out, exc) from None
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
        profile = map_profile(self.grid, self.coding)
        cls = rasterio.open(self._tmp[0], "w", **profile)
        self._dst.append(cls)
        cls.update_tags(**self.tags)
        describe_map(cls, self.pkg, self.coding, self.values)
        if self.probabilities:
            n = len(self.pkg.meta.classes)
            prob = rasterio.open(self._tmp[1], "w", **(profile | {"count": n, "dtype": "float32", "nodata": np.nan}))
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
        np.save(self._carry_tmp, carried)
        os.replace(self._carry_tmp, self._carry)
        atomic_write_json(self._state, {"key": self.key, "rows_done": rows_done})

    def __exit__(self, exc_type: object, exc: BaseException | None, *rest: object) -> None:
        if exc is not None and not isinstance(exc, (OSError, RasterioError)):
            for d in self._dst:
                d.close()
            return  # keep the partial files and checkpoint: a rerun resumes
        try:
            for d in self._dst:
                d.close()
            if exc is not None:
                raise exc  # a failed write: nothing to resume from
            finish_cog(self._tmp[0], self.out, "MODE" if self.coding else "AVERAGE")
            if self.probabilities:
                finish_cog(self._tmp[1], self.probabilities, "AVERAGE")
        except (OSError, RasterioError) as err:
            raise unwritable(self.out, err) from None
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        for d in self._dst:
            if not d.closed:
                d.close()
        for t in [*self._tmp, self._state, self._carry, self._carry_tmp]:
            t.unlink(missing_ok=True)
