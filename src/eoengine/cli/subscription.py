"""``eoengine subscription run|dry-run SPEC.yaml``: a subscription without the server, for cron.

The state lives in ``SPEC.state.json`` next to the spec (written atomically after the runs), the
outputs in ``--out`` (default: ``SPEC-output/`` next to the spec). Commands that talk to the server
(create, list, ...) join this group from their own module.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from eoengine.errors import Invalid

if TYPE_CHECKING:
    from eoengine.subscriptions.state import RunRecord

subscription_app = typer.Typer(help="Region-of-interest subscriptions: run one from a spec file, or ask what it would do.",
                               no_args_is_help=True)
out = Console(soft_wrap=True)
FAILED = 1
"""Exit status when a run failed (its period is retried at the next invocation)."""

SpecArg = Annotated[Path, typer.Argument(help="The subscription spec (YAML; see the README's 'Subscriptions')")]
NowOpt = Annotated[str | None, typer.Option(help="Run as if it were this time (ISO 8601, UTC); default: now")]
UriOpt = Annotated[str | None, typer.Option(help="MLflow tracking URI (for models:/ and runs:/ references)")]


def state_path(spec: Path) -> Path:
    """Where ``subscription run`` keeps the state of ``spec``: ``NAME.state.json`` beside it."""
    return spec.with_name(f"{spec.stem}.state.json")


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"--now {text!r} is not an ISO 8601 time", "write e.g. --now 2024-06-01T00:00:00Z") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


@subscription_app.command("run")
def run_cmd(
    spec: SpecArg,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: SPEC-output beside the spec)")] = None,
    cache: Annotated[Path | None, typer.Option(help="Fetch cache (default: OUT/cache)")] = None,
    now: NowOpt = None,
    tracking_uri: UriOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run records as JSON")] = False,
) -> None:
    """Run what is due: each period's map, STAC item, statistics, change, drift and webhooks."""
    from eoengine.subscriptions.run import run_due
    from eoengine.subscriptions.spec import load_spec
    from eoengine.subscriptions.state import load_state, save_state

    checked = load_spec(spec)
    when = _now(now)
    folder = out_dir or spec.with_name(f"{spec.stem}-output")
    state, records = run_due(checked, load_state(state_path(spec)), folder, cache or folder / "cache", when,
                             tracking_uri=tracking_uri)
    save_state(state, state_path(spec))
    if as_json:
        print("[" + ",".join(r.model_dump_json() for r in records) + "]")
    else:
        for r in records:
            out.print(_line(r))
        if not records:
            out.print("nothing due" + (" (the subscription is complete)" if state.completed else ""))
    if any(r.status == "failed" for r in records):
        raise typer.Exit(FAILED)


def _line(r: RunRecord) -> str:
    """One run's outcome as one line."""
    period = f"{r.period_start:%Y-%m-%d %H:%M}–{r.period_end:%Y-%m-%d %H:%M}"
    if r.status == "succeeded":
        change = f", {r.change.changed_hectares:g} ha changed" if r.change else ""
        drift = f", drift {r.drift.status}" if r.drift else ""
        return f"{period}: succeeded ({', '.join(r.scene_ids)}) → {r.map_path}{change}{drift}"
    if r.status == "failed" and r.error:
        return f"{period}: failed: {r.error.error}" + (f" — {r.error.fix}" if r.error.fix else "")
    return f"{period}: {r.status}" + (f" ({', '.join(r.scene_ids)})" if r.scene_ids else "")


@subscription_app.command("dry-run")
def dry_run_cmd(spec: SpecArg, now: NowOpt = None, tracking_uri: UriOpt = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False) -> None:
    """What a run now would do: periods, scenes, tiles, and estimates of compute time and storage."""
    from eoengine.subscriptions.dryrun import dry_run
    from eoengine.subscriptions.spec import load_spec
    from eoengine.subscriptions.state import load_state

    answer = dry_run(load_spec(spec), load_state(state_path(spec)), _now(now), tracking_uri)
    if as_json:
        print(answer.model_dump_json(indent=2))
        return
    for p in answer.periods:
        out.print(f"{p.start:%Y-%m-%d %H:%M}–{p.end:%Y-%m-%d %H:%M}: {len(p.scene_ids)} scene(s), "
                  f"takes {', '.join(p.chosen) or 'none'}; {p.tiles} tile(s), {p.pixels:,} pixels")
    out.print(f"{len(answer.periods)} period(s), {answer.tiles} tile(s): about {answer.compute_seconds:g} s of compute "
              f"and {answer.storage_bytes / 1e6:.2f} MB of storage ({answer.basis})")
