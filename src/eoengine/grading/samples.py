"""Bounded, seeded samples of what a model sees and answers: from a dataset's chips and from scenes.

A drift monitor compares pixels, not whole rasters: it reads a seeded choice of chips (a
few at a time from the dataset's zarr array) or of chip-sized windows of a scene (through
the :class:`~eoengine.raster.scene.SceneReader` and preprocessing that ``eoengine predict``
uses, so the channels, index channels included, are the ones the model is fed), and keeps a
seeded choice of valid pixels from each. Memory is a batch of chips or windows plus the
kept pixels, whatever the size of the dataset or the scene.

The model runs on the same chips and windows, normalised as prediction normalises them
(:func:`eoengine.inference.preprocess.normalised`), and its activated output is kept at the
kept pixels: class probabilities (K per pixel) or values (1 per pixel) of a map head, or one
probability vector per chip or window for a chip-level classification head.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rasterio.windows import Window

from eoengine.inference.engines import select_engine
from eoengine.inference.postprocess import activate
from eoengine.inference.preprocess import InputSpec, input_features, input_spec, normalised
from eoengine.models.heads import Head, heads_from_meta
from eoengine.models.package import ModelPackage
from eoengine.raster.scene import SceneReader

BATCH_BYTES = 64 * 1024**2
"""About the most a batch of chips or windows holds while it is sampled."""


@dataclass
class Sample:
    """Sampled pixels (rows of channels) and the model's outputs for them."""

    pixels: np.ndarray
    """(n, C) float: each kept pixel's channels in the model's order (NaN where a channel has no value)."""
    outputs: np.ndarray | None
    """(m, K) probabilities or (m, 1) values of the kept pixels (chip heads: one row per chip); None: not run."""
    parts: int
    """Chips or windows the pixels came from."""


def _empty(channels: int, outputs: bool) -> Sample:
    return Sample(np.zeros((0, channels), np.float32), np.zeros((0, 0), np.float32) if outputs else None, 0)


def join_samples(samples: Sequence[Sample], channels: int, outputs: bool) -> Sample:
    """The samples as one (pixels and outputs in order; ``outputs``: whether they carry outputs)."""
    if not samples:
        return _empty(channels, outputs)
    outs = [s.outputs for s in samples if s.outputs is not None and len(s.outputs)]
    return Sample(np.concatenate([s.pixels for s in samples]),
                  np.concatenate(outs) if outs else (np.zeros((0, 0), np.float32) if outputs else None),
                  sum(s.parts for s in samples))


class ModelRunner:
    """The model's activated output for a batch of channels, normalised as prediction does.

    The head compared is the one maps are predicted from (the first segmentation head, else
    the first regression one), else the first head; a multi-label head gives no outputs
    (:attr:`head` is None then): its presence scores are not a distribution over classes.

    Args:
        pkg: The model package.
        engine: ``auto``, ``torch``, ``onnx`` or ``onnx-int8``, as for prediction.
        probe: The shape of the batches it will mostly run, for the engine choice.

    """

    def __init__(self, pkg: ModelPackage, engine: str, probe: tuple[int, int, int, int]) -> None:
        self.spec: InputSpec = input_spec(pkg.meta)
        heads = heads_from_meta(pkg.meta)
        maps = [h for kind in ("segmentation", "regression") for h in heads if h.type == kind]
        first = (maps or heads)[0]
        self.head: Head | None = None if first.type == "multilabel" else first
        self.forward = select_engine(pkg, engine, np.zeros(probe, dtype=np.float32))[1] if self.head else None

    def outputs(self, channels: np.ndarray) -> np.ndarray | None:
        """Activated outputs of (B, C, H, W) channels: (B, K, H, W), (B, 1, H, W) or (B, K); None without a head."""
        if self.head is None or self.forward is None:
            return None
        with torch.inference_mode():
            return activate(self.forward(normalised(channels, self.spec)), self.head).numpy()


def keep_pixels(channels: np.ndarray, outputs: np.ndarray | None, per_item: int, rng: np.random.Generator) -> Sample:
    """Up to ``per_item`` seeded pixels of each item whose every channel has a value, with their outputs.

    Args:
        channels: (B, C, H, W), NaN where there is no value.
        outputs: The batch's activated outputs (:meth:`ModelRunner.outputs`), or None.
        per_item: Pixels kept of each chip or window at most.
        rng: The generator the choice is drawn from.

    Returns:
        The kept pixels and outputs; an item without valid pixels gives nothing (chip heads:
        one output row per item with valid pixels).

    """
    b, c = channels.shape[:2]
    rows, outs = [], []
    for i in range(b):
        flat = channels[i].reshape(c, -1)
        valid = np.flatnonzero(np.isfinite(flat).all(axis=0))
        if not len(valid):
            continue
        pick = np.sort(rng.choice(valid, min(per_item, len(valid)), replace=False))
        rows.append(flat[:, pick].T)
        if outputs is not None:
            one = outputs[i]
            outs.append(one.reshape(one.shape[0], -1)[:, pick].T if one.ndim == 3 else one[None])
    pixels = np.concatenate(rows) if rows else np.zeros((0, c), np.float32)
    kept = np.concatenate(outs) if outs else (np.zeros((0, 0), np.float32) if outputs is not None else None)
    return Sample(pixels, kept, len(rows))


def _batches(items: Sequence[Any] | np.ndarray, per_batch: int) -> Iterator[Any]:
    for start in range(0, len(items), per_batch):
        yield items[start : start + per_batch]


def chip_sample(images: Any, ids: np.ndarray, pixels: int, rng: np.random.Generator,
                runner: ModelRunner | None = None, most_chips: int = 256) -> Sample:
    """A seeded sample of pixels (and outputs) from chips of a dataset's ``images`` array.

    Args:
        images: The zarr array of raw chips (N, C, P, P), NaN for nodata.
        ids: The chips to choose from (array rows).
        pixels: Pixels to keep in all at most (as many of each chip; at least one of each).
        rng: The generator the choice is drawn from.
        runner: Runs the model on the chips too; None: pixels only.
        most_chips: At most this many chips are read.

    Returns:
        The sample.

    """
    _, c, p, _ = images.shape
    if not len(ids):
        return _empty(c, runner is not None)
    chosen = np.sort(rng.choice(ids, min(len(ids), most_chips), replace=False))
    per_chip = max(1, pixels // len(chosen))
    per_batch = max(1, BATCH_BYTES // (c * p * p * 4))
    parts = []
    for batch in _batches(chosen, per_batch):
        chips = np.asarray(images.get_orthogonal_selection((np.asarray(batch),)), dtype=np.float32)
        parts.append(keep_pixels(chips, runner.outputs(chips) if runner else None, per_chip, rng))
    return join_samples(parts, c, runner is not None)


def scene_windows(height: int, width: int, tile: int, count: int, rng: np.random.Generator) -> list[Window]:
    """A seeded choice of ``count`` windows of a tile layout over the scene (all of them if fewer).

    The layout's tiles do not overlap; those at the right and bottom edges reach past the
    scene, where reading gives nodata, as prediction's edge tiles do.

    Args:
        height: The scene's rows.
        width: The scene's columns.
        tile: The windows' side.
        count: Windows wanted.
        rng: The generator the choice is drawn from.

    Returns:
        The windows in reading order (row by row).

    """
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    picked = np.sort(rng.choice(rows * cols, min(count, rows * cols), replace=False))
    return [Window(int(k % cols) * tile, int(k // cols) * tile, tile, tile) for k in picked]


def scene_sample(reader: SceneReader, runner: ModelRunner, tile: int, windows: int, pixels: int,
                 rng: np.random.Generator) -> Sample:
    """A seeded sample of a scene's pixels, read and preprocessed as prediction reads them, with the model's outputs.

    Args:
        reader: The scene, opened over the model's band sources.
        runner: The model.
        tile: The windows' side.
        windows: Windows read at most.
        pixels: Pixels to keep in all at most (as many of each window; at least one of each).
        rng: The generator the choice is drawn from.

    Returns:
        The sample (its ``parts`` are the windows that had valid pixels).

    """
    chosen = scene_windows(reader.grid.height, reader.grid.width, tile, windows, rng)
    per_window = max(1, pixels // len(chosen))
    per_batch = max(1, BATCH_BYTES // (len(reader.sources) * tile * tile * 4 * 2))
    parts = []
    for batch in _batches(chosen, per_batch):
        raw = np.stack([reader.read_raw(w) for w in batch])
        channels = input_features(raw, runner.spec, reader.nodata, overwrite=True).image
        parts.append(keep_pixels(channels, runner.outputs(channels), per_window, rng))
    return join_samples(parts, len(runner.spec.mean), runner.head is not None)
