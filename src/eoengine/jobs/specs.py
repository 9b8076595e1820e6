"""Job specs: what each long command's flags say, as typed models that serialise to JSON.

Each spec has a ``kind`` (its discriminator) and one field per option of its command, with the
command's names, types and defaults (``--out`` is ``output``, as in the command's signature).
Options that only shape the printout (``--json``) stay with the CLI. Values are checked by the
stage functions when the spec runs, with the messages the command gives, so a spec and the
command with the same flags fail the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eoengine.datasets.location import DatasetLocation
from eoengine.errors import Invalid


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuildDatasetSpec(_Spec):
    """``eoengine dataset build``: build (or resume, or confirm up to date) a project's dataset."""

    kind: Literal["build"] = "build"
    config: Path = Field(description="Project config (YAML)")
    runner: str | None = Field(None, description="Beam runner (default: dataset.runner)")
    beam_args: list[str] = Field(default_factory=list, description="Extra flags passed to Beam unchanged")


class TrainSpec(_Spec):
    """``eoengine train``: train the configured model, tracked in MLflow."""

    kind: Literal["train"] = "train"
    config: Path = Field(description="Project config (YAML)")
    dataset: DatasetLocation | None = Field(None, description="Dataset folder or a served dataset's URL (default: the last build)")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI")
    resume: str | None = Field(None, description="Run id of an interrupted run to continue")


class SweepSpec(_Spec):
    """``eoengine sweep``: a hyperparameter search, each trial a tracked run."""

    kind: Literal["sweep"] = "sweep"
    config: Path = Field(description="Project config with a 'sweep' section")
    trials: int | None = Field(None, description="Total trials (default: sweep.trials)")
    name: str | None = Field(None, description="Study name (default: <project>-sweep)")


class EvaluateSpec(_Spec):
    """``eoengine evaluate``: score a model on a dataset split and write its report."""

    kind: Literal["evaluate"] = "evaluate"
    model: str = Field(description="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")
    dataset: DatasetLocation | None = Field(None, description="Dataset folder or a served dataset's URL (default: the model's)")
    split: str = Field("test", description="train, val or test")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (for run ids)")


class PredictSpec(_Spec):
    """``eoengine predict``: map one scene (``scene``) or many (``scenes``, optionally with Beam)."""

    kind: Literal["predict"] = "predict"
    model: str = Field(description="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")
    scene: list[str] | None = Field(None, description="One scene: band files in model order, one stack, or name=path pairs")
    output: Path | None = Field(None, description="Map COG to write (--out; for many scenes: their mosaic)")
    scenes: list[str] | None = Field(None, description="Many scenes (--scene): each a stack or comma-separated band files")
    out_dir: Path | None = Field(None, description="Many scenes: one COG per scene here")
    probabilities: Path | None = Field(None, description="Also write per-class probabilities (COG)")
    tile_size: int | None = Field(None, description="Tile size in pixels")
    overlap: int | None = Field(None, description="Tile overlap in pixels")
    batch_size: int | None = Field(None, description="Tiles per forward pass")
    class_codes: str | None = Field(None, description="Class map pixels: the classes' values or positions")
    engine: str = Field("auto", description="auto, torch, onnx or onnx-int8")
    beam: bool = Field(False, description="Many scenes as an Apache Beam pipeline")
    rows_per_element: int = Field(1, description="Beam: rows of regions per element")
    runner: str = Field("DirectRunner", description="Beam runner")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (for run ids)")


PROJECT_CATALOG = "catalog"
"""The project's imagery catalog, under its config's ``output_dir`` (the server writes it there)."""


class PredictAreaSpec(_Spec):
    """The model server's ``POST /predict/aoi`` as a job: map the newest scene over an area (one per date), or chosen ones.

    The scenes are searched in ``catalog`` (a static catalog folder), or ``stac_api``, or by
    default the project's imagery catalog (``<output_dir>/catalog`` of ``config``).
    """

    kind: Literal["predict-area"] = "predict-area"
    model: str = Field(description="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")
    output: Path = Field(description="Map COG to write")
    bbox: str | None = Field(None, description="The area: west,south,east,north (degrees)")
    aoi: str | None = Field(None, description="The area: a GeoJSON file or geometry")
    datetime: str | None = Field(None, description="Time window of the newest scene: RFC 3339 instant or start/end")
    datetimes: list[str] | None = Field(None, description="A multi-date model: one time window per date, oldest first")
    ids: list[str] | None = Field(None, description="The scenes to map (one per date of the model) instead of the newest")
    collections: list[str] | None = Field(None, description="Search only these collections")
    max_cloud: float | None = Field(None, ge=0, le=100, description="Largest eo:cloud_cover")
    config: Path | None = Field(None, description=f"Project config whose catalog (<output_dir>/{PROJECT_CATALOG}) is searched")
    catalog: Path | None = Field(None, description="A static STAC catalog folder to search instead")
    stac_api: str | None = Field(None, pattern=r"^https?://", description="A STAC API URL to search instead")
    cache: Path = Field(Path("eoengine-cache"), description="Cache folder for the fetched scenes")
    engine: str = Field("auto", description="auto, torch, onnx or onnx-int8")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (for run ids)")


class FetchSpec(_Spec):
    """``eoengine source fetch``: fetch chosen bands of STAC items into a cache of COGs."""

    kind: Literal["fetch"] = "fetch"
    items: Path = Field(description="ItemCollection JSON (from 'source search --out')")
    bands: str = Field(description="Comma-separated bands: asset keys, eo:bands names or common names")
    cache: Path = Field(Path("eoengine-cache"), description="Cache folder for the fetched COGs")
    bbox: str | None = Field(None, description="Clip to west,south,east,north (degrees)")
    aoi: str | None = Field(None, description="Clip to a GeoJSON file or geometry")
    crs: str | None = Field(None, description="Reproject to this CRS")
    resolution: float | None = Field(None, description="Pixel size in the target CRS's units")
    workers: int = Field(4, description="Items fetched at once")
    storage: list[str] | None = Field(None, description="GDAL options for object storage, KEY=VALUE or KEY=env:VAR")


class ExportSpec(_Spec):
    """``eoengine export``: export a model to ONNX, checked against PyTorch on real chips."""

    kind: Literal["export"] = "export"
    model: str = Field(description="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")
    format: str = Field("onnx", description="Export format (onnx)")
    output: Path | None = Field(None, description="Where to write (--out; default: the package's model.onnx)")
    tolerance: float = Field(1e-4, description="Largest logit difference to PyTorch accepted")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (for run ids)")


class QuantizeSpec(_Spec):
    """``eoengine quantize``: int8 variants with ONNX Runtime, compared on size, speed and scores."""

    kind: Literal["quantize"] = "quantize"
    model: str = Field(description="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")
    calibration_chips: int = Field(64, description="Train chips used to calibrate activations")
    max_drop: float | None = Field(None, description="Keep int8 only if no graded slice's main metric drops more "
                                   "(absolute, in the metric's units); leave sensitive nodes in fp32 until it holds")
    suite: Path | None = Field(None, description="Grading suite whose slices --max-drop judges (default suite)")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (for run ids)")


class GradeSpec(_Spec):
    """``eoengine grade``: grade a model (or compare several) on a suite and write the report cards."""

    kind: Literal["grade"] = "grade"
    models: list[str] = Field(min_length=1, description="Model package folders, MLflow run ids, runs:/<id> or "
                              "models:/NAME@ALIAS; several are graded side by side and compared")
    suite: Path | None = Field(None, description="Grading suite (YAML); default: the default suite")
    report_dir: Path | None = Field(None, description="Report folder (default: grade/ beside the first package)")
    baseline: str | None = Field(None, description="Also grade a baseline side by side: random_forest")
    strict: bool = Field(False, description="The command exits 3 when a threshold fails (a job's result says "
                         "passed: false either way)")
    engine: str = Field("auto", description="Inference engine graded: auto (as predict picks), torch, onnx, onnx-int8")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (for run ids and models:/)")


class PrelabelCell(_Spec):
    """A pixel window of the scene to pre-label (an annotation task's cell), with the key its result carries."""

    id: int = Field(description="Key of the window in the result (the annotation task's id)")
    row_off: int = Field(ge=0)
    col_off: int = Field(ge=0)
    height: int = Field(gt=0)
    width: int = Field(gt=0)


class PrelabelSpec(_Spec):
    """Pre-label windows of a scene: the model's class polygons and mean entropy per window, into a JSON file.

    The platform queues it for ``POST .../annotation/tasks/ID/prelabel`` (one cell, polygons) and
    ``POST .../annotation/sets/ID/rank`` (every open cell, entropy only), and stores the result
    file's content in the annotation set when the job has run.
    """

    kind: Literal["prelabel"] = "prelabel"
    model: str = Field(description="Model package folder, MLflow run id, runs:/<id> or models:/NAME/VERSION")
    scene: list[str] = Field(min_length=1, description="The scene's bands: name=path:N pairs (as predict's scene)")
    cells: list[PrelabelCell] = Field(min_length=1, max_length=10_000, description="The windows to predict")
    output: Path = Field(description="The result JSON file to write")
    item: str = Field("", description="The scene's catalog id, recorded in the result")
    polygons: bool = Field(True, description="Polygonise each window's class map (false: its entropy only)")
    engine: str = Field("auto", description="auto, torch, onnx or onnx-int8")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (for run ids and registry references)")


AnySpec = (BuildDatasetSpec | TrainSpec | SweepSpec | EvaluateSpec | PredictSpec | PredictAreaSpec | FetchSpec
           | ExportSpec | QuantizeSpec | GradeSpec | PrelabelSpec)
JobSpec = Annotated[AnySpec, Field(discriminator="kind")]
"""Any job spec, told apart by its ``kind`` (for models that store one)."""

SPECS: dict[str, type[AnySpec]] = {m.model_fields["kind"].default: m for m in get_args(AnySpec)}
"""The spec model of each kind."""


def parse_spec(data: dict[str, Any] | str) -> AnySpec:
    """A job spec from its JSON text or its decoded mapping.

    Args:
        data: The spec as JSON text (e.g. ``spec.model_dump_json()``) or as a dict.

    Returns:
        The spec of the model its ``kind`` names.

    Raises:
        Invalid: The text is not a JSON object, the kind is missing or unknown, or a field is
            unknown, missing or of the wrong type (each such field is named).

    """
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise Invalid(f"the job spec is not valid JSON: {exc}", 'write it as a JSON object, e.g. {"kind": "train", "config": "eoengine.yaml"}') from None
    if not isinstance(data, dict):
        raise Invalid(f"a job spec must be a JSON object, not {type(data).__name__}", 'e.g. {"kind": "train", "config": "eoengine.yaml"}')
    kind = data.get("kind")
    model = SPECS.get(kind) if isinstance(kind, str) else None
    if model is None:
        problem = f"unknown job kind {kind!r}" if "kind" in data else "the job spec has no 'kind'"
        raise Invalid(problem, f"set kind to one of: {', '.join(SPECS)}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise Invalid(f"bad {kind} job spec: {'; '.join(_problems(err))}",
                      f"fix the named field(s); a {kind} spec takes: {', '.join(model.model_fields)}") from None


def _problems(err: ValidationError) -> list[str]:
    """One ``field: problem`` line per error pydantic found."""
    lines = []
    for e in err.errors(include_url=False):
        field = ".".join(map(str, e["loc"])) or "(top level)"
        if e["type"] == "extra_forbidden":
            text = "unknown field"
        elif e["type"] == "missing":
            text = "required field is missing"
        else:
            shown = repr(e.get("input"))
            text = f"{shown if len(shown) <= 60 else shown[:57] + '...'} is not valid: {e['msg']}"
        lines.append(f"{field}: {text}")
    return lines
