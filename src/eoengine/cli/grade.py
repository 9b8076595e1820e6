"""``eoengine grade``: grade a model on a suite and write its report card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
FAILED = 3
"""Exit status of ``--strict`` when a threshold fails."""


def grade(
    models: Annotated[list[str], typer.Argument(
        help="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS; several are compared")],
    suite: Annotated[Path | None, typer.Option(help="Grading suite (YAML); default: the default suite")] = None,
    report_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default: grade/ beside the package)")] = None,
    baseline: Annotated[str | None, typer.Option(help="Also grade a baseline side by side: random_forest")] = None,
    strict: Annotated[bool, typer.Option(help=f"Exit {FAILED} when a threshold fails (for CI gates)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print grade.json instead of the summary")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (for run ids and models:/)")] = None,
) -> None:
    """Grade a model: slices with intervals, calibration, corruptions, error maps, thresholds and a letter."""
    from eoengine.deploy.registry import load_model_ref
    from eoengine.grading.grade import grade as run_grade
    from eoengine.grading.record import record
    from eoengine.grading.report import write_report_card
    from eoengine.grading.suite import load_suite

    checked = load_suite(suite)  # a bad suite fails before the model is fetched
    source = str(suite) if suite else "default suite"
    pkgs = [load_model_ref(m, tracking_uri) for m in models]
    folder = report_dir or pkgs[0].path.parent / "grade"
    if len(pkgs) > 1 or baseline:
        _compare(pkgs, checked, folder, source, baseline, as_json, strict)
        return
    report = run_grade(pkgs[0], checked, folder, source)
    page = write_report_card(report, folder)
    tagged = record(pkgs[0], report, folder)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _summary(report, page, tagged)
    if strict and not all(o.passed for o in report.outcomes):
        raise typer.Exit(FAILED)


def _compare(pkgs: list[Any], suite: Any, folder: Path, source: str, baseline: str | None, as_json: bool,
             strict: bool) -> None:
    from eoengine.grading.compare import compare
    from eoengine.grading.record import record

    result = compare(pkgs, suite, folder, source, baseline)
    for pkg, (label, report) in zip(pkgs, result.reports.items(), strict=False):  # the baseline has no run
        record(pkg, report, folder / label)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        table = Table("model", *result.reports[next(iter(result.reports))].metrics, "grade")
        for label, r in result.reports.items():
            table.add_row(label, *(f"{float(v[0]):.3f}" for v in r.overall.values.values()), r.grade)
        out.print(table)
        for p in result.pairs:
            verdict = "a real difference" if p["real"] else "not a real difference"
            out.print(f"{p['b']} - {p['a']}: {p['metric']} {p['difference']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}], "
                      f"p {p['p']:.3f}: {verdict}")
        out.print(f"comparison: {folder / 'comparison.html'}")
    if strict and not all(o.passed for r in result.reports.values() for o in r.outcomes):
        raise typer.Exit(FAILED)


def _summary(report: object, page: Path, tagged: list[str]) -> None:
    from eoengine.grading.grade import GradeReport

    assert isinstance(report, GradeReport)
    main = report.metrics[0]
    overall = report.overall
    line = ", ".join(f"{m} {float(v[0]):.3f}" + (f" [{float(overall.low[m][0]):.3f}, {float(overall.high[m][0]):.3f}]"
                                                 if m in overall.low else "") for m, v in overall.values.items())
    out.print(f"grade {report.grade}: {sum(o.passed for o in report.outcomes)}/{len(report.outcomes)} thresholds passed")
    out.print(f"overall: {line}")
    if report.calibration is not None:
        out.print(f"calibration: ECE {report.calibration.ece:.3f}")
    table = Table("capability", "requirement", "measured", "result")
    for o in report.outcomes:
        table.add_row(o.capability, o.requirement, o.shown(),
                      "[green]pass[/]" if o.passed else "[red]fail[/]")
    out.print(table)
    if report.weakest:
        out.print(f"weakest slices by {main}: " + "; ".join(
            f"{w['dimension']} {w['slice']} {w['value']:.3f} ({w['pixels']} px)" for w in report.weakest))
    out.print(f"report card: {page}")
    if tagged:
        out.print(f"tagged model versions: {', '.join(tagged)}")
