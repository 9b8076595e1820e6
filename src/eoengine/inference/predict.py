"""Streaming tiled prediction of a scene to a class map COG (and optional probabilities).

Tiles lie on one *global* grid and are blended with cosine weights, exactly as if the whole
scene were predicted at once (no seams). The work is done region by region
(:mod:`eoengine.inference.regions`): each tile runs once, in the region holding its origin,
and the ``overlap``-pixel strips its tiles spill into the regions to the right and below are
carried over to them (:class:`Carry`). Memory depends on the region size and on
``overlap x width``, never on the scene's area. A reader thread prefetches the next region
and a writer thread finishes (arg-max) and stores the previous one while the model runs on the
current one; both run at a lower scheduling priority than the model's threads.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from pydantic import ValidationError
from rasterio.windows import Window

from eoengine.config.schema import PredictionConfig
from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import EOError
from eoengine.hashing import canonical_hash, file_sha256
from eoengine.inference.engines import select_engine
from eoengine.inference.output import ClassCoding, MapWriter
from eoengine.inference.postprocess import activate, decide
from eoengine.inference.preprocess import input_spec, model_input
from eoengine.inference.regions import Region, regions
from eoengine.inference.tiling import blend_weights, round_up
from eoengine.models.heads import heads_from_meta, map_head
from eoengine.models.package import ONNX, WEIGHTS, ModelPackage
from eoengine.progress import progress_task
from eoengine.raster.scene import SceneReader
from eoengine.runtime import tune_allocator

PredictOptions = PredictionConfig
"""Tiling and batching settings: the config's ``prediction`` section (defaults from the package)."""


def _option_error(err: ValidationError, given: dict[str, Any]) -> EOError:
    """One line for the first invalid option, named as on the command line, with the fix."""
    e = err.errors(include_url=False)[0]
    field = str(e["loc"][0]) if e["loc"] else None
    ctx, msg = e.get("ctx") or {}, e["msg"].removeprefix("Value error, ")
    if field is None:  # the overlap against the tile size
        fix = f"use --overlap {given['tile_size'] // 2} or less, or a larger --tile-size"
        return EOError(f"--overlap {given['overlap']} with --tile-size {given['tile_size']}: {msg}", fix)
    flag = "--" + field.replace("_", "-")
    if "ge" in ctx:
        fix = f"use {flag} {ctx['ge']} or more"
    elif "le" in ctx:
        fix = f"use {flag} {ctx['le']} or less"
    elif "expected" in ctx:
        fix = f"use {flag} {ctx['expected']}"
    else:
        fix = "see 'eoengine predict --help'"
    return EOError(f"{flag} {e.get('input')!r}: {msg}", fix)


def prediction_options(saved: dict[str, Any], **given: Any) -> PredictionConfig:
    """A package's prediction settings with the given overrides (None: keep), validated.

    Args:
        saved: The package's ``prediction`` section (empty for old packages).
        **given: Overrides by field name (``tile_size``, ``overlap``, ...); None keeps the saved value.

    Returns:
        The validated settings.

    Raises:
        EOError: An option is out of range or contradicts another, named as on the command line.

    """
    merged = {**saved, **{k: v for k, v in given.items() if v is not None}}
    try:
        return PredictionConfig.model_validate(merged)
    except ValidationError as err:
        full = PredictionConfig.model_construct().model_dump() | merged
        raise _option_error(err, full) from None


class Carry:
    """The strips that regions' tiles spill into the regions to their right and below."""

    def __init__(self, channels: int, overlap: int, height: int, width: int) -> None:
        self.overlap, self.height, self.width = overlap, height, width
        self.top_in = np.zeros((channels, overlap, width), dtype=np.float32)
        self.bottom_out = np.zeros_like(self.top_in)
        self.right: np.ndarray | None = None
        self.row = 0

    def settle(self, reg: Region, acc: np.ndarray) -> np.ndarray:
        """Add what earlier regions spilled into ``reg``, keep what it spills, return its own part."""
        ov, h, w = self.overlap, reg.y1 - reg.y0, reg.x1 - reg.x0
        if reg.j == 0:
            if reg.i != self.row:
                self.top_in, self.bottom_out = self.bottom_out, np.zeros_like(self.top_in)
                self.row = reg.i
            self.right = None
        if ov == 0:
            return acc[:, :h, :w]
        ch, cw = min(acc.shape[1], self.height - reg.y0), min(acc.shape[2], self.width - reg.x0)
        below = acc[:, h:ch, :cw]  # includes the corner that belongs to the region below-right
        self.bottom_out[:, : below.shape[1], reg.x0 : reg.x0 + cw] += below
        if reg.i > 0:
            acc[:, :ov, :w] += self.top_in[:, :, reg.x0 : reg.x1]
        if self.right is not None:
            acc[:, :h, : self.right.shape[2]] += self.right
        self.right = acc[:, :h, w:cw].copy()
        return acc[:, :h, :w]


def background() -> None:
    """Lower the calling thread's scheduling priority (Linux), so the model's threads run first.

    Reading and writing only need to keep ahead of the model; at equal priority they take
    cores from its parallel sections, which then wait for their slowest thread.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted
        pass


class Predictor:
    """Run a model package over scenes with tiled, blended, streaming inference.

    Tiles overlap and are blended with cosine weights; a reader thread, the model and a writer
    thread work on consecutive regions, so memory stays flat whatever the scene's size. Raw
    bands become model input through :func:`eoengine.inference.preprocess.model_input`, outputs
    maps through :mod:`eoengine.inference.postprocess`, as every other route does.

    Args:
        package: The model package.
        options: Tile size, overlap, batch size, region size and class coding; default: the
            package's recorded prediction settings.
        engine: ``torch``, ``onnx`` or ``auto`` (the faster on this machine, measured once).

    Raises:
        EOError: The options are invalid or the model labels whole chips (no maps).

    """

    def __init__(self, package: ModelPackage, options: PredictOptions | None = None, engine: str = "auto") -> None:
        self.pkg = package
        meta = package.meta
        self.opts = options or PredictionConfig.model_validate(meta.prediction)
        mult = meta.size_multiple
        self.tile = round_up(self.opts.tile_size, mult)
        self.overlap = self.opts.overlap  # validated: at most half the (unrounded) tile
        self.weights = blend_weights(self.tile, self.overlap)
        self._weights_t = torch.from_numpy(self.weights)
        self.spec = input_spec(meta)
        self.head = map_head(heads_from_meta(meta))
        self.regression = self.head.type == "regression"
        self.coding = None if self.regression else ClassCoding.of(meta.classes, self.opts.class_codes)
        self.n_out = self.head.stop - self.head.start
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        tune_allocator()
        probe = np.zeros((self.opts.batch_size, len(meta.channels), self.tile, self.tile), dtype=np.float32)
        self.engine, self.forward = select_engine(package, engine, probe)

    def _read(self, reader: SceneReader, reg: Region) -> tuple[Region, np.ndarray, np.ndarray]:
        h, w = reg.cover
        data, nodata = model_input(reader.read_raw(Window(reg.x0, reg.y0, w, h)), self.spec, reader.nodata, overwrite=True)
        return reg, data, nodata[: reg.y1 - reg.y0, : reg.x1 - reg.x0]

    def _compute(self, reg: Region, data: np.ndarray) -> np.ndarray:
        """Weighted class probabilities (or values) plus the weights, (outputs + 1, *cover), of the region's tiles."""
        t = self.tile
        acc = np.zeros((self.n_out + 1, *data.shape[1:]), dtype=np.float32)
        tiles = [(r - reg.y0, c - reg.x0) for r in reg.rows for c in reg.cols]
        for i in range(0, len(tiles), self.opts.batch_size):
            chunk = tiles[i : i + self.opts.batch_size]
            batch = np.stack([data[:, r : r + t, c : c + t] for r, c in chunk])
            with torch.inference_mode():
                out = activate(self.forward(batch), self.head)
                weighted = (out * self._weights_t).numpy()  # one vectorised multiply for the batch
            for (r, c), p in zip(chunk, weighted, strict=True):
                acc[:-1, r : r + t, c : c + t] += p
                acc[-1, r : r + t, c : c + t] += self.weights
        return acc

    def finish_region(self, acc: np.ndarray, nodata: np.ndarray, probabilities: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(class map or value map with nodata marked, blended probabilities) of a settled region.

        A class map holds the codes of :attr:`coding` (the classes' values by default). Without
        ``probabilities`` it skips the division by the blend weights: they are positive and
        shared by every class, so the arg-max is the same.
        """
        if self.regression:
            values = acc[:1] / acc[-1]
            return decide(values, self.head, nodata), values
        probs = acc[:-1] / acc[-1] if probabilities else None
        return decide(acc[:-1] if probs is None else probs, self.head, nodata, self.coding), probs

    def predict(self, reader: SceneReader, out: Path, probabilities: Path | None = None, inputs: list[str] | None = None) -> Path:
        """Predict the scene ``reader`` reads into a class-map (or value-map) COG at ``out``.

        Args:
            reader: The scene (``eoengine.raster.scene.SceneReader`` over the package's bands).
            out: The map's path (a Cloud-Optimized GeoTIFF).
            probabilities: Also write the blended class probabilities here.
            inputs: The input names recorded in the map's tags; default: the reader's files.

        Returns:
            ``out``.

        Raises:
            EOError: ``probabilities`` for a value model, or the map cannot be written (nothing
                partial is kept).

        """
        if probabilities is not None and self.regression:
            raise EOError("--probabilities is for class maps; this model predicts values", "drop --probabilities")
        grid = reader.grid
        layout = regions(grid.height, grid.width, self.tile, self.overlap, self.opts.region_size)
        writer = MapWriter(self.pkg, grid, Path(out), probabilities, inputs or [s.path for s in reader.sources],
                           self._job_key(reader, probabilities is not None), self.coding, self._value_name())
        writer.tags["EOENGINE_ENGINE"] = self.engine
        with rasterio.Env(GDAL_CACHEMAX=256), writer:
            self._run(reader, layout, writer)
        return Path(out)

    def _value_name(self) -> str | None:
        if not self.regression:
            return None
        return str(self.pkg.meta.target_name or self.head.name)

    def _job_key(self, reader: SceneReader, probabilities: bool) -> str:
        """What a partial map must match to be resumed: model, inputs, grid and options."""
        weights = next((f for f in (self.pkg.path / WEIGHTS, self.pkg.path / ONNX) if f.exists()), None)  # ONNX: classical
        files = sorted({s.path for s in reader.sources})
        return canonical_hash({
            "weights": file_sha256(weights) if weights else str(id(self.pkg.model)),
            "meta": self.pkg.meta.as_dict(), "grid": reader.grid.__dict__, "tile": self.tile, "overlap": self.overlap,
            "options": self.opts.model_dump(), "probabilities": probabilities, "engine": self.engine,
            "inputs": [[f, os.stat(f).st_size, os.stat(f).st_mtime_ns] if os.path.exists(f) else [f] for f in files],
            "sources": [s.__dict__ for s in reader.sources],
        })

    def _store(self, writer: MapWriter, reg: Region, acc: np.ndarray, nodata: np.ndarray) -> None:
        """Finish a settled region and write it (in the writer thread, off the model's path)."""
        classes, probs = self.finish_region(acc, nodata, writer.probabilities is not None)
        if writer.probabilities and probs is not None:
            probs[:, nodata] = np.nan
        writer.write(reg, classes, probs if writer.probabilities else None)

    def _run(self, reader: SceneReader, layout: list[Region], writer: MapWriter) -> None:
        todo = [reg for reg in layout if reg.i >= writer.rows_done]
        last_row = layout[-1].i
        inbox: queue.Queue[tuple[Region, np.ndarray, np.ndarray] | BaseException | None] = queue.Queue(maxsize=1)
        outbox: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=1)
        errors: list[BaseException] = []
        stop = threading.Event()

        def hand(item: tuple[Region, np.ndarray, np.ndarray] | BaseException | None) -> bool:
            """Put ``item`` in the inbox unless the main thread has stopped; False once it has."""
            while not stop.is_set():
                try:
                    inbox.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def read_all() -> None:
            background()
            try:
                for reg in todo:
                    if stop.is_set() or not hand(self._read(reader, reg)):
                        return
                hand(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                hand(exc)

        def write_all() -> None:
            background()
            with rasterio.Env(GDAL_CACHEMAX=256):  # GDAL's errors in this thread go to rasterio, not to stderr
                while (item := outbox.get()) is not None:
                    try:
                        if item[0] == "checkpoint":
                            writer.checkpoint(*item[1:])
                        else:
                            self._store(writer, *item[1:])
                    except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                        errors.append(exc)

        reading = threading.Thread(target=read_all, daemon=True)
        writing = threading.Thread(target=write_all, daemon=True)
        reading.start()
        writing.start()
        carry = Carry(self.n_out + 1, self.overlap, reader.grid.height, reader.grid.width)
        if writer.rows_done and writer.carried is not None:
            carry.bottom_out, carry.row = writer.carried, writer.rows_done - 1
        try:
            with progress_task("predicting", len(layout), len(layout) - len(todo)) as task:
                while (item := inbox.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    reg, data, nodata = item
                    acc = carry.settle(reg, self._compute(reg, data))
                    outbox.put(("region", reg, acc, nodata))  # finished (arg-max) in the writer thread
                    if reg.j == layout[-1].j and reg.i < last_row:  # a row of regions is complete
                        outbox.put(("checkpoint", reg.i + 1, carry.bottom_out.copy()))
                    task.advance()
                    if errors:
                        raise errors[0]
        finally:
            stop.set()  # the reader ends before the scene's files close (GDAL crashes on a read of a closed file)
            reading.join()
            outbox.put(None)
            writing.join()
        if errors:
            raise errors[0]


def predict_dataset_scene(pkg: ModelPackage, manifest: DatasetManifest, out: Path, index: int = 0) -> Path:
    """Predict scene ``index`` of a dataset's manifest (its bands, resampling and grid) to ``out``.

    Args:
        pkg: The model package.
        manifest: The dataset's manifest.
        out: The map COG to write.
        index: The scene's position in the manifest.

    Returns:
        ``out``.

    """
    from eoengine.inference.sources import band_source

    scene = manifest.scenes[index]
    specs = {s.name: s for s in pkg.meta.band_specs}
    sources = [band_source(specs[s.name], s.path, s.index) for s in scene.sources]  # every date's bands
    with SceneReader(sources, manifest.resampling, manifest.resolution) as reader:
        return Predictor(pkg).predict(reader, out)
