"""The demo: the whole pipeline on the bundled Landsat 7 land-cover sample.

Dataset (Beam) → U-Net training (Lightning, MLflow) → test-split evaluation and report →
prediction map of the full scene (COG), compared with a per-pixel random forest on the
same spatial split.

The figures the demo prints are also written to ``figures.json`` in its workdir, in the
form the README's demo table shows them, so :func:`check_readme` (``eoengine demo
--check-readme README.md``, ``make check-readme`` and a slow test) can keep the README true.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import eoengine
from eoengine.errors import EOError, NotFound

EXAMPLE = "nc_landsat7_landclass96"
FIGURES = "figures.json"
COLUMNS = ("accuracy", "mean IoU", "kappa")
UNET_ROW = "U-Net (demo config)"
FOREST_ROW = "random forest, 300 trees, per pixel"
VERSION_PATTERN = re.compile(r"dataset version `([0-9a-f]{12})`")
"""How the README quotes the demo's dataset version."""
CPU_PATTERN = re.compile(r"CPU kind `([^`]+)`")
"""How the README quotes the kind of CPU its trained model's figures were printed on."""
TRAINED_ROWS = (UNET_ROW,)
"""Rows whose figures depend on the CPU kind (training sums in the kernels' order); the others do not."""


def cpu_kind() -> str:
    """The kind of CPU PyTorch trains on, as far as its figures depend on it.

    PyTorch's CPU kernels (ATen's and oneDNN's) pick code by instruction set and sum in an
    order that depends on it and on the thread count, so a seeded training run reproduces its
    scores on the same CPU model with the same threads, and trains to other scores elsewhere.

    Returns:
        E.g. ``"AuthenticAMD family 25 model 1, AVX2, 2 threads"`` (vendor, family and model as
        ``/proc/cpuinfo`` gives them, or the platform's processor name elsewhere).

    """
    import platform

    import torch

    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
            if not line.strip():
                break
        name = f"{info['vendor_id']} family {info['cpu family']} model {info['model']}"
    except (OSError, KeyError):
        name = platform.processor() or platform.machine()
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"


def find_example(example: Path | None) -> Path:
    """The example folder: given, or ``examples/`` of this checkout."""
    if example is not None:
        folder = example
    else:
        folder = Path(eoengine.__file__).resolve().parents[2] / "examples" / EXAMPLE
    if not (folder / "eoengine.yaml").exists():
        raise NotFound(f"demo example not found at {folder}", "run from a checkout of eoengine, or pass --example DIR")
    return folder


def figure_cells(scores: Mapping[str, float]) -> list[str]:
    """A model's cells in the demo table: accuracy, mean IoU and kappa to three decimals.

    Args:
        scores: Test-split scores with the keys ``accuracy``, ``miou`` and ``kappa``.

    Returns:
        The three cells as printed, e.g. ``["0.667", "0.260", "0.480"]``.

    """
    return [f"{scores[k]:.3f}" for k in ("accuracy", "miou", "kappa")]


def write_figures(workdir: Path, version: str, rows: Mapping[str, list[str]]) -> Path:
    """Write the demo's printed figures to ``workdir/figures.json`` (whole or not at all).

    Args:
        workdir: The demo's output folder.
        version: The dataset version, as printed (12 hex digits).
        rows: Table rows by model label, each the cells of :data:`COLUMNS`.

    Returns:
        The path of the written file.

    """
    import torch

    path = workdir / FIGURES
    tmp = path.with_name(f".{FIGURES}.partial")
    # CPU training results depend on the CPU kind and thread count (summation order): recorded beside them
    figures = {"dataset_version": version, "columns": list(COLUMNS), "rows": dict(rows),
               "torch_threads": torch.get_num_threads(), "cpu": cpu_kind()}
    tmp.write_text(json.dumps(figures, indent=2))
    os.replace(tmp, path)
    return path


def readme_figures(text: str) -> tuple[str | None, dict[str, list[str]]]:
    """The demo figures a README quotes: its dataset version and its table rows.

    Args:
        text: The README's Markdown.

    Returns:
        The quoted dataset version (None if absent) and every Markdown table row, first cell
        (the model) to the remaining cells.

    """
    found = VERSION_PATTERN.search(text)
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if len(line) > 1 and line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split("|")]
            rows[cells[0]] = cells[1:]
    return (found.group(1) if found else None), rows


def readme_differences(text: str, figures: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Where a README's demo figures differ from those a demo run wrote.

    The trained model's row (:data:`TRAINED_ROWS`) is compared only when the run's CPU kind is
    the one the README quotes (:func:`cpu_kind`); on another kind it is named as not compared.

    Args:
        text: The README's Markdown.
        figures: The contents of a demo run's ``figures.json``.

    Returns:
        One phrase per difference (empty when the README is true), and the rows not compared.

    """
    version, rows = readme_figures(text)
    quoted_cpu = CPU_PATTERN.search(text)
    same_cpu = quoted_cpu is not None and quoted_cpu.group(1) == figures.get("cpu")
    diffs = [] if version == figures["dataset_version"] else [
        f"dataset version {version or '(not quoted)'} ≠ {figures['dataset_version']}"]
    skipped: list[str] = []
    for model, cells in figures["rows"].items():
        quoted = rows.get(model)
        if quoted is None:
            diffs.append(f"no row '{model}'")
            continue
        if model in TRAINED_ROWS and not same_cpu:
            skipped.append(model)
            continue
        diffs += [f"{model} {col} {q} ≠ {c}" for col, q, c in zip(figures["columns"], quoted, cells, strict=False) if q != c]
    return diffs, skipped


def check_readme(readme: Path, figures: Path) -> list[str]:
    """Raise unless the README quotes exactly the figures a demo run printed.

    Args:
        readme: The README to check.
        figures: A demo run's ``figures.json``.

    Returns:
        The rows not compared because the run's CPU kind is not the README's (see
        :func:`readme_differences`).

    Raises:
        EOError: a file is missing, or the README's figures differ (each difference named).

    """
    for path in (readme, figures):
        if not path.is_file():
            raise NotFound(f"{path} not found", "pass the README and a demo workdir's figures.json")
    diffs, skipped = readme_differences(readme.read_text(encoding="utf-8"), json.loads(figures.read_text()))
    if diffs:
        raise EOError(f"{readme} does not quote what the demo printed: {'; '.join(diffs)}",
                      f"put the figures of {figures} into the README's demo section")
    return skipped


def run_demo(workdir: Path, example: Path | None, baseline: bool, console: Console) -> dict[str, float]:
    """Run the demo and write its printed figures to ``workdir/figures.json``.

    Args:
        workdir: Where the dataset, runs, report and map go.
        example: The example folder (default: the checkout's bundled sample).
        baseline: Also fit and score the 300-tree random forest.
        console: Where the progress and the results table are printed.

    Returns:
        The U-Net's (and the baseline's) test accuracy and mean IoU.

    Raises:
        EOError: the example folder is missing, or any stage meets bad input.

    """
    from eoengine.cli.dataset import _summary
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.grading.baseline import random_forest_baseline
    from eoengine.grading.evaluate import evaluate
    from eoengine.inference.predict import predict_dataset_scene
    from eoengine.models.package import load_package
    from eoengine.training.train import train

    start = time.time()
    folder = find_example(example)
    cfg = load_config(folder / "eoengine.yaml")
    cfg.output_dir = str(workdir.resolve())
    console.rule("1/4 dataset (Apache Beam)")
    built = build_dataset(cfg)
    console.print(f"dataset: {built.path} (version {built.version[:12]})")
    _summary(built.manifest)
    console.rule("2/4 training (Lightning + MLflow)")
    result = train(cfg, built.path)
    console.rule("3/4 evaluation")
    pkg = load_package(result.model_path)
    ev = evaluate(pkg, built.path, "test")
    console.rule("4/4 prediction map")
    scene = built.manifest.scenes[0]
    map_path = predict_dataset_scene(pkg, built.manifest, cfg.output_path / "maps" / f"{scene.id}.tif")
    scores = {"accuracy": ev.scores["accuracy"], "miou": ev.scores["miou"]}
    rows = {UNET_ROW: figure_cells(ev.scores)}
    if baseline:
        rf = random_forest_baseline(built.path, len(cfg.classes), trees=300, seed=cfg.dataset.seed)
        scores |= {"rf_accuracy": rf["accuracy"], "rf_miou": rf["miou"]}
        rows[FOREST_ROW] = figure_cells(rf)
    table = Table(title="test split (bottom half of the scene)")
    for col in ("model", *COLUMNS):
        table.add_column(col, justify="right")
    for model, cells in rows.items():
        table.add_row(model, *cells)
    console.print(table)
    console.print(f"report:   {ev.report}")
    console.print(f"map:      {map_path}")
    console.print(f"model:    {result.model_path}")
    console.print(f"MLflow:   run {result.run_id} in {result.tracking_uri}")
    console.print(f"          (browse: mlflow ui --backend-store-uri {result.tracking_uri})")
    console.print(f"figures:  {write_figures(workdir, built.version[:12], rows)}")
    console.print(f"test accuracy {ev.scores['accuracy']:.3f}, mean IoU {ev.scores['miou']:.3f} — done in {time.time() - start:.0f} s")
    return scores
