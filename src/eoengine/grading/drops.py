"""The main metric's loss from a reference model to a candidate, overall and per slice.

Both reports must come from the same prepared suite (the same chips, slices and blocks), so slice ``i`` of
one is slice ``i`` of the other. The drop is in the metric's own units (0.01 is one hundredth of mIoU):
reference minus candidate for scores, the rise for errors where lower is better (RMSE, MAE), and the growth
of ``|bias|``. The gate (a candidate against an alias's holder) and budgeted quantization (int8 against fp32)
both judge a candidate by its worst drop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from eoengine.grading.grade import GradeReport
from eoengine.grading.suite import LOWER_IS_BETTER


@dataclass
class SliceDrop:
    """One judged slice: the metric of the reference and of the candidate, and the drop (positive: worse)."""

    dimension: str
    slice: str
    pixels: int
    reference: float
    candidate: float
    drop: float

    @property
    def where(self) -> str:
        """The slice in words: ``overall`` or ``<dimension> '<slice>'``."""
        return "overall" if self.dimension == "overall" else f"{self.dimension} '{self.slice}'"


def metric_drop(metric: str, reference: float, candidate: float) -> float:
    """How much worse ``candidate`` is than ``reference`` on ``metric`` (negative: better).

    Args:
        metric: The metric's name (its direction comes from it).
        reference: The reference's value.
        candidate: The candidate's value.

    Returns:
        The drop in the metric's units.

    """
    if metric == "bias":
        return abs(candidate) - abs(reference)
    return candidate - reference if metric in LOWER_IS_BETTER else reference - candidate


def slice_drops(reference: GradeReport, candidate: GradeReport, metric: str, min_pixels: int) -> list[SliceDrop]:
    """The drop of ``metric`` overall and in every slice with at least ``min_pixels`` pixels, worst first.

    Args:
        reference: The reference's report.
        candidate: The candidate's report on the same prepared suite.
        metric: The judged metric.
        min_pixels: Smaller slices are not judged (their metric is noise); the overall score always is.

    Returns:
        The drops (slices where the metric is undefined for either model are left out).

    Raises:
        ValueError: The reports do not have the same slices.

    """
    out = []
    for ref, cand in zip([reference.overall, *reference.slices], [candidate.overall, *candidate.slices], strict=True):
        if metric not in ref.values:
            continue
        for i, label in enumerate(ref.labels):
            a, b = float(ref.values[metric][i]), float(cand.values[metric][i])
            judged = ref.dimension == "overall" or ref.pixels[i] >= min_pixels
            if judged and math.isfinite(a) and math.isfinite(b):
                out.append(SliceDrop(ref.dimension, label, int(ref.pixels[i]), a, b, metric_drop(metric, a, b)))
    return sorted(out, key=lambda d: d.drop, reverse=True)
