"""A grading suite: what to grade a model on and what it must reach, read from YAML and checked before any work.

A suite names the labelled data (a dataset split: by default the model's dataset, test split), the metrics
(the first is the main one), the slices, the uncertainty settings, the corruptions and the thresholds. Every
section has defaults, so an empty file (or no file) is the default suite. :func:`load_suite` validates the
YAML like the project config (unknown keys and bad values are errors naming the field);
:func:`check_suite` then checks it against the model and the data (metrics the task has, files that exist,
corruptions that fit the model's dates, thresholds that name what the suite measures), listing every
problem before anything is predicted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from eoengine.config.load import format_validation_error, parse_yaml
from eoengine.config.schema import Strict
from eoengine.errors import ConfigError, NotFound

CLASS_METRICS = ("accuracy", "miou", "f1", "precision", "recall", "balanced_accuracy", "kappa", "mcc")
"""Metrics of class maps and chip classes (from the confusion matrix of a slice)."""
VALUE_METRICS = ("mae", "rmse", "bias", "r2")
"""Metrics of value maps (regression)."""
CALIBRATION_METRICS = ("ece",)
"""Whole-split metrics of class models: expected calibration error of the top-class probability."""
LOWER_IS_BETTER = ("mae", "rmse", "ece")
"""Metrics where smaller is better (a drop under a corruption is a rise)."""

CHIP_SLICES = ("scene", "block", "month", "season", "year", "brightness", "ndvi_range", "nodata_share")
"""Slices that put a whole chip in one group."""
SLICES = ("class", *CHIP_SLICES)
"""Built-in slice dimensions; regions, strata rasters and scene properties add their own names."""


class RegionSlices(Strict):
    """Slices by polygons of a vector file (e.g. admin units, ecoregions): one slice per value of ``column``."""

    path: str = Field(description="GeoPackage, GeoJSON or Shapefile with a CRS")
    column: str = Field(description="the attribute naming each polygon's slice")
    name: str = Field(default="region", description="the slice dimension's name in the report and thresholds")


class StrataSlices(Strict):
    """Slices by the values of a raster (e.g. land-cover strata, elevation zones), read with nearest resampling."""

    path: str = Field(description="a GeoTIFF of integer strata, any CRS")
    band: int = Field(default=1, ge=1)
    name: str = Field(default="strata", description="the slice dimension's name")


class SliceSettings(Strict):
    """Which slices to score, and how small a slice may be to count."""

    by: list[str] | None = Field(default=None, description=f"built-in slices: {', '.join(SLICES)} (default: every one the "
                                 "model's task and bands have: no class slices for a value model, no NDVI range "
                                 "without red and nir)")
    properties: list[str] = Field(default_factory=list, description="STAC properties of the scenes (eo:cloud_cover …)")
    regions: list[RegionSlices] = Field(default_factory=list)
    strata: list[StrataSlices] = Field(default_factory=list)
    block_size: int | None = Field(default=None, ge=1, description="spatial block side in pixels (default 4 chips)")
    bins: int = Field(default=4, ge=2, le=20, description="quantile bins for input statistics")
    min_pixels: int = Field(default=50, ge=1, description="slices with fewer labelled pixels are not ranked")
    weakest: int = Field(default=5, ge=1, description="how many weakest slices the report lists")


class UncertaintySettings(Strict):
    """Bootstrap intervals (resampling spatial blocks) and calibration bins."""

    bootstrap: int = Field(default=200, ge=0, description="resamples; 0 turns intervals off")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    calibration_bins: int = Field(default=10, ge=2, le=50)
    seed: int = 0


class CorruptionRun(Strict):
    """One corruption at some severities, with its options (see :mod:`eoengine.grading.corruptions`)."""

    name: str
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _severities(self) -> CorruptionRun:
        bad = [s for s in self.severities if not 1 <= s <= 5]
        if bad or not self.severities:
            raise ValueError(f"severities must be 1 to 5 (got {self.severities})")
        return self


DEFAULT_CORRUPTIONS = ("noise", "blur", "haze", "clouds", "band_dropout", "band_shift", "resolution", "gain_offset",
                       "compression")
"""The default suite's corruptions (``date_shift`` too for a multi-date model)."""


class RobustnessSettings(Strict):
    """Corruptions to grade under, on a fixed sample of the graded chips."""

    corruptions: list[CorruptionRun] | None = Field(default=None, description="default: every corruption, severities 1-5")
    max_chips: int = Field(default=256, ge=1, description="chips corrupted per severity (a seeded sample)")
    seed: int = 0


class Threshold(Strict):
    """A requirement: a metric overall, in every slice of a dimension, or its drop under a corruption.

    ``metric: miou, min: 0.5`` (overall); ``metric: accuracy, min: 0.7, every: region`` (each region);
    ``metric: miou, corruption: haze, severity: 3, max_drop: 0.1`` (at most a 10 % relative drop).
    """

    metric: str
    min: float | None = None
    max: float | None = None
    every: str | None = Field(default=None, description="a slice dimension: every slice must meet min/max")
    corruption: str | None = None
    severity: int | None = Field(default=None, ge=1, le=5)
    max_drop: float | None = Field(default=None, ge=0, description="relative drop from the clean score (0.1 = 10 %)")
    name: str | None = Field(default=None, description="the capability's name in the report")

    @model_validator(mode="after")
    def _one_kind(self) -> Threshold:
        if self.corruption is not None:
            if self.max_drop is None or self.severity is None:
                raise ValueError("a corruption threshold needs severity and max_drop")
            if self.every is not None or self.min is not None or self.max is not None:
                raise ValueError("a corruption threshold takes max_drop, not min/max/every")
        elif self.max_drop is not None or self.severity is not None:
            raise ValueError("max_drop and severity need corruption")
        elif self.min is None and self.max is None:
            raise ValueError("give min or max")
        return self

    @property
    def capability(self) -> str:
        """The capability this threshold grades: its name, or robustness / slices / calibration / overall."""
        if self.name:
            return self.name
        if self.corruption:
            return f"robustness: {self.corruption}"
        if self.every:
            return f"every {self.every}"
        return "calibration" if self.metric in CALIBRATION_METRICS else "overall"

    def describe(self) -> str:
        """The requirement in words, e.g. ``miou >= 0.5 in every region``."""
        if self.corruption:
            return f"{self.metric} drops at most {self.max_drop:.0%} under {self.corruption} severity {self.severity}"
        bound = " and ".join(f"{self.metric} {op} {v:g}" for op, v in ((">=", self.min), ("<=", self.max)) if v is not None)
        return bound + (f" in every {self.every}" if self.every else "")


class DataSettings(Strict):
    """The labelled data to grade on."""

    dataset: str | None = Field(default=None, description="dataset folder (default: the model's dataset)")
    split: str = "test"


class Suite(Strict):
    """A grading suite (see the module docstring); every section has defaults."""

    data: DataSettings = Field(default_factory=DataSettings)
    metrics: list[str] | None = Field(default=None, description="default: the task's metrics, main one first")
    slices: SliceSettings = Field(default_factory=SliceSettings)
    uncertainty: UncertaintySettings = Field(default_factory=UncertaintySettings)
    robustness: RobustnessSettings = Field(default_factory=RobustnessSettings)
    error_maps: bool = True
    thresholds: list[Threshold] | None = Field(
        default=None, description="default: ece <= 0.1 and at most a 10 % drop at severity 3 of every corruption")
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolve(self, path: str) -> Path:
        """A path of the suite, relative to the suite file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def load_suite(path: Path | None) -> Suite:
    """The suite in a YAML file (relative paths against its folder), or the default suite.

    Args:
        path: The suite file; None for the default suite.

    Returns:
        The validated suite (not yet checked against a model: see :func:`eoengine.grading.check.check_suite`).

    Raises:
        ConfigError: A field does not validate (every problem, by field).
        EOError: The file is missing or not a YAML mapping.

    """
    if path is None:
        return Suite()
    if not path.is_file():
        raise NotFound(f"suite file not found: {path}", "pass a YAML suite file, or leave --suite out for the default suite")
    text = path.read_text(encoding="utf-8")
    data = parse_yaml(text, str(path)) if text.strip() else {}
    return suite_from_mapping(data, str(path), path.resolve().parent)


def suite_from_mapping(data: dict[str, Any], source: str, base_dir: Path) -> Suite:
    """Validate a decoded suite.

    Args:
        data: The decoded YAML mapping.
        source: What to call it in messages.
        base_dir: The folder its relative paths are relative to.

    Returns:
        The suite.

    Raises:
        ConfigError: A field does not validate (every problem, by field).

    """
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, format_validation_error(err, Suite, data)) from None
    suite.base_dir = base_dir
    return suite
