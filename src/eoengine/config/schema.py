"""The project config: one YAML file that describes the whole job.

The models here are pure pydantic v2 schemas: they check types, ranges and names that can
be checked without touching the disk. Checks that need the files (does the band exist, do
labels overlap the scene) live in :mod:`eoengine.config.checks`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

Resampling = Literal["nearest", "bilinear", "cubic", "average", "mode", "lanczos"]


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class BandSpec(Strict):
    """One input band: its name, optional common name (for indices), scaling and nodata."""

    name: str = Field(description="Band name used everywhere else (files, model package).")
    common_name: str | None = Field(
        default=None, description="STAC eo common name (blue, green, red, nir, swir16, ...)."
    )
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = Field(default=None, description="Overrides the file's nodata value.")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must start with a letter and use letters, digits, '_', '-', '.'")
        return value


class SceneSpec(Strict):
    """One scene: either one file per band, one multi-band stack, or a STAC Item."""

    id: str
    datetime: str | None = None
    files: dict[str, str] | None = Field(default=None, description="band name -> file path")
    stack: str | None = Field(default=None, description="multi-band file, bands in config order")
    stack_indexes: list[int] | None = Field(
        default=None, description="1-based band indexes in the stack, one per configured band"
    )
    stac_item: str | None = Field(default=None, description="STAC Item JSON; assets by band name")
    labels: str | None = Field(default=None, description="label raster for this scene only")

    @model_validator(mode="after")
    def _one_source(self) -> SceneSpec:
        given = [k for k in ("files", "stack", "stac_item") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"scene '{self.id}' needs exactly one of files, stack, stac_item (got {given or 'none'})"
            )
        return self


class ImageryConfig(Strict):
    """The scenes and their bands; bands of different resolutions are resampled onto one grid."""

    bands: list[BandSpec] = Field(min_length=1)
    scenes: list[SceneSpec] = Field(min_length=1)
    resampling: Resampling = "bilinear"
    resolution: float | None = Field(default=None, gt=0, description="target pixel size")

    @model_validator(mode="after")
    def _unique(self) -> ImageryConfig:
        names = [b.name for b in self.bands]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"band names must be unique; repeated: {dupes}")
        ids = [s.id for s in self.scenes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"scene ids must be unique; repeated: {dupes}")
        return self


class ClassSpec(Strict):
    """One class: the value in the label source, a name and a display colour."""

    value: int | str
    name: str
    color: str = "#808080"

    @field_validator("color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _HEX_COLOUR.match(value):
            raise ValueError("must be a hex colour like '#1f77b4'")
        return value


class LabelsConfig(Strict):
    """Where labels come from: a vector file with a class column, or a label raster."""

    type: Literal["vector", "raster"]
    path: str | None = Field(default=None, description="vector file or label raster")
    class_column: str | None = Field(default=None, description="vector: column with classes")
    layer: str | None = Field(default=None, description="vector: layer in a GeoPackage")
    all_touched: bool = False

    @model_validator(mode="after")
    def _complete(self) -> LabelsConfig:
        if self.type == "vector" and (self.path is None or self.class_column is None):
            raise ValueError("vector labels need 'path' and 'class_column'")
        return self


class FeaturesConfig(Strict):
    """Derived bands: spectral indices by name from Awesome Spectral Indices (spyndex)."""

    indices: list[str] = Field(default_factory=list)
    constants: dict[str, float] = Field(
        default_factory=dict, description="overrides of index constants, e.g. L: 0.5"
    )


class SplitConfig(Strict):
    """How chips are split into train/val/test without spatial leakage."""

    method: Literal["blocks", "random", "regions", "column"] = "blocks"
    ratios: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15}
    )
    block_size: int | None = Field(default=None, gt=0, description="pixels; default 4x patch")
    path: str | None = Field(default=None, description="regions: polygons with a split column")
    column: str = "split"

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"train", "val", "test"}
        if unknown:
            raise ValueError(f"unknown split names {sorted(unknown)}; allowed: train, val, test")
        if "train" not in value or any(v < 0 for v in value.values()):
            raise ValueError("needs a 'train' ratio and no negative ratios")
        if abs(sum(value.values()) - 1.0) > 1e-6:
            raise ValueError(f"ratios must sum to 1 (they sum to {sum(value.values()):g})")
        return value

    @model_validator(mode="after")
    def _path(self) -> SplitConfig:
        if self.method == "regions" and not self.path:
            raise ValueError("split method 'regions' needs 'path' (polygons with a split column)")
        return self


class DatasetConfig(Strict):
    """Chipping, sampling, filtering and splitting; also the Beam runner to use."""

    patch_size: int = Field(default=64, ge=1, le=4096)
    stride: int | None = Field(default=None, ge=1, description="train grid stride; default patch")
    eval_stride: int | None = Field(default=None, ge=1, description="val/test; default patch")
    sampling: Literal["grid", "random", "stratified"] = "grid"
    num_samples: int = Field(default=500, ge=1, description="random/stratified: chips per scene")
    min_labelled_fraction: float = Field(default=0.05, ge=0, le=1)
    max_nodata_fraction: float = Field(default=0.5, ge=0, le=1)
    split: SplitConfig = Field(default_factory=SplitConfig)
    compression: Literal["none", "zstd"] = Field(
        default="none", description="chip arrays; none reads 2.4x faster (benchmarks/bench_loader.py)"
    )
    seed: int = 42
    runner: str = "DirectRunner"
    num_workers: int = Field(default=2, ge=1)
    running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "multi_processing"


class ModelConfig(Strict):
    """Architecture by registry name (or dotted path), with its settings."""

    name: str = "unet"
    activation: str = "relu"
    dropout: float = Field(default=0.0, ge=0, lt=1)
    batch_norm: bool = True
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ComponentConfig(Strict):
    """A component picked by name with keyword arguments (optimizer, scheduler)."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class LossTerm(Strict):
    """One term of a weighted loss sum."""

    name: str
    weight: float = 1.0
    kwargs: dict[str, Any] = Field(default_factory=dict)


class LossConfig(Strict):
    """Loss: a single named loss or a weighted sum of terms; class weights from the data."""

    name: str = "cross_entropy"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    terms: list[LossTerm] | None = Field(default=None, description="for name: combined")
    class_weights: Literal["none", "inverse", "inverse_sqrt", "median"] | list[float] = "none"


class EarlyStoppingConfig(Strict):
    """Stop when the monitored metric stops improving."""

    monitor: str = "val_miou"
    patience: int = Field(default=10, ge=1)
    mode: Literal["min", "max"] = "max"
    min_delta: float = 0.0


class AugmentationConfig(Strict):
    """Geometric augmentations applied identically to image and mask."""

    hflip: bool = True
    vflip: bool = True
    rot90: bool = True


class TrainingConfig(Strict):
    """Optimisation, loss, early stopping, augmentation and tracking settings."""

    batch_size: int = Field(default=16, ge=1)
    epochs: int = Field(default=30, ge=1)
    optimizer: ComponentConfig = Field(
        default_factory=lambda: ComponentConfig(name="AdamW", kwargs={"lr": 1e-3})
    )
    scheduler: ComponentConfig | None = None
    loss: LossConfig = Field(default_factory=LossConfig)
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)
    augmentation: AugmentationConfig = Field(default_factory=AugmentationConfig)
    seed: int = 42
    num_workers: int = Field(default=0, ge=0)
    dataset: str | None = Field(default=None, description="dataset path; default: last build")
    tracking_uri: str | None = None
    experiment: str | None = None


class PredictionConfig(Strict):
    """Tiled prediction: tile size, overlap between tiles, batch size."""

    tile_size: int = Field(default=256, ge=8)
    overlap: int = Field(default=64, ge=0)
    batch_size: int = Field(default=8, ge=1)
    region_size: int = Field(default=1024, ge=1, description="pixels held in memory per side")

    @model_validator(mode="after")
    def _overlap(self) -> PredictionConfig:
        if self.overlap * 2 > self.tile_size:
            raise ValueError("overlap must be at most half the tile size")
        return self


class ProjectConfig(Strict):
    """The whole job, from imagery and labels to a model and maps."""

    name: str = "eoengine-project"
    output_dir: str = "eoengine-out"
    imagery: ImageryConfig
    labels: LabelsConfig
    classes: list[ClassSpec] = Field(min_length=2)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    prediction: PredictionConfig = Field(default_factory=PredictionConfig)

    base_dir: Path = Field(default=Path("."), exclude=True, description="the config's folder")

    @model_validator(mode="after")
    def _classes_unique(self) -> ProjectConfig:
        for attr in ("value", "name"):
            seen = [getattr(c, attr) for c in self.classes]
            dupes = sorted({str(v) for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"class {attr}s must be unique; repeated: {dupes}")
        if len(self.classes) > 254:
            raise ValueError("at most 254 classes are supported")
        return self

    def resolve(self, path: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(path).expanduser()
        if "://" in path:
            return Path(path)
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def output_path(self) -> Path:
        """Folder for datasets, runs, reports and maps of this project."""
        return self.resolve(self.output_dir)
