"""Quantization within a budget: keep the int8 model only if no graded slice drops more than ``max_drop``.

:func:`quantize_within` grades the fp32 ONNX graph and a static int8 graph on a suite's slices (the
robustness corruptions, thresholds and error maps of the suite are left out: only the slices count) and
takes, per slice, the drop of the suite's main metric from fp32 to int8 (in the metric's own units, see
:mod:`eoengine.grading.drops`). Slices with fewer than ``slices.min_pixels`` labelled pixels are not judged; the overall score is. While
the worst drop exceeds ``max_drop`` the next most sensitive weighted node (see
:meth:`eoengine.deploy.int8.StaticInt8.sensitivity`) is left in fp32 and the graph requantized. The first
graph within the budget becomes the package's ``model.int8.onnx`` (the nodes it leaves in fp32 recorded in
its metadata and in ``quantization-budget.json``); once half the weighted nodes are excluded without
meeting the budget, excluding more stops paying: the package keeps fp32 and has no int8 graph.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eoengine.deploy.compress import INT8_STATIC
from eoengine.deploy.int8 import NodeSensitivity, StaticInt8
from eoengine.errors import Invalid
from eoengine.grading.chips import GradedChips, Predictor, model_predictor
from eoengine.grading.drops import SliceDrop, slice_drops
from eoengine.grading.grade import GradeReport, Prepared, grade_with, model_info, prepare
from eoengine.grading.suite import Suite
from eoengine.models.classical import refuse_network_only
from eoengine.models.onnx import OnnxModule, session
from eoengine.models.package import ModelPackage

BUDGET_REPORT = "quantization-budget.json"
"""The package's record of a budgeted quantization (see :meth:`BudgetResult.as_dict`)."""


@dataclass
class Attempt:
    """One int8 graph tried: the nodes it leaves in fp32, every judged slice's drop (worst first), its size."""

    excluded: list[str]
    drops: list[SliceDrop]
    size_mb: float

    @property
    def worst(self) -> SliceDrop:
        """The slice with the largest drop."""
        return self.drops[0]


@dataclass
class BudgetResult:
    """What :func:`quantize_within` tried and kept (``kept`` is ``int8`` or ``fp32``)."""

    metric: str
    max_drop: float
    split: str
    kept: str
    file: Path | None
    fp32_size_mb: float
    attempts: list[Attempt]
    ranking: list[NodeSensitivity] = field(default_factory=list)
    weighted_nodes: int = 0
    removed_int8: bool = False
    """Whether an older ``model.int8.onnx`` was removed because fp32 is kept."""

    @property
    def best(self) -> Attempt:
        """The attempt with the smallest worst drop (the kept one, when int8 is kept)."""
        return self.attempts[-1] if self.kept == "int8" else min(self.attempts, key=lambda a: a.worst.drop)

    @property
    def verdict(self) -> str:
        """The decision in one sentence."""
        w = self.best.worst
        where = w.where
        if self.kept == "int8":
            left = len(self.best.excluded)
            return (f"int8 kept: the worst {self.metric} drop, {w.drop:.4f} on {where}, is within --max-drop "
                    f"{self.max_drop:g} with {left or 'no'} node{'' if left == 1 else 's'} left in fp32")
        return (f"int8 drops {w.drop:.4f} {self.metric} on {where} beyond --max-drop {self.max_drop:g} (the best of "
                f"{len(self.attempts)} attempt(s), up to {len(self.attempts[-1].excluded)} of {self.weighted_nodes} "
                "weighted nodes left in fp32); keeping fp32")

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (also written to the package as :data:`BUDGET_REPORT`)."""
        return {
            "metric": self.metric, "max_drop": self.max_drop, "split": self.split, "graded_on": "slices",
            "robustness": "off", "kept": self.kept, "file": str(self.file) if self.file else None,
            "excluded_nodes": self.best.excluded if self.kept == "int8" else None, "verdict": self.verdict,
            "fp32_size_mb": self.fp32_size_mb, "removed_int8": self.removed_int8,
            "weighted_nodes": self.weighted_nodes, "ranking": [r.as_dict() for r in self.ranking],
            "attempts": [{"excluded": a.excluded, "size_mb": a.size_mb, "worst": dataclasses.asdict(a.worst) | {"where": a.worst.where},
                          "drops": [dataclasses.asdict(d) for d in a.drops]} for a in self.attempts],
        }


def slices_only(prep: Prepared) -> Prepared:
    """The prepared suite without corruptions, thresholds, error maps and intervals: the slices' scores alone.

    Args:
        prep: A suite checked in full by :func:`eoengine.grading.grade.prepare`.

    Returns:
        The same chips and slices, graded without the rest.

    """
    s = prep.suite
    suite = s.model_copy(update={"error_maps": False, "uncertainty": s.uncertainty.model_copy(update={"bootstrap": 0})})
    plan = dataclasses.replace(prep.plan, corruptions=[], thresholds=[])
    return dataclasses.replace(prep, suite=suite, plan=plan)


def onnx_predictor(pkg: ModelPackage, graded: GradedChips, graph: Path) -> Predictor:
    """An ONNX graph of the package (fp32 or int8) as a predictor of raw chips, normalised as training did.

    Args:
        pkg: The model package (its heads and metadata).
        graded: The decoded chips.
        graph: The ``.onnx`` file.

    Returns:
        The predictor.

    """
    return model_predictor(dataclasses.replace(pkg, model=OnnxModule(session(graph))), graded)


def _checked(max_drop: float, max_excluded: int | None) -> None:
    if not max_drop >= 0 or not math.isfinite(max_drop):
        raise Invalid(f"--max-drop must be a number of 0 or more, got {max_drop:g}",
                      "give the largest drop of the main metric a slice may take, in its units (e.g. 0.01 of mIoU)")
    if max_excluded is not None and max_excluded < 0:
        raise Invalid(f"max_excluded must be 0 or more, got {max_excluded}", "give how many nodes may stay in fp32")


def quantize_within(pkg: ModelPackage, suite: Suite, max_drop: float, source: str = "default suite",
                    calibration_chips: int = 64, max_excluded: int | None = None) -> BudgetResult:
    """Quantize to static int8, leaving the most sensitive nodes in fp32 until no graded slice drops beyond budget.

    Args:
        pkg: The model package (a network).
        suite: The grading suite (checked in full; only its slices are graded, see the module docstring).
        max_drop: The largest drop of the main metric a slice may take (absolute, in the metric's units).
        source: The suite's name in messages.
        calibration_chips: Train chips the activations are calibrated on.
        max_excluded: The most nodes left in fp32 before keeping fp32 (default: half the weighted nodes).

    Returns:
        The attempts and the decision; the package holds ``model.int8.onnx`` only if int8 is kept, and
        :data:`BUDGET_REPORT` either way.

    Raises:
        Invalid: A negative ``max_drop`` or ``max_excluded``.
        EOError: A classical package, or a missing dataset.
        ConfigError: The suite does not fit the model or the data (every problem, before anything is written).

    """
    _checked(max_drop, max_excluded)
    refuse_network_only(pkg.meta, "quantize")
    full = prepare(pkg, suite, source)
    with StaticInt8(pkg, calibration_chips) as q, tempfile.TemporaryDirectory(prefix="eoengine-budget-") as tmp:
        result = _search(pkg, slices_only(full), q, Path(tmp), full.plan.metrics[0], max_drop, max_excluded)
    if result.kept == "fp32" and (pkg.path / INT8_STATIC).exists():
        (pkg.path / INT8_STATIC).unlink()
        result.removed_int8 = True
    (pkg.path / BUDGET_REPORT).write_text(json.dumps(result.as_dict(), indent=2))
    return result


def _search(pkg: ModelPackage, prep: Prepared, q: StaticInt8, tmp: Path, metric: str, max_drop: float,
            max_excluded: int | None) -> BudgetResult:
    """Grade fp32, then int8 with 0, 1, 2 ... of the most sensitive nodes left in fp32, until one is within budget."""
    info = model_info(pkg, prep)

    def graded(graph: Path, name: str) -> GradeReport:
        return grade_with(prep, onnx_predictor(pkg, prep.graded, graph), tmp, info | {"name": name}, {})

    fp32 = graded(q.fp32, "fp32")
    nodes = len(q.nodes)
    result = BudgetResult(metric, max_drop, prep.suite.data.split, "fp32", None, q.fp32.stat().st_size / 2**20, [],
                          weighted_nodes=nodes)
    for count in range(1 + (nodes // 2 if max_excluded is None else min(max_excluded, nodes))):
        if count and not result.ranking:
            result.ranking = q.sensitivity()
        excluded = [r.node for r in result.ranking[:count]]
        graph = q.write(tmp / "int8.onnx", excluded)
        drops = slice_drops(fp32, graded(graph, "int8"), metric, prep.suite.slices.min_pixels)
        result.attempts.append(Attempt(excluded, drops, graph.stat().st_size / 2**20))
        if drops[0].drop <= max_drop:
            result.kept, result.file = "int8", Path(shutil.move(graph, pkg.path / INT8_STATIC))
            break
    return result
