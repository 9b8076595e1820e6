"""``eoengine monitor``: input drift, prediction drift and applicability of a model on new scenes.

Prints, per scene, its status and applicability, a table of every channel's drift and the
prediction drift, then every warn or alert with its reason and the overall status. The
exit code is 0 unless ``--fail-on`` is reached: then :data:`FAIL_EXIT`, so a script or a
scheduler can stop on drift; a bad input is the usual one-line error and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from eoengine.cli.deploy import ModelArg, UriOpt
from eoengine.errors import Invalid

if TYPE_CHECKING:
    from eoengine.grading.monitor import MonitorReport, SceneReport

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
FAIL_EXIT = 3
"""The exit code when the status reaches ``--fail-on``."""
COLOURS = {"ok": "green", "warn": "yellow", "alert": "red"}


def _number(value: float, fmt: str = ".3f") -> str:
    return "—" if value != value else format(value, fmt)  # NaN: not measured


def _channels(scene: SceneReport) -> Table:
    table = Table(title=f"input drift: {scene.scene} against the train split")
    for col in ("channel", "PSI", "KS", "mean shift (train std)", "std ratio"):
        table.add_column(col, justify="left" if col == "channel" else "right")
    for d in scene.channels:
        table.add_row(d.channel, _number(d.psi), _number(d.ks), _number(d.mean_shift, "+.2f"), _number(d.std_ratio, ".2f"))
    return table


def _prediction_line(scene: SceneReport) -> str:
    p = scene.prediction
    if p is None or p.distribution is None:
        return "  predictions: not compared (a multi-label head, or no outputs)"
    d = p.distribution
    if p.kind == "values":
        return (f"  predicted values against the test split: PSI {_number(d.psi)}, KS {_number(d.ks)}, "
                f"mean shift {_number(d.mean_shift, '+.2f')} test-split std")
    return (f"  predictions against the test split: class shares total variation {_number(p.share_distance)}, "
            f"mean confidence {_number(p.confidence)} (test split {_number(p.reference_confidence)}), "
            f"confidence PSI {_number(d.psi)}, KS {_number(d.ks)}")


def print_report(report: MonitorReport) -> None:
    """Each scene's status, applicability, channel table and prediction drift; then the reasons and the status."""
    low, high = report.reference_resolution
    seen = max((v for v in report.grading_distances.values() if v == v), default=0.0)
    for scene in report.scenes:
        colour = COLOURS[scene.status]
        out.print(f"[bold]scene {scene.scene}[/bold]: [{colour}]{scene.status}[/{colour}] — resolution {scene.resolution:g} "
                  f"(training {low:g}{'' if low == high else f'–{high:g}'}), input distance {_number(scene.input_distance, '.2f')} "
                  f"train std (test scenes up to {seen:.2f}), {scene.pixels} pixels from {scene.windows} windows")
        if scene.channels:
            out.print(_channels(scene))
            out.print(_prediction_line(scene))
    for reason in report.reasons:
        out.print(f"  - {reason}", markup=False)
    colour = COLOURS[report.status]
    out.print(f"status: [{colour}]{report.status}[/{colour}]"
              + (f" ({len(report.reasons)} reason(s))" if report.reasons else ""))


def monitor(
    model: ModelArg,
    scenes: Annotated[list[str], typer.Argument(help="Scenes: each a stack, or the model's band files joined with commas")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON to this file ('-': print it instead)")] = None,
    sample: Annotated[int, typer.Option(help="Pixels sampled of each scene, of the train split and of each test scene")] = 20_000,
    windows: Annotated[int, typer.Option(help="Windows read of each scene at most, each of the model's patch size")] = 256,
    fail_on: Annotated[str | None, typer.Option(help=f"warn or alert: exit {FAIL_EXIT} when the status reaches it")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset to compare with (default: the model's)")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the choice of chips, windows and pixels")] = 0,
    engine: Annotated[str, typer.Option(help="auto, torch, onnx or onnx-int8, as for predict")] = "auto",
    limit: Annotated[list[str] | None, typer.Option(help="Change a threshold: NAME=VALUE, e.g. psi_warn=0.2 "
                                                         "(repeat; names as in the report's thresholds)")] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Input drift, prediction drift and applicability of a model on new scenes: ok, warn or alert, with reasons."""
    from eoengine.deploy.registry import load_model_ref
    from eoengine.files import atomic_write_text
    from eoengine.grading.monitor import monitor as run_monitor
    from eoengine.grading.ratings import LEVELS, thresholds_from
    from eoengine.raster.cog import check_writable

    limits = thresholds_from(limit or [])
    if fail_on is not None and fail_on not in ("warn", "alert"):
        raise Invalid(f"--fail-on {fail_on!r}", "use --fail-on warn or --fail-on alert")
    if json_out is not None and str(json_out) != "-":
        check_writable(json_out)
    report = run_monitor(load_model_ref(model, tracking_uri), scenes, limits, sample=sample, windows=windows, seed=seed, dataset=dataset, engine=engine)
    if json_out is not None and str(json_out) == "-":
        print(report.to_json())
    else:
        print_report(report)
        if json_out is not None:
            atomic_write_text(json_out, report.to_json())
            out.print(f"report: {json_out}")
    if fail_on is not None and LEVELS.index(report.status) >= LEVELS.index(fail_on):  # type: ignore[arg-type]
        raise typer.Exit(FAIL_EXIT)
