"""Image operations the corruptions are made of, on stacks of planes ``(..., H, W)`` of float64.

Each works on NaN-free planes (the corruptions fill nodata first, or weight it out as
:func:`blur_valid` does) and keeps the planes' shape: smooth random fields for clouds, shifts,
a down- then up-sampling by any factor (area average down, bilinear up, both as matrices so a
constant plane stays exactly constant), and a JPEG-like 8×8 block DCT quantization.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, ndimage

BLOCK = 8
"""The DCT block size of the compression (JPEG's)."""

JPEG_LUMA = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=np.float64)
"""JPEG's luminance quantization table (ITU-T T.81 Annex K), in steps of a 0-255 range."""


def fill_nodata(planes: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The planes with NaN replaced by each plane's mean, or by ``fallback`` where a plane is all NaN.

    Args:
        planes: ``(..., H, W)`` values, NaN = nodata.
        fallback: Values broadcastable to ``planes.shape[:-2]`` (e.g. the train means).

    Returns:
        A NaN-free copy.

    """
    nan = np.isnan(planes)
    if not nan.any():
        return planes.copy()
    count = (~nan).sum(axis=(-2, -1))
    total = np.where(nan, 0.0, planes).sum(axis=(-2, -1))
    mean = np.where(count > 0, total / np.maximum(count, 1), np.broadcast_to(fallback, count.shape))
    return np.where(nan, mean[..., None, None], planes)


def blur_valid(planes: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each plane, weighting nodata out (normalised convolution).

    Args:
        planes: ``(..., H, W)`` values, NaN = nodata.
        sigma: The Gaussian's standard deviation in pixels.

    Returns:
        The blurred planes; NaN only where no valid pixel is near.

    """
    valid = ~np.isnan(planes)
    axes = (planes.ndim - 2, planes.ndim - 1)
    total = ndimage.gaussian_filter(np.where(valid, planes, 0.0), sigma, mode="reflect", axes=axes)
    weight = ndimage.gaussian_filter(valid.astype(np.float64), sigma, mode="reflect", axes=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 1e-12, total / weight, np.nan)


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Random smooth fields: white noise blurred by ``scale`` pixels, each plane of zero mean and unit std.

    Args:
        rng: The random generator.
        shape: ``(..., H, W)``.
        scale: The Gaussian's standard deviation in pixels (the size of a blob).

    Returns:
        The fields, float64.

    """
    noise = rng.standard_normal(shape)
    field = ndimage.gaussian_filter(noise, scale, mode="wrap", axes=(len(shape) - 2, len(shape) - 1))
    field -= field.mean(axis=(-2, -1), keepdims=True)
    return field / np.maximum(field.std(axis=(-2, -1), keepdims=True), 1e-12)


def shift_plane(plane: np.ndarray, dy: float, dx: float, order: int = 1) -> np.ndarray:
    """One plane moved by ``(dy, dx)`` pixels (content at ``(i, j)`` goes to ``(i + dy, j + dx)``).

    Pixels shifted in from outside repeat the edge (a chip has no neighbours to bring in);
    whole-pixel shifts move values exactly, sub-pixel ones interpolate bilinearly.

    Args:
        plane: ``(H, W)`` NaN-free values.
        dy: Rows to move down.
        dx: Columns to move right.
        order: The spline order (0 = nearest, for masks).

    Returns:
        The moved plane.

    """
    return ndimage.shift(plane, (dy, dx), order=order, mode="nearest", prefilter=False)


def _area_matrix(n: int, m: int) -> np.ndarray:
    """(m, n) weights averaging ``n`` pixels into ``m`` by the overlap of each coarse footprint."""
    out_edges = np.linspace(0.0, n, m + 1)
    lo = np.maximum(out_edges[:-1, None], np.arange(n)[None, :])
    hi = np.minimum(out_edges[1:, None], np.arange(1, n + 1)[None, :])
    overlap = np.clip(hi - lo, 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _linear_matrix(m: int, n: int) -> np.ndarray:
    """(n, m) bilinear weights taking ``m`` coarse pixel centres to ``n`` fine ones (edges clamped)."""
    pos = np.clip((np.arange(n) + 0.5) * m / n - 0.5, 0.0, m - 1)
    left = np.minimum(np.floor(pos).astype(int), max(m - 2, 0))
    frac = pos - left if m > 1 else np.zeros(n)
    weights = np.zeros((n, m))
    weights[np.arange(n), left] = 1.0 - frac
    if m > 1:
        weights[np.arange(n), left + 1] += frac
    return weights


def resample(planes: np.ndarray, factor: float) -> np.ndarray:
    """Planes taken ``factor`` times coarser (area average) and back to their size (bilinear).

    Args:
        planes: ``(..., H, W)`` NaN-free values.
        factor: How much coarser the intermediate grid is (> 1).

    Returns:
        The planes at their size with the detail finer than the coarse grid lost.

    """
    h, w = planes.shape[-2:]
    mh, mw = max(1, round(h / factor)), max(1, round(w / factor))
    rows = _linear_matrix(mh, h) @ _area_matrix(h, mh)
    cols = _linear_matrix(mw, w) @ _area_matrix(w, mw)
    return np.einsum("ij,...jk,lk->...il", rows, planes, cols, optimize=True)


def jpeg_table(quality: int) -> np.ndarray:
    """JPEG's luminance table scaled to a quality 1-100 (the IJG formula), steps of at least 1."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return np.maximum(np.floor((JPEG_LUMA * scale + 50.0) / 100.0), 1.0)


def block_dct_quantize(planes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Planes through an 8×8 block DCT whose coefficients are rounded to the steps of ``table``.

    Args:
        planes: ``(K, H, W)`` NaN-free values in 0-255 units (the table's).
        table: ``(8, 8)`` quantization steps.

    Returns:
        The decoded planes, ``(K, H, W)``.

    """
    k, h, w = planes.shape
    ph, pw = -h % BLOCK, -w % BLOCK
    padded = np.pad(planes, ((0, 0), (0, ph), (0, pw)), mode="edge")
    hb, wb = padded.shape[1] // BLOCK, padded.shape[2] // BLOCK
    blocks = padded.reshape(k, hb, BLOCK, wb, BLOCK).transpose(0, 1, 3, 2, 4)
    coeffs = fft.dctn(blocks - 128.0, axes=(-2, -1), norm="ortho")
    decoded = fft.idctn(np.round(coeffs / table) * table, axes=(-2, -1), norm="ortho") + 128.0
    return decoded.transpose(0, 1, 3, 2, 4).reshape(k, hb * BLOCK, wb * BLOCK)[:, :h, :w]
