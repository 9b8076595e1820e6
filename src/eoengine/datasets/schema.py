"""A dataset's ``manifest.json`` as a typed model: :class:`DatasetManifest` and its format version.

Both writers (``dataset build`` and ``dataset import-tfrecord``) make a
:class:`DatasetManifest` and :meth:`~DatasetManifest.write` it; everything else reads it with
:meth:`~DatasetManifest.read` and attribute access. :class:`Artefact`, the base of the
manifest and of the model package's metadata (:mod:`eoengine.models.meta`), holds what both
files share:

- a file holds the keys its writer gave, and only those: an optional key the writer did not
  give (an import has no ``timesteps``) is read as its default and not written back, a key
  given as None is written as null; so a file read and written again holds what it held;
- unknown keys (from a newer or older eoengine) are kept as they are, unvalidated, and written
  back (``extra="allow"``): a copy never loses what another version recorded;
- a file of another format, or one whose content does not validate, is refused with an
  :class:`~eoengine.errors.EOError` naming the file, the format found or the field, and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eoengine.errors import EOError, NotFound
from eoengine.files import atomic_write_json

MANIFEST = "manifest.json"
DATASET_FIX = "pass a folder made by 'eoengine dataset build' or 'eoengine dataset import-tfrecord'"

FORMAT: Final = "eoengine-dataset/1"
"""The dataset format version: in every manifest and in the hash that versions a dataset."""


class Record(BaseModel):
    """A part of an artefact file: unknown keys are kept (see the module's docstring)."""

    model_config = ConfigDict(extra="allow")


class Artefact(Record):
    """An artefact file's content with its format version (base of the manifest and of package metadata)."""

    KIND: ClassVar[str]
    """What the file is, for messages (``dataset manifest``)."""

    format: str
    """The format version; a subclass's default is the one it reads."""

    def as_dict(self) -> dict[str, Any]:
        """The content as the file holds it: the format, then every key given (None as None) and every unknown key.

        Returns:
            A JSON-ready dict (what ``write`` writes and what a hash of the artefact covers).

        """
        return {"format": self.format, **self.model_dump(exclude_unset=True)}

    @classmethod
    def from_file(cls, file: Path, fix: str) -> Self:
        """Read and validate ``file``.

        Args:
            file: The JSON file.
            fix: What to do about a file that cannot be read as this artefact.

        Returns:
            The validated content.

        Raises:
            EOError: the file is not JSON, is of another format, or a field is missing or malformed.

        """
        try:
            data = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EOError(f"cannot read the {cls.KIND} {file}: {exc}", fix) from None
        return cls.from_json(data, str(file), fix)

    @classmethod
    def from_json(cls, data: Any, source: str, fix: str) -> Self:
        """Validate the parsed content of an artefact file.

        Args:
            data: The file's JSON content.
            source: Where it came from (a path or a URL), for messages.
            fix: What to do about content that is not this artefact.

        Returns:
            The validated content.

        Raises:
            EOError: the content is of another format, or a field is missing or malformed.

        """
        found, expected = data.get("format") if isinstance(data, dict) else None, cls.model_fields["format"].default
        if found != expected:
            raise EOError(f"{source} is not an {expected} {cls.KIND} (its format is {found!r})",
                          f"{fix}; or use the eoengine version that wrote it")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise EOError(f"{source} is not a valid {cls.KIND}: {field_problems(err)}", fix) from None


def field_problems(err: ValidationError, most: int = 3) -> str:
    """The first ``most`` problems of a validation error, each as ``field.path: message``."""
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'content'}: {e['msg'].lower()}" for e in err.errors()]
    more = f" (and {len(problems) - most} more)" if len(problems) > most else ""
    return "; ".join(problems[:most]) + more


class InputFile(Record):
    """An input file and its SHA-256 (``remote`` for a URL)."""

    path: str
    sha256: str


class BandInfo(Record):
    """One input band as recorded: name, common name (for indices), scaling, nodata override, group."""

    name: str
    common_name: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    group: str = "default"


class ClassInfo(Record):
    """One class: its position in the model's outputs, configured value, name and colour."""

    index: int
    value: int | str | None = None
    name: str
    color: str = "#808080"


class ChannelStats(Record):
    """Per-channel statistics: one value per channel in each list."""

    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]
    count: list[float]


class SplitStatistics(Record):
    """Statistics per split (the train split's normalise the inputs)."""

    train: ChannelStats


class ValueTarget(Record):
    """A regression target: its name and its train statistics (one channel)."""

    name: str
    statistics: ChannelStats


class Targets(Record):
    """What a dataset's chips can be trained on: classes, values, or both."""

    classes: bool = True
    values: ValueTarget | None = None


class GridInfo(Record):
    """A scene's pixel grid: CRS (WKT), affine transform (6 numbers) and size."""

    crs_wkt: str
    transform: list[float]
    width: int
    height: int


class SourceInfo(BandInfo):
    """A scene's band as it was read: the band (its scaling, nodata) and where, the file and its band index."""

    path: str
    index: int = 1


class SceneInfo(Record):
    """A scene chips were cut from: id, date, grid, every date's band sources in order, and its STAC properties."""

    id: str
    datetime: str | None = None
    grid: GridInfo
    sources: list[SourceInfo]
    properties: dict[str, Any] | None = None


class DatasetManifest(Artefact):
    """A dataset's ``manifest.json``: where it came from, its channels, classes, statistics and splits.

    ``config`` (the content-deciding part of the project config, or an import's options) and
    ``task`` are records of the config that made the dataset and are kept as the config
    wrote them. Imported datasets have no ``timesteps``, ``channel_groups``, ``task`` or
    ``targets``: they read as one date, no groups, no task, class targets only. Keys this
    version does not know are kept, unvalidated, and written back (``model_extra``).
    """

    KIND: ClassVar[str] = "dataset manifest"

    format: Literal["eoengine-dataset/1"] = FORMAT
    name: str
    version: str
    created: str
    config: dict[str, Any]
    inputs: list[InputFile]
    bands: list[str]
    band_specs: list[BandInfo]
    indices: list[str]
    index_constants: dict[str, float]
    channels: list[str]
    patch_size: int
    classes: list[ClassInfo]
    class_frequencies: dict[str, list[int]]
    statistics: SplitStatistics
    timesteps: int = 1
    channel_groups: dict[str, list[int]] | None = None
    task: dict[str, Any] | None = None
    targets: Targets = Field(default_factory=Targets)
    splits: dict[str, int]
    n_chips: int
    n_array_rows: int
    dropped: dict[str, int]
    scenes: list[SceneInfo]
    resampling: str = "bilinear"
    resolution: float | None = None

    @classmethod
    def read(cls, root: Path) -> DatasetManifest:
        """The manifest of a dataset folder.

        Args:
            root: the dataset folder.

        Returns:
            The manifest.

        Raises:
            NotFound: ``root`` is missing.
            EOError: ``root`` is a file, or a folder without a manifest; or the manifest is of another
                format or does not validate (naming the field).

        """
        if not (root / MANIFEST).is_file():
            why = "not found" if not root.exists() else "a file" if not root.is_dir() else f"no {MANIFEST} in it"
            raise (NotFound if why == "not found" else EOError)(f"{root} is not an eoengine dataset ({why})", DATASET_FIX)
        return cls.from_file(root / MANIFEST, DATASET_FIX)

    def write(self, root: Path) -> None:
        """Write ``root/manifest.json`` atomically (sorted keys, as every version has written it).

        Args:
            root: the dataset folder.

        """
        atomic_write_json(root / MANIFEST, self.as_dict())
