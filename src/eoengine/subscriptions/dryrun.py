"""What running a subscription now would do, from metadata only: periods, scenes, tiles, time and storage.

Nothing is fetched or written: the catalog is searched, and the header of each chosen scene's first
band is read (its CRS, pixel size and data type) to count the pixels of the area on that grid. Tiles
are the model's prediction tiles over the area's bounding box. Compute time is pixels ÷ the model's
throughput — measured at the subscription's last run when there was one, else :data:`ASSUMED_PIXELS_PER_SECOND`
(the basis is stated in the answer). Storage is the fetched stacks (the model's bands, in the scene's
data type) plus the map (one byte a pixel, a third more for its overviews).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pystac

from eoengine.subscriptions.select import choose, due_periods, find_scenes
from eoengine.subscriptions.spec import SubscriptionSpec
from eoengine.subscriptions.state import DryRun, PeriodPlan, SubscriptionState

ASSUMED_PIXELS_PER_SECOND = 250_000.0
"""Throughput assumed before a run measured one (a tiny U-Net on 2 CPU cores predicts about this many)."""


def dry_run(spec: SubscriptionSpec, state: SubscriptionState, now: dt.datetime, tracking_uri: str | None = None) -> DryRun:
    """What :func:`eoengine.subscriptions.run.run_due` would do at ``now``, with estimates.

    Args:
        spec: the subscription.
        state: what earlier runs left.
        now: the time asked about.
        tracking_uri: MLflow tracking URI for registry models.

    Returns:
        The periods due with their scenes, the tiles, and estimates of compute seconds and storage bytes.

    Raises:
        Unavailable: the catalog cannot be reached.
        NotFound: the model does not exist.

    """
    from eoengine.deploy.registry import load_model_ref
    from eoengine.inference.predict import prediction_options

    pkg = load_model_ref(spec.model, tracking_uri)
    bands = [b.common_name or b.name for b in pkg.meta.band_specs]
    tile = prediction_options(pkg.meta.prediction).tile_size
    due = due_periods(spec, state, now)
    plans, storage = [], 0
    for period in due.periods:
        found = find_scenes(spec, period)
        chosen = choose(found, spec.composite)
        pixels, tiles = 0, 0
        for item in chosen[:1] if spec.composite != "median" else chosen:
            width, height, nbytes = _grid(item, bands, spec.area)
            pixels, tiles = max(pixels, width * height), max(tiles, math.ceil(width / tile) * math.ceil(height / tile))
            storage += width * height * len(bands) * nbytes
        storage += math.ceil(pixels * 4 / 3)
        plans.append(PeriodPlan(start=period.start, end=period.end, scene_ids=[i.id for i in found],
                                chosen=[i.id for i in chosen], tiles=tiles, pixels=pixels))
    measured = state.pixels_per_second
    speed = measured or ASSUMED_PIXELS_PER_SECOND
    basis = (f"{speed:,.0f} pixels/s measured at the last run" if measured else
             f"{speed:,.0f} pixels/s assumed (no run measured one yet)") + \
        f"; {tile}-pixel tiles; storage = stacks of {len(bands)} band(s) + a 1-byte map with overviews"
    total = sum(p.pixels for p in plans)
    return DryRun(periods=plans, tiles=sum(p.tiles for p in plans), pixels=total,
                  compute_seconds=round(total / speed, 2), storage_bytes=storage, basis=basis, completed=due.completed)


def _grid(item: pystac.Item, bands: list[str], area: dict[str, Any]) -> tuple[int, int, int]:
    """The area's width and height in pixels on the scene's grid, and the bytes of one band value."""
    import numpy as np
    import rasterio
    from rasterio.warp import transform_bounds
    from shapely.geometry import shape

    from eoengine.sourcing.fetch import band_locations

    href = band_locations(item, bands[:1])[0][0]
    with rasterio.open(href) as ds:
        west, south, east, north = transform_bounds("EPSG:4326", ds.crs, *shape(area).bounds, densify_pts=21)
        left, bottom, right, top = ds.bounds
        xres, yres = ds.res
        nbytes = np.dtype(ds.dtypes[0]).itemsize
    width = max(0.0, min(east, right) - max(west, left)) / xres
    height = max(0.0, min(north, top) - max(south, bottom)) / yres
    return math.ceil(width), math.ceil(height), nbytes
