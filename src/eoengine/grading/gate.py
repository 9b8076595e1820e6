"""A registry gate: a candidate takes an alias only if it passes the suite and loses no graded slice.

The candidate and the alias's current holder are graded on the same chips and blocks (one
:class:`~eoengine.grading.grade.Prepared`); the candidate passes when every threshold of the suite holds
and, on overall and on every slice with at least ``min_pixels`` pixels, its main metric is at most
``margin`` worse than the holder's (in the metric's units, see :mod:`eoengine.grading.drops`). The
verdict names every failed threshold and the slices that dropped, worst first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eoengine.grading.chips import model_predictor
from eoengine.grading.compare import check_same_inputs
from eoengine.grading.drops import SliceDrop, slice_drops
from eoengine.grading.grade import GradeReport, applicability, grade_with, model_info, prepare, region_names
from eoengine.grading.suite import Suite
from eoengine.models.package import ModelPackage


@dataclass
class GateVerdict:
    """Whether the candidate may take the alias, why not, and both reports."""

    passed: bool
    reasons: list[str]
    candidate: GradeReport
    holder: GradeReport | None
    drops: list[SliceDrop] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the reports' grades and overall scores, the reasons and the dropped slices)."""
        return {"passed": self.passed, "reasons": self.reasons, "drops": [dataclasses.asdict(d) for d in self.drops],
                "candidate": {"grade": self.candidate.grade, "overall": self.candidate.overall.row(0)},
                "holder": None if self.holder is None else {"grade": self.holder.grade,
                                                            "overall": self.holder.overall.row(0)}}


def gate(candidate: ModelPackage, holder: ModelPackage | None, suite: Suite, out_dir: Path, margin: float,
         source: str = "default suite") -> GateVerdict:
    """Grade a candidate (and the alias's holder) on a suite and decide whether it may take the alias.

    Args:
        candidate: The package to register.
        holder: The package the alias points at now, or None (no holder: only the suite decides).
        suite: The validated suite (its data: the candidate's dataset unless it names one).
        out_dir: Report folder: ``candidate/`` and ``holder/`` report cards.
        margin: The largest loss of the main metric allowed on any slice.
        source: The suite's name in messages.

    Returns:
        The verdict.

    Raises:
        ConfigError: The suite does not fit the candidate or the data.
        EOError: The holder does not take the graded data's channels or classes.

    """
    from eoengine.grading.report import write_report_card

    prep = prepare(candidate, suite, source)
    pkgs = [candidate] + ([holder] if holder is not None else [])
    check_same_inputs(prep, pkgs)
    reports = []
    for pkg, label in zip(pkgs, ("candidate", "holder"), strict=False):
        report = grade_with(prep, model_predictor(pkg, prep.graded), out_dir / label, model_info(pkg, prep),
                            applicability(pkg, prep.graded))
        report.applicability["graded_regions"] = region_names(report, suite)
        write_report_card(report, out_dir / label)
        reports.append(report)
    mine = reports[0]
    reasons = [f"fails '{o.requirement}' ({o.capability}: {o.shown()})" for o in mine.outcomes if not o.passed]
    drops: list[SliceDrop] = []
    if len(reports) > 1:
        metric = mine.metrics[0]
        drops = [d for d in slice_drops(reports[1], mine, metric, suite.slices.min_pixels) if d.drop > margin]
        reasons += [f"{metric} on {d.where} drops {d.drop:.3f} ({d.reference:.3f} → {d.candidate:.3f}), "
                    f"more than the margin {margin:g}" for d in drops]
    return GateVerdict(not reasons, reasons, mine, reports[1] if len(reports) > 1 else None, drops)
