"""``eoengine grade``: grade a model on a suite and write its report card."""

from __future__ import annotations

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
    engine: Annotated[str, typer.Option(help="Inference engine graded: auto (the faster of torch and the package's "
                                             "ONNX graph, as predict picks), torch, onnx, onnx-int8")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print grade.json instead of the summary")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (for run ids and models:/)")] = None,
) -> None:
    """Grade a model: slices with intervals, calibration, corruptions, error maps, thresholds and a letter."""
    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import GradeSpec

    spec = GradeSpec(models=models, suite=suite, report_dir=report_dir, baseline=baseline, strict=strict,
                     engine=engine, tracking_uri=tracking_uri)
    if collected(spec):
        return
    result = run_spec(spec)
    if as_json:
        document = result.comparison.with_suffix(".json") if result.comparison else result.models[0].document
        print(document.read_text())
    elif result.comparison is not None:
        _comparison(result)
    else:
        _summary(result.models[0])
    if strict and not result.passed:
        raise typer.Exit(FAILED)


def _comparison(result: Any) -> None:
    table = Table("model", *result.models[0].overall, "grade")
    for m in result.models:
        table.add_row(m.label, *(f"{v[0]:.3f}" if v[0] is not None else "–" for v in m.overall.values()), m.grade)
    out.print(table)
    for p in result.pairs:
        verdict = "a real difference" if p["real"] else "not a real difference"
        out.print(f"{p['b']} - {p['a']}: {p['metric']} {p['difference']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}], "
                  f"p {p['p']:.3f}: {verdict}")
    out.print(f"comparison: {result.comparison}")


def _summary(graded: Any) -> None:
    line = ", ".join(f"{m} {_num(v[0])}" + (f" [{_num(v[1])}, {_num(v[2])}]" if v[1] is not None else "")
                     for m, v in graded.overall.items())
    passed = sum(o["passed"] for o in graded.outcomes)
    out.print(f"grade {graded.grade}: {passed}/{len(graded.outcomes)} thresholds passed")
    out.print(f"overall: {line}")
    if graded.ece is not None:
        out.print(f"calibration: ECE {graded.ece:.3f}")
    table = Table("capability", "requirement", "measured", "result")
    for o in graded.outcomes:
        table.add_row(o["capability"], o["requirement"], o["measured"], "[green]pass[/]" if o["passed"] else "[red]fail[/]")
    out.print(table)
    if graded.weakest:
        out.print(f"weakest slices by {next(iter(graded.overall))}: " + "; ".join(
            f"{w['dimension']} {w['slice']} {w['value']:.3f} ({w['pixels']} px)" for w in graded.weakest))
    out.print(f"report card: {graded.report_card}")
    if graded.tagged:
        out.print(f"tagged model versions: {', '.join(graded.tagged)}")


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"
