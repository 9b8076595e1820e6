"""Web-map tiles predicted on the fly: ``GET /tiles/{z}/{x}/{y}.png`` over a configured scene.

rio-tiler reads each tile (Web Mercator, 256 px) of the scene's bands with a margin of
context on every side, eoengine predicts it like any chip and crops the margin, and the
class map is rendered with the classes' colours (transparent where the scene has no data).
Tiles are cached (LRU). Zoom levels coarser than the scene's own resolution allows are
refused, as the model never saw pixels that large.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from eoengine.deploy.package import ModelPackage
from eoengine.inference.engines import Forward
from eoengine.inference.output import hex_rgb
from eoengine.serving.inputs import pad_to, prepare
from eoengine.training.heads import heads_from_meta, map_head

TILE, MARGIN, CACHE = 256, 32, 512


def add_tile_route(app: FastAPI, pkg: ModelPackage, scene: list[str], lock: asyncio.Lock, forward: Forward) -> None:
    """Register the tile route for ``scene`` (one stack, or one file per band in model order), predicted with ``forward``."""
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    meta = pkg.meta
    head = map_head(heads_from_meta(meta))
    if head.type != "segmentation":
        raise ValueError("tiles are rendered for class maps")
    n_bands = len(meta["bands"])
    readers = [Reader(p) for p in scene]
    minzoom = max(r.maxzoom for r in readers) - 3
    colours = np.zeros((256, 4), dtype=np.uint8)
    for c in meta["classes"]:
        colours[c["index"]] = [*hex_rgb(c["color"]), 255]
    cache: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
    multiple = int(meta.get("size_multiple", 1))

    def read(z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        parts, masks = [], []
        for r in readers:
            indexes = list(range(1, n_bands + 1)) if len(readers) == 1 else [1]
            img = r.tile(x, y, z, tilesize=TILE, buffer=MARGIN, indexes=indexes)  # (TILE + 2 MARGIN) px
            parts.append(np.asarray(img.data, dtype=np.float32))
            masks.append(np.asarray(img.mask) == 0)
        return np.concatenate(parts), np.logical_or.reduce(masks)

    def render(z: int, x: int, y: int) -> bytes:
        from rio_tiler.utils import render as render_png

        raw, nodata = read(z, x, y)
        raw[:, nodata] = np.nan
        x_in, h, w = pad_to(prepare(raw, pkg), multiple)
        out = forward(x_in[None])[0, head.start:head.stop, :h, :w].numpy()
        classes = out.argmax(axis=0).astype(np.uint8)
        classes = classes[MARGIN:MARGIN + TILE, MARGIN:MARGIN + TILE]
        keep = ~nodata[MARGIN:MARGIN + TILE, MARGIN:MARGIN + TILE]
        rgba = colours[classes]
        rgba[..., 3] = np.where(keep, 255, 0)
        return render_png(np.moveaxis(rgba[..., :3], -1, 0), mask=rgba[..., 3], img_format="PNG")

    @app.get("/tiles/{z}/{x}/{y}.png", summary="A map tile predicted on the fly",
             responses={200: {"content": {"image/png": {}}}, 404: {"description": "outside the scene or zoom"}})
    async def tile(z: int, x: int, y: int) -> Any:
        if z < minzoom or z > 30 or x < 0 or y < 0 or x >= 2**z or y >= 2**z:
            return JSONResponse({"error": f"tile {z}/{x}/{y} is outside zooms {minzoom}..30 or the grid",
                                 "fix": f"request zoom {minzoom} or finer, with 0 <= x, y < 2^z"}, status_code=404)
        key = (z, x, y)
        if key not in cache:
            try:
                async with lock:
                    png = await asyncio.to_thread(render, z, x, y)
            except TileOutsideBounds:
                return JSONResponse({"error": f"tile {z}/{x}/{y} does not touch the scene",
                                     "fix": "request tiles inside the scene's bounds"}, status_code=404)
            cache[key] = png
            if len(cache) > CACHE:
                cache.popitem(last=False)
        cache.move_to_end(key)
        return Response(cache[key], media_type="image/png", headers={"Cache-Control": "max-age=3600"})
