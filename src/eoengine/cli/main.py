"""The ``eoengine`` command line: thin wrappers over the Python API."""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from eoengine.cli import deploy
from eoengine.cli.dataset import dataset_app
from eoengine.cli.format import score_line
from eoengine.cli.grade import grade
from eoengine.cli.monitor import monitor
from eoengine.cli.progress import RichReporter
from eoengine.cli.remote import remote_app
from eoengine.cli.runs import runs_app
from eoengine.cli.server import server_app
from eoengine.cli.source import source_app
from eoengine.cli.source_ee import ee_app
from eoengine.cli.subscription_remote import subscription_app  # the local commands and the server's, one group
from eoengine.cli.worker import worker
from eoengine.errors import ConfigError, EOError, Invalid, NotFound
from eoengine.progress import using_reporter

if TYPE_CHECKING:
    from eoengine.jobs.specs import JobSpec

app = typer.Typer(
    name="eoengine",
    help="Geospatial machine learning: imagery and labels to datasets, models and maps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(dataset_app, name="dataset")
app.add_typer(runs_app, name="runs")
source_app.add_typer(ee_app, name="ee")
app.add_typer(source_app, name="source")
app.add_typer(server_app, name="server")
app.add_typer(remote_app, name="remote")
app.add_typer(subscription_app, name="subscription")
app.command("worker")(worker)
app.command("grade")(grade)
app.command("monitor")(monitor)
for _command in (deploy.export, deploy.quantize, deploy.prune, deploy.register, deploy.serve):
    app.command()(_command)
out = Console(soft_wrap=True)


class _BeamGcpNoise(logging.Filter):
    """Drops Apache Beam's import-time warning about BigQuery clients.

    Beam logs it to the root logger whenever some Google Cloud package is installed (the
    ``ee`` extra brings google-cloud-storage) but its BigQuery client is not; eoengine never
    uses BigQuery, so the warning only confuses.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _setup_logging() -> None:
    """The console's logging: eoengine's records from INFO up, other libraries' kept quiet.

    Done here, not when eoengine is imported: the library leaves ``logging`` as it finds it.
    """
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=Console(stderr=True), show_path=False)])
    logging.getLogger("eoengine").setLevel(logging.INFO)
    root = logging.getLogger()
    root.setLevel(logging.ERROR)
    if not any(isinstance(f, _BeamGcpNoise) for f in root.filters):  # main runs more than once in tests
        root.addFilter(_BeamGcpNoise())
    # Beam's records (its workers' too, which it relays) are its own chatter; a failure reaches
    # the user as the exception the pipeline raises, so even Beam's error records are dropped
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    threading.excepthook = _quiet_beam_worker_threads


def _quiet_lightning() -> None:
    """Keep Lightning's INFO records (devices found, ...) off the console while training.

    Lightning sets its loggers' levels as it is imported, so it is imported first.
    """
    import lightning.pytorch  # noqa: F401

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


_default_thread_hook = threading.excepthook


def _quiet_beam_worker_threads(args: threading.ExceptHookArgs) -> None:
    """Drop the report of Beam's worker-handler thread that a worker it ran has exited.

    When a pipeline fails, the driver raises the real error (one line) and the runner's
    workers are torn down; Beam's ``run_worker`` thread then raises "Worker subprocess
    exited", which Python would print as a traceback after the error line.
    """
    if args.thread is not None and args.thread.name == "run_worker" and isinstance(args.exc_value, RuntimeError):
        logging.getLogger(__name__).debug("Beam worker thread: %s", args.exc_value)
        return
    _default_thread_hook(args)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new project")],
    template: Annotated[str, typer.Option(
        help="basic: a commented config; custom: plus a custom model and loss; imported: train on a TFRecord import")] = "basic",
    force: Annotated[bool, typer.Option(help="Overwrite existing files")] = False,
) -> None:
    """Scaffold a project in DIRECTORY: a commented config (--template custom: extension points; imported: no imagery)."""
    from eoengine.templates import TEMPLATES, write_template

    if template not in TEMPLATES:
        raise EOError(f"unknown template '{template}'", f"use one of: {', '.join(TEMPLATES)}")
    written = write_template(template, directory, force)
    out.print("wrote " + ", ".join(str(p) for p in written))
    out.print(f"edit the paths, then run: eoengine validate {directory / 'eoengine.yaml'}")


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="Project config with a 'sweep' section")],
    trials: Annotated[int | None, typer.Option(help="Total trials (default: sweep.trials)")] = None,
    name: Annotated[str | None, typer.Option(help="Study name (default: <project>-sweep); reuse to continue")] = None,
) -> None:
    """Hyperparameter search (Optuna): each trial a tracked run, the best one tagged; reruns continue."""
    from rich.table import Table

    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import SweepSpec

    spec = SweepSpec(config=config, trials=trials, name=name)
    if collected(spec):
        return
    _quiet_lightning()
    result = run_spec(spec)
    table = Table(title=f"sweep {result.study}: {result.metric}")
    for col in ("trial", "state", result.metric, "parameters", "run"):
        table.add_column(col)
    for t in result.trials:
        value = "" if t.value is None else f"{t.value:.4f}"
        params = ", ".join(f"{k.rsplit('.', 1)[-1]}={v:.4g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                           for k, v in t.params.items())
        table.add_row(str(t.number), t.state, value, params, t.run_id[:12])
    out.print(table)
    best = result.best
    out.print(f"best: {result.metric} {best.value:.4f} with {best.params} — run {best.run_id}")


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="Project config (YAML)")]) -> None:
    """Check a config: schema, files, band names, indices, labels and component names."""
    from eoengine.config.load import load_config
    from eoengine.training.checks import check_config

    cfg = load_config(config)
    problems = check_config(cfg)
    if problems:
        raise ConfigError(str(config), problems)
    source = f"{len(cfg.imagery.scenes)} scene(s), {len(cfg.classes)} classes" if cfg.imagery else f"trains on {cfg.training.dataset}"
    out.print(f"[green]{config}: valid[/green] ({source})")


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Project config (YAML)")],
    dataset: Annotated[str | None, typer.Option(help="Dataset folder, or a served dataset's URL (default: the last build)")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
    resume: Annotated[str | None, typer.Option(help="Run id of an interrupted run to continue")] = None,
) -> None:
    """Train the configured model on the dataset, tracked in MLflow (--resume continues a run)."""
    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import TrainSpec

    spec = TrainSpec(config=config, dataset=dataset, tracking_uri=tracking_uri, resume=resume)
    if collected(spec):
        return
    _quiet_lightning()
    result = run_spec(spec)
    if not result.primary:
        return  # an extra DDP process: rank 0 reports
    which = "test" if "test" in result.scores else "val"
    out.print(f"run {result.run_id} (best epoch {result.best_epoch + 1}) — {which} {score_line(result.scores[which])}")
    out.print(f"model: {result.model_path}\ntracking: {result.tracking_uri}")


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")],
    dataset: Annotated[str | None, typer.Option(help="Dataset folder, or a served dataset's URL (default: the model's)")] = None,
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (for run ids)")] = None,
) -> None:
    """Score a model on a dataset split and write an HTML report next to its run."""
    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import EvaluateSpec
    from eoengine.training.metrics import by_class_name

    spec = EvaluateSpec(model=model, dataset=dataset, split=split, tracking_uri=tracking_uri)
    if collected(spec):
        return
    result = run_spec(spec)
    if as_json:
        named = {h: by_class_name(s, result.class_names) for h, s in result.by_head.items()}
        body = next(iter(named.values())) if len(named) == 1 else {"heads": named}
        print(json.dumps({"split": split, **body, "report": str(result.report)}, indent=2))
        return
    for head, s in result.by_head.items():
        label = f"{split}" if len(result.by_head) == 1 else f"{split} [{head}]"
        out.print(f"{label}: {score_line(s)}")
        for name, iou in zip(result.class_names, s.get("iou_per_class", []), strict=False):
            out.print(f"  {name:<16} IoU {iou:.3f}")
    out.print(f"report: {result.report}")


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")],
    scene: Annotated[list[str] | None, typer.Argument(help="One scene: band files in model order, one stack, or name=path pairs")] = None,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Map COG to write (for many scenes: their mosaic)")] = None,
    scenes: Annotated[list[str] | None, typer.Option("--scene", help="Many scenes: repeat; each a stack or comma-separated band files")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Many scenes: write one COG per scene here")] = None,
    probabilities: Annotated[Path | None, typer.Option(help="Also write per-class probabilities (COG)")] = None,
    tile_size: Annotated[int | None, typer.Option(help="Tile size in pixels")] = None,
    overlap: Annotated[int | None, typer.Option(help="Tile overlap in pixels")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Tiles per forward pass")] = None,
    class_codes: Annotated[str | None, typer.Option(help="Class map pixels: the classes' values (default) or positions 0..n-1")] = None,
    engine: Annotated[str, typer.Option(help="auto (the faster on CPU), torch, onnx or onnx-int8")] = "auto",
    beam: Annotated[bool, typer.Option("--beam", help="Many scenes as an Apache Beam pipeline (one element per strip of region rows)")] = False,
    rows_per_element: Annotated[int, typer.Option(help="--beam: rows of regions per element")] = 1,
    runner: Annotated[str, typer.Option(help="Beam runner for --beam")] = "DirectRunner",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (for run ids)")] = None,
) -> None:
    """Predict a class map (or value map) over scenes of any size, as Cloud-Optimized GeoTIFFs."""
    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import PredictSpec

    spec = PredictSpec(model=model, scene=scene, output=output, scenes=scenes, out_dir=out_dir, probabilities=probabilities,
                       tile_size=tile_size, overlap=overlap, batch_size=batch_size, class_codes=class_codes, engine=engine,
                       beam=beam, rows_per_element=rows_per_element, runner=runner, tracking_uri=tracking_uri)
    if collected(spec):
        return
    result = run_spec(spec)
    if scenes:
        out.print("\n".join(f"map: {p}" for p in result.maps))
        return
    out.print(f"map: {result.maps[0]}" + (f"\nprobabilities: {result.probabilities}" if result.probabilities else ""))


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where outputs go")] = Path("out/demo"),
    example: Annotated[Path | None, typer.Option(help="Example folder (default: examples/nc_landsat7_landclass96)")] = None,
    baseline: Annotated[bool, typer.Option(help="Also fit the random-forest baseline")] = True,
    check_readme: Annotated[Path | None, typer.Option(
        help="Then fail unless this README quotes the figures the demo printed")] = None,
) -> None:
    """Run the whole pipeline on the bundled Landsat 7 sample: dataset, training, report, map."""
    from eoengine.cli.demo import FIGURES, run_demo
    from eoengine.cli.demo import check_readme as check

    if check_readme is not None and not check_readme.is_file():
        raise NotFound(f"{check_readme} not found", "pass the README whose demo figures to check, e.g. README.md")
    _quiet_lightning()
    run_demo(workdir, example, baseline, out)
    if check_readme is not None:
        skipped = check(check_readme, workdir / FIGURES)
        out.print(f"{check_readme} quotes the figures the demo printed"
                  + (f" (not compared, trained on another CPU kind than the README's: {', '.join(skipped)})"
                     if skipped else ""))


JOB_COMMANDS = (("dataset", "build"), ("train",), ("sweep",), ("evaluate",), ("predict",), ("source", "fetch"),
                ("export",), ("quantize",), ("grade",))
"""The commands that build a job spec from their flags and run it."""


def spec_from_args(args: list[str]) -> JobSpec:
    """The job spec a long command builds from its flags, without running it.

    Args:
        args: The command line after ``eoengine``, e.g. ``["predict", "model/", "scene.tif", "--out", "map.tif"]``.

    Returns:
        The spec the command would run (:func:`eoengine.jobs.run.run_spec` runs it the same way).

    Raises:
        Invalid: The command is not one of :data:`JOB_COMMANDS`.
        typer.TyperException: The flags do not parse (a usage error, as the command line would say).

    """
    from eoengine.cli.jobs import collecting

    if not any(tuple(args[: len(c)]) == c for c in JOB_COMMANDS):
        raise Invalid(f"'{' '.join(args[:2])}' is not a job command",
                      f"use one of: {', '.join(' '.join(c) for c in JOB_COMMANDS)}")
    with collecting() as specs:
        app(args, standalone_mode=False)
    return specs[0]


def main() -> None:
    """Console entry point: user errors print one line and exit 2, never a traceback."""
    from eoengine.runtime import tune_allocator

    tune_allocator()
    _setup_logging()
    try:
        with using_reporter(RichReporter()):
            app()
    except ConfigError as exc:
        print(f"error: {exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for p in exc.problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(2)
    except EOError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
