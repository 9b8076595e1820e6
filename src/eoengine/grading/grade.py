"""Grade a model on a suite: slices with intervals, calibration, robustness, error maps, thresholds and a grade.

:func:`grade` decodes the graded split once, checks the suite against the model and the data (every problem
before any prediction), predicts the clean chips once, and scores everything from those arrays; the report
card (:mod:`eoengine.grading.report`) and the MLflow record (:mod:`eoengine.grading.record`) are written
from the returned :class:`GradeReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.datasets.remote import dataset_root
from eoengine.errors import NotFound
from eoengine.grading.check import Plan, plan_suite
from eoengine.grading.chips import GradedChips, Predictor, engine_predictor, load_graded
from eoengine.grading.errormap import write_error_maps
from eoengine.grading.robustness import Curve, robustness
from eoengine.grading.scoring import (
    Calibration,
    SliceScores,
    calibration,
    class_counts,
    resample_weights,
    score_cells,
    value_sums,
)
from eoengine.grading.suite import LOWER_IS_BETTER, Suite, Threshold
from eoengine.models.package import ModelPackage
from eoengine.progress import current_reporter

GRADES = ((1.0, "A"), (0.75, "B"), (0.5, "C"), (0.25, "D"), (0.0, "F"))
"""The letter for the share of thresholds passed: all A, at least 3/4 B, half C, a quarter D, else F."""


@dataclass
class Outcome:
    """One threshold's result: its capability, requirement, the measured value and the failing slices."""

    capability: str
    requirement: str
    passed: bool
    value: float | None
    failing: list[dict[str, Any]] = field(default_factory=list)
    is_drop: bool = False

    def shown(self) -> str:
        """The measured value as the report shows it: a relative drop as a percentage."""
        if self.value is None or self.value != self.value:
            return "–"
        return f"{self.value:.1%}" if self.is_drop else f"{self.value:.3f}"


@dataclass
class GradeReport:
    """Everything a grading measured (see :meth:`as_dict` for the JSON document)."""

    model: dict[str, Any]
    data: dict[str, Any]
    metrics: list[str]
    overall: SliceScores
    slices: list[SliceScores]
    weakest: list[dict[str, Any]]
    calibration: Calibration | None
    clean_sample: dict[str, float]
    curves: list[Curve]
    error_maps: dict[str, Path]
    outcomes: list[Outcome]
    grade: str
    applicability: dict[str, Any]
    cells: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    """The overall statistics per spatial block (for paired comparisons; not in the JSON document)."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON document: every number the report card shows."""
        return {
            "model": self.model, "data": self.data, "metrics": self.metrics, "grade": self.grade,
            "overall": self.overall.row(0),
            "slices": [s.as_dict() for s in self.slices], "weakest": self.weakest,
            "calibration": None if self.calibration is None else {
                "ece": self.calibration.ece, "ece_ci": self.calibration.ece_ci, "bins": self.calibration.bins},
            "robustness": {"clean_sample": self.clean_sample, "curves": [c.as_dict() for c in self.curves]},
            "error_maps": {k: str(v) for k, v in self.error_maps.items()},
            "thresholds": [o.__dict__ for o in self.outcomes], "applicability": self.applicability,
        }


PAIRED_SLICES = 64
"""Dimensions with at most this many slices keep their per-block statistics for paired comparisons."""


def _score(graded: GradedChips, plan: Plan, suite: Suite, blocks: np.ndarray, n_blocks: int
           ) -> tuple[SliceScores, list[SliceScores], np.ndarray]:
    u = suite.uncertainty
    weights = resample_weights(n_blocks, u.bootstrap, u.seed) if u.bootstrap and n_blocks > 1 else None
    truth, pred, keep = graded.truth, graded.clean.pred, graded.labelled

    def cells(keys: np.ndarray, n_keys: int) -> np.ndarray:
        if graded.is_values:
            return value_sums(truth, pred, keep, keys, n_keys, blocks, n_blocks)
        return class_counts(truth, pred, keep, keys, n_keys, blocks, n_blocks, graded.head.num_classes)

    def table(name: str, labels: list[str], keys: np.ndarray, per_class: bool = False) -> SliceScores:
        stats = cells(keys, max(1, len(labels)) if not per_class else 1)
        px, values, low, high = score_cells(stats, graded.is_values, plan.metrics, weights, u.confidence, per_class)
        kept = stats if not per_class and len(labels) <= PAIRED_SLICES else None  # block slices: n_blocks^2 cells
        return SliceScores(name, labels, px, values, low, high, kept)

    zero = np.zeros(truth.shape, dtype=np.int32)
    overall = table("overall", ["all"], zero)
    tables = [table("class", [c.name for c in graded.manifest.classes], zero, per_class=True)] if plan.per_class else []
    tables += [table(d.name, d.labels, d.keys) for d in plan.dimensions]
    return overall, tables, cells(zero, 1)


def weakest(tables: list[SliceScores], metric: str, min_pixels: int, count: int) -> list[dict[str, Any]]:
    """The slices (of every dimension) where ``metric`` is worst, among those with at least ``min_pixels``.

    A slice holding every graded pixel (the one scene, the one month) is the overall score and not listed.

    Args:
        tables: The slice tables.
        metric: The ranking metric (the main one).
        min_pixels: Smaller slices are not ranked (their metric is noise).
        count: How many to list.

    Returns:
        Rows with the dimension, slice, pixels, value and interval, worst first.

    """
    rows: list[dict[str, Any]] = []
    for t in tables:
        if metric not in t.values:
            continue
        total = t.pixels.sum() if t.dimension != "class" else -1
        for i, label in enumerate(t.labels):
            if min_pixels <= t.pixels[i] != total:
                ci = [float(t.low[metric][i]), float(t.high[metric][i])] if metric in t.low else None
                rows.append({"dimension": t.dimension, "slice": label, "pixels": int(t.pixels[i]),
                             "value": float(t.values[metric][i]), "ci": ci})
    rows.sort(key=lambda r: r["value"], reverse=metric in LOWER_IS_BETTER)
    return rows[:count]


def _within(t: Threshold, v: float) -> bool:
    return (t.min is None or v >= t.min) and (t.max is None or v <= t.max)


def judge(t: Threshold, overall: SliceScores, tables: list[SliceScores], cal: Calibration | None,
          curves: list[Curve], min_pixels: int) -> Outcome:
    """Whether a threshold holds, with the value measured (the worst slice's for ``every``).

    Args:
        t: The threshold (checked by the suite against what it measures).
        overall: The overall scores.
        tables: The slice tables.
        cal: The calibration (class models).
        curves: The robustness curves.
        min_pixels: Slices smaller than this are not judged.

    Returns:
        The outcome.

    """
    if t.corruption:
        curve = next(c for c in curves if c.corruption == t.corruption)
        d = curve.drops[t.metric][curve.severities.index(t.severity or 0)]
        return Outcome(t.capability, t.describe(), d <= (t.max_drop or 0.0), d, is_drop=True)
    if t.metric == "ece":
        v = cal.ece if cal else float("nan")
        return Outcome(t.capability, t.describe(), _within(t, v), v)
    if t.every is None:
        v = float(overall.values[t.metric][0])
        return Outcome(t.capability, t.describe(), _within(t, v), v)
    table = next(x for x in tables if x.dimension == t.every)
    judged = [(lab, float(table.values[t.metric][i]), int(table.pixels[i])) for i, lab in enumerate(table.labels)
              if table.pixels[i] >= min_pixels]
    failing = [{"slice": lab, "value": v, "pixels": n} for lab, v, n in judged if not _within(t, v)]
    worst = min((v for _, v, _ in judged), default=float("nan")) if t.min is not None else \
        max((v for _, v, _ in judged), default=float("nan"))
    return Outcome(t.capability, t.describe(), not failing and bool(judged), worst, failing)


def letter(outcomes: list[Outcome]) -> str:
    """The overall grade from the share of thresholds passed (see :data:`GRADES`); ``-`` without thresholds."""
    if not outcomes:
        return "-"
    share = sum(o.passed for o in outcomes) / len(outcomes)
    return next(g for bound, g in GRADES if share >= bound)


def applicability(pkg: ModelPackage, graded: GradedChips) -> dict[str, Any]:
    """What the model is known to fit: bands, resolution, training footprint and dates, classes, graded areas.

    Args:
        pkg: The model package.
        graded: The graded chips.

    Returns:
        The record (JSON-ready; ``graded_regions`` is filled in from the report), also written as registry tags.

    """
    import geopandas as gpd

    from eoengine.datasets.store import INDEX

    root = dataset_root(pkg.meta.dataset.path) if pkg.meta.dataset.path else None
    train = None
    if root is not None and (root / INDEX).exists():
        index = gpd.read_parquet(root / INDEX)
        train = index.loc[index["split"] == "train"]
    dates = sorted(d for d in (train["datetime"] if train is not None else []) if d)
    return {
        "bands": list(pkg.meta.bands), "timesteps": pkg.meta.timesteps, "resolution": graded.manifest.resolution,
        "classes": [c.name for c in pkg.meta.classes],
        "training_footprint": [float(v) for v in train.total_bounds] if train is not None and len(train) else None,
        "training_dates": [dates[0], dates[-1]] if dates else None,
        "graded_footprint": [float(v) for v in graded.rows.total_bounds],
        "graded_regions": [],
    }


@dataclass
class Prepared:
    """A suite checked against the decoded chips: what every model graded on it shares."""

    suite: Suite
    graded: GradedChips
    plan: Plan
    root: Path
    blocks: np.ndarray
    n_blocks: int


def prepare(pkg: ModelPackage, suite: Suite, source: str = "default suite") -> Prepared:
    """Decode the suite's split for a model and check the suite against them, before any prediction.

    Args:
        pkg: The model package (its dataset, channels and head).
        suite: The validated suite (see :func:`eoengine.grading.suite.load_suite`).
        source: The suite's name in messages.

    Returns:
        The checked plan with the decoded chips and their spatial blocks.

    Raises:
        NotFound: The suite's (or the model's) dataset does not exist.
        ConfigError: The suite does not fit the model or the data (every problem).

    """
    root = dataset_root(suite.resolve(suite.data.dataset) if suite.data.dataset else pkg.meta.dataset.path)
    if not (root / "manifest.json").exists():
        raise NotFound(f"dataset not found: {root}", "set data.dataset in the suite to a dataset folder")
    graded = load_graded(pkg, root, suite.data.split)
    plan = plan_suite(suite, graded, source)
    blocks = np.broadcast_to(plan.block.keys[:, 0, 0].astype(np.int64)[:, None, None], graded.truth.shape)
    return Prepared(suite, graded, plan, root, blocks, max(1, len(plan.block.labels)))


def _calibration(prep: Prepared) -> Calibration | None:
    graded, u = prep.graded, prep.suite.uncertainty
    if graded.is_values or graded.clean.confidence is None:
        return None
    keep = graded.labelled
    w = resample_weights(prep.n_blocks, u.bootstrap, u.seed + 1) if u.bootstrap and prep.n_blocks > 1 else None
    return calibration(graded.clean.confidence[keep], graded.clean.pred[keep] == graded.truth[keep],
                       prep.blocks[keep], prep.n_blocks, u.calibration_bins, w, u.confidence)


def grade_with(prep: Prepared, predict: Predictor, out_dir: Path, model: dict[str, Any],
               fits: dict[str, Any]) -> GradeReport:
    """Grade one predictor (a model, or a baseline) on a prepared suite.

    Args:
        prep: The checked suite and decoded chips (shared by every model compared on them).
        predict: The predictor of raw chips.
        out_dir: Where the error maps go.
        model: What the report says of the model (name, task, run).
        fits: Its applicability record (see :func:`applicability`).

    Returns:
        The report.

    """
    suite, graded, plan = prep.suite, prep.graded, prep.plan
    steps = current_reporter().task(f"grading {model['name']}", 3 + len(plan.corruptions))
    graded.predictions = predict(graded.raw)
    overall, tables, cells = _score(graded, plan, suite, prep.blocks, prep.n_blocks)
    steps.advance()
    cal = _calibration(prep)
    clean, curves = robustness(predict, graded, plan.corruptions, plan.metrics, suite.robustness.max_chips,
                               suite.robustness.seed) if plan.corruptions else ({}, [])
    steps.advance(1 + len(plan.corruptions))
    maps = write_error_maps(graded, out_dir) if suite.error_maps else {}
    steps.advance()
    steps.close()
    outcomes = [judge(t, overall, tables, cal, curves, suite.slices.min_pixels) for t in plan.thresholds]
    data = {"dataset": str(prep.root), "name": graded.manifest.name, "version": graded.manifest.version,
            "split": suite.data.split, "chips": len(graded.truth), "labelled_pixels": int(graded.labelled.sum()),
            "blocks": prep.n_blocks, "block_size": suite.slices.block_size or 4 * graded.manifest.patch_size}
    return GradeReport(
        model=model, data=data, metrics=plan.metrics, overall=overall, slices=tables,
        weakest=weakest(tables, plan.metrics[0], suite.slices.min_pixels, suite.slices.weakest),
        calibration=cal, clean_sample=clean, curves=curves, error_maps=maps, outcomes=outcomes,
        grade=letter(outcomes), applicability=fits, cells=cells)


def model_info(pkg: ModelPackage, prep: Prepared) -> dict[str, Any]:
    """What a report says of a model package: architecture, task, graded head, run and path."""
    return {"name": pkg.meta.model, "task": pkg.meta.task, "head": prep.graded.head.name, "run_id": pkg.meta.run_id,
            "path": str(pkg.path)}


def grade(pkg: ModelPackage, suite: Suite, out_dir: Path, source: str = "default suite",
          engine: str = "auto") -> GradeReport:
    """Grade a model on a suite; error maps go to ``out_dir`` (the report card is written by the caller).

    Args:
        pkg: The model package.
        suite: The validated suite (see :func:`eoengine.grading.suite.load_suite`).
        out_dir: Where the error maps go.
        source: The suite's name in messages.
        engine: The inference engine graded (see :func:`eoengine.grading.chips.engine_predictor`); the
            report's ``model.engine`` says which one ran.

    Returns:
        The report.

    Raises:
        NotFound: The suite's (or the model's) dataset does not exist.
        ConfigError: The suite does not fit the model or the data (every problem, before any prediction).

    """
    prep = prepare(pkg, suite, source)
    name, predictor = engine_predictor(pkg, prep.graded, engine)
    report = grade_with(prep, predictor, out_dir, model_info(pkg, prep) | {"engine": name},
                        applicability(pkg, prep.graded))
    report.applicability["graded_regions"] = region_names(report, suite)
    return report


def region_names(report: GradeReport, suite: Suite) -> list[str]:
    """The regions of the suite's region slices that hold graded pixels."""
    names = {r.name for r in suite.slices.regions}
    return sorted({lab for t in report.slices if t.dimension in names
                   for lab, n in zip(t.labels, t.pixels, strict=True) if n > 0})
