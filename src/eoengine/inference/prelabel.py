"""Pre-labelling: a model's class polygons and uncertainty for pixel windows (annotation cells) of a scene.

:func:`predict_window` predicts one window exactly as a whole-scene prediction would: the
tiles of the scene's global tile grid (the package's ``tile_size`` and ``overlap``) that touch
the window run, each with the context of its whole tile, and are blended with the same cosine
weights; the window is then cut out. :func:`window_entropy` is the mean Shannon entropy (nats)
of the blended class probabilities over the window's pixels with data — the model's
uncertainty there, which ranks cells for annotation. :func:`prelabel_windows` does both for
many windows and writes what it found (polygons in EPSG:4326 with their class, pixel count and
score = the mean max-probability inside) as one JSON file, written under a temporary name and
renamed, so a half-written result is never read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio.features
from affine import Affine
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely.geometry import mapping

from eoengine.errors import EOError
from eoengine.inference.predict import Predictor
from eoengine.inference.preprocess import model_input
from eoengine.inference.regions import Region
from eoengine.inference.tiling import tile_positions
from eoengine.labels.polygons import MIN_PIXELS, TOLERANCE_PX, class_polygons
from eoengine.progress import progress_task
from eoengine.raster.scene import SceneReader

LONLAT = "EPSG:4326"


@dataclass(frozen=True)
class WindowPrediction:
    """A window's blended class probabilities (K, h, w), class map (codes) and nodata mask, and its transform."""

    probabilities: np.ndarray
    classes: np.ndarray
    nodata: np.ndarray
    transform: Any


def _touching(length: int, tile: int, overlap: int, start: int, stop: int) -> list[int]:
    """Origins of the scene's tiles along one axis that overlap pixels ``start``..``stop``."""
    return [p for p in tile_positions(length, tile, overlap) if p < stop and p + tile > start]


def predict_window(predictor: Predictor, reader: SceneReader, window: Window) -> WindowPrediction:
    """One window of a scene predicted as the whole scene would be (same tiles, same blending).

    Args:
        predictor: The model, its tiling options and engine.
        reader: The scene over the model's bands.
        window: The pixel window (inside the scene).

    Returns:
        The window's probabilities, class map and nodata mask.

    Raises:
        EOError: The model predicts values, not classes, or the window lies outside the scene.

    """
    if predictor.regression or predictor.coding is None:
        raise EOError("pre-labelling needs a model of classes; this one predicts values", "choose a segmentation model")
    grid = reader.grid
    r0, c0, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    if h <= 0 or w <= 0 or r0 < 0 or c0 < 0 or r0 + h > grid.height or c0 + w > grid.width:
        raise EOError(f"window {window} is outside the scene ({grid.height} x {grid.width} px)",
                      "predict a window of the scene's pixels")
    t = predictor.tile
    rows = _touching(grid.height, t, predictor.overlap, r0, r0 + h)
    cols = _touching(grid.width, t, predictor.overlap, c0, c0 + w)
    reg = Region(0, 0, rows[0], rows[-1] + t, cols[0], cols[-1] + t, rows, cols, t)
    ch, cw = reg.cover
    raw = reader.read_raw(Window(reg.x0, reg.y0, cw, ch))
    data, nodata = model_input(raw, predictor.spec, reader.nodata, overwrite=True)
    acc = predictor._compute(reg, data)
    dy, dx = r0 - reg.y0, c0 - reg.x0
    acc = acc[:, dy : dy + h, dx : dx + w]
    mask = nodata[dy : dy + h, dx : dx + w]
    classes, probs = predictor.finish_region(acc, mask, probabilities=True)
    assert probs is not None
    return WindowPrediction(probs, classes, mask, grid.affine @ Affine.translation(c0, r0))


def window_entropy(probabilities: np.ndarray, nodata: np.ndarray) -> float | None:
    """Mean Shannon entropy (natural log) of per-pixel class probabilities over the pixels with data.

    Args:
        probabilities: (K, h, w) class probabilities.
        nodata: (h, w) True where the input had no data.

    Returns:
        The mean entropy in nats (0: certain; ln K: uniform), None when no pixel has data.

    """
    p = probabilities[:, ~nodata].astype(np.float64)
    if p.shape[1] == 0:
        return None
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return float(np.mean(-(p * logs).sum(axis=0)))


def window_features(pred: WindowPrediction, crs: str, tolerance: float = TOLERANCE_PX,
                    min_pixels: float = MIN_PIXELS) -> list[dict[str, Any]]:
    """A window's class polygons as GeoJSON Features in EPSG:4326, with class code, pixel count and score.

    Args:
        pred: The window's prediction.
        crs: The scene's CRS (WKT or ``EPSG:n``).
        tolerance: Simplification tolerance in pixels.
        min_pixels: Smallest polygon kept, in pixels.

    Returns:
        One Feature per polygon: ``properties`` ``label`` (the class code), ``pixels`` (its
        pixel count) and ``score`` (mean max-probability over its pixels).

    """
    top = pred.probabilities.max(axis=0)
    out = []
    for poly in class_polygons(pred.classes, ~pred.nodata, pred.transform, tolerance, min_pixels):
        inside = rasterio.features.geometry_mask([mapping(poly.pixels)], top.shape, Affine.identity(),
                                                 invert=True) & ~pred.nodata
        score = float(top[inside].mean()) if inside.any() else float("nan")
        lonlat = transform_geom(crs, LONLAT, mapping(poly.geometry))
        out.append({"type": "Feature", "geometry": lonlat,
                    "properties": {"label": poly.code, "pixels": int(inside.sum()), "score": round(score, 6)}})
    return out


def prelabel_windows(predictor: Predictor, reader: SceneReader, windows: dict[int, Window], output: Path,
                     polygons: bool = True, info: dict[str, Any] | None = None) -> dict[str, int]:
    """Predict windows of a scene; write each one's mean entropy (and class polygons) into a JSON file.

    Args:
        predictor: The model, its tiling options and engine.
        reader: The scene over the model's bands.
        windows: Key (a cell's id) → its pixel window.
        output: The JSON file to write (``{"crs", "cells": [{"id", "entropy", "features"}], ...info}``).
        polygons: Also polygonise each window's class map (False: the entropy only).
        info: More top-level fields to record (the model, the item).

    Returns:
        ``{"cells": n, "features": m}``.

    Raises:
        EOError: A window lies outside the scene, the model predicts values, or the file cannot be written.

    """
    cells, total = [], 0
    with progress_task("pre-labelling", len(windows)) as task:
        for key, window in windows.items():
            pred = predict_window(predictor, reader, window)
            feats = window_features(pred, reader.grid.crs_wkt) if polygons else []
            total += len(feats)
            cells.append({"id": key, "entropy": window_entropy(pred.probabilities, pred.nodata), "features": feats})
            task.advance()
    body = (info or {}) | {"crs": reader.grid.crs_wkt, "cells": cells}
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(body))
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EOError(f"cannot write {output}: {exc.strerror or exc}", "free disk space or fix the folder's permissions") from None
    return {"cells": len(cells), "features": total}
