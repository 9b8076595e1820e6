"""``eoengine dataset ...``: build, inspect and import training datasets."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from eoengine.errors import EOError

if TYPE_CHECKING:
    from eoengine.datasets.schema import DatasetManifest

dataset_app = typer.Typer(help="Build, inspect and import training datasets.", no_args_is_help=True)
out = Console(soft_wrap=True)


@dataset_app.command(
    "build", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def build(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Project config (YAML)")],
    runner: Annotated[str | None, typer.Option(help="Beam runner (DirectRunner, FlinkRunner, ...)")] = None,
) -> None:
    """Build the versioned dataset with Apache Beam. Extra --flags pass to Beam unchanged."""
    from eoengine.cli.jobs import collected
    from eoengine.datasets.schema import DatasetManifest
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import BuildDatasetSpec

    spec = BuildDatasetSpec(config=config, runner=runner, beam_args=list(ctx.args))
    if collected(spec):
        return
    result = run_spec(spec)
    state = "up to date" if result.up_to_date else "built"
    out.print(f"dataset {state}: {result.path}\nversion {result.version}")
    _summary(DatasetManifest.read(result.path))


def _summary(m: DatasetManifest) -> None:
    splits = m.splits
    freq = m.class_frequencies
    out.print(f"{m.n_chips} chips of {m.patch_size}x{m.patch_size} px — " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    out.print(f"channels: {', '.join(m.channels)}  (dropped: {m.dropped})")
    task = m.task or {}
    steps = m.timesteps
    out.print(f"task: {task.get('type', 'segmentation')}" + (f", {steps} dates per scene" if steps > 1 else ""))
    values = m.targets.values
    if values:
        v = values.statistics
        out.print(f"target '{values.name}' (train): mean {v.mean[0]:.4g}, std {v.std[0]:.4g}, "
                  f"min {v.min[0]:.4g}, max {v.max[0]:.4g}, {int(v.count[0]):,} pixels")
    if not m.classes:
        return
    table = Table(title="class balance (labelled pixels)")
    table.add_column("class")
    for s in splits:
        table.add_column(s, justify="right")
        table.add_column("%", justify="right")
    totals = {s: max(1, sum(freq[s])) for s in splits}
    for i, c in enumerate(m.classes):
        row = [c.name]
        for s in splits:
            row += [f"{freq[s][i]:,}", f"{100 * freq[s][i] / totals[s]:.1f}"]
        table.add_row(*row)
    out.print(table)


@dataset_app.command("info")
def info(path: Annotated[str, typer.Argument(help="Dataset folder, or a served dataset's URL")]) -> None:
    """Print a dataset's manifest summary and class balance."""
    from eoengine.datasets.remote import dataset_root
    from eoengine.datasets.schema import DatasetManifest

    m = DatasetManifest.read(dataset_root(path))
    out.print(f"[bold]{m.name}[/bold] version {m.version[:12]} (created {m.created})")
    stats = m.statistics.train
    _summary(m)
    table = Table(title="train statistics")
    for col in ("channel", "mean", "std", "min", "max"):
        table.add_column(col, justify="right")
    for i, ch in enumerate(m.channels):
        table.add_row(ch, *(f"{getattr(stats, k)[i]:.4g}" for k in ("mean", "std", "min", "max")))
    out.print(table)


@dataset_app.command("inspect-tfrecord")
def inspect_tfrecord(
    file: Annotated[Path, typer.Argument(help="A TFRecord file (e.g. an Earth Engine export)")],
    compression: Annotated[str, typer.Option(help="GZIP or NONE")] = "GZIP",
) -> None:
    """List the features of a TFRecord file's first record: names, types and shapes (to pick --bands and --label)."""
    from eoengine.datasets.tfrecord import describe_example, first_record

    first = first_record(file, compression)
    table = Table(title=f"features of {file.name} (first record)")
    for col in ("feature", "type", "values", "shape"):
        table.add_column(col)
    for name, (kind, n) in describe_example(first).items():
        side = math.isqrt(n)
        shape = "point" if n == 1 else f"{side}x{side}" if side * side == n else f"{n}"
        table.add_row(name, kind, str(n), shape)
    out.print(table)


@dataset_app.command("import-tfrecord")
def import_tfrecord(
    files: Annotated[list[str], typer.Argument(help="SPLIT=FILE pairs, e.g. train=train.tfrecord.gz")],
    output: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to create")],
    bands: Annotated[str | None, typer.Option(
        help="Comma-separated band feature names (default: every numeric feature but the label, sorted)")] = None,
    label: Annotated[str, typer.Option(help="Label feature name")] = "class",
    classes: Annotated[str | None, typer.Option(help="Comma-separated class names (default: class0..N)")] = None,
    num_classes: Annotated[int | None, typer.Option(help="Number of classes (default: from the labels)")] = None,
    compression: Annotated[str, typer.Option(help="GZIP or NONE")] = "GZIP",
    force: Annotated[bool, typer.Option(help="Replace a different dataset already at --out")] = False,
) -> None:
    """Import Earth Engine / servir-aces TFRecord exports into an eoengine dataset (no TensorFlow).

    Rerunning the same import is a no-op; see the features with 'eoengine dataset inspect-tfrecord FILE'.
    """
    from eoengine.datasets.tfrecord_import import import_tfrecords

    pairs: dict[str, list[str]] = {}
    for item in files:
        if "=" not in item:
            raise EOError(f"'{item}' is not SPLIT=FILE", "write e.g. train=train.tfrecord.gz val=val.tfrecord.gz")
        split, path = item.split("=", 1)
        pairs.setdefault(split, []).append(path)
    names = classes.split(",") if classes else None
    result = import_tfrecords(pairs, output, bands.split(",") if bands else None, label, names, num_classes,
                              compression, force)
    state = "up to date" if result.up_to_date else "written"
    out.print(f"dataset {state}: {result.path}\nversion {result.version}")
    _summary(result.manifest)
