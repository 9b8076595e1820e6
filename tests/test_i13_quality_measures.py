"""The quality measures on hand-made labels: closed-form IoU and boundary distances, confusion = a direct rasterise count.

The grid is the sample scene's (EPSG:32119, 30 m pixels); squares are placed on pixel corners.
Two squares of side s offset by k pixels (k <= s/2) along x: the class IoU is s(s-k) / s(s+k),
and the mean boundary distance is k/2 pixels both ways (left edge: k; right edge: min(k, y, s-y);
top and bottom: max(0, k-x): 2ks over a perimeter of 4s), its 95th percentile k.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import Point, box

from eoengine.platform.annotation import quality
from eoengine.raster.scene import Grid

GRID = Grid("EPSG:32119", (30.0, 0.0, 600_000.0, 0.0, -30.0, 250_000.0), 128, 128)
FEET = Grid("EPSG:2264", (100.0, 0.0, 2_000_000.0, 0.0, -100.0, 700_000.0), 128, 128)  # NC state plane, US feet
LONLAT = Grid("EPSG:4326", (0.0003, 0.0, -78.7, 0.0, -0.0003, 35.8), 128, 128)
CLASSES, BACKGROUND = ["1", "5", "6"], "1"
WINDOW = Window(0, 0, 64, 64)


def px(grid: Grid, r0: float, c0: float, r1: float, c1: float) -> box:
    """The box of pixel corners (r0, c0)-(r1, c1) in the grid's CRS."""
    return box(*grid.window_bounds(r0, c0, r1 - r0, c1 - c0))


AREA = px(GRID, 0, 0, 64, 64)


@pytest.mark.parametrize(("s", "k"), [(20, 2), (16, 4), (10, 5)])
def test_offset_squares_agree_as_the_closed_form_says(s: int, k: int) -> None:
    ours, theirs = [(px(GRID, 10, 10, 10 + s, 10 + s), "5")], [(px(GRID, 10, 10 + k, 10 + s, 10 + s + k), "5")]
    made = quality.agreement([quality.compare(ours, theirs, AREA, GRID, WINDOW, CLASSES, BACKGROUND)])
    assert made is not None and made.n == 1
    assert made.iou_per_class["5"] == pytest.approx((s - k) / (s + k), rel=1e-12)
    area = 64 * 64
    assert made.iou_per_class["1"] == pytest.approx((area - s * (s + k)) / (area - s * (s - k)), rel=1e-12)
    assert "6" not in made.iou_per_class  # in neither labelling: not in the mean
    assert made.iou == pytest.approx((made.iou_per_class["1"] + made.iou_per_class["5"]) / 2)
    assert made.boundary_m == pytest.approx(k / 2 * 30.0, rel=1e-9)
    assert made.boundary_px == pytest.approx(k / 2, rel=1e-9)
    assert made.boundary_p95_m == pytest.approx(k * 30.0, rel=1e-9)


def test_identical_labels_agree_fully() -> None:
    labels = [(px(GRID, 5, 5, 30, 40), "5"), (px(GRID, 40, 3, 60, 20).difference(px(GRID, 45, 8, 50, 12)), "6")]
    made = quality.agreement([quality.compare(labels, labels, AREA, GRID, WINDOW, CLASSES, BACKGROUND)])
    assert made is not None
    assert made.iou == 1.0 and set(made.iou_per_class.values()) == {1.0}
    assert made.boundary_m == 0.0 and made.boundary_p95_m == 0.0 and made.boundary_px == 0.0


def test_nothing_drawn_on_either_side_is_full_background_agreement() -> None:
    made = quality.agreement([quality.compare([], [], AREA, GRID, WINDOW, CLASSES, BACKGROUND)])
    assert made is not None and made.iou == 1.0 and made.iou_per_class == {"1": 1.0} and made.boundary_m == 0.0
    one_sided = quality.compare([(px(GRID, 1, 1, 9, 9), "5")], [], AREA, GRID, WINDOW, CLASSES, BACKGROUND)
    alone = quality.agreement([one_sided])
    assert alone is not None and alone.boundary_m is None and alone.iou_per_class["5"] == 0.0


def test_distances_are_metres_in_a_crs_of_feet() -> None:
    area = px(FEET, 0, 0, 64, 64)
    ours, theirs = [(px(FEET, 10, 10, 30, 30), "5")], [(px(FEET, 10, 14, 30, 34), "5")]
    made = quality.agreement([quality.compare(ours, theirs, area, FEET, WINDOW, CLASSES, BACKGROUND)])
    foot = 1200 / 3937  # the US survey foot
    assert made is not None and made.boundary_px == pytest.approx(2.0, rel=1e-9)
    assert made.boundary_m == pytest.approx(2 * 100 * foot, rel=1e-9)
    assert made.iou_per_class["5"] == pytest.approx(16 / 24, rel=1e-12)


def test_a_geographic_grid_is_measured_in_its_utm_zone() -> None:
    area = px(LONLAT, 0, 0, 64, 64)
    ours, theirs = [(px(LONLAT, 10, 10, 30, 30), "5")], [(px(LONLAT, 10, 12, 30, 32), "5")]
    made = quality.agreement([quality.compare(ours, theirs, area, LONLAT, WINDOW, CLASSES, BACKGROUND)])
    assert made is not None
    assert made.boundary_px == pytest.approx(1.0, rel=0.02)  # pixels are nearly square in UTM 17N here
    assert 25 < made.boundary_m < 35  # 0.0003 degrees: ~27 m east-west, ~33 m north-south at 35.8 N


def test_confusion_counts_are_a_direct_rasterise_count_and_pixel_corners_are_exact() -> None:
    ref = [(px(GRID, 4, 4, 20, 36), "5"), (px(GRID, 30, 30, 50, 60), "6"), (Point(GRID.affine @ (10.5, 50.5)), "6")]
    ann = [(px(GRID, 4, 8, 24, 36), "5"), (px(GRID, 34, 30, 54, 62), "5")]
    area = px(GRID, 0, 0, 60, 64)  # the last 4 rows are outside the completeness area: not counted
    made = quality.compare(ref, ann, area, GRID, WINDOW, CLASSES, BACKGROUND)
    inside = rasterize([(area, 1)], out_shape=(64, 64), transform=GRID.affine).astype(bool)

    def burnt(shapes: list[tuple[object, str]]) -> np.ndarray:
        index = {k: i for i, k in enumerate(CLASSES)}
        out = rasterize([(g.intersection(area), index[k]) for g, k in shapes], out_shape=(64, 64),
                        transform=GRID.affine, fill=0)
        return out

    a, b = burnt(ref), burnt(ann)
    expected = np.array([[int(((a == i) & (b == j) & inside).sum()) for j in range(3)] for i in range(3)])
    assert (made.confusion == expected).all()
    assert made.confusion.sum() == 60 * 64
    assert made.confusion[1, 1] == 16 * 28  # rows 4-20, cols 8-36 in both: the pixel corners land exactly
    assert made.confusion[2, 1] == 16 * 30 and made.confusion[2, 2] == 0
    assert made.confusion[2, 0] == 4 * 30 + 1  # rows 30-34 of the square, and the point burns its one pixel
    burnt_ref = quality.rasterised(ref, area, GRID, WINDOW, CLASSES, BACKGROUND)
    assert (burnt_ref[4:20, 4:36] == 1).all() and (burnt_ref[3, 4:36] == 0).all() and (burnt_ref[4:20, 36] == 0).all()
    assert (burnt_ref[60:] == 255).all()


def test_agreement_of_many_weights_classes_by_area_and_pools_the_boundaries() -> None:
    big = quality.compare([(px(GRID, 0, 0, 40, 40), "5")], [(px(GRID, 0, 0, 40, 40), "5")], AREA, GRID, WINDOW,
                          CLASSES, BACKGROUND)
    small = quality.compare([(px(GRID, 10, 10, 20, 20), "5")], [(px(GRID, 10, 12, 20, 22), "5")], AREA, GRID,
                            WINDOW, CLASSES, BACKGROUND)
    made = quality.agreement([big, small])
    assert made is not None and made.n == 2
    assert made.iou_per_class["5"] == pytest.approx((1600 + 80) / (1600 + 120))
    assert big.distances is not None and small.distances is not None
    pooled = np.concatenate([big.distances, small.distances])
    assert made.boundary_m == pytest.approx(float(pooled.mean()))
    assert quality.agreement([]) is None


def test_time_spent_sums_gaps_capped_at_five_minutes() -> None:
    t0 = dt.datetime(2026, 1, 1, 9, 0, 0)
    gaps = [0, 30, 90, 3600, 10]  # seconds after the previous event
    times = [t0 + dt.timedelta(seconds=sum(gaps[: i + 1])) for i in range(len(gaps))]
    assert quality.time_spent(list(reversed(times))) == 30 + 90 + 300 + 10
    assert quality.time_spent(times[:1]) == 0.0 and quality.time_spent([]) == 0.0
    assert quality.IDLE_CAP_S == 300


def test_acceptance_rate_and_median() -> None:
    assert quality.acceptance_rate(3, 1) == 0.75 and quality.acceptance_rate(0, 0) is None
    assert quality.median_or_none([4.0, 1.0, 10.0]) == 4.0 and quality.median_or_none([]) is None
