"""Several models (and the per-pixel random forest baseline) graded on the same suite, side by side.

All are graded on the same decoded chips and spatial blocks, so their differences can be tested in pairs: a
paired block bootstrap draws the same blocks for both models in each resample, and the difference of their
main metric over the resamples gives its interval and a two-sided p-value. A difference is called real when
its interval excludes zero.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.errors import EOError
from eoengine.files import atomic_write_json
from eoengine.grading.baseline import forest_predictor
from eoengine.grading.chips import engine_predictor
from eoengine.grading.grade import GradeReport, Prepared, applicability, grade_with, model_info, prepare, region_names
from eoengine.grading.scoring import class_metrics, resample_weights, value_metrics
from eoengine.grading.suite import Suite
from eoengine.models.package import ModelPackage

BASELINES = ("random_forest",)


@dataclass
class Comparison:
    """Reports of every graded model by label, and the paired tests of each against the first."""

    metric: str
    reports: dict[str, GradeReport]
    pairs: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """JSON form: each model's overall scores and grade, and the paired tests."""
        return {"metric": self.metric, "pairs": self.pairs,
                "models": {k: {"grade": r.grade, "overall": r.overall.row(0), "model": r.model}
                           for k, r in self.reports.items()}}


def paired_differences(a: np.ndarray, b: np.ndarray, values: bool, metric: str, resamples: int, seed: int,
                       confidence: float) -> list[dict[str, float]]:
    """The difference ``b - a`` of a metric on every slice of a dimension, with paired block-bootstrap tests.

    Each resample draws the same blocks for both models and for every slice; the p-value is two-sided (how
    often the resampled difference falls on the other side of zero, doubled).

    Args:
        a: Model A's statistics per block and slice (n_blocks, n_slices, ...).
        b: Model B's, on the same blocks and slices.
        values: Whether they are value sums (else confusion matrices).
        metric: The metric compared.
        resamples: Bootstrap resamples.
        seed: Their seed.
        confidence: The interval's coverage.

    Returns:
        One ``difference``, ``low``, ``high``, ``p`` per slice (NaN for a slice without pixels); resamples that
        drew none of a slice's blocks do not count for it.

    """
    fn = value_metrics if values else class_metrics
    point = fn(b.sum(0))[metric] - fn(a.sum(0))[metric]
    w = resample_weights(a.shape[0], resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        rb, ra = fn(np.tensordot(w, b, axes=(1, 0))), fn(np.tensordot(w, a, axes=(1, 0)))
    diff = np.where(ra["pixels"] > 0, rb[metric] - ra[metric], np.nan)  # (resamples, n_slices)
    tail = (1 - confidence) / 2 * 100
    out = []
    for j in range(diff.shape[1]):
        d = diff[:, j][np.isfinite(diff[:, j])]
        if not len(d) or not np.isfinite(point[j]):
            out.append({"difference": float("nan"), "low": float("nan"), "high": float("nan"), "p": float("nan")})
            continue
        p = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
        out.append({"difference": float(point[j]), "low": float(np.percentile(d, tail)),
                    "high": float(np.percentile(d, 100 - tail)), "p": p})
    return out


def slice_pairs(a: GradeReport, b: GradeReport, values: bool, metric: str, min_pixels: int, resamples: int,
                seed: int, confidence: float) -> list[dict[str, Any]]:
    """Paired tests of ``b - a`` on every slice with at least ``min_pixels`` pixels (dimensions that keep cells).

    Args:
        a: The reference model's report.
        b: The other model's report on the same prepared suite.
        values: Whether the statistics are value sums.
        metric: The metric compared.
        min_pixels: Smaller slices are not tested.
        resamples: Bootstrap resamples.
        seed: Their seed.
        confidence: The interval's coverage.

    Returns:
        Rows (dimension, slice, pixels, difference, interval, p, real), real differences first, largest first.

    """
    rows = []
    for ta, tb in zip(a.slices, b.slices, strict=True):
        if ta.cells is None or tb.cells is None:
            continue
        tests = paired_differences(ta.cells, tb.cells, values, metric, resamples, seed, confidence)
        for label, px, d in zip(ta.labels, ta.pixels, tests, strict=True):
            if px >= min_pixels and np.isfinite(d["difference"]):
                rows.append({"dimension": ta.dimension, "slice": label, "pixels": int(px), **d,
                             "real": not d["low"] <= 0 <= d["high"]})
    return sorted(rows, key=lambda r: (not r["real"], -abs(r["difference"])))


def _labels(pkgs: list[ModelPackage]) -> list[str]:
    out: list[str] = []
    for pkg in pkgs:
        name = pkg.meta.model
        out.append(name if name not in out else f"{name}#{sum(o.split('#')[0] == name for o in out) + 1}")
    return out


def check_same_inputs(prep: Prepared, pkgs: list[ModelPackage]) -> None:
    """Refuse models (after the first, which decided the graded data) that take other channels or classes.

    Args:
        prep: The prepared suite.
        pkgs: The models, the first the one the data was decoded for.

    Raises:
        EOError: A model's channels or class count differ from the graded dataset's.

    """
    m, head = prep.graded.manifest, prep.graded.head
    for pkg in pkgs[1:]:
        if pkg.meta.channels != m.channels:
            raise EOError(f"model {pkg.path} takes channels {pkg.meta.channels}, the graded dataset has {m.channels}",
                          "compare models that take the same bands and indices (or set data.dataset to one they share)")
        if len(pkg.meta.classes) != len(m.classes) and head.type != "regression":
            raise EOError(f"model {pkg.path} has {len(pkg.meta.classes)} classes, the graded dataset {len(m.classes)}",
                          "compare models trained on the same classes")


def compare(pkgs: list[ModelPackage], suite: Suite, out_dir: Path, source: str = "default suite",
            baseline: str | None = None, engine: str = "auto") -> Comparison:
    """Grade every model (and a baseline) on one suite; write each report card and ``comparison.html``/``.json``.

    Args:
        pkgs: The model packages; the first is the one the others are tested against.
        suite: The validated suite (its data: the first model's dataset unless it names one).
        out_dir: The report folder: one subfolder per model, the comparison beside them.
        source: The suite's name in messages.
        baseline: ``random_forest`` to grade the per-pixel forest too, or None.
        engine: The inference engine each model runs on (see :func:`eoengine.grading.chips.engine_predictor`).

    Returns:
        The comparison.

    Raises:
        EOError: An unknown baseline, or models that do not take the graded dataset's channels and classes.
        ConfigError: The suite does not fit the first model or the data.

    """
    from eoengine.grading.report import write_report_card

    if baseline is not None and baseline not in BASELINES:
        raise EOError(f"unknown baseline '{baseline}'", f"use one of: {', '.join(BASELINES)}")
    prep = prepare(pkgs[0], suite, source)
    check_same_inputs(prep, pkgs)
    reports: dict[str, GradeReport] = {}
    for label, pkg in zip(_labels(pkgs), pkgs, strict=True):
        name, predictor = engine_predictor(pkg, prep.graded, engine)
        report = grade_with(prep, predictor, out_dir / label, model_info(pkg, prep) | {"engine": name},
                            applicability(pkg, prep.graded))
        report.applicability["graded_regions"] = region_names(report, suite)
        reports[label] = report
    if baseline:
        u = suite.uncertainty
        forest = forest_predictor(prep.root, prep.graded, seed=u.seed)
        reports[baseline] = grade_with(prep, forest, out_dir / baseline,
                                       {"name": f"{baseline} (baseline)", "task": pkgs[0].meta.task, "head": "pixels",
                                        "run_id": None, "path": ""}, {})
    for label, report in reports.items():
        write_report_card(report, out_dir / label)
    metric = prep.plan.metrics[0]
    first, *rest = reports
    u = suite.uncertainty
    pairs: list[dict[str, Any]] = []
    for other in rest:
        resamples = max(u.bootstrap, 200)
        d = paired_differences(reports[first].cells, reports[other].cells, prep.graded.is_values, metric,
                               resamples, u.seed + 2, u.confidence)[0]
        per_slice = slice_pairs(reports[first], reports[other], prep.graded.is_values, metric,
                                suite.slices.min_pixels, resamples, u.seed + 2, u.confidence)
        pairs.append({"a": first, "b": other, "metric": metric, **d, "real": not d["low"] <= 0 <= d["high"],
                      "slices": per_slice})
    result = Comparison(metric, reports, pairs)
    write_comparison(result, out_dir)
    return result


def write_comparison(c: Comparison, out_dir: Path) -> Path:
    """Write ``comparison.json`` and ``comparison.html`` (overall scores, grades, main metric per slice, tests).

    Args:
        c: The comparison.
        out_dir: The report folder.

    Returns:
        The HTML page.

    """
    from eoengine.grading.report import number

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "comparison.json", c.as_dict())
    labels = list(c.reports)
    any_report = next(iter(c.reports.values()))
    metrics = any_report.metrics
    head = "".join(f"<th>{html.escape(k)}</th>" for k in labels)
    rows = "".join(f"<tr><td>{m}</td>" + "".join(f"<td>{float(r.overall.values[m][0]):.3f}</td>" for r in c.reports.values())
                   + "</tr>" for m in metrics)
    rows += "<tr><td>grade</td>" + "".join(f"<td>{r.grade}</td>" for r in c.reports.values()) + "</tr>"
    slices = ""
    for i, t in enumerate(any_report.slices):
        for j, label in enumerate(t.labels):
            cells = "".join(f"<td>{number(float(r.slices[i].values[c.metric][j]))}</td>" if c.metric in r.slices[i].values
                            else "<td>–</td>" for r in c.reports.values())
            slices += f"<tr><td>{html.escape(t.dimension)}: {html.escape(label)}</td><td>{int(t.pixels[j])}</td>{cells}</tr>"
    tests = "".join(
        f"<tr><td>{html.escape(p['b'])} − {html.escape(p['a'])}</td><td>{p['difference']:+.3f}</td>"
        f"<td>[{p['low']:+.3f}, {p['high']:+.3f}]</td><td>{p['p']:.3f}</td><td>{'yes' if p['real'] else 'no'}</td></tr>"
        for p in c.pairs)
    per_slice = "".join(
        f"<tr><td>{html.escape(p['b'])} − {html.escape(p['a'])}</td><td>{html.escape(r['dimension'])}: "
        f"{html.escape(r['slice'])}</td><td>{r['pixels']}</td><td>{r['difference']:+.3f}</td>"
        f"<td>[{r['low']:+.3f}, {r['high']:+.3f}]</td><td>{r['p']:.3f}</td><td>{'yes' if r['real'] else 'no'}</td></tr>"
        for p in c.pairs for r in p["slices"])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>eoengine comparison</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>Comparison on one suite</h1>
<table><tr><th>metric</th>{head}</tr>{rows}</table>
<h2>Is the difference real? (paired block bootstrap, {c.metric})</h2>
<table><tr><th>pair</th><th>difference</th><th>interval</th><th>p</th><th>real</th></tr>{tests}</table>
<h2>Per slice: is the difference real?</h2>
<table><tr><th>pair</th><th>slice</th><th>pixels</th><th>difference</th><th>interval</th><th>p</th><th>real</th></tr>{per_slice}</table>
<h2>{c.metric} per slice</h2><table><tr><th>slice</th><th>pixels</th>{head}</tr>{slices}</table>
<p>Each model's report card: {' '.join(f'<a href="{html.escape(k)}/report.html">{html.escape(k)}</a>' for k in labels)}</p>
</body></html>"""
    out = out_dir / "comparison.html"
    out.write_text(page, encoding="utf-8")
    return out
