"""``eoengine runs ...``: list, show and compare tracked training runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eoengine.errors import EOError
from eoengine.tracking.runs import RunInfo

runs_app = typer.Typer(help="List, show and compare tracked training runs (MLflow).", no_args_is_help=True)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 220)  # whole tables when piped

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Project config (finds its MLflow store)")]
UriOpt = Annotated[str | None, typer.Option(help="MLflow tracking URI (instead of --config)")]


def _store(config: Path | None, tracking_uri: str | None, experiment: str | None = None) -> tuple[str, str]:
    """(tracking URI, experiment name) from the options, the config, or eoengine.yaml here."""
    from eoengine.config.load import load_config
    from eoengine.tracking import store
    from eoengine.tracking.store import tracking_uri as resolve_uri

    if config is None and Path("eoengine.yaml").exists():
        config = Path("eoengine.yaml")
    if config is not None:
        cfg = load_config(config)
        uri = resolve_uri(cfg.output_path, cfg.training.tracking_uri, tracking_uri)
        return uri, experiment or cfg.training.experiment or cfg.name
    env_uri = tracking_uri or store._USER_URI
    if not env_uri:
        raise EOError("no MLflow store given", "pass --config CONFIG or --tracking-uri URI (or set MLFLOW_TRACKING_URI)")
    return env_uri, experiment or "Default"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@runs_app.command("list")
def list_cmd(
    config: ConfigOpt = None,
    tracking_uri: UriOpt = None,
    experiment: Annotated[str | None, typer.Option(help="Experiment (default: the project's)")] = None,
    sort: Annotated[str | None, typer.Option(help="Order by this metric, best first (e.g. test_miou)")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs")] = 50,
    metric: Annotated[list[str] | None, typer.Option(help="Also show this metric (repeat), e.g. test_iou_water")] = None,
) -> None:
    """A table of the project's runs: model, dataset, status and main scores (and any --metric)."""
    from eoengine.tracking.runs import SUMMARY_METRICS, list_runs

    uri, exp = _store(config, tracking_uri, experiment)
    runs = list_runs(uri, exp, sort, limit)
    _check_metrics(metric or [], runs)
    shown = [m for m in ([sort] if sort else []) + list(metric or []) + list(SUMMARY_METRICS) if any(m in r.metrics for r in runs)]
    shown = list(dict.fromkeys(shown))
    table = Table(title=f"{exp}: {len(runs)} run(s)")
    for col in ("run", "started", "status", "model", "task", "dataset", *shown, "note"):
        table.add_column(col)
    for r in runs:
        note = "best of sweep " + r.tags["eoengine.sweep"] if r.tags.get("eoengine.sweep.best") == "true" else ""
        table.add_row(r.run_id[:12], r.start, r.status, r.model, r.tags.get("task", "segmentation"),
                      r.tags.get("dataset.version", "")[:12], *(_fmt(r.metrics.get(m)) for m in shown), note)
    out.print(table)


@runs_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (full or a unique prefix)")],
    config: ConfigOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Everything a run recorded: parameters, tags (dataset, code version, environment), metrics, artifacts."""
    from eoengine.tracking.runs import artifacts, get_run, shown_tags

    uri, exp = _store(config, tracking_uri)
    run = get_run(uri, _full_id(uri, exp, run_id))
    out.print(f"[bold]run {run.run_id}[/bold] ({run.name}) — {run.status}, started {run.start}")
    for title, items in (("parameters", run.params), ("tags", shown_tags(run.tags)),
                         ("metrics", {k: f"{v:.5g}" for k, v in run.metrics.items()})):
        table = Table(title=title, show_header=False)
        table.add_column("key")
        table.add_column("value")
        for k in sorted(items):
            table.add_row(k, str(items[k]))
        out.print(table)
    listing = [("    " if "/" in path else "  ") + path + ("/" if is_dir else "") for path, is_dir, _ in artifacts(uri, run.run_id)]
    out.print("artifacts:\n" + "\n".join(listing))


@runs_app.command("compare")
def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids (or unique prefixes)")],
    config: ConfigOpt = None,
    tracking_uri: UriOpt = None,
    metric: Annotated[list[str] | None, typer.Option(
        help="Per-epoch metric(s) to plot (default: val_loss and the main one); final ones (test_iou_water) become table rows")] = None,
    plot: Annotated[Path, typer.Option(help="Where to write the comparison plot (PNG)")] = Path("runs-comparison.png"),
) -> None:
    """Side by side: the parameters that differ, final scores, and per-epoch curves in a PNG."""
    from eoengine.tracking.runs import differing_params, get_run, is_final, plot_comparison
    from eoengine.training.metrics import is_per_class

    if len(run_ids) < 2:
        raise EOError("compare needs at least two runs", "pass two or more run ids")
    uri, exp = _store(config, tracking_uri)
    runs = [get_run(uri, _full_id(uri, exp, r)) for r in run_ids]
    table = Table(title="runs compared")
    table.add_column("")
    for r in runs:
        table.add_column(r.run_id[:12])
    for key in differing_params(runs):
        table.add_row(key, *(r.params.get(key, "") for r in runs))
    _check_metrics(metric or [], runs)
    finals = sorted({k for r in runs for k in r.metrics if is_final(k) and not is_per_class(k)})
    for key in dict.fromkeys([*finals, *(m for m in metric or [] if is_final(m))]):
        table.add_row(key, *(_fmt(r.metrics.get(key)) for r in runs))
    out.print(table)
    metrics = [m for m in metric or [] if not is_final(m)] or [
        "val_loss", next((m[len("best_"):] for m in ("best_val_miou", "best_val_rmse", "best_val_f1")
                          if any(m in r.metrics for r in runs)), "train_loss")]
    out.print(f"plot: {plot_comparison(uri, runs, metrics, plot)}")


def _check_metrics(wanted: list[str], runs: list[RunInfo]) -> None:
    """Raise :class:`EOError` for a --metric no run recorded, naming what they did record."""
    from eoengine.training.metrics import is_per_class

    known = {k for r in runs for k in r.metrics}
    unknown = [m for m in wanted if m not in known]
    if unknown and runs:
        per_class = sorted(k for k in known if k.startswith("test_iou_") and is_per_class(k))
        examples = ", ".join(per_class[:20] or sorted(known)[:5])
        raise EOError(f"no run has the metric(s) {', '.join(unknown)}",
                      f"use a recorded one, e.g. {examples} (per class: <split>_<iou|precision|recall|f1>_<class>)")


def _full_id(uri: str, experiment: str, prefix: str) -> str:
    """A run id from a unique prefix of it (as the list shows 12 characters)."""
    if len(prefix) == 32:
        return prefix
    from eoengine.tracking.runs import list_runs

    matches = [r.run_id for r in list_runs(uri, experiment, limit=5000) if r.run_id.startswith(prefix)]
    if len(matches) != 1:
        raise EOError(f"run id '{prefix}' matches {len(matches)} runs", "give more characters of the id")
    return matches[0]
