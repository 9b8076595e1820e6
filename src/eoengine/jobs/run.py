"""Run a job spec in-process: the stage functions its command calls, with the command's checks and messages.

Stages are imported inside the runners, so importing this module (say, in a server that only
stores specs) loads none of them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, overload

from eoengine.errors import Invalid, NotFound
from eoengine.jobs.results import (
    BuildDatasetResult,
    EvaluateResult,
    ExportResult,
    FetchedItem,
    FetchResult,
    GradedModel,
    GradeResult,
    JobResult,
    OnnxCheck,
    PredictAreaResult,
    PredictResult,
    PrelabelResult,
    QuantizeResult,
    SweepResult,
    SweepTrial,
    TrainResult,
)
from eoengine.jobs.specs import (
    PROJECT_CATALOG,
    BuildDatasetSpec,
    EvaluateSpec,
    ExportSpec,
    FetchSpec,
    GradeSpec,
    JobSpec,
    PredictAreaSpec,
    PredictSpec,
    PrelabelSpec,
    QuantizeSpec,
    SweepSpec,
    TrainSpec,
)

if TYPE_CHECKING:
    from pathlib import Path

    from eoengine.config.schema import PredictionConfig
    from eoengine.models.package import ModelPackage


@overload
def run_spec(spec: BuildDatasetSpec) -> BuildDatasetResult: ...
@overload
def run_spec(spec: TrainSpec) -> TrainResult: ...
@overload
def run_spec(spec: SweepSpec) -> SweepResult: ...
@overload
def run_spec(spec: EvaluateSpec) -> EvaluateResult: ...
@overload
def run_spec(spec: PredictSpec) -> PredictResult: ...
@overload
def run_spec(spec: PredictAreaSpec) -> PredictAreaResult: ...
@overload
def run_spec(spec: FetchSpec) -> FetchResult: ...
@overload
def run_spec(spec: ExportSpec) -> ExportResult: ...
@overload
def run_spec(spec: QuantizeSpec) -> QuantizeResult: ...
@overload
def run_spec(spec: GradeSpec) -> GradeResult: ...
@overload
def run_spec(spec: PrelabelSpec) -> PrelabelResult: ...
def run_spec(spec: JobSpec) -> JobResult:
    """Run a job in this process, as its command would with the same flags.

    Args:
        spec: What to run (see :mod:`eoengine.jobs.specs`).

    Returns:
        The result of the spec's kind: what the command prints when it is done.

    Raises:
        EOError: Bad input (its kind: :class:`Invalid`, :class:`NotFound`, ...), with the message the command gives for it.

    """
    match spec:
        case BuildDatasetSpec():
            return _build(spec)
        case TrainSpec():
            return _train(spec)
        case SweepSpec():
            return _sweep(spec)
        case EvaluateSpec():
            return _evaluate(spec)
        case PredictSpec():
            return _predict(spec)
        case PredictAreaSpec():
            return _predict_area(spec)
        case FetchSpec():
            return _fetch(spec)
        case ExportSpec():
            return _export(spec)
        case QuantizeSpec():
            return _quantize(spec)
        case GradeSpec():
            return _grade(spec)
        case PrelabelSpec():
            return _prelabel(spec)


def _build(spec: BuildDatasetSpec) -> BuildDatasetResult:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset

    built = build_dataset(load_config(spec.config), spec.runner, list(spec.beam_args))
    return BuildDatasetResult(path=built.path, version=built.version, up_to_date=built.up_to_date)


def _train(spec: TrainSpec) -> TrainResult:
    from eoengine.config.load import load_config
    from eoengine.training.train import train

    run = train(load_config(spec.config), spec.dataset, spec.tracking_uri, spec.resume)
    return TrainResult(run_id=run.run_id, best_epoch=run.best_epoch, scores={"val": run.val} | ({"test": run.test} if run.test else {}),
                       model_path=run.model_path, tracking_uri=run.tracking_uri, primary=run.primary)


def _sweep(spec: SweepSpec) -> SweepResult:
    from eoengine.config.load import load_config
    from eoengine.training.sweep import run_sweep

    study = run_sweep(load_config(spec.config), spec.trials, spec.name)
    trials = [SweepTrial.model_validate(t) for t in study.trials]
    best = next(t for t in trials if t.run_id == study.best_run_id)
    return SweepResult(study=study.study, metric=study.metric, best=best, trials=trials)


def _evaluate(spec: EvaluateSpec) -> EvaluateResult:
    from eoengine.deploy.registry import load_model_ref
    from eoengine.grading.evaluate import evaluate

    pkg = load_model_ref(spec.model, spec.tracking_uri)
    ev = evaluate(pkg, spec.dataset, spec.split)
    return EvaluateResult(split=ev.split, scores=ev.scores, by_head=ev.by_head, head_types=ev.head_types,
                          class_names=pkg.class_names, report=ev.report)


def _predict(spec: PredictSpec) -> PredictResult:
    """One scene (``scene``) or many (``scenes``): check the outputs can be written, then map."""
    from eoengine.deploy.registry import resolve_model_ref
    from eoengine.inference.predict import prediction_options
    from eoengine.models.package import load_package
    from eoengine.raster.cog import check_writable

    if bool(spec.scene) == bool(spec.scenes):
        raise Invalid("give one scene (positional files) or several with --scene", "e.g. --scene a.tif --scene b.tif --out mosaic.tif")
    for target in (spec.output, spec.probabilities, spec.out_dir and spec.out_dir / "map.tif"):
        if target is not None:
            check_writable(target)
    model_path = resolve_model_ref(spec.model, spec.tracking_uri)
    pkg = load_package(model_path)
    opts = prediction_options(pkg.meta.prediction, tile_size=spec.tile_size, overlap=spec.overlap,
                              batch_size=spec.batch_size, class_codes=spec.class_codes)
    if spec.scenes:
        return PredictResult(maps=_predict_many(spec, model_path, pkg, opts))
    return _predict_one(spec, pkg, opts)


def _predict_many(spec: PredictSpec, model_path: Path, pkg: ModelPackage, opts: PredictionConfig) -> list[Path]:
    from eoengine.inference.predict import Predictor

    many = [s.split(",") for s in spec.scenes or []]
    if spec.beam:
        from eoengine.inference.beam import predict_beam

        return predict_beam(model_path, many, opts, spec.engine, spec.output, spec.out_dir, spec.runner,
                            rows_per_element=spec.rows_per_element)
    from eoengine.inference.many import predict_many

    return predict_many(Predictor(pkg, opts, spec.engine), many, spec.output, spec.out_dir)


def _predict_one(spec: PredictSpec, pkg: ModelPackage, opts: PredictionConfig) -> PredictResult:
    from eoengine.inference.predict import Predictor
    from eoengine.inference.sources import sources_for_package
    from eoengine.raster.scene import SceneReader

    if spec.beam or spec.out_dir:
        raise Invalid("--beam and --out-dir are for scenes given with --scene", "e.g. --scene a.tif --scene b.tif --out-dir maps/")
    if spec.output is None:
        raise Invalid("no output given", "add --out map.tif")
    sources = sources_for_package(pkg.meta, spec.scene or [])
    with SceneReader(sources, pkg.meta.resampling) as reader:
        Predictor(pkg, opts, spec.engine).predict(reader, spec.output, spec.probabilities, spec.scene)
    return PredictResult(maps=[spec.output], probabilities=spec.probabilities)


def _area_source(spec: PredictAreaSpec) -> str:
    """Where the area's scenes are searched: the STAC API, the catalog folder, or the config's project catalog."""
    from eoengine.config.load import load_config

    if spec.stac_api and spec.catalog:
        raise Invalid("give catalog or stac_api, not both", "one source of scenes (neither: the project's catalog)")
    if spec.stac_api:
        return spec.stac_api
    if spec.catalog is not None:
        catalog = spec.catalog
    elif spec.config is not None:
        catalog = load_config(spec.config).output_path / PROJECT_CATALOG
    else:
        raise Invalid("no catalog to search", "give catalog (a STAC catalog folder), stac_api (a URL) or config")
    if not catalog.exists():
        raise NotFound(f"no STAC catalog at {catalog}", "build the project's catalog (the server does when its imagery "
                                                        "is listed), or give catalog or stac_api")
    return str(catalog)


def _predict_area(spec: PredictAreaSpec) -> PredictAreaResult:
    """What the model server's ``POST /predict/aoi`` runs: :func:`eoengine.inference.area.map_area`."""
    from eoengine.config.query import SearchQuery
    from eoengine.deploy.registry import load_model_ref
    from eoengine.inference.area import map_area
    from eoengine.inference.predict import Predictor
    from eoengine.raster.cog import check_writable
    from eoengine.sourcing.search import aoi_geometry

    if spec.bbox and spec.aoi:
        raise Invalid("give bbox or aoi, not both", "use one area filter")
    query = SearchQuery.of({"bbox": spec.bbox, "intersects": aoi_geometry(spec.aoi), "datetime": spec.datetime,
                            "ids": spec.ids, "collections": spec.collections, "max_cloud": spec.max_cloud})
    check_writable(spec.output)
    source = _area_source(spec)
    predictor = Predictor(load_model_ref(spec.model, spec.tracking_uri), engine=spec.engine)
    done = map_area(query, predictor, source, spec.cache, spec.output, spec.datetimes)
    return PredictAreaResult(map=done.map, scene_ids=done.scene_ids, scenes=done.scenes, datetimes=done.datetimes)


def _fetch(spec: FetchSpec) -> FetchResult:
    """Read the items, check the area (as a search's), then fetch."""
    import pystac

    from eoengine.config.query import SearchQuery
    from eoengine.sourcing.fetch import fetch
    from eoengine.sourcing.search import aoi_geometry
    from eoengine.sourcing.storage import parse_options

    try:
        collection = pystac.ItemCollection.from_file(str(spec.items))
    except Exception as exc:  # noqa: BLE001 - any unreadable JSON
        kind = Invalid if spec.items.exists() else NotFound
        raise kind(f"cannot read items from {spec.items}: {exc}", "pass the JSON written by 'source search --out'") from None
    if spec.bbox and spec.aoi:
        raise Invalid("give --bbox or --aoi, not both", "use one area filter")
    area = SearchQuery.of({"bbox": spec.bbox, "intersects": aoi_geometry(spec.aoi)}).area()
    results = fetch(list(collection), spec.bands.split(","), spec.cache, area, spec.crs, spec.resolution, spec.workers,
                    parse_options(spec.storage))
    return FetchResult(items=[FetchedItem.model_validate(r) for r in results])


def _export(spec: ExportSpec) -> ExportResult:
    """Export and check a network; a classical package is already ONNX (its graph is copied if asked)."""
    from eoengine.deploy.onnx import export_checked
    from eoengine.deploy.registry import load_model_ref
    from eoengine.models.classical import is_classical

    if spec.format != "onnx":
        raise Invalid(f"unknown export format '{spec.format}'", "use --format onnx")
    pkg = load_model_ref(spec.model, spec.tracking_uri)
    name = pkg.meta.model
    if is_classical(name):
        return _classical_graph(pkg, spec.output)
    check = export_checked(pkg, spec.output, spec.tolerance)
    return ExportResult(path=check.path, model=name, check=OnnxCheck.model_validate(check))


def _classical_graph(pkg: ModelPackage, output: Path | None) -> ExportResult:
    """A classical package's own ONNX graph, copied to ``output`` if given."""
    import shutil

    from eoengine.models.package import ONNX

    graph = pkg.path / ONNX
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(graph, output)
    return ExportResult(path=graph, model=pkg.meta.model, copied_to=output)


def _quantize(spec: QuantizeSpec) -> QuantizeResult:
    from eoengine.deploy.compress import INT8_DYNAMIC, INT8_STATIC, main_metric, quantize
    from eoengine.deploy.registry import load_model_ref

    if spec.max_drop is not None:
        return _quantize_within(spec)
    if spec.suite is not None:
        raise Invalid("--suite is only read with --max-drop", "add --max-drop (e.g. 0.01), or leave --suite out")
    pkg = load_model_ref(spec.model, spec.tracking_uri)
    report = quantize(pkg, spec.calibration_chips)
    return QuantizeResult(package=pkg.path, metric=main_metric(pkg), report=report,
                          files=[pkg.path / INT8_STATIC, pkg.path / INT8_DYNAMIC], report_file=pkg.path / "quantization.json",
                          budget=None)


def _quantize_within(spec: QuantizeSpec) -> QuantizeResult:
    """Int8 within a budget of slice drops (the suite is read before the model is fetched)."""
    from eoengine.deploy.registry import load_model_ref
    from eoengine.grading.quantize import BUDGET_REPORT, quantize_within
    from eoengine.grading.suite import load_suite

    assert spec.max_drop is not None
    suite = load_suite(spec.suite)
    pkg = load_model_ref(spec.model, spec.tracking_uri)
    result = quantize_within(pkg, suite, spec.max_drop, str(spec.suite or "default suite"), spec.calibration_chips)
    return QuantizeResult(package=pkg.path, metric=result.metric, report={}, files=[result.file] if result.file else [],
                          report_file=pkg.path / BUDGET_REPORT, budget=result.as_dict())


def _grade(spec: GradeSpec) -> GradeResult:
    """Grade one model (report card, MLflow record) or several side by side (and the comparison)."""
    from eoengine.deploy.registry import load_model_ref
    from eoengine.grading.compare import compare
    from eoengine.grading.grade import grade
    from eoengine.grading.record import record
    from eoengine.grading.report import write_report_card
    from eoengine.grading.suite import load_suite

    # an unknown engine or baseline is refused by select_engine / compare, before anything is written
    suite = load_suite(spec.suite)  # a bad suite fails before any model is fetched
    source = str(spec.suite) if spec.suite else "default suite"
    pkgs = [load_model_ref(m, spec.tracking_uri) for m in spec.models]
    folder = spec.report_dir or pkgs[0].path.parent / "grade"
    if len(pkgs) == 1 and spec.baseline is None:
        report = grade(pkgs[0], suite, folder, source, spec.engine)
        page = write_report_card(report, folder)
        graded = _graded(pkgs[0].path.name, pkgs[0].path, report, page, record(pkgs[0], report, folder))
        return GradeResult(metric=report.metrics[0], models=[graded], comparison=None)
    result = compare(pkgs, suite, folder, source, spec.baseline, spec.engine)
    models = []
    for i, (label, report) in enumerate(result.reports.items()):
        pkg = pkgs[i] if i < len(pkgs) else None  # the baseline has no package or run
        tagged = record(pkg, report, folder / label) if pkg is not None else []
        models.append(_graded(label, pkg.path if pkg else None, report, folder / label / "report.html", tagged))
    return GradeResult(metric=result.metric, models=models, comparison=folder / "comparison.html",
                       pairs=result.pairs)


def _graded(label: str, package: Path | None, report: Any, page: Path, tagged: list[str]) -> GradedModel:
    overall = report.overall
    scores = {m: [_finite(v[0]), *((_finite(overall.low[m][0]), _finite(overall.high[m][0])) if m in overall.low
                                   else (None, None))] for m, v in overall.values.items()}
    outcomes = [{"capability": o.capability, "requirement": o.requirement, "measured": o.shown(), "passed": o.passed}
                for o in report.outcomes]
    return GradedModel(label=label, package=package, grade=report.grade, outcomes=outcomes, overall=scores,
                       ece=report.calibration.ece if report.calibration is not None else None,
                       weakest=report.weakest, report_card=page, document=page.parent / "grade.json", tagged=tagged)


def _finite(v: Any) -> float | None:
    return float(v) if math.isfinite(float(v)) else None


def _prelabel(spec: PrelabelSpec) -> PrelabelResult:
    """Predict the cells' windows with the package's tiling; write their entropies (and polygons)."""
    from rasterio.windows import Window

    from eoengine.deploy.registry import load_model_ref
    from eoengine.inference.predict import Predictor
    from eoengine.inference.prelabel import prelabel_windows
    from eoengine.inference.sources import sources_for_package
    from eoengine.raster.scene import SceneReader

    pkg = load_model_ref(spec.model, spec.tracking_uri)
    windows = {c.id: Window(c.col_off, c.row_off, c.width, c.height) for c in spec.cells}
    with SceneReader(sources_for_package(pkg.meta, spec.scene), pkg.meta.resampling) as reader:
        made = prelabel_windows(Predictor(pkg, engine=spec.engine), reader, windows, spec.output, spec.polygons,
                                {"model": spec.model, "item": spec.item})
    return PrelabelResult(output=spec.output, model=spec.model, item=spec.item, cells=made["cells"], features=made["features"])
