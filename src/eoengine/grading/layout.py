"""Where each channel of a dataset's chips sits, and the train statistics each one has.

A chip holds, per date, the raw bands and then the spectral indices computed from them
(``t0:blue, t0:red, t0:NDVI, t1:blue, …``). :class:`ChipLayout` says which channel is which,
so a corruption can change a date's bands and recompute its indices, and scale its strength to
each band's train statistics (its spread and range).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import Invalid

Stat = Literal["mean", "std", "min", "max"]


@dataclass(frozen=True)
class ChipLayout:
    """The channels of a chip: per date, ``bands`` then ``indices``; per channel, the train statistics.

    Attributes:
        bands: The band names of one date.
        common_names: Each band's STAC common name (``red``, ``nir``) or None.
        mean: Per channel (all dates), the train mean; likewise ``std``, ``min`` and ``max``.
        timesteps: The number of dates.
        indices: The spectral indices of each date, computed from its bands.
        index_constants: Constants of the indices (spyndex defaults when absent).

    """

    bands: tuple[str, ...]
    common_names: tuple[str | None, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]
    timesteps: int = 1
    indices: tuple[str, ...] = ()
    index_constants: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bands or self.timesteps < 1:
            raise Invalid(f"a chip layout needs bands and at least one date (got {len(self.bands)} band(s), "
                          f"{self.timesteps} date(s))", "build it from a dataset manifest")
        if len(self.common_names) != len(self.bands):
            raise Invalid(f"{len(self.common_names)} common names for {len(self.bands)} bands",
                          "give one common name (or None) per band")
        for name in ("mean", "std", "min", "max"):
            if len(getattr(self, name)) != self.n_channels:
                raise Invalid(f"the layout's {name} has {len(getattr(self, name))} values but its chips have "
                              f"{self.n_channels} channels", "give one statistic per channel of every date")

    @classmethod
    def from_manifest(cls, manifest: DatasetManifest) -> ChipLayout:
        """The layout of a dataset's chips.

        Args:
            manifest: The dataset's manifest.

        Returns:
            Its layout (common names from ``band_specs``, statistics of the train split).

        Raises:
            Invalid: the manifest's channels or statistics do not match its bands, indices and dates.

        """
        common = {spec.name: spec.common_name for spec in manifest.band_specs}
        stats = manifest.statistics.train
        layout = cls(bands=tuple(manifest.bands), common_names=tuple(common.get(b) for b in manifest.bands),
                     mean=tuple(stats.mean), std=tuple(stats.std), min=tuple(stats.min), max=tuple(stats.max),
                     timesteps=manifest.timesteps, indices=tuple(manifest.indices),
                     index_constants=dict(manifest.index_constants))
        if len(manifest.channels) != layout.n_channels:
            raise Invalid(f"dataset {manifest.name} lists {len(manifest.channels)} channels, but its "
                          f"{manifest.timesteps} date(s) of {len(manifest.bands)} bands and "
                          f"{len(manifest.indices)} indices make {layout.n_channels}", "rebuild the dataset")
        return layout

    @property
    def per_date(self) -> int:
        """Channels of one date: its bands and indices."""
        return len(self.bands) + len(self.indices)

    @property
    def n_channels(self) -> int:
        """Channels of a chip, all dates."""
        return self.timesteps * self.per_date

    def band_channels(self) -> np.ndarray:
        """Channel positions of the raw bands: ``(timesteps, bands)`` ints."""
        return np.arange(self.timesteps)[:, None] * self.per_date + np.arange(len(self.bands))[None, :]

    def index_channels(self) -> np.ndarray:
        """Channel positions of the index channels: ``(timesteps, indices)`` ints."""
        return (np.arange(self.timesteps)[:, None] * self.per_date + len(self.bands)
                + np.arange(len(self.indices))[None, :])

    def band_stat(self, stat: Stat) -> np.ndarray:
        """A train statistic of each date's raw bands: ``(timesteps, bands)`` float64."""
        return np.asarray(getattr(self, stat), dtype=np.float64)[self.band_channels()]

    def band_spread(self) -> np.ndarray:
        """Each date's bands' train std, ``(timesteps, bands)``; a band without one (0, NaN) takes its range, else 1."""
        return _positive(self.band_stat("std"), self.band_range())

    def band_range(self) -> np.ndarray:
        """Each date's bands' train max - min, ``(timesteps, bands)``; a band without one takes its std, else 1."""
        spread = self.band_stat("max") - self.band_stat("min")
        return _positive(spread, _positive(self.band_stat("std"), np.ones_like(spread)))

    def band_low(self) -> np.ndarray:
        """Each date's bands' train min, ``(timesteps, bands)``; a band without one takes its mean, else 0."""
        low, mean = self.band_stat("min"), self.band_stat("mean")
        return np.where(np.isfinite(low), low, np.where(np.isfinite(mean), mean, 0.0))

    def band_position(self, band: str | int) -> int:
        """The position of a band among a date's bands.

        Args:
            band: Its name, or its position.

        Returns:
            The position, 0 to bands - 1.

        Raises:
            Invalid: no band has that name or position.

        """
        if isinstance(band, str) and band in self.bands:
            return self.bands.index(band)
        if isinstance(band, int) and not isinstance(band, bool) and 0 <= band < len(self.bands):
            return band
        raise Invalid(f"the model has no band {band!r}",
                      f"name one of its bands ({', '.join(self.bands)}) or a position 0 to {len(self.bands) - 1}")


def _positive(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``values`` where finite and above zero, else ``fallback``."""
    return np.where(np.isfinite(values) & (values > 0), values, fallback)
