"""CRS comparison that treats equivalent definitions as equal.

Real data often carries the same projection twice, once as an EPSG code and once as a
user-defined WKT (the NC Landsat sample does). Comparing WKT strings would call these
different and force a needless, lossy reprojection, so we compare what matters: where
points land.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from rasterio.crs import CRS as RioCRS


def _key(crs: RioCRS | CRS | str) -> str:
    return crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)


@lru_cache(maxsize=256)
def _equivalent(a_wkt: str, b_wkt: str, bounds: tuple[float, float, float, float]) -> bool:
    a, b = CRS.from_user_input(a_wkt), CRS.from_user_input(b_wkt)
    if a == b or a.equals(b, ignore_axis_order=True):
        return True
    if a.is_geographic != b.is_geographic:
        return False
    left, bottom, right, top = bounds
    xs = np.array([left, right, left, right, (left + right) / 2])
    ys = np.array([bottom, bottom, top, top, (bottom + top) / 2])
    try:
        tx, ty = Transformer.from_crs(a, b, always_xy=True).transform(xs, ys)
    except Exception:  # noqa: BLE001 - any failure to transform means "not equivalent"
        return False
    tol = 1e-7 if a.is_geographic else 1e-3
    return bool(np.all(np.abs(tx - xs) < tol) and np.all(np.abs(ty - ys) < tol))


def crs_equivalent(
    a: RioCRS | CRS | str, b: RioCRS | CRS | str, bounds: tuple[float, float, float, float]
) -> bool:
    """True if ``a`` and ``b`` place points within ``bounds`` (in ``a``) at the same spot."""
    return _equivalent(_key(a), _key(b), tuple(float(v) for v in bounds))  # type: ignore[arg-type]
