"""Evaluate a model package on a dataset split and write an HTML report beside its run."""

from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from eoengine.datasets.remote import dataset_root
from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import NotFound
from eoengine.inference.output import ClassCoding, hex_rgb
from eoengine.inference.predict import predict_dataset_scene
from eoengine.models.heads import heads_from_meta
from eoengine.models.package import ModelPackage
from eoengine.training.heads import HEAD_SCALARS
from eoengine.training.metrics import per_class_metrics
from eoengine.training.plots import plot_confusion
from eoengine.training.scores import split_scores


@dataclass
class Evaluation:
    """Scores of one split and where the report is."""

    split: str
    scores: dict[str, Any]
    report: Path
    by_head: dict[str, dict[str, Any]]
    head_types: dict[str, str]


def _img(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" alt="{path.stem}">'


def quicklook(pkg: ModelPackage, manifest: DatasetManifest, out_dir: Path) -> Path:
    """Predict the dataset's first scene and render the class map (or value map) as a PNG with a legend.

    Args:
        pkg: The model package.
        manifest: The dataset's manifest (its first scene).
        out_dir: Where ``quicklook.tif`` and ``quicklook.png`` go.

    Returns:
        The PNG.

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    scene = manifest.scenes[0]
    cog = predict_dataset_scene(pkg, manifest, out_dir / "quicklook.tif")
    with rasterio.open(cog) as ds:
        step = max(1, max(ds.width, ds.height) // 1000)
        classes = ds.read(1, out_shape=(ds.height // step, ds.width // step))
        is_values = ds.dtypes[0] == "float32"
        quantity = ds.descriptions[0] or "value"
        kind = ds.tags().get("EOENGINE_CLASS_CODES", "positions")
    fig, ax = plt.subplots(figsize=(8, 7))
    if is_values:
        shown = ax.imshow(classes, cmap="viridis", interpolation="nearest")
        fig.colorbar(shown, ax=ax, shrink=0.7, label=quantity)
    else:
        colours = np.zeros((256, 4))
        for c in pkg.meta.classes:
            colours[c.index] = [v / 255 for v in hex_rgb(c.color)] + [1]
        positions = ClassCoding.of(pkg.meta.classes, kind).positions(classes)  # the map holds class values
        ax.imshow(colours[positions], interpolation="nearest")
        ax.legend(handles=[Patch(color=colours[c.index], label=c.name) for c in pkg.meta.classes],
                  loc="lower left", fontsize=8, framealpha=0.9)
    ax.set_axis_off()
    ax.set_title(f"prediction: scene {scene.id}")
    png = out_dir / "quicklook.png"
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _head_section(title: str, kind: str, scores: dict[str, Any], names: list[str], split: str, out_dir: Path) -> str:
    summary = "".join(f"<tr><td>{k}</td><td>{scores[k]:.4f}</td></tr>" for k in HEAD_SCALARS[kind])
    # under the page's "Scores": a head's own heading only when there are several, its subsections a level below
    part = (f"<h3>{html.escape(title)}</h3>" if title else "") + f"<table>{summary}</table>"
    sub = "h4" if title else "h3"
    if "confusion_matrix" in scores:
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{scores['iou_per_class'][i]:.3f}</td><td>{scores['precision_per_class'][i]:.3f}</td>"
            f"<td>{scores['recall_per_class'][i]:.3f}</td><td>{scores['f1_per_class'][i]:.3f}</td><td>{scores['support_per_class'][i]}</td></tr>"
            for i, n in enumerate(names)
        )
        png = plot_confusion(scores["confusion_matrix"], names, out_dir / f"confusion_matrix{'_' + title if title else ''}.png",
                             f"confusion matrix ({split})")
        unit = "pixels" if kind == "segmentation" else "chips"
        part += (f"<{sub}>Per class</{sub}><table><tr><th>class</th><th>IoU</th><th>precision</th><th>recall</th><th>F1</th>"
                 f"<th>{unit}</th></tr>{rows}</table><{sub}>Confusion matrix</{sub}>{_img(png)}")
    return part


def write_report(
    pkg: ModelPackage, split: str, by_head: dict[str, dict[str, Any]], manifest: DatasetManifest, out_dir: Path
) -> Path:
    """An HTML report: scores per head, per-class tables, confusion matrices, curves and a quick-look map.

    Args:
        pkg: The model package.
        split: The split scored.
        by_head: Scores per head name.
        manifest: The dataset's manifest (name, version, scenes for the quick-look map).
        out_dir: Where the report, its images and ``scores.json`` go.

    Returns:
        ``report.html``.

    """
    out_dir.mkdir(parents=True, exist_ok=True)
    heads = heads_from_meta(pkg.meta)
    sections = "".join(
        _head_section(h.name if len(heads) > 1 else "", h.type, by_head[h.name], pkg.class_names, split, out_dir)
        for h in heads
    )
    has_map = any(h.type in ("segmentation", "regression") for h in heads)
    look = quicklook(pkg, manifest, out_dir) if manifest.scenes and has_map else None
    curves = pkg.path.parent / "training_curves.png"
    meta = pkg.meta
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>eoengine report: {html.escape(meta.model)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>Model report</h1>
<p>Model <b>{html.escape(meta.model)}</b> for {html.escape(meta.task)} (run {html.escape(str(meta.run_id or ''))}),
dataset <b>{html.escape(manifest.name)}</b> version <code>{manifest.version[:12]}</code>, split <b>{split}</b>.</p>
<h2>Scores</h2>{sections}
{('<h2>Training curves</h2>' + _img(curves)) if curves.exists() else ''}
{('<h2>Quick-look map</h2>' + _img(look)) if look else ''}
</body></html>"""
    report = out_dir / "report.html"
    report.write_text(page, encoding="utf-8")
    (out_dir / "scores.json").write_text(json.dumps({"split": split, **by_head}, indent=2))
    return report


def evaluate(pkg: ModelPackage, dataset: Path | str | None = None, split: str = "test", report_dir: Path | None = None) -> Evaluation:
    """Score the model on a split of its dataset (or ``dataset``) and write the report.

    Args:
        pkg: The model package (``eoengine.models.package.load_package``).
        dataset: A dataset folder with the model's channels, or a served dataset's URL; default: the one it
            was trained on (for a model trained on a served dataset, its URL).
        split: The split to score (``train``, ``val``, ``test``).
        report_dir: Where the HTML report goes; default: ``report/`` beside the package.

    Returns:
        The scores (per head and per class) and the report's path.

    Raises:
        NotFound: The dataset folder does not exist (or the server has no dataset at the URL).
        EOError: The dataset's channels differ from the model's, or the split has no chips.

    """
    root = dataset_root(dataset or pkg.meta.dataset.path)
    if not (root / "manifest.json").exists():
        raise NotFound(f"dataset not found: {root}", "pass --dataset PATH to the dataset folder")
    by_head = split_scores(pkg, root, split)
    out_dir = report_dir or (pkg.path.parent / "report")
    report = write_report(pkg, split, by_head, DatasetManifest.read(root), out_dir)
    heads = heads_from_meta(pkg.meta)
    scores = {f"{h.prefix}{k}": by_head[h.name][k] for h in heads for k in HEAD_SCALARS[h.type]}
    for h in heads:
        scores |= per_class_metrics(by_head[h.name], pkg.class_names, h.prefix)
    _log_to_run(pkg, out_dir, split, scores)
    return Evaluation(split, by_head[heads[0].name], report, by_head, {h.name: h.type for h in heads})


def _log_to_run(pkg: ModelPackage, out_dir: Path, split: str, scores: dict[str, Any]) -> None:
    run_id, uri = pkg.meta.run_id, pkg.meta.tracking_uri
    if not run_id or not uri:
        return
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
        client.log_artifacts(run_id, str(out_dir), "report")
        for k, v in scores.items():
            client.log_metric(run_id, f"eval_{split}_{k}", v)
    except Exception as exc:  # noqa: BLE001 - the report exists locally; say why it is not in MLflow
        logging.getLogger(__name__).warning("report not logged to MLflow run %s: %s", run_id, str(exc).splitlines()[0])
