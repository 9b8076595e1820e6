"""The report card: one HTML page and ``grade.json`` with every number, side by side in the report folder.

The page holds the thresholds and the grade, the overall scores with their intervals, the weakest slices,
a table per slice dimension, the robustness table, the degradation curves, the reliability diagram, a map
of the main metric per spatial block, and a quick-look of each error map.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.files import atomic_write_json
from eoengine.grading.grade import GradeReport
from eoengine.grading.scoring import SliceScores

STYLE = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}table{border-collapse:collapse;"
         "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child"
         "{text-align:left}.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}img{max-width:100%}"
         ".grade{font-size:3em;font-weight:bold;border:3px solid #222;padding:0 .4em;display:inline-block}")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _img(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" alt="{path.stem}">'


def number(v: float | None) -> str:
    """A metric as the pages show it: three decimals, a dash for none."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _save(fig: Any, ax: Any, labels: tuple[str, str, str], out: Path) -> Path:
    """Label the axes (x, y, title), save the figure as a PNG and close it."""
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(labels[2])
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    _pyplot().close(fig)
    return out


def plot_curves(report: GradeReport, out: Path) -> Path | None:
    """The main metric against severity, one line per corruption, the clean sample's level dashed."""
    if not report.curves:
        return None
    plt = _pyplot()
    main = report.metrics[0]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for c in report.curves:
        ax.plot(c.severities, c.values[main], marker="o", label=c.corruption)
    ax.axhline(report.clean_sample[main], color="k", linestyle="--", label="clean")
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, ax, ("severity", main, f"degradation: {main} under corruptions"), out)


def plot_reliability(report: GradeReport, out: Path) -> Path | None:
    """Accuracy against confidence per bin (the diagonal is perfect calibration), bar width by pixels."""
    if report.calibration is None:
        return None
    plt = _pyplot()
    bins = [b for b in report.calibration.bins if b["pixels"] > 0]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins],
           width=[b["high"] - b["low"] for b in bins], edgecolor="k", alpha=0.7)
    labels = ("confidence (top-class probability)", "accuracy", f"reliability (ECE {report.calibration.ece:.3f})")
    return _save(fig, ax, labels, out)


def plot_block_map(report: GradeReport, out: Path) -> Path | None:
    """The main metric of each spatial block, placed on its scene's block grid (one panel per scene)."""
    table = next((t for t in report.slices if t.dimension == "block"), None)
    main = report.metrics[0]
    if table is None or not table.labels:
        return None
    plt = _pyplot()
    cells: dict[str, dict[tuple[int, int], float]] = {}
    for label, v, n in zip(table.labels, table.values[main], table.pixels, strict=True):
        scene, rc = label.rsplit(":", 1)
        r, c = (int(x) for x in rc.split(","))
        if n > 0:
            cells.setdefault(scene, {})[(r, c)] = float(v)
    scenes = sorted(cells)[:4]
    fig, axes = plt.subplots(1, len(scenes), figsize=(4.5 * len(scenes), 4), squeeze=False)
    for ax, scene in zip(axes[0], scenes, strict=True):
        grid = np.full((max(r for r, _ in cells[scene]) + 1, max(c for _, c in cells[scene]) + 1), np.nan)
        for (r, c), v in cells[scene].items():
            grid[r, c] = v
        shown = ax.imshow(grid, cmap="RdYlGn_r" if main in ("mae", "rmse") else "RdYlGn", interpolation="nearest")
        ax.set_title(f"{main} per block: {scene}", fontsize=9)
        ax.set_axis_off()
        fig.colorbar(shown, ax=ax, shrink=0.7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_error_map(path: Path, out: Path) -> Path:
    """A quick-look PNG of an error map COG (its colour table; absolute error with a colour bar)."""
    import rasterio

    plt = _pyplot()
    with rasterio.open(path) as ds:
        step = max(1, max(ds.width, ds.height) // 800)
        data = ds.read(1, out_shape=(max(1, ds.height // step), max(1, ds.width // step)))
        cmap = ds.colormap(1) if ds.dtypes[0] == "uint8" else None
    fig, ax = plt.subplots(figsize=(7, 6))
    if cmap:
        lut = np.zeros((256, 4))
        for k, rgba in cmap.items():
            lut[k] = [x / 255 for x in rgba]
        ax.imshow(lut[data], interpolation="nearest")
    else:
        fig.colorbar(ax.imshow(data, cmap="magma", interpolation="nearest"), ax=ax, shrink=0.7, label="absolute error")
    ax.set_title(f"error map: {path.stem.removeprefix('error_')}")
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _slice_table(t: SliceScores, metrics: list[str]) -> str:
    shown = [m for m in metrics if m in t.values]
    head = "".join(f"<th>{m}</th>" for m in shown)
    body = ""
    for i, label in enumerate(t.labels):
        cells = "".join(
            f"<td>{number(float(t.values[m][i]))}"
            + (f" <small>[{number(float(t.low[m][i]))}, {number(float(t.high[m][i]))}]</small>" if m in t.low else "")
            + "</td>" for m in shown)
        body += f"<tr><td>{html.escape(label)}</td><td>{int(t.pixels[i])}</td>{cells}</tr>"
    return f"<table><tr><th>{html.escape(t.dimension)}</th><th>pixels</th>{head}</tr>{body}</table>"


def _curves(report: GradeReport) -> str:
    if not report.curves:
        return ""
    main = report.metrics[0]
    head = "".join(f"<th>severity {s}</th>" for s in range(1, 6))
    rows = ""
    for c in report.curves:
        by = dict(zip(c.severities, zip(c.values[main], c.drops[main], strict=True), strict=True))
        rows += f"<tr><td>{html.escape(c.corruption)}</td>" + "".join(
            f"<td>{by[s][0]:.3f} <small>({-by[s][1]:+.1%})</small></td>" if s in by else "<td></td>" for s in range(1, 6))
        rows += "</tr>"
    clean = report.clean_sample[main]
    return (f"<h2>Robustness ({main}; clean sample {clean:.3f}, change in brackets)</h2>"
            f"<table><tr><th>corruption</th>{head}</tr>{rows}</table>")


def _failing(rows: list[dict[str, Any]]) -> str:
    shown = ", ".join(f"{r['slice']} ({r['value']:.3f})" for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _thresholds(report: GradeReport) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(o.capability)}</td><td>{html.escape(o.requirement)}</td><td>{o.shown()}</td>"
        f"<td class=\"{'pass' if o.passed else 'fail'}\">{'pass' if o.passed else 'fail'}</td>"
        f"<td>{html.escape(_failing(o.failing))}</td></tr>"
        for o in report.outcomes)
    return ("<table><tr><th>capability</th><th>requirement</th><th>measured</th><th>result</th><th>failing slices</th></tr>"
            f"{rows}</table>")


def write_report_card(report: GradeReport, out_dir: Path) -> Path:
    """Write ``report.html`` and ``grade.json`` (and the figures' PNGs) into ``out_dir``.

    Args:
        report: The grading's result.
        out_dir: The report folder.

    Returns:
        The HTML page.

    """
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "grade.json", report.as_dict())
    figures = [("Degradation curves", plot_curves(report, out_dir / "degradation.png")),
               ("Reliability diagram", plot_reliability(report, out_dir / "reliability.png")),
               ("Spatial blocks", plot_block_map(report, out_dir / "blocks.png"))]
    figures += [(f"Error map: {s}", plot_error_map(p, out_dir / f"error_{s}.png")) for s, p in report.error_maps.items()]
    weak = "".join(f"<tr><td>{html.escape(w['dimension'])}</td><td>{html.escape(w['slice'])}</td><td>{w['pixels']}</td>"
                   f"<td>{w['value']:.3f}</td></tr>" for w in report.weakest)
    cal = report.calibration
    m, d = report.model, report.data
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>eoengine report card: {html.escape(m['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>Report card <span class="grade" id="grade">{report.grade}</span></h1>
<p>Model <b>{html.escape(m['name'])}</b> ({html.escape(m['task'])}, run {html.escape(str(m['run_id'] or '–'))}, engine {html.escape(str(m.get('engine', 'torch')))}) graded on dataset
<b>{html.escape(d['name'])}</b> <code>{d['version'][:12]}</code>, split <b>{d['split']}</b>: {d['chips']} chips,
{d['labelled_pixels']} labelled pixels in {d['blocks']} spatial blocks of {d['block_size']} px (intervals: block bootstrap).</p>
<h2>Thresholds</h2>{_thresholds(report)}
<h2>Overall</h2>{_slice_table(report.overall, report.metrics)}
{f"<p>Expected calibration error: <b>{cal.ece:.3f}</b>" + (f" [{cal.ece_ci[0]:.3f}, {cal.ece_ci[1]:.3f}]" if cal.ece_ci else "") + "</p>" if cal else ""}
<h2>Weakest slices ({report.metrics[0]})</h2><table><tr><th>dimension</th><th>slice</th><th>pixels</th><th>{report.metrics[0]}</th></tr>{weak}</table>
{_curves(report)}
<h2>Slices</h2>{''.join(_slice_table(t, report.metrics) for t in report.slices)}
{''.join(f'<h2>{html.escape(title)}</h2>{_img(p)}' for title, p in figures if p)}
<h2>Applicability</h2><pre>{html.escape(json.dumps(report.applicability, indent=1))}</pre>
</body></html>"""
    out = out_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
