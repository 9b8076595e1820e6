"""The project config: one YAML file that describes the whole job.

The models here are pure pydantic v2 schemas: they check types, ranges and names that can
be checked without touching the disk. Checks that need the files (does the band exist, do
labels overlap the scene) live in :mod:`eoengine.training.checks`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from eoengine.config.query import SearchQuery
from eoengine.errors import EOError

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

Resampling = Literal["nearest", "bilinear", "cubic", "average", "mode", "lanczos"]


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so typos never pass silently.

    Assigning to a field validates the value and reruns the section's checks; a refused
    value raises :class:`pydantic.ValidationError` and leaves the section as it was. Change
    a validated config by assignment or with :func:`changed`, never ``model_copy(update=...)``
    (which checks nothing).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __setattr__(self, name: str, value: Any) -> None:
        before, was_set = dict(self.__dict__), set(self.__pydantic_fields_set__)
        try:
            super().__setattr__(name, value)
        except Exception:  # pydantic has already stored the value when a model check refuses it
            object.__setattr__(self, "__dict__", before)
            object.__setattr__(self, "__pydantic_fields_set__", was_set)
            raise


ModelT = TypeVar("ModelT", bound=BaseModel)


def changed(model: ModelT, **changes: Any) -> ModelT:
    """A copy of a config section with some fields changed, validated like the original.

    The fields the original set stay set, the changed ones become set (defaults that depend
    on what a config sets keep working); the section's checks run on the result.

    Args:
        model: The validated section.
        **changes: New values by field name.

    Returns:
        A new section of the same type.

    Raises:
        pydantic.ValidationError: a changed value, or the section with it, is not valid.

    """
    values = {name: getattr(model, name) for name in model.model_fields_set}
    return type(model).model_validate(values | changes)


class BandSpec(Strict):
    """One input band: its name, optional common name (for indices), scaling and nodata."""

    name: str = Field(description="Band name used everywhere else (files, model package).")
    common_name: str | None = Field(
        default=None, description="STAC eo common name (blue, green, red, nir, swir16, ...)."
    )
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = Field(default=None, description="Overrides the file's nodata value.")
    group: str = Field(
        default="default", description="input group (e.g. optical, radar) for fusion models"
    )

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must start with a letter and use letters, digits, '_', '-', '.'")
        return value


class BandFiles(Strict):
    """Where a scene's (or one date's) bands are: one file per band, a stack, or a STAC Item."""

    datetime: str | None = None
    files: dict[str, str] | None = Field(default=None, description="band name -> file path")
    stack: str | None = Field(default=None, description="multi-band file, bands in config order")
    stack_indexes: list[int] | None = Field(
        default=None, description="1-based band indexes in the stack, one per configured band"
    )
    stac_item: str | None = Field(default=None, description="STAC Item JSON; assets by band name")

    def sources_given(self) -> list[str]:
        """Which of files, stack and stac_item are set."""
        return [k for k in ("files", "stack", "stac_item") if getattr(self, k) is not None]


class SceneSpec(BandFiles):
    """One scene: its bands (files, stack or STAC Item), or one such entry per date."""

    id: str
    timesteps: list[BandFiles] | None = Field(
        default=None, description="several dates of the same place (change detection, time series)"
    )
    labels: str | None = Field(default=None, description="label raster for this scene only")

    @model_validator(mode="after")
    def _one_source(self) -> SceneSpec:
        given = self.sources_given() + (["timesteps"] if self.timesteps is not None else [])
        if len(given) != 1:
            raise ValueError(
                f"scene '{self.id}' needs exactly one of files, stack, stac_item, timesteps (got {given or 'none'})"
            )
        for i, step in enumerate(self.timesteps or []):
            if len(step.sources_given()) != 1:
                raise ValueError(f"scene '{self.id}' timestep {i}: needs exactly one of files, stack, stac_item")
        if self.timesteps is not None and len(self.timesteps) < 2:
            raise ValueError(f"scene '{self.id}': timesteps needs at least two dates")
        return self

    @property
    def dates(self) -> list[BandFiles]:
        """The scene's band sources per date (one entry for a single-date scene)."""
        return self.timesteps if self.timesteps is not None else [self]


class SourceConfig(Strict, SearchQuery):
    """Scenes found by a search instead of listed: a catalog folder or STAC API, and the query.

    The query's fields are :class:`SearchQuery`'s; ``aoi`` gives the area as a GeoJSON file
    instead (resolved against the config's folder when the search runs).
    """

    catalog: str = Field(description="catalog folder / collection.json, or a STAC API URL")
    aoi: str | None = Field(default=None, description="GeoJSON file of the area")
    cache: str | None = Field(default=None, description="fetched imagery; default <output_dir>/imagery")
    storage: dict[str, str] = Field(default_factory=dict, description=(
        "GDAL options for s3://, gs://, az:// assets (AWS_*, GS_*, AZURE_*); a value 'env:NAME' is read from the "
        "environment; never recorded in the dataset"))

    @model_validator(mode="after")
    def _area(self) -> SourceConfig:
        given = [k for k in ("bbox", "intersects", "aoi") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give {given[0]} or {given[-1]}, not both")
        return self

    @model_serializer(mode="wrap")
    def _recorded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The fields as recorded (a dataset's config, hence its version): query fields left at their default are left out."""
        data: dict[str, Any] = handler(self)
        for key in _UNRECORDED_DEFAULTS:
            if key in data and getattr(self, key) == SearchQuery.model_fields[key].default:
                del data[key]
        return data


_UNRECORDED_DEFAULTS = ("intersects", "ids", "sort", "descending")
"""Query fields a source config did not have before it extended :class:`SearchQuery`: at their
defaults they stay out of its dump, so datasets built from a source keep their version."""


class ImageryConfig(Strict):
    """The scenes and their bands; bands of different resolutions are resampled onto one grid."""

    bands: list[BandSpec] = Field(min_length=1)
    scenes: list[SceneSpec] = Field(default_factory=list)
    source: SourceConfig | None = Field(default=None, description="find scenes by search (instead of, or besides, scenes)")
    resampling: Resampling = "bilinear"
    resolution: float | None = Field(default=None, gt=0, description="target pixel size")

    @property
    def timesteps(self) -> int:
        """Dates per scene (all scenes have the same number)."""
        return len(self.scenes[0].dates) if self.scenes else 1

    @model_validator(mode="after")
    def _unique(self) -> ImageryConfig:
        if not self.scenes and self.source is None:
            raise ValueError("needs scenes, or a source to search for them")
        names = [b.name for b in self.bands]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"band names must be unique; repeated: {dupes}")
        ids = [s.id for s in self.scenes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"scene ids must be unique; repeated: {dupes}")
        counts = sorted({len(s.dates) for s in self.scenes})
        if len(counts) > 1:
            raise ValueError(f"every scene needs the same number of dates; found {counts}")
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


def class_key(value: Any) -> str:
    """A class value as text, the way label files spell it (1.0 -> '1')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def class_lookup(classes: list[ClassSpec]) -> dict[str, int]:
    """Map every accepted spelling of a class (value or name, as text) to its index."""
    out: dict[str, int] = {}
    for i, c in enumerate(classes):
        out[str(c.value)] = i
        out.setdefault(c.name, i)
    return out


class ValuesConfig(Strict):
    """A raster of continuous target values (biomass, canopy height) for regression."""

    path: str
    name: str = "value"
    nodata: float | None = Field(default=None, description="overrides the raster's nodata")
    resampling: Resampling = "nearest"


class BufferConfig(Strict):
    """A buffer around every label feature before rasterising (roads as lines, survey points)."""

    distance: float = Field(gt=0, description="buffer radius")
    units: Literal["metres", "pixels"] = Field(
        default="metres", description="metres (on the ground, whatever the scene's CRS) or scene pixels"
    )


class LabelsConfig(Strict):
    """Class labels (a vector file, or a label raster) and/or values.

    Vector features take their class from ``class_column``, or all get ``class_value``
    (a footprint file of one class). ``background`` names the class of every pixel no
    feature covers, over the whole scene or only inside ``labelled_area``; without it those
    pixels are unlabelled. ``buffer`` widens lines and points before rasterising.
    """

    type: Literal["vector", "raster", "none"]
    path: str | None = Field(default=None, description="vector file or label raster")
    class_column: str | None = Field(default=None, description="vector: column with classes")
    class_value: int | str | None = Field(
        default=None, description="vector: the class (value or name) of every feature, instead of a class column"
    )
    background: int | str | None = Field(
        default=None, description="vector: the class (value or name) of pixels no feature covers"
    )
    labelled_area: str | None = Field(
        default=None, description="vector: polygons where background applies (default: the whole scene)"
    )
    buffer: BufferConfig | None = Field(default=None, description="vector: buffer features before rasterising")
    layer: str | None = Field(default=None, description="vector: layer in a GeoPackage")
    all_touched: bool = False
    values: ValuesConfig | None = Field(default=None, description="regression targets")

    @model_validator(mode="after")
    def _complete(self) -> LabelsConfig:
        if self.type == "vector":
            if self.path is None:
                raise ValueError("vector labels need 'path'")
            if (self.class_column is None) == (self.class_value is None):
                raise ValueError("vector labels need one of 'class_column' (a column with classes) "
                                 "or 'class_value' (one class for every feature)")
        else:
            vector_only = [k for k in ("class_value", "background", "labelled_area", "buffer") if getattr(self, k) is not None]
            if vector_only:
                raise ValueError(f"{', '.join(vector_only)} only apply to labels.type 'vector'")
        if self.labelled_area is not None and self.background is None:
            raise ValueError("'labelled_area' needs 'background' (the class of unlabelled pixels inside it)")
        if self.type == "none" and self.values is None:
            raise ValueError("labels.type 'none' needs labels.values (a raster of target values)")
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


HeadType = Literal["segmentation", "classification", "multilabel", "regression"]
TaskType = Literal[
    "segmentation", "classification", "multilabel", "regression", "change_detection", "time_series", "multi_output"
]


class OutputSpec(Strict):
    """One output head of a multi-output model: its target, loss and weight in the total."""

    name: str
    type: HeadType
    weight: float = Field(default=1.0, ge=0)
    loss: LossConfig | None = Field(default=None, description="default: the type's usual loss")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_]*$", value):
            raise ValueError("must be lower-case letters, digits and '_' (it prefixes metric names)")
        return value


class TaskConfig(Strict):
    """What the model learns: the task type, and for multi_output the heads."""

    type: TaskType = "segmentation"
    outputs: list[OutputSpec] | None = Field(default=None, description="multi_output: the heads")
    multilabel_threshold: float = Field(
        default=0.05, gt=0, le=1, description="a class is present in a chip above this labelled fraction"
    )

    @model_validator(mode="after")
    def _outputs(self) -> TaskConfig:
        if self.type == "multi_output":
            if not self.outputs or len(self.outputs) < 2:
                raise ValueError("task type multi_output needs at least two task.outputs")
            names = [o.name for o in self.outputs]
            if len(set(names)) != len(names):
                raise ValueError(f"task.outputs names must be unique: {names}")
        elif self.outputs:
            raise ValueError("task.outputs is only for task type multi_output")
        return self

    def heads(self) -> list[OutputSpec]:
        """The output heads; single-output tasks have one head with an empty name."""
        if self.outputs:
            return list(self.outputs)
        head: HeadType = "segmentation" if self.type in ("change_detection", "time_series") else self.type  # type: ignore[assignment]
        return [OutputSpec(name="out", type=head)]


class EarlyStoppingConfig(Strict):
    """Stop when the monitored metric stops improving."""

    monitor: str | None = Field(default=None, description="default: the task's main metric (val_miou, val_rmse, ...)")
    patience: int = Field(default=10, ge=1)
    mode: Literal["min", "max"] | None = Field(default=None, description="default: min for losses and errors")
    min_delta: float = 0.0


class AugmentationConfig(Strict):
    """Augmentations: geometric ones move image and targets together; radiometric ones the image only.

    Radiometric changes apply per chip and channel in normalised units: ``gain`` and
    ``offset`` are the half-widths of uniform ranges around 1 and 0, ``noise`` the standard
    deviation of Gaussian noise, ``blur`` the largest Gaussian blur sigma (pixels); each is
    applied with probability ``p``. 0 turns one off.
    """

    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    gain: float = Field(default=0.0, ge=0, lt=1)
    offset: float = Field(default=0.0, ge=0)
    noise: float = Field(default=0.0, ge=0)
    blur: float = Field(default=0.0, ge=0, le=5)
    p: float = Field(default=0.5, ge=0, le=1)


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
    sampling: Literal["shuffle", "balanced"] = Field(
        default="shuffle", description="balanced: draw chips inversely to their classes' frequency"
    )
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "auto"] = Field(
        default="32-true", description="auto: 16-mixed on CUDA, 32-true elsewhere"
    )
    accumulate_grad_batches: int = Field(default=1, ge=1)
    gradient_clip_val: float | None = Field(default=None, gt=0)
    gradient_clip_algorithm: Literal["norm", "value"] = "norm"
    accelerator: str = Field(default="auto", description="cpu, gpu, mps or auto")
    devices: int | str = Field(default=1, description="per node: a count, or 'auto'")
    num_nodes: int = Field(default=1, ge=1)
    strategy: str = Field(default="auto", description="auto, ddp, ddp_spawn, fsdp, ...")
    seed: int = 42
    num_workers: int = Field(default=0, ge=0)
    dataset: str | None = Field(default=None, description="dataset path; default: last build")
    tracking_uri: str | None = None
    experiment: str | None = None


class SweepParam(Strict):
    """The search space of one setting: a float or int range, or a list of choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _space(self) -> SweepParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs choices")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"a {self.type} parameter needs low <= high")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        return self


class SweepConfig(Strict):
    """A hyperparameter search (Optuna): settings by dotted path, each trial a tracked run."""

    params: dict[str, SweepParam] = Field(min_length=1, description="dotted config path -> search space")
    trials: int = Field(default=10, ge=1)
    metric: str | None = Field(default=None, description="default: the early-stopping monitor")
    direction: Literal["maximize", "minimize"] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    prune: bool = Field(default=True, description="stop unpromising trials early (median rule)")
    seed: int = 0
    timeout_minutes: float | None = Field(default=None, gt=0)

    @field_validator("params")
    @classmethod
    def _paths(cls, value: dict[str, SweepParam]) -> dict[str, SweepParam]:
        for path in value:
            if path.split(".")[0] not in ("model", "training", "task"):
                raise ValueError(f"'{path}': only model.*, training.* and task.* settings can be swept "
                                 "(the dataset is built once for all trials)")
        return value


class PredictionConfig(Strict):
    """Tiled prediction: tile size, overlap between tiles, batch size, and what class maps hold."""

    tile_size: int = Field(default=256, ge=8, le=16384)
    overlap: int = Field(default=64, ge=0)
    batch_size: int = Field(default=8, ge=1, le=4096)
    region_size: int = Field(default=1024, ge=1, le=65536, description="pixels held in memory per side")
    class_codes: Literal["values", "positions"] = Field(
        default="values", description="class map pixels: the classes' configured values, or their positions 0..n-1"
    )

    @model_validator(mode="after")
    def _overlap(self) -> PredictionConfig:
        if self.overlap * 2 > self.tile_size:
            raise ValueError(f"overlap ({self.overlap}) must be at most half the tile size ({self.tile_size})")
        return self


def timesteps_problem(task: str, steps: int) -> str | None:
    """Why scenes (or a dataset) with ``steps`` dates cannot serve ``task``, or None when they can."""
    if task == "change_detection" and steps != 2:
        return f"change_detection needs scenes with exactly 2 timesteps, they have {steps}"
    if task == "time_series" and steps < 2:
        return "time_series needs scenes with timesteps (at least two dates)"
    return None


class ProjectConfig(Strict):
    """The whole job, from imagery and labels to a model and maps.

    ``imagery`` and ``labels`` describe how to build a dataset; a config that only trains
    on an existing one (``training.dataset``, e.g. from ``dataset import-tfrecord``) needs
    neither: the dataset's manifest gives the bands, classes and targets.
    """

    name: str = "eoengine-project"
    output_dir: str = "eoengine-out"
    imagery: ImageryConfig | None = None
    labels: LabelsConfig | None = None
    classes: list[ClassSpec] = Field(default_factory=list)
    task: TaskConfig = Field(default_factory=TaskConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    prediction: PredictionConfig = Field(default_factory=PredictionConfig)
    sweep: SweepConfig | None = None

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

    @model_validator(mode="after")
    def _sources(self) -> ProjectConfig:
        missing = [k for k in ("imagery", "labels") if getattr(self, k) is None]
        if missing and self.training.dataset is None:
            raise ValueError(f"no {' or '.join(missing)}: a config needs imagery and labels to build a dataset, "
                             "or training.dataset naming one to train on (e.g. made by 'eoengine dataset import-tfrecord')")
        if self.labels is not None:
            self._check_labels(self.labels)
        problem = timesteps_problem(self.task.type, self.imagery.timesteps) if self.imagery is not None else None
        if problem:
            raise ValueError(problem)
        return self

    def _check_labels(self, labels: LabelsConfig) -> None:
        if labels.type != "none" and len(self.classes) < 2:
            raise ValueError("class labels need at least two classes")
        lookup = class_lookup(self.classes)
        for key in ("class_value", "background"):
            value = getattr(labels, key)
            if value is not None and class_key(value) not in lookup:
                raise ValueError(f"labels.{key} {value!r} is not a configured class (classes: {sorted(lookup)})")
        for head in self.task.heads():
            if head.type == "regression" and labels.values is None:
                raise ValueError(f"a regression output ('{head.name}') needs labels.values (a raster of target values)")
            if head.type != "regression" and labels.type == "none":
                raise ValueError(f"a {head.type} output ('{head.name}') needs class labels (labels.type vector or raster)")

    def for_build(self) -> BuildConfig:
        """The config as one that can build a dataset (it has imagery and labels).

        Returns:
            The same settings, typed as a :class:`BuildConfig`.

        Raises:
            EOError: the config has no imagery or no labels section.

        """
        if isinstance(self, BuildConfig):
            return self
        if self.imagery is None or self.labels is None:
            raise EOError("this config has no imagery or labels, so it cannot build a dataset",
                          "add imagery and labels sections, or train on training.dataset without building")
        values = {k: getattr(self, k) for k in type(self).model_fields}
        return BuildConfig.model_construct(_fields_set=set(self.model_fields_set), **values)

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


class BuildConfig(ProjectConfig):
    """A project config with the imagery and labels a dataset build needs (see :meth:`ProjectConfig.for_build`)."""

    imagery: ImageryConfig
    labels: LabelsConfig
