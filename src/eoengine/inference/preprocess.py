"""Raw band values → model input: the one path for files, uploads, instances and tiles.

Files are read by :class:`~eoengine.raster.scene.SceneReader` (``read_raw``), HTTP instances
arrive as arrays and tiles through rio-tiler; all three hand their raw values (as the imagery
stores them) to :func:`model_input`, which masks nodata, applies each band's scale and
offset, derives the spectral indices and normalises with the training statistics. The
nodata rule is the same everywhere: a pixel is nodata if any band equals that band's nodata
— the band's own (from the config's imagery, recorded in the package) if set, else the
file's — or is NaN. A package's metadata is read into an :class:`InputSpec` by
:func:`input_spec` alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from eoengine.errors import EOError
from eoengine.features.indices import stack_features
from eoengine.features.normalise import normalise
from eoengine.models.meta import PackageMeta
from eoengine.raster.scene import mask_and_scale


@dataclass(frozen=True)
class InputSpec:
    """What turns raw band values into a model's input: one date's bands, dates, indices, statistics."""

    bands: tuple[str, ...]
    common_names: tuple[str | None, ...]
    scale: tuple[float, ...]
    offset: tuple[float, ...]
    nodata: tuple[float | None, ...]
    timesteps: int
    indices: tuple[str, ...]
    index_constants: Mapping[str, float] = field(default_factory=dict)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def raw_bands(self) -> list[str]:
        """Names of the raw bands the input is made from, in order (``t0:blue``, ... for several dates)."""
        if self.timesteps == 1:
            return list(self.bands)
        return [f"t{t}:{b}" for t in range(self.timesteps) for b in self.bands]


def input_spec(meta: PackageMeta) -> InputSpec:
    """The input spec a model package's metadata records.

    Args:
        meta: The package's metadata (``bands``, ``band_specs``, ``timesteps``, ``indices``,
            ``index_constants``, ``normalization``).

    Returns:
        The spec, with each band's scale (default 1), offset (default 0) and nodata (default none).

    """
    specs = meta.band_specs
    return InputSpec(
        bands=tuple(meta.bands),
        common_names=tuple(b.common_name for b in specs),
        scale=tuple(b.scale for b in specs),
        offset=tuple(b.offset for b in specs),
        nodata=tuple(b.nodata for b in specs),
        timesteps=meta.timesteps,
        indices=tuple(meta.indices),
        index_constants=dict(meta.index_constants),
        mean=tuple(meta.normalization.mean),
        std=tuple(meta.normalization.std),
    )


class ModelInput(NamedTuple):
    """A model's input and where the raw bands had no data."""

    image: np.ndarray
    """Normalised channels, float32, (C, H, W) or (B, C, H, W); 0 where a channel is nodata."""
    nodata: np.ndarray
    """True where any raw band is nodata, (H, W) or (B, H, W)."""


def input_features(raw: np.ndarray, spec: InputSpec, source_nodata: Sequence[float | None] | None = None,
                   overwrite: bool = False) -> ModelInput:
    """Raw band values → the model's channels before normalisation (bands scaled, indices derived), and the nodata mask.

    The first part of :func:`model_input`, for what must see the channels in their own units
    (a drift monitor compares them with the dataset's train chips, which hold these values).

    Args:
        raw: Raw band values in :attr:`InputSpec.raw_bands` order, (bands, H, W) or (B, bands, H, W).
        spec: The package's input spec (:func:`input_spec`).
        source_nodata: For bands read from files: each raw band's nodata there (None: none).
        overwrite: ``raw`` (float32) may be overwritten, which saves a copy.

    Returns:
        The channels (NaN where nodata) and the nodata mask.

    Raises:
        EOError: ``raw`` does not have the spec's band count on its band axis.

    """
    n = len(spec.raw_bands)
    if raw.ndim not in (3, 4) or raw.shape[-3] != n:
        raise EOError(f"raw bands of shape {list(raw.shape)}: the model takes {n} bands ({', '.join(spec.raw_bands)})",
                      "pass (bands, H, W) or (batch, bands, H, W) with the model's bands in order")
    files = list(source_nodata) if source_nodata is not None else [None] * n
    own = spec.nodata * spec.timesteps
    x = raw if overwrite and raw.dtype == np.float32 else np.array(raw, dtype=np.float32)
    mask_and_scale(x, [b if b is not None else f for b, f in zip(own, files, strict=True)],
                   spec.scale * spec.timesteps, spec.offset * spec.timesteps)
    nodata = np.asarray(np.isnan(x).any(axis=-3))
    if spec.indices:
        args = (spec.timesteps, list(spec.indices), list(spec.bands), list(spec.common_names), dict(spec.index_constants))
        x = stack_features(x, *args) if x.ndim == 3 else np.stack([stack_features(one, *args) for one in x])
    return ModelInput(x, nodata)


def normalised(channels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Channels (:func:`input_features`) normalised with the package's statistics, NaN as 0: the model's input.

    Args:
        channels: (C, H, W) or (B, C, H, W) in the model's channel order.
        spec: The package's input spec.

    Returns:
        The normalised channels, float32.

    """
    return normalise(channels, np.asarray(spec.mean, dtype=np.float32), np.asarray(spec.std, dtype=np.float32))


def model_input(raw: np.ndarray, spec: InputSpec, source_nodata: Sequence[float | None] | None = None,
                overwrite: bool = False) -> ModelInput:
    """Raw band values, as read from files or sent in requests, → the model's input and the nodata mask.

    A band's value is nodata where it equals the band's own nodata (``spec.nodata``) if set,
    else the one of the file it was read from (``source_nodata``), or where it is NaN; it becomes NaN, and a pixel with
    any such band is nodata. Then each band's scale and offset apply, the indices are derived
    per date (:func:`input_features`), and the channels are normalised, NaN becoming 0 (:func:`normalised`).

    Args:
        raw: Raw band values in :attr:`InputSpec.raw_bands` order, (bands, H, W) or (B, bands, H, W).
        spec: The package's input spec (:func:`input_spec`).
        source_nodata: For bands read from files: each raw band's nodata there (the file's, or
            :attr:`SceneReader.nodata <eoengine.raster.scene.SceneReader.nodata>`; None: none).
        overwrite: ``raw`` (float32) may be overwritten, which saves a copy (the caller's own buffer).

    Returns:
        The normalised input and the nodata mask.

    Raises:
        EOError: ``raw`` does not have the spec's band count on its band axis.

    """
    channels, nodata = input_features(raw, spec, source_nodata, overwrite)
    return ModelInput(normalised(channels, spec), nodata)
