"""The demo: the whole pipeline on the bundled Landsat 7 land-cover sample.

Dataset (Beam) → U-Net training (Lightning, MLflow) → test-split evaluation and report →
prediction map of the full scene (COG), compared with a per-pixel random forest on the
same spatial split.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import eoengine
from eoengine.errors import EOError

EXAMPLE = "nc_landsat7_landclass96"


def find_example(example: Path | None) -> Path:
    """The example folder: given, or ``examples/`` of this checkout."""
    if example is not None:
        folder = example
    else:
        folder = Path(eoengine.__file__).resolve().parents[2] / "examples" / EXAMPLE
    if not (folder / "eoengine.yaml").exists():
        raise EOError(f"demo example not found at {folder}", "run from a checkout of eoengine, or pass --example DIR")
    return folder


def run_demo(workdir: Path, example: Path | None, baseline: bool, console: Console) -> dict[str, float]:
    """Run the demo; returns the U-Net's (and baseline's) test accuracy and mean IoU."""
    from eoengine.cli.dataset import _summary
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.deploy.package import load_package
    from eoengine.evaluation.baseline import random_forest_baseline
    from eoengine.evaluation.evaluate import evaluate
    from eoengine.inference.predict import predict_dataset_scene
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
    scene = built.manifest["scenes"][0]
    map_path = predict_dataset_scene(pkg, built.manifest, cfg.output_path / "maps" / f"{scene['id']}.tif")
    scores = {"accuracy": ev.scores["accuracy"], "miou": ev.scores["miou"]}
    table = Table(title="test split (bottom half of the scene)")
    for col in ("model", "accuracy", "mean IoU", "kappa"):
        table.add_column(col, justify="right")
    table.add_row("U-Net", f"{ev.scores['accuracy']:.3f}", f"{ev.scores['miou']:.3f}", f"{ev.scores['kappa']:.3f}")
    if baseline:
        rf = random_forest_baseline(built.path, len(cfg.classes), trees=300, seed=cfg.dataset.seed)
        scores |= {"rf_accuracy": rf["accuracy"], "rf_miou": rf["miou"]}
        table.add_row("random forest (300 trees, per pixel)", f"{rf['accuracy']:.3f}", f"{rf['miou']:.3f}", f"{rf['kappa']:.3f}")
    console.print(table)
    console.print(f"report:   {ev.report}")
    console.print(f"map:      {map_path}")
    console.print(f"model:    {result.model_path}")
    console.print(f"MLflow:   run {result.run_id} in {result.tracking_uri}")
    console.print(f"          (browse: mlflow ui --backend-store-uri {result.tracking_uri})")
    console.print(f"test accuracy {ev.scores['accuracy']:.3f}, mean IoU {ev.scores['miou']:.3f} — done in {time.time() - start:.0f} s")
    return scores
