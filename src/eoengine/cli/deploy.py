"""Deployment commands: export, quantize, prune and register model packages."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
ModelArg = Annotated[str, typer.Argument(help="Model package folder, MLflow run id, runs:/<id> or models:/NAME@ALIAS")]
UriOpt = Annotated[str | None, typer.Option(help="MLflow tracking URI (for run ids and the registry)")]


def export(
    model: ModelArg,
    format: Annotated[str, typer.Option("--format", help="Export format (onnx)")] = "onnx",
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write (default: the package's model.onnx)")] = None,
    tolerance: Annotated[float, typer.Option(help="Largest logit difference to PyTorch accepted on real chips")] = 1e-4,
    tracking_uri: UriOpt = None,
) -> None:
    """Export a model to ONNX (dynamic batch and size) and check it against PyTorch on real chips."""
    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import ExportSpec

    spec = ExportSpec(model=model, format=format, output=output, tolerance=tolerance, tracking_uri=tracking_uri)
    if collected(spec):
        return
    result = run_spec(spec)
    check = result.check
    if check is None:  # a classical package
        out.print(f"{result.model} models are already ONNX: {result.path} (converted with skl2onnx at training, "
                  "scored through ONNX Runtime); nothing to export" + (f"; copied to {result.copied_to}" if result.copied_to else ""))
        return
    out.print(f"wrote {result.path}: dynamic batch and size; on {check.chips} real chips at sides "
              f"{', '.join(map(str, check.sizes_checked))} the logits differ from PyTorch by at most "
              f"{check.max_abs_diff:.2e} (tolerance {check.tolerance:g}); classes agree on {100 * check.class_agreement:.3f}% of pixels")


def _table(title: str, report: dict[str, dict[str, Any]], metric: str, base: str) -> None:
    table = Table(title=title)
    for col in ("variant", "size MB", "ms / batch", metric, f"Δ {metric}", "speed-up"):
        table.add_column(col, justify="right")
    ref = report[base]
    for name, r in report.items():
        if "error" in r:
            table.add_row(name, "", "", "", "", r["error"][:60])
            continue
        extra = f" ({100 * r['sparsity']:.0f}% zeros)" if "sparsity" in r else ""
        table.add_row(name + extra, f"{r['size_mb']:.2f}", f"{r['ms_per_batch']:.1f}", f"{r['scores'][metric]:.4f}",
                      f"{r['scores'][metric] - ref['scores'][metric]:+.4f}", f"{ref['ms_per_batch'] / r['ms_per_batch']:.2f}x")
    out.print(table)


def quantize(
    model: ModelArg,
    calibration_chips: Annotated[int, typer.Option(help="Train chips used to calibrate activations")] = 64,
    max_drop: Annotated[float | None, typer.Option(help="Keep int8 only if no graded slice's main metric drops more "
                                                      "(e.g. 0.01); sensitive layers stay fp32 until it holds")] = None,
    suite: Annotated[Path | None, typer.Option(help="--max-drop: the grading suite whose slices are judged "
                                                    "(default suite)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    tracking_uri: UriOpt = None,
) -> None:
    """Quantize to int8 with ONNX Runtime (static, calibrated on dataset chips, and dynamic); compare size, speed, scores."""
    from eoengine.cli.jobs import collected
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import QuantizeSpec

    spec = QuantizeSpec(model=model, calibration_chips=calibration_chips, max_drop=max_drop, suite=suite,
                        tracking_uri=tracking_uri)
    if collected(spec):
        return
    result = run_spec(spec)
    if result.budget is not None:
        _budget(result.budget, as_json)
        return
    if as_json:
        print(json.dumps(result.report, indent=2))
        return
    _table(f"quantization of {result.package} (test split)", result.report, result.metric, "pytorch_fp32")
    out.print(f"files: {', '.join(map(str, result.files))}; report: {result.report_file}")


def _budget(doc: dict[str, Any], as_json: bool) -> None:
    """Print a budgeted quantization: each attempt's worst slice, then the decision."""
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    table = Table(title=f"int8 within --max-drop {doc['max_drop']:g} ({doc['metric']}, {doc['split']} split slices)")
    for col in ("nodes left in fp32", "worst slice", "pixels", "fp32", "int8", "drop", "size MB"):
        table.add_column(col)
    for a in doc["attempts"]:
        w = a["worst"]
        table.add_row(str(len(a["excluded"])), w["where"], str(w["pixels"]), f"{w['reference']:.4f}",
                      f"{w['candidate']:.4f}", f"{w['drop']:.4f}", f"{a['size_mb']:.2f}")
    out.print(table)
    out.print(doc["verdict"])
    if doc["file"]:
        out.print(f"file: {doc['file']}" + (f" (fp32: {', '.join(doc['excluded_nodes'])})" if doc["excluded_nodes"] else ""))
    elif doc["removed_int8"]:
        out.print("the package's older model.int8.onnx was removed: it is fp32 only")


def prune(
    model: ModelArg,
    amount: Annotated[float, typer.Option(help="Share of weights (unstructured) or channels (structured) to remove")] = 0.5,
    method: Annotated[str, typer.Option(help="unstructured (L1, global) or structured (L2 over output channels)")] = "unstructured",
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tune this many epochs on the train split after pruning")] = 0,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate")] = 1e-4,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="New package folder (default: <package>-pruned)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    tracking_uri: UriOpt = None,
) -> None:
    """Prune a model (optionally fine-tuning it) into a new package; compare size, speed and scores."""
    from eoengine.deploy.compress import main_metric
    from eoengine.deploy.compress import prune as run
    from eoengine.deploy.registry import load_model_ref

    pkg = load_model_ref(model, tracking_uri)
    dest, report = run(pkg, amount, method, finetune_epochs, lr, output)
    if as_json:
        print(json.dumps({"package": str(dest), **report}, indent=2))
        return
    _table(f"pruning {amount:.0%} {method} (test split; sizes gzip-compressed)", report, main_metric(pkg), "original")
    out.print(f"pruned package: {dest}")


def register(
    model: ModelArg,
    name: Annotated[str, typer.Option(help="Registered model name")],
    alias: Annotated[list[str] | None, typer.Option(help="Alias(es) to point at this version, e.g. champion")] = None,
    gate: Annotated[Path | None, typer.Option(help="Grading suite the model must pass to take the alias(es)")] = None,
    gate_margin: Annotated[float, typer.Option(help="--gate: largest loss of the main metric on any slice vs the "
                                                    "alias's current model")] = 0.02,
    gate_report: Annotated[Path | None, typer.Option(help="--gate: report folder (default: gate/ beside the package)")] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Register a model package in the MLflow Model Registry (pyfunc with signature) and set aliases."""
    import mlflow

    from eoengine.deploy.registry import load_model_ref
    from eoengine.deploy.registry import register as run
    from eoengine.errors import Invalid

    if gate is not None and not alias:
        raise Invalid("--gate guards an alias, and none was given", "add --alias champion (or the alias to guard)")
    if gate_margin < 0:
        raise Invalid(f"--gate-margin {gate_margin:g} is negative", "give the largest loss allowed, e.g. 0.02")
    pkg = load_model_ref(model, tracking_uri)
    uri = tracking_uri or pkg.meta.tracking_uri or mlflow.get_tracking_uri()
    graded = _gate(pkg, name, alias or [], gate, gate_margin, gate_report, uri) if gate is not None else None
    reg = run(pkg, name, uri, alias)
    if graded is not None:
        from eoengine.grading.record import record

        record(pkg, graded[0], graded[1])
    names = ", ".join(f"models:/{name}@{a}" for a in reg.aliases)
    out.print(f"registered {reg.uri}" + (f" ({names})" if names else "") + f" in {uri}")


def _gate(pkg: Any, name: str, aliases: list[str], suite_file: Path, margin: float, folder: Path | None,
          uri: str) -> tuple[Any, Path]:
    """Grade the candidate against each alias's holder; exit 3 (nothing registered) when the gate refuses."""
    from eoengine.cli.grade import FAILED
    from eoengine.deploy.registry import registry_version, resolve_model_ref
    from eoengine.errors import NotFound
    from eoengine.grading.gate import gate
    from eoengine.grading.suite import load_suite
    from eoengine.models.package import load_package

    suite = load_suite(suite_file)
    root = folder or pkg.path.parent / "gate"
    verdict = None
    for alias in aliases:
        try:
            held = registry_version(f"models:/{name}@{alias}", uri)
        except NotFound:
            held = None
        holder = load_package(resolve_model_ref(f"models:/{name}/{held.version}", uri)) if held else None
        verdict = gate(pkg, holder, suite, root / alias, margin, str(suite_file))
        against = f"version {held.version}" if held else "no current model"
        if not verdict.passed:
            out.print(f"gate refused {name}@{alias} (against {against}):")
            for reason in verdict.reasons:
                out.print(f"  - {reason}")
            out.print(f"nothing registered; {name}@{alias} stays " + (f"on version {held.version}" if held else "unset")
                      + f"; report: {root / alias}")
            raise typer.Exit(FAILED)
        out.print(f"gate passed for {name}@{alias} (against {against}, grade {verdict.candidate.grade})")
    assert verdict is not None
    return verdict.candidate, root / aliases[-1] / "candidate"


def serve(
    model: ModelArg,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: AIP_HTTP_PORT or 8080)")] = None,
    api_key: Annotated[str | None, typer.Option(help="API key (default: EOENGINE_API_KEY, else a new random key)")] = None,
    name: Annotated[str, typer.Option(help="Model name in /v1/models/{name}:predict")] = "model",
    tiles_scene: Annotated[list[str] | None, typer.Option(help="Scene for /tiles (a stack, or one file per band); repeat")] = None,
    engine: Annotated[str, typer.Option(help="Engine for every route: auto, torch, onnx, onnx-int8")] = "auto",
    max_upload_mb: Annotated[float, typer.Option(help="Largest GeoTIFF upload accepted")] = 200.0,
    max_json_mb: Annotated[float, typer.Option(help="Largest JSON body accepted (instances, areas)")] = 20.0,
    catalog: Annotated[str | None, typer.Option(help="Catalog folder or STAC API URL for POST /predict/aoi")] = None,
    cache: Annotated[Path, typer.Option(help="Where /predict/aoi keeps fetched imagery")] = Path("eoengine-cache"),
    tracking_uri: UriOpt = None,
) -> None:
    """Serve a model over HTTP (FastAPI): GeoTIFF → COG, instances → predictions (Vertex AI / Earth Engine), tiles, metrics."""
    import os
    import secrets

    import uvicorn

    from eoengine.deploy.registry import load_model_ref
    from eoengine.serving.app import Settings, create_app

    pkg = load_model_ref(model, tracking_uri)
    key = api_key or os.environ.get("EOENGINE_API_KEY")
    if not key:
        key = secrets.token_urlsafe(24)
        out.print(f"API key (generated; set EOENGINE_API_KEY to choose one): {key}")
    settings = Settings(api_key=key, model_name=name, max_upload_mb=max_upload_mb, max_json_mb=max_json_mb, engine=engine,
                        tiles_scene=list(tiles_scene or []), catalog=catalog, cache=str(cache), predict_route=os.environ.get("AIP_PREDICT_ROUTE"),
                        health_route=os.environ.get("AIP_HEALTH_ROUTE"))
    app = create_app(pkg, settings)
    port = port or int(os.environ.get("AIP_HTTP_PORT", "8080"))
    out.print(f"serving {pkg.path} on http://{host}:{port} (OpenAPI: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
