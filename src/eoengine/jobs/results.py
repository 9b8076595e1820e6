"""Job results: what each long command reports when it is done, as typed models that serialise to JSON.

A result names its outputs (the dataset, run, package, maps, files written) and the scores
the command prints; the artefacts themselves stay where the stages wrote them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)


class BuildDatasetResult(_Result):
    """A built dataset: its folder, its version, and whether it was already up to date."""

    kind: Literal["build"] = "build"
    path: Path
    version: str
    up_to_date: bool


class TrainResult(_Result):
    """A training run: its id, its package and its scores per split (``test`` only with a test split).

    ``primary`` is False in the extra processes of a multi-process (DDP) run: rank 0 reports.
    """

    kind: Literal["train"] = "train"
    run_id: str
    best_epoch: int = Field(description="Counted from 0")
    scores: dict[str, dict[str, Any]] = Field(description="Per split (val, test): the run's final scores")
    model_path: Path
    tracking_uri: str
    primary: bool = True


class SweepTrial(_Result):
    """One trial of a sweep: its state, its value of the sweep's metric (None unless complete), parameters and run."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run_id: str = Field(description="Empty when the trial failed before its run started")


class SweepResult(_Result):
    """A hyperparameter search: its study and metric, the best trial and every trial."""

    kind: Literal["sweep"] = "sweep"
    study: str
    metric: str
    best: SweepTrial
    trials: list[SweepTrial]


class EvaluateResult(_Result):
    """Scores of a split (per head in ``by_head``), the model's class names and the report's path."""

    kind: Literal["evaluate"] = "evaluate"
    split: str
    scores: dict[str, Any]
    by_head: dict[str, dict[str, Any]]
    head_types: dict[str, str]
    class_names: list[str]
    report: Path


class PredictResult(_Result):
    """The maps written (one per scene, or their mosaic) and the probabilities COG, if asked for."""

    kind: Literal["predict"] = "predict"
    maps: list[Path]
    probabilities: Path | None = None


class PredictAreaResult(_Result):
    """An area's map and the scenes (catalog items) it was predicted from, in date order."""

    kind: Literal["predict-area"] = "predict-area"
    map: Path
    scene_ids: list[str]
    scenes: list[Path] = Field(description="The fetched stacks of the scenes")
    datetimes: list[str | None]


class FetchedItem(_Result):
    """One item of a fetch: its stack (None when skipped, with the reason) and whether it was cached."""

    item_id: str
    path: Path | None
    cached: bool
    sha256: str = ""
    skipped: str = ""


class FetchResult(_Result):
    """Every item fetched, cached or skipped."""

    kind: Literal["fetch"] = "fetch"
    items: list[FetchedItem]


class OnnxCheck(_Result):
    """How far ONNX Runtime is from PyTorch on real chips."""

    chips: int
    sizes_checked: list[int]
    max_abs_diff: float
    tolerance: float
    class_agreement: float


class ExportResult(_Result):
    """The ONNX graph: exported and checked (``check``), or a classical package's own (``copied_to``)."""

    kind: Literal["export"] = "export"
    path: Path
    model: str
    check: OnnxCheck | None = None
    copied_to: Path | None = None


class QuantizeResult(_Result):
    """The quantization report of a package (per variant: size, speed, scores), its main metric and files."""

    kind: Literal["quantize"] = "quantize"
    package: Path
    metric: str
    report: dict[str, dict[str, Any]]
    files: list[Path] = Field(description="The int8 models written: static, then dynamic (with --max-drop: the "
                              "kept static model, or none when fp32 is kept)")
    report_file: Path
    budget: dict[str, Any] | None = Field(None, description="With --max-drop: the attempts and the decision "
                                          "(see eoengine.grading.quantize.BudgetResult.as_dict)")


class GradedModel(_Result):
    """One graded model: its grade, thresholds, overall scores and where its report card is."""

    label: str
    package: Path | None = Field(description="The package folder (None for a baseline)")
    grade: str
    outcomes: list[dict[str, Any]] = Field(description="Per threshold: capability, requirement, measured, passed")
    overall: dict[str, list[float | None]] = Field(description="Per metric: value, interval low, interval high")
    ece: float | None
    weakest: list[dict[str, Any]]
    report_card: Path
    document: Path = Field(description="grade.json: every number")
    tagged: list[str] = Field(description="Registered model versions tagged with the grade (name/version)")

    @property
    def passed(self) -> bool:
        """Whether every threshold holds."""
        return all(o["passed"] for o in self.outcomes)


class GradeResult(_Result):
    """The graded models (the first is the one compared against), and the comparison when several were graded."""

    kind: Literal["grade"] = "grade"
    metric: str
    models: list[GradedModel]
    comparison: Path | None = Field(None, description="comparison.html, when several models were graded")
    pairs: list[dict[str, Any]] = Field(default_factory=list, description="Paired tests of each model vs the first")

    @property
    def passed(self) -> bool:
        """Whether every threshold of every graded model holds."""
        return all(m.passed for m in self.models)


class PrelabelResult(_Result):
    """The result file of a pre-labelling (its windows' entropies and polygons), and how many of each it holds."""

    kind: Literal["prelabel"] = "prelabel"
    output: Path
    model: str
    item: str
    cells: int
    features: int


AnyResult = (BuildDatasetResult | TrainResult | SweepResult | EvaluateResult | PredictResult | PredictAreaResult
             | FetchResult | ExportResult | QuantizeResult | GradeResult | PrelabelResult)
JobResult = Annotated[AnyResult, Field(discriminator="kind")]
"""Any job result, told apart by its ``kind`` (read one back with ``TypeAdapter(JobResult)``)."""
