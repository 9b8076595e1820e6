"""A model package's ``eoengine-model.json`` as a typed model: :class:`PackageMeta` and its format version.

The training run (:func:`eoengine.training.finish.package_meta`) and ``prune`` make a
:class:`PackageMeta`; :func:`eoengine.models.package.write_package` adds what the written
files say (``size_multiple``, ``onnx``, ``estimator``) and writes it; everything else reads
``ModelPackage.meta``. Like the dataset manifest (:mod:`eoengine.datasets.schema`), a file
holds the keys its writer gave and keeps unknown keys on a round trip; another format, or
a missing or malformed field, is an :class:`~eoengine.errors.EOError` naming it.

Packages from before some fields were recorded still load: without ``heads`` a package has
one segmentation head over its classes, without ``task`` it is a segmentation model,
without ``timesteps`` one date, without ``stack_indexes`` no recorded stack layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import Field

from eoengine.datasets.schema import Artefact, BandInfo, ClassInfo, Record
from eoengine.errors import EOError
from eoengine.files import atomic_write_text

FORMAT: Final = "eoengine-model/1"
"""The model-package format version."""
META = "eoengine-model.json"
"""The package folder's metadata file."""
PACKAGE_FIX = "pass a model folder written by 'eoengine train', or an MLflow run id"


class HeadInfo(Record):
    """One output head as recorded: name, type, the model's output channels [start, stop) and value scaling."""

    name: str
    type: str
    channels: list[int]
    value_mean: float = 0.0
    value_std: float = 1.0


class Normalization(Record):
    """Per-channel mean and std the inputs are normalised with (the train split's)."""

    mean: list[float]
    std: list[float]


class DatasetRef(Record):
    """The dataset a model was trained on (empty strings: not recorded)."""

    name: str = ""
    version: str = ""
    path: str = ""


class Pruning(Record):
    """How a pruned package was made from its source package."""

    amount: float
    method: str
    finetune_epochs: int
    source: str


class PackageMeta(Artefact):
    """A model package's description of itself: architecture, inputs, outputs, provenance.

    ``prediction`` is the run's prediction settings as its config wrote them (validated
    as a :class:`~eoengine.config.schema.PredictionConfig` where a prediction starts, so a
    package with settings this version rejects still loads). Keys this version does not
    know are kept, unvalidated, and written back (``model_extra``), so ``prune`` copies them.
    """

    KIND: ClassVar[str] = "model package description"

    format: Literal["eoengine-model/1"] = FORMAT
    model: str
    model_kwargs: dict[str, Any]
    task: str = "segmentation"
    heads: list[HeadInfo] | None = None
    output_channels: int | None = None
    target_name: str | None = None
    timesteps: int = 1
    bands: list[str]
    band_specs: list[BandInfo]
    stack_indexes: list[int] | None = None
    indices: list[str]
    index_constants: dict[str, float]
    channels: list[str]
    normalization: Normalization
    patch_size: int
    classes: list[ClassInfo]
    resampling: str = "bilinear"
    dataset: DatasetRef = Field(default_factory=DatasetRef)
    run_id: str | None = None
    tracking_uri: str | None = None
    best_epoch: int | None = None
    created: str | None = None
    prediction: dict[str, Any] = Field(default_factory=dict)
    size_multiple: int = 1
    onnx: str | None = None
    estimator: str | None = None
    pruning: Pruning | None = None

    @property
    def outputs(self) -> int:
        """The model's output channels (packages from before heads: one per class)."""
        return self.output_channels if self.output_channels is not None else len(self.classes)

    @classmethod
    def read(cls, path: Path) -> PackageMeta:
        """The metadata of a package folder.

        Args:
            path: the package folder.

        Returns:
            The metadata.

        Raises:
            EOError: the folder has no ``eoengine-model.json``, or it is of another format or does
                not validate (naming the field).

        """
        if not (path / META).exists():
            raise EOError(f"{path} is not an eoengine model package (no {META})", PACKAGE_FIX)
        return cls.from_file(path / META, PACKAGE_FIX)

    def write(self, path: Path) -> None:
        """Write ``path/eoengine-model.json`` atomically (keys in the model's order, unknown keys last).

        Args:
            path: the package folder.

        """
        atomic_write_text(path / META, json.dumps(self.as_dict(), indent=2, default=str))
