"""A suite checked against the model and its data before anything is predicted: every problem, by field.

:func:`plan_suite` turns a validated :class:`~eoengine.grading.suite.Suite` into what grading runs (the
metrics, the slice dimensions with their keys already computed, the corruption runs) and raises one
:class:`~eoengine.errors.ConfigError` listing every problem it found: metrics the task does not have, slices
that are unknown or hold no labelled pixel, files that are missing or unreadable, corruptions that are
unknown or do not fit the model (e.g. a date shift for a one-date model), thresholds on what the suite does
not measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from eoengine.errors import ConfigError, EOError
from eoengine.grading import corruptions
from eoengine.grading.chips import GradedChips
from eoengine.grading.slices import SliceKeys, builtin_slices
from eoengine.grading.suite import (
    CALIBRATION_METRICS,
    CHIP_SLICES,
    CLASS_METRICS,
    DEFAULT_CORRUPTIONS,
    SLICES,
    VALUE_METRICS,
    CorruptionRun,
    Suite,
    Threshold,
)
from eoengine.grading.zones import property_slices, region_slices, strata_slices

DEFAULT_METRICS = {"class": ["miou", "accuracy", "f1", "kappa"], "value": ["rmse", "mae", "bias", "r2"]}


@dataclass
class Plan:
    """What a checked suite grades: metrics (main first), slice dimensions, corruption runs, thresholds."""

    metrics: list[str]
    per_class: bool
    dimensions: list[SliceKeys]
    block: SliceKeys
    corruptions: list[CorruptionRun]
    thresholds: list[Threshold]


def _attempt(problems: list[str], where: str, fn: Callable[[], SliceKeys]) -> SliceKeys | None:
    try:
        return fn()
    except EOError as exc:
        problems.append(f"{where}: {exc.problem} ({exc.fix})")
        return None


def _builtin(graded: GradedChips, name: str, block: int, bins: int) -> SliceKeys:
    return builtin_slices(graded, [name], block, bins)[0]


def _dimensions(suite: Suite, graded: GradedChips, problems: list[str]) -> tuple[list[SliceKeys], bool, SliceKeys]:
    s = suite.slices
    size = graded.manifest.patch_size
    block = s.block_size or 4 * size
    asked = s.by if s.by is not None else [n for n in SLICES if not (n == "class" and graded.is_values)]
    unknown = [n for n in asked if n not in SLICES]
    if unknown:
        problems.append(f"slices.by: unknown slice(s) {', '.join(unknown)} (use: {', '.join(SLICES)}; regions, strata "
                        "and properties have their own keys)")
    if graded.is_values and "class" in asked:
        problems.append("slices.by: 'class' slices need a class model, this one predicts values (drop 'class')")
    chip = [n for n in asked if n in CHIP_SLICES]
    if s.by is None and "ndvi_range" in chip:  # the default suite skips what the bands cannot give
        common = {b.common_name for b in graded.manifest.band_specs}
        if "NDVI" not in graded.manifest.indices and not {"red", "nir"} <= common:
            chip.remove("ndvi_range")
    makers: list[tuple[str, Callable[[], SliceKeys]]] = [
        ("slices.by", partial(_builtin, graded, name, block, s.bins)) for name in chip]
    makers += [(f"slices.regions[{i}]", partial(region_slices, graded, suite.resolve(r.path), r.column, r.name))
               for i, r in enumerate(s.regions)]
    makers += [(f"slices.strata[{i}]", partial(strata_slices, graded, suite.resolve(t.path), t.band, t.name))
               for i, t in enumerate(s.strata)]
    makers += [(f"slices.properties[{i}]", partial(property_slices, graded, prop, s.bins))
               for i, prop in enumerate(s.properties)]
    dims = [d for where, make in makers if (d := _attempt(problems, where, make)) is not None]
    labelled = graded.labelled
    for d in dims:
        if not ((d.keys >= 0) & labelled).any():
            problems.append(f"slices: '{d.name}' has no labelled pixel in the graded split (check that its file covers "
                            "the graded scenes and their CRS)")
    names = [d.name for d in dims]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"slices: dimension name(s) {', '.join(dupes)} used twice (give regions/strata distinct names)")
    blocks = next((d for d in dims if d.name == "block"), None) or builtin_slices(graded, ["block"], block, s.bins)[0]
    return dims, "class" in asked and not graded.is_values, blocks


def _corruption_runs(suite: Suite, graded: GradedChips, problems: list[str]) -> list[CorruptionRun]:
    layout = corruptions.ChipLayout.from_manifest(graded.manifest)
    runs = suite.robustness.corruptions
    if runs is None:
        names = [*DEFAULT_CORRUPTIONS, *(["date_shift"] if layout.timesteps > 1 else [])]
        return [CorruptionRun(name=n) for n in names]
    for i, run in enumerate(runs):
        try:
            corruptions.check(run.name, run.options, layout)
        except EOError as exc:
            problems.append(f"robustness.corruptions[{i}]: {exc.problem} ({exc.fix})")
    return runs


def _metrics(suite: Suite, graded: GradedChips, problems: list[str]) -> list[str]:
    kind = "value" if graded.is_values else "class"
    allowed = VALUE_METRICS if graded.is_values else CLASS_METRICS
    metrics = suite.metrics if suite.metrics is not None else DEFAULT_METRICS[kind]
    bad = [m for m in metrics if m not in allowed]
    if bad:
        problems.append(f"metrics: {', '.join(bad)} not a metric of a {graded.head.type} model (use: {', '.join(allowed)})")
    if not metrics:
        problems.append("metrics: empty (name at least one; the first is the main metric)")
    return [m for m in metrics if m in allowed]


def _default_thresholds(graded: GradedChips, metrics: list[str], runs: list[CorruptionRun]) -> list[Threshold]:
    out = [] if graded.is_values else [Threshold(metric="ece", max=0.1)]
    main = metrics[0] if metrics else None
    for run in runs:
        if main and 3 in run.severities:
            out.append(Threshold(metric=main, corruption=run.name, severity=3, max_drop=0.1))
    return out


def _check_thresholds(thresholds: list[Threshold], metrics: list[str], graded: GradedChips,
                      dims: list[str], runs: list[CorruptionRun], problems: list[str]) -> None:
    extra = [] if graded.is_values else list(CALIBRATION_METRICS)
    for i, t in enumerate(thresholds):
        where = f"thresholds[{i}]"
        if t.metric not in [*metrics, *extra]:
            problems.append(f"{where}.metric: '{t.metric}' is not measured (the suite's metrics: "
                            f"{', '.join([*metrics, *extra])}); add it to metrics or fix the name")
        if t.metric in CALIBRATION_METRICS and (t.every or t.corruption):
            problems.append(f"{where}: '{t.metric}' is a whole-split metric (drop every/corruption)")
        if t.every is not None and t.every not in dims:
            problems.append(f"{where}.every: '{t.every}' is not a slice of this suite (slices: {', '.join(dims) or 'none'})")
        if t.corruption is not None:
            sev = [r.severities for r in runs if r.name == t.corruption]
            if not sev:
                problems.append(f"{where}.corruption: '{t.corruption}' is not run by this suite (add it to "
                                "robustness.corruptions)")
            elif t.severity not in sev[0]:
                problems.append(f"{where}.severity: {t.corruption} runs at severities {sev[0]}, not {t.severity}")


def plan_suite(suite: Suite, graded: GradedChips, source: str) -> Plan:
    """Check a suite against the graded chips and the model; compute the slices' keys.

    Args:
        suite: The validated suite.
        graded: The decoded chips (not yet predicted).
        source: The suite's name in messages (its file, or ``default suite``).

    Returns:
        The plan.

    Raises:
        ConfigError: Every problem found, each naming the field and the fix.

    """
    problems: list[str] = []
    metrics = _metrics(suite, graded, problems)
    dims, per_class, blocks = _dimensions(suite, graded, problems)
    runs = _corruption_runs(suite, graded, problems)
    thresholds = suite.thresholds if suite.thresholds is not None else _default_thresholds(graded, metrics, runs)
    names = [*(["class"] if per_class else []), *(d.name for d in dims)]
    _check_thresholds(thresholds, metrics, graded, names, runs, problems)
    if problems:
        raise ConfigError(source, problems)
    return Plan(metrics, per_class, dims, blocks, runs, thresholds)
