"""How well two labellings of one cell agree, and how annotators work: pure measures on geometries, a grid and times.

A copy of a task (a gold copy, or a double-labelled one) is compared with its reference inside
the intersection of both tasks' completeness areas, in the imagery's native CRS scaled to metres
(a CRS in feet is scaled; a geographic CRS is projected to the UTM zone of the area). Only
polygons count for the IoU and the boundaries; the confusion counts every feature, rasterised on
the cell's pixels by the labels stage's rasteriser (:class:`~eoengine.labels.vector.VectorLabeler`,
as the export's label COG is), so a vertex on a pixel corner lands on that pixel.

- **IoU per class**: area of intersection / area of union of that class's regions; a class's
  region is the union of its polygons in the area, the background class's also holds the area
  no polygon covers. The mean is over the classes present in either labelling.
- **Boundary distance**: both labellings' polygon boundaries (clipped to the area) are sampled at
  the pixel spacing (the midpoints of equal steps no longer than a pixel along each edge), and
  each sample's distance to the other labelling's boundary is taken; the mean and the 95th
  percentile of all those distances (both ways), in metres and in pixels. When neither draws a
  boundary it is 0; when only one does, it is undefined (None), and the IoU says how far apart
  they are.
- **Confusion**: pixel counts, rows the reference's class, columns the annotator's.
- **Time spent on a task**: the sum of the gaps between consecutive events of its annotator on
  it (taking it from the queue, feature writes, submitting), each gap capped at
  :data:`IDLE_CAP_S` (5 minutes): a longer pause counts as 5 minutes of work.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import median

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from rasterio.windows import Window
from shapely import affinity, ops
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from eoengine.labels import IGNORE
from eoengine.labels.vector import VectorLabeler
from eoengine.raster.scene import Grid

IDLE_CAP_S = 300.0
"""The longest gap between two events of a task that counts as work, in seconds."""
POLYGONAL = ("Polygon", "MultiPolygon")
Shape = tuple[BaseGeometry, str]
"""A label: its geometry in the grid's CRS and its class key (the class value as text)."""


@dataclass(frozen=True)
class Comparison:
    """The raw parts of one comparison, which sum over many (:func:`agreement`).

    Attributes:
        intersection: Class key → area (m²) of both labellings' regions of that class.
        union: Class key → area (m²) of either's region of that class.
        distances: Boundary sample distances (m) both ways; None when only one labelling has a boundary.
        pixel_m: The pixel spacing in metres.
        confusion: Pixel counts (reference class × annotator class), in the order of the classes given.

    """

    intersection: dict[str, float]
    union: dict[str, float]
    distances: np.ndarray | None
    pixel_m: float
    confusion: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Agreement:
    """Agreement over one or more comparisons: IoU (mean and per class) and boundary distances."""

    n: int
    iou: float | None
    iou_per_class: dict[str, float]
    boundary_m: float | None
    boundary_p95_m: float | None
    boundary_px: float | None


def _metric(grid: Grid, area: BaseGeometry) -> tuple[Callable[[BaseGeometry], BaseGeometry], float]:
    """A function taking geometries of the grid's CRS to metres, and the grid's pixel spacing in metres."""
    crs = CRS.from_user_input(grid.crs_wkt)
    if crs.is_geographic:
        utm = gpd.GeoSeries([area], crs=crs).estimate_utm_crs()
        transformer = Transformer.from_crs(crs, utm, always_xy=True)

        def project(g: BaseGeometry) -> BaseGeometry:
            return ops.transform(transformer.transform, g)

        x, y = area.centroid.x, area.centroid.y
        return project, math.sqrt(project(box(x, y, x + grid.res, y + grid.res)).area)
    factor = float(crs.axis_info[0].unit_conversion_factor)
    if factor == 1.0:
        return lambda g: g, grid.res
    return lambda g: affinity.scale(g, factor, factor, origin=(0, 0)), grid.res * factor


def regions(shapes: Sequence[Shape], area: BaseGeometry, classes: Sequence[str], background: str) -> dict[str, BaseGeometry]:
    """Each class's region in the area: its polygons' union; the background's also holds what no polygon covers.

    Args:
        shapes: The labels (geometry, class key); points and lines are left out.
        area: Where the labelling is complete.
        classes: The class keys.
        background: The background's class key.

    Returns:
        Class key → its region (possibly empty).

    """
    polygons = [(g, k) for g, k in shapes if g.geom_type in POLYGONAL]
    out = {k: shapely.union_all([g for g, c in polygons if c == k]).intersection(area) for k in classes}
    out[background] = out[background].union(area.difference(shapely.union_all([g for g, _ in polygons])))
    return out


def boundary(shapes: Sequence[Shape], area: BaseGeometry) -> BaseGeometry:
    """The polygons' boundaries (outer and inner rings) inside the area."""
    rings = [g.boundary for g, _ in shapes if g.geom_type in POLYGONAL]
    return shapely.union_all(rings).intersection(area) if rings else shapely.LineString()


def samples(lines: BaseGeometry, step: float) -> np.ndarray:
    """Points along lines, at the midpoints of equal steps no longer than ``step`` along each straight edge.

    Args:
        lines: Lines (any geometry: its line parts are sampled).
        step: The longest step.

    Returns:
        The points (shapely Points, as an array).

    """
    points: list[np.ndarray] = []
    for part in shapely.get_parts(lines):
        if part.geom_type != "LineString":
            continue
        xy = np.asarray(part.coords)[:, :2]
        for start, end in itertools.pairwise(xy):
            n = max(1, math.ceil(float(np.hypot(*(end - start))) / step - 1e-9))
            t = (np.arange(n) + 0.5)[:, None] / n
            points.append(start + t * (end - start))
    return shapely.points(np.concatenate(points)) if points else np.array([], dtype=object)


def boundary_distances(a: BaseGeometry, b: BaseGeometry, step: float) -> np.ndarray | None:
    """Distances from samples of each boundary to the other, both ways (None when only one is empty)."""
    if a.is_empty and b.is_empty:
        return np.array([], dtype=float)
    if a.is_empty or b.is_empty:
        return None
    return np.concatenate([shapely.distance(samples(a, step), b), shapely.distance(samples(b, step), a)])


def rasterised(shapes: Sequence[Shape], area: BaseGeometry, grid: Grid, window: Window, classes: Sequence[str],
               background: str, all_touched: bool = False) -> np.ndarray:
    """The labels as class indices on a window of the grid: the area's background, then each feature clipped to it.

    Args:
        shapes: The labels (geometry in the grid's CRS, class key).
        area: Where the labelling is complete (outside: :data:`~eoengine.labels.IGNORE`).
        grid: The imagery's grid.
        window: The pixels wanted (the cell's).
        classes: The class keys, in index order.
        background: The background's class key.
        all_touched: Burn every pixel a feature touches (the project's ``labels.all_touched``).

    Returns:
        uint8 class indices (window height × width).

    """
    index = {k: i for i, k in enumerate(classes)}
    clipped = [(g.intersection(area), index[k]) for g, k in shapes if k in index]
    kept = [(g, i) for g, i in clipped if not g.is_empty]
    frame = gpd.GeoDataFrame({"class_index": np.array([i for _, i in kept], dtype=np.int32)},
                             geometry=[g for g, _ in kept], crs=grid.crs_wkt)
    labeler = VectorLabeler(frame, grid, all_touched, index[background], gpd.GeoDataFrame(geometry=[area], crs=grid.crs_wkt))
    return labeler.read(window)


def confusion(reference: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Pixel counts (n × n, rows the reference's class) where both rasters are known."""
    known = (reference != IGNORE) & (labels != IGNORE)
    pairs = reference[known].astype(np.int64) * n + labels[known].astype(np.int64)
    return np.bincount(pairs, minlength=n * n).reshape(n, n)


def compare(reference: Sequence[Shape], labels: Sequence[Shape], area: BaseGeometry, grid: Grid, window: Window,
            classes: Sequence[str], background: str, all_touched: bool = False) -> Comparison:
    """Compare an annotator's labels of a cell with the reference's.

    Args:
        reference: The reference's labels (geometry in the grid's CRS, class key).
        labels: The annotator's.
        area: Where both are complete (the intersection of their completeness areas), in the grid's CRS.
        grid: The imagery's grid.
        window: The cell's pixels on the grid.
        classes: The set's class keys, in order (the background among them).
        background: The background's class key.
        all_touched: The rasteriser's ``all_touched``.

    Returns:
        The comparison's parts (sum them with :func:`agreement`).

    """
    to_metres, pixel_m = _metric(grid, area)
    ours, theirs = regions(reference, area, classes, background), regions(labels, area, classes, background)
    inter = {k: to_metres(ours[k].intersection(theirs[k])).area for k in classes}
    union = {k: to_metres(ours[k].union(theirs[k])).area for k in classes}
    distances = boundary_distances(to_metres(boundary(reference, area)), to_metres(boundary(labels, area)), pixel_m)
    burnt = [rasterised(s, area, grid, window, classes, background, all_touched) for s in (reference, labels)]
    return Comparison(inter, union, distances, pixel_m, confusion(burnt[0], burnt[1], len(classes)))


def agreement(comparisons: Sequence[Comparison]) -> Agreement | None:
    """The agreement of several comparisons taken together.

    The per-class IoU sums intersections and unions over the comparisons (an area-weighted IoU);
    the mean IoU is over the classes present in any; the boundary distances pool every sample.

    Args:
        comparisons: The comparisons (of one annotator, one kind).

    Returns:
        The agreement, or None when there is no comparison.

    """
    if not comparisons:
        return None
    keys = list(comparisons[0].union)
    union = {k: sum(c.union[k] for c in comparisons) for k in keys}
    per_class = {k: sum(c.intersection[k] for c in comparisons) / union[k] for k in keys if union[k] > 0}
    pooled = [c.distances for c in comparisons if c.distances is not None]
    mean = p95 = None
    if pooled:
        distances = np.concatenate(pooled)
        mean, p95 = (float(distances.mean()), float(np.percentile(distances, 95))) if distances.size else (0.0, 0.0)
    pixel = comparisons[0].pixel_m
    return Agreement(len(comparisons), float(np.mean(list(per_class.values()))) if per_class else None, per_class,
                     mean, p95, None if mean is None else mean / pixel)


def time_spent(times: Sequence[dt.datetime], cap_s: float = IDLE_CAP_S) -> float:
    """Seconds of work in a run of events: the sum of the gaps between consecutive ones, each capped at ``cap_s``.

    Args:
        times: When the events happened (any order).
        cap_s: The longest gap that counts.

    Returns:
        The seconds (0 for fewer than two events).

    """
    ordered = sorted(times)
    return float(sum(min((b - a).total_seconds(), cap_s) for a, b in itertools.pairwise(ordered)))


def acceptance_rate(accepted: int, rejected: int) -> float | None:
    """The share of accepted review decisions: accepted / (accepted + rejected), or None before any."""
    return accepted / (accepted + rejected) if accepted + rejected else None


def median_or_none(values: Sequence[float]) -> float | None:
    """The median, or None of nothing."""
    return float(median(values)) if values else None


def total_confusion(comparisons: Sequence[Comparison], n: int) -> list[list[int]]:
    """The comparisons' confusion matrices summed (n × n zeros when there are none)."""
    out = np.zeros((n, n), dtype=np.int64)
    for c in comparisons:
        out += c.confusion
    return [[int(v) for v in row] for row in out]
