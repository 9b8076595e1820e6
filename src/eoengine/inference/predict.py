"""Streaming tiled prediction of a scene to a class map COG (and optional probabilities).

The scene is processed region by region (``region_size`` pixels a side). Each region runs
every tile of one *global* tile grid that touches it, so blending across region borders is
identical to blending the whole scene at once (no seams), while memory depends only on the
region size, never on the scene size. A reader thread prefetches the next region and a
writer thread stores the previous one while the model runs on the current one.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from eoengine.deploy.package import ModelPackage
from eoengine.errors import EOError
from eoengine.features.indices import compute_indices
from eoengine.inference.tiling import blend_weights, round_up, tile_positions
from eoengine.labels.vector import IGNORE
from eoengine.progress import make_progress
from eoengine.raster.cog import finish_cog, temp_name
from eoengine.raster.scene import SceneReader
from eoengine.training.data import normalise


@dataclass
class PredictOptions:
    """Tiling and batching settings (defaults from the model package)."""

    tile_size: int = 256
    overlap: int = 64
    batch_size: int = 8
    region_size: int = 2048


@dataclass
class _Region:
    r0: int
    c0: int
    h: int
    w: int
    rows: list[int]
    cols: list[int]
    data: np.ndarray | None = None  # channels over the tiles' extent, normalised
    nodata: np.ndarray | None = None  # region-shaped
    probs: np.ndarray | None = None


def _regions(height: int, width: int, tile: int, overlap: int, size: int) -> Iterator[_Region]:
    rows_all = tile_positions(height, tile, overlap)
    cols_all = tile_positions(width, tile, overlap)
    for r0 in range(0, height, size):
        h = min(size, height - r0)
        rows = [r for r in rows_all if r < r0 + h and r + tile > r0]
        for c0 in range(0, width, size):
            w = min(size, width - c0)
            cols = [c for c in cols_all if c < c0 + w and c + tile > c0]
            yield _Region(r0, c0, h, w, rows, cols)


class Predictor:
    """Run a model package over scenes with tiled, blended, streaming inference."""

    def __init__(self, package: ModelPackage, options: PredictOptions | None = None) -> None:
        self.pkg = package
        meta = package.meta
        pred = meta.get("prediction", {})
        self.opts = options or PredictOptions(**{k: v for k, v in pred.items() if k in PredictOptions.__dataclass_fields__})
        mult = int(meta.get("size_multiple", 1))
        self.tile = round_up(self.opts.tile_size, mult)
        self.overlap = min(self.opts.overlap, self.tile // 2)
        self.weights = blend_weights(self.tile, self.overlap)
        self.mean = np.asarray(meta["normalization"]["mean"], dtype=np.float32)
        self.std = np.asarray(meta["normalization"]["std"], dtype=np.float32)
        self.n_classes = len(meta["classes"])
        torch.set_num_threads(max(1, os.cpu_count() or 1))

    def _read(self, reader: SceneReader, reg: _Region) -> _Region:
        t = self.tile
        top, left = reg.rows[0], reg.cols[0]
        window = Window(left, top, reg.cols[-1] + t - left, reg.rows[-1] + t - top)
        raw = reader.read(window)
        meta = self.pkg.meta
        nodata = np.isnan(raw).any(axis=0)
        if meta["indices"]:
            feats = compute_indices(raw, meta["indices"], meta["bands"],
                                    [b.get("common_name") for b in meta["band_specs"]], meta["index_constants"])
            raw = np.concatenate([raw, feats], axis=0)
        reg.data = normalise(raw, self.mean, self.std)
        reg.nodata = nodata[reg.r0 - top : reg.r0 - top + reg.h, reg.c0 - left : reg.c0 - left + reg.w]
        return reg

    def _compute(self, reg: _Region) -> _Region:
        assert reg.data is not None
        t, top, left = self.tile, reg.rows[0], reg.cols[0]
        acc = np.zeros((self.n_classes, reg.h, reg.w), dtype=np.float32)
        wsum = np.zeros((reg.h, reg.w), dtype=np.float32)
        tiles = [(r, c) for r in reg.rows for c in reg.cols]
        for i in range(0, len(tiles), self.opts.batch_size):
            chunk = tiles[i : i + self.opts.batch_size]
            batch = np.stack([reg.data[:, r - top : r - top + t, c - left : c - left + t] for r, c in chunk])
            with torch.inference_mode():
                probs = torch.softmax(self.pkg.model(torch.from_numpy(batch)), dim=1).numpy()
            for (r, c), p in zip(chunk, probs, strict=True):
                y0, y1 = max(r, reg.r0), min(r + t, reg.r0 + reg.h)
                x0, x1 = max(c, reg.c0), min(c + t, reg.c0 + reg.w)
                w = self.weights[y0 - r : y1 - r, x0 - c : x1 - c]
                acc[:, y0 - reg.r0 : y1 - reg.r0, x0 - reg.c0 : x1 - reg.c0] += p[:, y0 - r : y1 - r, x0 - c : x1 - c] * w
                wsum[y0 - reg.r0 : y1 - reg.r0, x0 - reg.c0 : x1 - reg.c0] += w
        reg.probs = acc / wsum
        reg.data = None
        return reg

    def predict(self, reader: SceneReader, out: Path, probabilities: Path | None = None, inputs: list[str] | None = None) -> Path:
        """Predict the scene ``reader`` reads into a class-map COG at ``out``."""
        grid = reader.grid
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        regions = list(_regions(grid.height, grid.width, self.tile, self.overlap, self.opts.region_size))
        tmp_cls = temp_name(out, "tiled.tif")
        tmp_prob = temp_name(probabilities, "tiled.tif") if probabilities else None
        profile = {
            "driver": "GTiff", "width": grid.width, "height": grid.height, "crs": grid.crs_wkt,
            "transform": grid.affine, "tiled": True, "blockxsize": 512, "blockysize": 512,
            "compress": "deflate", "BIGTIFF": "IF_SAFER",
        }
        tags = self._tags(inputs or [s.path for s in reader.sources])
        try:
            with rasterio.open(tmp_cls, "w", **profile, count=1, dtype="uint8", nodata=IGNORE) as dst:
                dst.write_colormap(1, self._colormap())
                dst.update_tags(**tags)
                dst.set_band_description(1, "class")
                prob_dst = None
                if tmp_prob is not None:
                    prob_dst = rasterio.open(tmp_prob, "w", **profile, count=self.n_classes, dtype="float32", nodata=np.nan)
                    prob_dst.update_tags(**tags)
                    for k, name in enumerate(self.pkg.class_names):
                        prob_dst.set_band_description(k + 1, name)
                try:
                    self._run(reader, regions, dst, prob_dst)
                finally:
                    if prob_dst is not None:
                        prob_dst.close()
            finish_cog(tmp_cls, out, "MODE")
            if tmp_prob is not None and probabilities is not None:
                finish_cog(tmp_prob, probabilities, "AVERAGE")
        finally:
            tmp_cls.unlink(missing_ok=True)
            if tmp_prob is not None:
                tmp_prob.unlink(missing_ok=True)
        return out

    def _run(self, reader: SceneReader, regions: list[_Region], dst: Any, prob_dst: Any) -> None:
        inbox: queue.Queue[_Region | BaseException | None] = queue.Queue(maxsize=1)
        outbox: queue.Queue[_Region | None] = queue.Queue(maxsize=2)
        errors: list[BaseException] = []

        def read_all() -> None:
            try:
                for reg in regions:
                    inbox.put(self._read(reader, reg))
                inbox.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                inbox.put(exc)

        def write_all() -> None:
            while (reg := outbox.get()) is not None:
                try:
                    self._write(reg, dst, prob_dst)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                    errors.append(exc)

        reader_t = threading.Thread(target=read_all, daemon=True)
        writer_t = threading.Thread(target=write_all, daemon=True)
        reader_t.start()
        writer_t.start()
        try:
            with make_progress() as bar:
                task = bar.add_task("predicting", total=len(regions))
                while (item := inbox.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    outbox.put(self._compute(item))
                    bar.advance(task)
                    if errors:
                        raise errors[0]
        finally:
            outbox.put(None)
            writer_t.join()
        if errors:
            raise errors[0]

    def _write(self, reg: _Region, dst: Any, prob_dst: Any) -> None:
        assert reg.probs is not None and reg.nodata is not None
        classes = reg.probs.argmax(axis=0).astype(np.uint8)
        classes[reg.nodata] = IGNORE
        window = Window(reg.c0, reg.r0, reg.w, reg.h)
        dst.write(classes, 1, window=window)
        if prob_dst is not None:
            probs = reg.probs.copy()
            probs[:, reg.nodata] = np.nan
            prob_dst.write(probs, window=window)

    def _colormap(self) -> dict[int, tuple[int, int, int, int]]:
        cmap = {}
        for c in self.pkg.meta["classes"]:
            h = c["color"].lstrip("#")
            cmap[int(c["index"])] = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255)
        cmap[IGNORE] = (0, 0, 0, 0)
        return cmap

    def _tags(self, inputs: list[str]) -> dict[str, str]:
        meta = self.pkg.meta
        return {
            "EOENGINE_MODEL": f"{meta['model']} ({self.pkg.path})",
            "EOENGINE_MODEL_RUN": str(meta.get("run_id", "")),
            "EOENGINE_DATASET_VERSION": str(meta.get("dataset", {}).get("version", "")),
            "EOENGINE_INPUTS": json.dumps(inputs),
            "EOENGINE_CLASSES": json.dumps([c["name"] for c in meta["classes"]]),
            "EOENGINE_CREATED": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def check_bands(package: ModelPackage, names: list[str]) -> None:
    """Raise if the scene's band names are not the model's, in order."""
    if names != package.bands:
        raise EOError(
            f"the model expects bands {package.bands}, the scene gives {names}",
            "pass one file per band in the model's order, a stack with those bands, or name=path pairs",
        )
