"""Error maps: a COG per graded scene, over the extent of its graded chips, ready for QGIS.

For class models each pixel holds 0 (not graded: no label, or outside the graded chips), 1 (correct) or a
code per confusion ``truth → prediction``; the file carries a colour table (correct light grey, each wrong
pair in the predicted class's colour) and the codes' names in its tags (``EOENGINE_ERROR_CODES``, JSON) and band
description. For value models it holds the absolute error (float32, NaN where not graded).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from eoengine.grading.chips import GradedChips
from eoengine.inference.output import hex_rgb
from eoengine.raster.cog import finish_cog, temp_name

CORRECT = 1


def error_codes(names: list[str]) -> dict[int, str]:
    """The class error map's codes: 1 correct, then ``2 + t·(k-1) + (p if p < t else p-1)`` for truth t, prediction p."""
    k = len(names)
    codes = {CORRECT: "correct"}
    for t in range(k):
        for p in range(k):
            if p != t:
                codes[2 + t * (k - 1) + (p if p < t else p - 1)] = f"{names[t]} → {names[p]}"
    return codes


def _class_codes(truth: np.ndarray, pred: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
    wrong = 2 + truth * (k - 1) + np.where(pred < truth, pred, pred - 1)
    return np.where(keep, np.where(truth == pred, CORRECT, wrong), 0).astype(np.uint16)


def write_error_maps(graded: GradedChips, out_dir: Path) -> dict[str, Path]:
    """One error map COG per scene with graded chips.

    Args:
        graded: The graded chips and their clean predictions.
        out_dir: Where ``error_<scene>.tif`` files go.

    Returns:
        The COG of each scene, by scene id.

    """
    out_dir.mkdir(parents=True, exist_ok=True)
    size = graded.manifest.patch_size
    rows = graded.rows
    scenes = {s.id: s for s in graded.manifest.scenes}
    k = graded.head.num_classes
    truth, pred, keep = graded.truth, graded.clean.pred, graded.labelled
    per_pixel = truth.shape[1:] == (size, size)
    if graded.is_values:
        cells = np.where(keep, np.abs(pred - truth), np.nan).astype(np.float32)
    else:
        cells = _class_codes(truth, pred, keep, k)
    out = {}
    for scene_id in sorted(set(rows["scene"])):
        mine = np.flatnonzero((rows["scene"] == scene_id).to_numpy())
        r0, c0 = int(rows["row"].iloc[mine].min()), int(rows["col"].iloc[mine].min())
        h = int(rows["row"].iloc[mine].max()) + size - r0
        w = int(rows["col"].iloc[mine].max()) + size - c0
        canvas = np.full((h, w), np.nan if graded.is_values else 0, dtype=cells.dtype)
        for i in mine:
            r, c = int(rows["row"].iloc[i]) - r0, int(rows["col"].iloc[i]) - c0
            canvas[r:r + size, c:c + size] = cells[i] if per_pixel else cells[i, 0, 0]
        grid = scenes[scene_id].grid
        transform = Affine(*grid.transform) * Affine.translation(c0, r0)
        out[scene_id] = _write(canvas, grid.crs_wkt, transform, out_dir / f"error_{scene_id}.tif", graded)
    return out


def _write(canvas: np.ndarray, crs: str, transform: Affine, final: Path, graded: GradedChips) -> Path:
    values = graded.is_values
    names = [c.name for c in graded.manifest.classes]
    codes = {} if values else error_codes(names)
    dtype = "float32" if values else ("uint8" if max(codes) < 256 else "uint16")
    tiled = temp_name(final, "tiled.tif")
    profile = {"driver": "GTiff", "width": canvas.shape[1], "height": canvas.shape[0], "count": 1, "dtype": dtype,
               "crs": crs, "transform": transform, "nodata": float("nan") if values else 0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    if canvas.shape[0] < 256 or canvas.shape[1] < 256:
        profile |= {"tiled": False}
        profile.pop("blockxsize")
        profile.pop("blockysize")
    with rasterio.open(tiled, "w", **profile) as dst:
        dst.write(canvas.astype(dtype), 1)
        if values:
            dst.set_band_description(1, "absolute error")
        else:
            dst.set_band_description(1, "error: 1 correct, others truth → prediction")
            dst.update_tags(EOENGINE_ERROR_CODES=json.dumps(codes, ensure_ascii=False))
            if dtype == "uint8":
                dst.write_colormap(1, _colours(codes, graded))
    finish_cog(tiled, final, "AVERAGE" if values else "MODE")
    return final


def _colours(codes: dict[int, str], graded: GradedChips) -> dict[int, tuple[int, int, int, int]]:
    colour = {c.name: (*hex_rgb(c.color), 255) for c in graded.manifest.classes}
    cmap: dict[int, tuple[int, int, int, int]] = {0: (0, 0, 0, 0), CORRECT: (200, 200, 200, 255)}
    for code, label in codes.items():
        if code != CORRECT:
            cmap[code] = colour[label.split(" → ")[1]]  # type: ignore[assignment]
    return cmap
