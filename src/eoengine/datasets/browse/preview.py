"""Chip previews as PNG: three channels (or one, grey) by name with a stretch, and labels in class colours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eoengine.datasets.browse.folder import open_dataset
from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import Invalid

STRETCH_FIX = "give two percentiles as p<low>,p<high> (e.g. p2,p98) or two values as <min>,<max> (e.g. 0,0.3)"


def _channel(manifest: DatasetManifest, name: str) -> int | None:
    """A channel's position by channel name, band common name, or (multi-date) band name of the first date."""
    band = next((b.name for b in manifest.band_specs if b.common_name == name), name)
    for candidate in (name, band, f"t0:{name}", f"t0:{band}"):
        if candidate in manifest.channels:
            return manifest.channels.index(candidate)
    return None


def preview_channels(manifest: DatasetManifest, bands: str | Sequence[str] | None = None) -> list[int]:
    """The three channels a preview shows (one channel: grey).

    Args:
        manifest: The dataset's manifest.
        bands: Channel or band names (a list, or comma-separated); None for red, green, blue by common
            name when the dataset has them, else its first three channels.

    Returns:
        Three channel positions.

    Raises:
        Invalid: a name matches no channel, or not one or three names are given.

    """
    if bands is None:
        found = [_channel(manifest, c) for c in ("red", "green", "blue")]
        first = list(range(min(3, len(manifest.channels))))
        picked = [i for i in found if i is not None] if None not in found else first
        return picked if len(picked) == 3 else picked[:1] * 3
    names = [b.strip() for b in bands.split(",")] if isinstance(bands, str) else list(bands)
    if len(names) not in (1, 3):
        raise Invalid(f"a preview shows three bands (or one, in grey), not {len(names)}: {','.join(names)}",
                      "give three band names, e.g. red,green,blue, or one")
    picked = []
    for name in names:
        position = _channel(manifest, name)
        if position is None:
            raise Invalid(f"the dataset has no band {name!r}", f"use one of its channels: {', '.join(manifest.channels)}")
        picked.append(position)
    return picked * 3 if len(picked) == 1 else picked


def parse_stretch(stretch: str | tuple[float, float]) -> tuple[bool, float, float]:
    """A stretch as (percentiles?, low, high): a pair of percentiles, ``p2,p98``, or two values ``0,0.3``.

    Args:
        stretch: Two percentiles as a tuple, or text: ``p<low>,p<high>`` or ``<min>,<max>``.

    Returns:
        Whether low and high are percentiles, and the two numbers.

    Raises:
        Invalid: the text is not two numbers, mixes a percentile with a value, or low is not below high
            (percentiles within 0..100).

    """
    parts = [str(v).strip() for v in stretch] if isinstance(stretch, tuple) else stretch.split(",")
    marks = {p.strip().startswith("p") for p in parts}
    percent = isinstance(stretch, tuple) or marks == {True}
    try:
        low, high = (float(p.strip().removeprefix("p")) for p in parts)
    except ValueError:
        raise Invalid(f"stretch {stretch!r} is not two numbers", STRETCH_FIX) from None
    if len(marks) > 1 or not (math.isfinite(low) and math.isfinite(high) and low < high) or (
            percent and not 0 <= low < high <= 100):
        raise Invalid(f"stretch {stretch!r} is not a low below a high" + (" within 0..100" if percent else ""), STRETCH_FIX)
    return percent, low, high


def _png(rgb: np.ndarray, alpha: np.ndarray) -> bytes:
    """A (3, h, w) uint8 image and an (h, w) alpha as PNG bytes (the tile routes' encoder)."""
    from rio_tiler.utils import render

    return render(rgb, mask=alpha, img_format="PNG")


def chip_preview_png(root: Path, chip: int, bands: str | Sequence[str] | None = None,
                     stretch: str | tuple[float, float] = (2, 98)) -> bytes:
    """One chip's image as an RGBA PNG of its size: three channels, stretched, nodata transparent.

    Args:
        root: The dataset folder.
        chip: The chip id.
        bands: The channels to show (see :func:`preview_channels`).
        stretch: Per-channel percentiles of the chip's valid values, or one min and max for all
            (see :func:`parse_stretch`), mapped to 0 and 255.

    Returns:
        PNG bytes, patch size x patch size pixels.

    Raises:
        NotFound: ``root`` is not a dataset folder, or ``chip`` is not one of its chips.
        Invalid: an unknown band, or a malformed stretch.

    """
    ds = open_dataset(root)
    channels = preview_channels(ds.manifest, bands)
    percent, low, high = parse_stretch(stretch)
    ds.check_chip(chip)
    image = ds.reader("images")[chip][channels].astype(np.float64)
    lows, highs = np.full(3, low), np.full(3, high)
    if percent:
        for k, band in enumerate(image):
            values = band[np.isfinite(band)]
            lows[k], highs[k] = np.percentile(values, [low, high]) if values.size else (0.0, 1.0)
    scaled = (image - lows[:, None, None]) / np.maximum(highs - lows, 1e-12)[:, None, None]
    rgb = np.clip(np.nan_to_num(scaled) * 255 + 0.5, 0, 255).astype(np.uint8)
    alpha = np.where(np.isnan(image).any(axis=0), 0, 255).astype(np.uint8)
    return _png(rgb, alpha)


def label_preview_png(root: Path, chip: int) -> bytes:
    """One chip's labels as an RGBA PNG in the classes' colours, unlabelled pixels transparent.

    Args:
        root: The dataset folder.
        chip: The chip id.

    Returns:
        PNG bytes, patch size x patch size pixels.

    Raises:
        NotFound: ``root`` is not a dataset folder, or ``chip`` is not one of its chips.

    """
    ds = open_dataset(root)
    ds.check_chip(chip)
    colours = np.zeros((256, 4), dtype=np.uint8)  # every value no class holds (255: unlabelled) is transparent
    for c in ds.manifest.classes:
        colours[c.index] = (*bytes.fromhex(c.color.lstrip("#")[:6]), 255)
    rgba = colours[ds.reader("labels")[chip]]
    return _png(np.moveaxis(rgba[..., :3], -1, 0), rgba[..., 3])
