"""Corruptions of dataset chips at severities 1-5, for grading how robust a model is.

:func:`corrupt` takes chips as the dataset stores them — RAW ``(N, C, H, W)`` values, per date the
bands then the indices, NaN = nodata — corrupts the raw bands of every date and recomputes the
index channels from the corrupted bands (so an NDVI channel stays the NDVI of its red and nir).
Strengths are relative to each band's train statistics (:class:`~eoengine.grading.layout.ChipLayout`),
so one table serves reflectances, digital numbers and decibels alike:

============  ====================================  =====  =====  =====  =====  =====
corruption    severity means                          1      2      3      4      5
============  ====================================  =====  =====  =====  =====  =====
noise         Gaussian noise, sigma × train std      0.05   0.1    0.2    0.35   0.5
blur          Gaussian blur, sigma in pixels          0.5    1      1.5    2      3
haze          blend toward min + 0.6 × range         0.1    0.2    0.3    0.45   0.6
clouds        cloud cover fraction                    0.1    0.2    0.35   0.5    0.7
band_dropout  fraction of scan lines lost             0.2    0.4    0.6    0.8    1
band_shift    one band moved, pixels                  0.25   0.5    1      2      4
date_shift    later dates moved, pixels               0.25   0.5    1      2      4
resolution    down- then up-sampling factor           1.5    2      3      4      6
gain_offset   gain 1 ± drift                          0.02   0.04   0.06   0.08   0.1
              offset ± drift × train std              0.1    0.2    0.3    0.4    0.5
compression   JPEG quality (8×8 block DCT)            80     60     40     20     10
============  ====================================  =====  =====  =====  =====  =====

- ``haze`` is weighted by each band's common name (full in coastal and blue, 0.5 in nir, 0.3 in
  swir, 0.1 in thermal; a band of unknown colour takes the full blend);
- ``clouds`` thresholds a smooth random field (noise blurred by a sixth of the chip) to the cover
  fraction, with edges that fade in over half the field's std, blended toward min + 0.9 × range;
  each cloud casts a shadow (option ``shadows``, default true) displaced by a fifth of the chip in a
  random direction, blending half-way toward the band's min;
- ``band_dropout`` sets one band (option ``band``: name or position, default the first) to 0
  (option ``mode="zero"``, the default) or to nodata (``mode="nodata"``) on randomly chosen rows of
  every date; at severity 5 the whole band is lost;
- ``band_shift`` moves one band (option ``band``) up, down, left or right (chosen per chip) against
  the others; ``date_shift`` moves each date after the first likewise against the first (multi-date
  models only); shifts bring edge values in, whole-pixel ones move values exactly, sub-pixel ones
  interpolate bilinearly, and nodata moves with the values;
- ``resolution`` averages areas onto a grid ``factor`` times coarser and interpolates back bilinearly;
- ``gain_offset`` draws the signs of each band's gain and offset drift from the seed (the same in
  every chip and date of a call);
- ``compression`` scales each band's train range to 0-255 and quantizes its 8×8 block DCT with
  JPEG's luminance table at the quality (no clipping: values beyond the range are kept).

Nodata stays nodata (``band_dropout`` with ``mode="nodata"`` adds some); spatial corruptions fill
it with the chip's band mean first (``blur`` weights it out). The input is never modified, the output
is float32 of the input's shape, and the same seed gives the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from eoengine.errors import Invalid
from eoengine.features.indices import compute_indices
from eoengine.grading import _fields
from eoengine.grading.layout import ChipLayout

__all__ = ["MULTI_DATE_ONLY", "NAMES", "OPTIONS", "SEVERITIES", "ChipLayout", "check", "corrupt"]

SEVERITIES = (1, 2, 3, 4, 5)
NOISE_STD = (0.05, 0.1, 0.2, 0.35, 0.5)
BLUR_PX = (0.5, 1.0, 1.5, 2.0, 3.0)
HAZE_BLEND = (0.1, 0.2, 0.3, 0.45, 0.6)
HAZE_LEVEL = 0.6
CLOUD_COVER = (0.1, 0.2, 0.35, 0.5, 0.7)
CLOUD_LEVEL, CLOUD_SIZE, CLOUD_EDGE = 0.9, 1 / 6, 0.5
SHADOW_OFFSET, SHADOW_DARKENING = 0.2, 0.5
DROPOUT_LINES = (0.2, 0.4, 0.6, 0.8, 1.0)
SHIFT_PX = (0.25, 0.5, 1.0, 2.0, 4.0)
RESOLUTION_FACTOR = (1.5, 2.0, 3.0, 4.0, 6.0)
GAIN_DRIFT = (0.02, 0.04, 0.06, 0.08, 0.1)
OFFSET_DRIFT = (0.1, 0.2, 0.3, 0.4, 0.5)
JPEG_QUALITY = (80, 60, 40, 20, 10)

HAZE_WEIGHT = {"coastal": 1.0, "blue": 1.0, "green": 0.85, "yellow": 0.8, "pan": 0.8, "rededge": 0.6, "red": 0.7,
               "nir": 0.5, "cirrus": 0.4, "swir": 0.3, "lwir": 0.1}
"""Haze strength by STAC common name prefix (scattering falls with wavelength; ``rededge`` before ``red``)."""

DROPOUT_MODES = ("zero", "nodata")
NAMES = ("noise", "blur", "haze", "clouds", "band_dropout", "band_shift", "date_shift", "resolution", "gain_offset",
         "compression")
"""Every corruption, by name."""
OPTIONS: dict[str, set[str]] = {name: set() for name in NAMES} | {
    "clouds": {"shadows"}, "band_dropout": {"band", "mode"}, "band_shift": {"band"}}
"""The options each corruption takes."""
MULTI_DATE_ONLY = frozenset({"date_shift"})
"""Corruptions that need chips of more than one date."""


def check(name: str, options: dict[str, Any], layout: ChipLayout) -> None:
    """Raise unless corruption ``name`` with ``options`` applies to chips of ``layout``.

    Args:
        name: The corruption.
        options: Its options.
        layout: The chips' layout.

    Raises:
        Invalid: an unknown corruption or option, a bad option value (a band the layout lacks, an
            unknown dropout mode), or a multi-date corruption on one date; naming the fix.

    """
    if name not in NAMES:
        raise Invalid(f"unknown corruption '{name}'", f"use one of: {', '.join(NAMES)}")
    for option in options:
        if option not in OPTIONS[name]:
            allowed = ", ".join(sorted(OPTIONS[name])) or "none"
            raise Invalid(f"corruption {name} has no option '{option}'", f"its options are: {allowed}")
    if name in MULTI_DATE_ONLY and layout.timesteps == 1:
        raise Invalid(f"corruption {name} moves later dates against the first, but the model has one date",
                      f"remove {name} from the suite's corruptions (it applies to multi-date models only)")
    if "band" in options:
        try:
            layout.band_position(options["band"])
        except Invalid as exc:
            raise Invalid(f"corruption {name}: {exc.problem}", f"set its option band: {exc.fix}") from None
    if options.get("mode", "zero") not in DROPOUT_MODES:
        raise Invalid(f"corruption {name} has no mode {options['mode']!r}", f"set mode to {' or '.join(DROPOUT_MODES)}")
    if not isinstance(options.get("shadows", True), bool):
        raise Invalid(f"corruption {name}: shadows must be true or false (got {options['shadows']!r})",
                      "set shadows to true or false")


def corrupt(chips: np.ndarray, name: str, severity: int, layout: ChipLayout, seed: int = 0,
            **options: Any) -> np.ndarray:
    """Chips under a corruption at a severity, their index channels recomputed from the corrupted bands.

    Args:
        chips: RAW ``(N, C, H, W)`` values as the dataset stores them (NaN = nodata).
        name: The corruption (one of :data:`NAMES`; the module's docstring says what each does).
        severity: 1 (mild) to 5 (strong).
        layout: The chips' channels and train statistics.
        seed: The seed of the corruption's random draws.
        **options: The corruption's options (:data:`OPTIONS`).

    Returns:
        The corrupted chips, float32 of the same shape; NaN where the input had NaN.

    Raises:
        Invalid: the chips do not fit the layout, the severity is not 1-5, or :func:`check` refuses.

    """
    check(name, options, layout)
    if not isinstance(severity, int | np.integer) or isinstance(severity, bool) or severity not in SEVERITIES:
        raise Invalid(f"corruption {name}: severity {severity!r} is not 1 to 5", "give a severity 1, 2, 3, 4 or 5")
    if not isinstance(chips, np.ndarray) or chips.ndim != 4 or chips.shape[1] != layout.n_channels:
        shape = getattr(chips, "shape", None)
        raise Invalid(f"corruption {name}: chips of shape {shape} do not fit the layout's {layout.n_channels} "
                      "channels", "pass (N, C, H, W) chips of the dataset the layout was made from")
    n, _, h, w = chips.shape
    positions = layout.band_channels().ravel()
    bands = chips[:, positions].astype(np.float64).reshape(n, layout.timesteps, len(layout.bands), h, w)
    bad = CORRUPTIONS[name](bands, int(severity) - 1, layout, np.random.default_rng(seed), **options)
    out = chips.astype(np.float32, copy=True)
    out[:, positions] = bad.reshape(n, -1, h, w)
    if layout.indices:
        out[:, layout.index_channels().ravel()] = _indices(bad, layout)
    out[np.isnan(chips)] = np.nan
    return out


def _indices(bands: np.ndarray, layout: ChipLayout) -> np.ndarray:
    """The index channels of ``(N, T, B, H, W)`` bands, as ``(N, T * I, H, W)``."""
    n, t, _, h, w = bands.shape
    values = compute_indices(np.moveaxis(bands, 2, 0), list(layout.indices), list(layout.bands),
                             list(layout.common_names), dict(layout.index_constants))
    return np.moveaxis(values, 0, 2).reshape(n, t * len(layout.indices), h, w)


def _per_band(values: np.ndarray) -> np.ndarray:
    """``(T, B)`` statistics broadcast against ``(N, T, B, H, W)`` chips."""
    return values[None, :, :, None, None]


def _noise(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator) -> np.ndarray:
    return x + rng.standard_normal(x.shape) * NOISE_STD[s] * _per_band(layout.band_spread())


def _blur(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator) -> np.ndarray:
    return _fields.blur_valid(x, BLUR_PX[s])


def _haze(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator) -> np.ndarray:
    weight = np.array([_haze_weight(common) for common in layout.common_names])
    blend = HAZE_BLEND[s] * weight[None, None, :, None, None]
    level = _per_band(layout.band_low() + HAZE_LEVEL * layout.band_range())
    return (1.0 - blend) * x + blend * level


def _haze_weight(common_name: str | None) -> float:
    """A band's haze strength by its common name (full when unknown)."""
    return next((v for k, v in HAZE_WEIGHT.items() if common_name and common_name.startswith(k)), 1.0)


def _clouds(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator, shadows: bool = True) -> np.ndarray:
    n, t, _, h, w = x.shape
    field = _fields.smooth_field(rng, (n, t, h, w), CLOUD_SIZE * max(h, w))
    threshold = np.quantile(field, 1.0 - CLOUD_COVER[s], axis=(-2, -1), keepdims=True)
    cloud = np.clip((field - threshold) / CLOUD_EDGE, 0.0, 1.0)[:, :, None]
    low, span = _per_band(layout.band_low()), _per_band(layout.band_range())
    out = (1.0 - cloud) * x + cloud * (low + CLOUD_LEVEL * span)
    if not shadows:
        return out
    angles = rng.uniform(0.0, 2 * np.pi, (n, t))
    reach = SHADOW_OFFSET * max(h, w)
    shade = np.stack([[_fields.shift_plane(cloud[i, d, 0], reach * np.sin(a), reach * np.cos(a))
                       for d, a in enumerate(row)] for i, row in enumerate(angles)])[:, :, None]
    dark = SHADOW_DARKENING * shade * (1.0 - cloud)
    return (1.0 - dark) * out + dark * low


def _band_dropout(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator, band: str | int = 0,
                  mode: str = "zero") -> np.ndarray:
    b, h = layout.band_position(band), x.shape[-2]
    lines = round(DROPOUT_LINES[s] * h)
    for chip in x:
        chip[:, b, rng.choice(h, lines, replace=False)] = 0.0 if mode == "zero" else np.nan
    return x


def _band_shift(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator, band: str | int = 0) -> np.ndarray:
    b, mean = layout.band_position(band), layout.band_stat("mean")
    for chip in x:
        move = _direction(rng) * SHIFT_PX[s]
        for t in range(layout.timesteps):
            chip[t, b] = _shift(chip[t, b], move, mean[t, b])
    return x


def _date_shift(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator) -> np.ndarray:
    mean = layout.band_stat("mean")
    for chip in x:
        for t in range(1, layout.timesteps):
            move = _direction(rng) * SHIFT_PX[s]
            for b in range(len(layout.bands)):
                chip[t, b] = _shift(chip[t, b], move, mean[t, b])
    return x


def _direction(rng: np.random.Generator) -> np.ndarray:
    """Up, down, left or right as a unit ``(dy, dx)`` (axis-aligned, so whole-pixel shifts stay exact)."""
    return np.array([(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)])[rng.integers(4)]


def _shift(plane: np.ndarray, move: np.ndarray, fallback: float) -> np.ndarray:
    """A plane moved by ``move`` pixels, its nodata moved with it (any pixel touching moved nodata)."""
    nodata = np.isnan(plane)
    moved = _fields.shift_plane(_fields.fill_nodata(plane, np.asarray(fallback)), *move)
    if nodata.any():
        moved[_fields.shift_plane(nodata.astype(np.float64), *move) > 1e-6] = np.nan
    return moved


def _resolution(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator) -> np.ndarray:
    return _fields.resample(_fields.fill_nodata(x, layout.band_stat("mean")[None]),
                            RESOLUTION_FACTOR[s])


def _gain_offset(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator) -> np.ndarray:
    signs = rng.choice([-1.0, 1.0], size=(2, len(layout.bands)))
    gain = 1.0 + GAIN_DRIFT[s] * signs[0]
    offset = OFFSET_DRIFT[s] * signs[1] * layout.band_spread()
    return x * gain[None, None, :, None, None] + _per_band(offset)


def _compression(x: np.ndarray, s: int, layout: ChipLayout, rng: np.random.Generator) -> np.ndarray:
    low, span = _per_band(layout.band_low()), _per_band(layout.band_range())
    filled = _fields.fill_nodata(x, layout.band_stat("mean")[None])
    scaled = ((filled - low) * (255.0 / span)).reshape(-1, *x.shape[-2:])
    decoded = _fields.block_dct_quantize(scaled, _fields.jpeg_table(JPEG_QUALITY[s])).reshape(x.shape)
    return decoded * (span / 255.0) + low


Corruption = Callable[..., np.ndarray]
CORRUPTIONS: dict[str, Corruption] = {
    "noise": _noise, "blur": _blur, "haze": _haze, "clouds": _clouds, "band_dropout": _band_dropout,
    "band_shift": _band_shift, "date_shift": _date_shift, "resolution": _resolution, "gain_offset": _gain_offset,
    "compression": _compression}
"""Each corruption's function of ``(bands, level, layout, rng, **options)``: the raw bands ``(N, T, B, H, W)``
float64 with NaN (a copy it may change), the severity - 1 (a position in the tables), the layout, the
random generator; it returns the corrupted bands."""
