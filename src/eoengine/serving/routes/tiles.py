"""Web-map tiles predicted on the fly: ``GET /tiles/{z}/{x}/{y}.png`` over a configured scene.

rio-tiler reads each tile (Web Mercator) of the scene's bands with a margin of context on
every side; eoengine turns the raw values into model input and the output into classes as
every route does (:func:`~eoengine.inference.preprocess.model_input`, with the files' nodata,
and :func:`~eoengine.inference.postprocess.finish`), crops the margin, and renders the class
map with the classes' colours (transparent where the scene has no data: any band nodata or
NaN, as in a predicted map). Tiles are cached (LRU).

The model only knows pixels of the scene's own size: a tile zoomed out below the scene's
native zoom is read at native resolution (``2**k`` times the tile's pixels per side, ``k``
zoom levels out), predicted in chunks of at most :data:`CHUNK` pixels, and the class map is
reduced to the tile by majority per block — so a zoomed-out tile shows the full-resolution
map, downsampled. At most :data:`MAX_ZOOM_OUT` levels out (a native window of at most
2048 px per side, so memory stays bounded); coarser zooms are refused with a 404 saying so.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response

from eoengine.inference.engines import Forward
from eoengine.inference.output import hex_rgb
from eoengine.inference.postprocess import finish
from eoengine.inference.preprocess import input_spec, model_input
from eoengine.inference.sources import sources_for_package
from eoengine.models.heads import heads_from_meta, map_head
from eoengine.models.package import ModelPackage
from eoengine.raster.scene import BandSource
from eoengine.serving.auth import KeyedRoute
from eoengine.serving.errors import error_response
from eoengine.serving.inputs import pad_to

TILE, MARGIN, CACHE = 256, 32, 512
CHUNK = 512
"""Largest side (native pixels, without margins) predicted in one forward pass."""
MAX_ZOOM_OUT = 3
"""Zoom levels below the scene's native zoom that are still served (read at native resolution)."""


def majority(classes: np.ndarray, valid: np.ndarray, factor: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a class map by ``factor`` per side: each block's most frequent valid class.

    Args:
        classes: (H, W) class indices, H and W multiples of ``factor``.
        valid: (H, W) True where the scene has data.
        factor: block side in pixels.
        n_classes: number of classes.

    Returns:
        The (H / factor, W / factor) classes, and True where at least half of a block is valid.

    """
    if factor == 1:
        return classes, valid
    h, w = classes.shape[0] // factor, classes.shape[1] // factor

    def blocks(a: np.ndarray) -> np.ndarray:
        return a.reshape(h, factor, w, factor).swapaxes(1, 2).reshape(h, w, factor * factor)

    cls, ok = blocks(classes), blocks(valid)
    counts = np.stack([((cls == c) & ok).sum(axis=-1) for c in range(n_classes)])
    return counts.argmax(axis=0).astype(np.uint8), ok.sum(axis=-1) * 2 >= factor * factor


def _fills(paths: list[str], sources: list[BandSource]) -> list[float | None]:
    """The nodata rio-tiler reads each file with: the own nodata its bands share, else (None) the file's.

    rio-tiler fills pixels outside the scene with it and masks pixels where every band holds it.
    """
    out: list[float | None] = []
    for path in paths:
        own = {src.nodata for src in sources if src.path == path}
        out.append(own.pop() if len(own) == 1 and None not in own else None)
    return out


def tile_router(pkg: ModelPackage, scene: list[str], lock: asyncio.Lock, forward: Forward) -> APIRouter:
    """The tile route (needs the API key) for ``scene``, predicted with ``forward``.

    Args:
        pkg: The model package.
        scene: One stack, or one file per band in the model's order.
        lock: Held while a tile is predicted (one at a time).
        forward: The engine's forward pass.

    Returns:
        The router.

    Raises:
        ValueError: The model does not make class maps.
        EOError: The scene's bands do not match the model's.

    """
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    meta = pkg.meta
    head = map_head(heads_from_meta(meta))
    if head.type != "segmentation":
        raise ValueError("tiles are rendered for class maps")
    spec = input_spec(meta)
    # which band of which file feeds each model band, as predict reads them (file.tif:N, recorded stack_indexes)
    sources = sources_for_package(meta, scene)
    paths = list(dict.fromkeys(src.path for src in sources))
    readers = [Reader(p) for p in paths]
    per_file = [[src.index for src in sources if src.path == p] for p in paths]
    order = np.argsort([paths.index(src.path) for src in sources], kind="stable")  # file-grouped → model order
    fills = _fills(paths, sources)
    recorded = {p: r.dataset.nodatavals for p, r in zip(paths, readers, strict=True) if r.dataset is not None}
    file_nodata = [recorded[src.path][src.index - 1] for src in sources]  # each model band's, as its file records it
    native = max(r.maxzoom for r in readers)
    minzoom = native - MAX_ZOOM_OUT
    n_classes = head.stop - head.start
    colours = np.zeros((256, 4), dtype=np.uint8)
    for c in meta["classes"]:
        colours[c["index"]] = [*hex_rgb(c["color"]), 255]
    cache: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
    multiple = int(meta.get("size_multiple", 1))

    def read(z: int, x: int, y: int, size: int) -> np.ndarray:
        """Raw bands of the tile and its margins, model order; NaN where a file has no pixel (outside the scene)."""
        parts, masks = [], []
        for r, indexes, fill in zip(readers, per_file, fills, strict=True):
            img = r.tile(x, y, z, tilesize=size, buffer=MARGIN, indexes=indexes, nodata=fill)  # (size + 2 MARGIN) px
            parts.append(np.asarray(img.data, dtype=np.float32))
            masks.append(np.ma.getmaskarray(img.array).all(axis=0))  # not img.mask: it is 0/255 for bytes only
        grouped = np.concatenate(parts)
        bands = np.empty_like(grouped)
        bands[order] = grouped
        bands[:, np.logical_or.reduce(masks)] = np.nan
        return bands

    def classify(image: np.ndarray, nodata: np.ndarray, size: int) -> np.ndarray:
        """Classes of the (size, size) core of ``image`` (model input with MARGIN more on every side), chunk by chunk."""
        classes = np.empty((size, size), dtype=np.uint8)
        for top in range(0, size, CHUNK):
            for left in range(0, size, CHUNK):
                rows = slice(top, top + min(CHUNK, size - top) + 2 * MARGIN)
                cols = slice(left, left + min(CHUNK, size - left) + 2 * MARGIN)
                x_in, h, w = pad_to(image[:, rows, cols], multiple)
                part, _ = finish(forward(x_in[None])[0, :, :h, :w], head, nodata[rows, cols])
                classes[top:top + h - 2 * MARGIN, left:left + w - 2 * MARGIN] = part[MARGIN:h - MARGIN, MARGIN:w - MARGIN]
        return classes

    def render(z: int, x: int, y: int) -> bytes:
        from rio_tiler.utils import render as render_png

        factor = 2 ** max(0, native - z)  # native pixels per tile pixel (per side)
        image, nodata = model_input(read(z, x, y, TILE * factor), spec, file_nodata, overwrite=True)
        core = slice(MARGIN, MARGIN + TILE * factor)
        classes, keep = majority(classify(image, nodata, TILE * factor), ~nodata[core, core], factor, n_classes)
        rgba = colours[classes]
        rgba[..., 3] = np.where(keep, 255, 0)
        return render_png(np.moveaxis(rgba[..., :3], -1, 0), mask=rgba[..., 3], img_format="PNG")

    router = APIRouter(route_class=KeyedRoute)

    @router.get("/tiles/{z}/{x}/{y}.png", summary="A map tile predicted on the fly",
                responses={200: {"content": {"image/png": {}}}, 404: {"description": "outside the scene or zoom"}})
    async def tile(z: int, x: int, y: int) -> Any:
        if z < minzoom or z > 30 or x < 0 or y < 0 or x >= 2**z or y >= 2**z:
            return error_response(404, f"tile {z}/{x}/{y} is outside zooms {minzoom}..30 or the grid (a tile coarser than "
                                       f"zoom {minzoom} would need more than {2 ** MAX_ZOOM_OUT}x{2 ** MAX_ZOOM_OUT} "
                                       "native pixels per tile pixel)",
                                  f"request zoom {minzoom} or finer, with 0 <= x, y < 2^z")
        key = (z, x, y)
        if key not in cache:
            try:
                async with lock:
                    png = await asyncio.to_thread(render, z, x, y)
            except TileOutsideBounds:
                return error_response(404, f"tile {z}/{x}/{y} does not touch the scene", "request tiles inside the scene's bounds")
            cache[key] = png
            if len(cache) > CACHE:
                cache.popitem(last=False)
        cache.move_to_end(key)
        return Response(cache[key], media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    return router
