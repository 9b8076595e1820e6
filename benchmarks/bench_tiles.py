"""Annotation tiles: p50/p99 latency of the imagery tile route against rio-tiler called directly, same tiles.

The benchmark makes a 10000 x 10000, 8-band uint16 COG (512 px tiles, DEFLATE, overviews; UTM 32N at 10 m, in a
temporary folder), uploads it as imagery to a project of a real platform server (``eoengine server run`` in its own
process on 127.0.0.1, bench_platform_api's ``platform_server``) and requests tiles of two recipes:

* three bands (``bands:nir,red,green``, the default 2-98 % stretch);
* an index (``index:NDVI``, the default rdylgn colour map);

at three zoom levels: the COG's native one and 2 and 4 below. Each tile is requested over HTTP (one client, one
keep-alive connection), then rendered in this process by rio-tiler alone: a ``Reader`` opened on the same file,
``Reader.tile`` with the same bands and resampling (bilinear), ``ImageData.rescale`` by the same ranges (for NDVI,
an ``expression``) and ``ImageData.render`` to PNG (with the same colour map). The two alternate tile by tile, so
both see the same GDAL cache and machine load. The ratio is rio-tiler's time over the route's (target >= 0.8).

    .venv/bin/python benchmarks/bench_tiles.py [--tiles 60] [--size 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_platform_api import NO_WORKER, Server, machine, platform_server, use_this_checkout

BANDS = ("coastal", "blue", "green", "red", "nir", "swir16", "swir22", "rededge")
RECIPES = {"bands:nir,red,green": ("nir", "red", "green"), "index:NDVI": ("nir", "red")}
CRS, PIXEL, ORIGIN = "EPSG:32632", 10.0, (300000.0, 5600000.0)  # UTM 32N, 10 m: central Europe


def make_cog(path: Path, size: int) -> Path:
    """A size x size 8-band uint16 COG with smooth fields and a little noise (so it compresses like imagery).

    Args:
        path: The COG to write.
        size: Its width and height in pixels.

    Returns:
        ``path``.

    """
    import rasterio
    from rasterio.shutil import copy
    from rasterio.transform import from_origin

    plain = path.with_suffix(".plain.tif")
    profile = {"driver": "GTiff", "width": size, "height": size, "count": len(BANDS), "dtype": "uint16", "crs": CRS,
               "transform": from_origin(*ORIGIN, PIXEL, PIXEL), "tiled": True, "blockxsize": 512, "blockysize": 512,
               "nodata": 0, "BIGTIFF": "YES"}
    rng = np.random.default_rng(0)
    cols = np.arange(size, dtype=np.float32)
    with rasterio.open(plain, "w", **profile) as dst:
        for top in range(0, size, 512):
            rows = np.arange(top, min(top + 512, size), dtype=np.float32)[:, None]
            for b in range(len(BANDS)):
                field = 1500 + 900 * np.sin(cols / (700 + 90 * b) + b) * np.cos(rows / (1100 - 60 * b))
                noise = rng.integers(0, 64, (len(rows), size))
                dst.write((field + noise).astype(np.uint16), b + 1,
                          window=((top, top + len(rows)), (0, size)))
        dst.descriptions = BANDS
    copy(plain, path, driver="COG", COMPRESS="DEFLATE", PREDICTOR="2", BLOCKSIZE="512", OVERVIEW_RESAMPLING="AVERAGE",
         NUM_THREADS="ALL_CPUS", BIGTIFF="YES")
    plain.unlink()
    return path


def upload(server: Server, path: Path) -> tuple[str, dict[str, object]]:
    """A project with the COG uploaded as imagery; returns its slug and the listed item."""
    slug = server.create_project("bench tiles")
    with server.client() as c, path.open("rb") as f:
        made = c.post(f"/projects/{slug}/uploads", files={"file": (path.name, f)}, data={"kind": "imagery"})
        if made.status_code != 201:
            raise SystemExit(f"uploading the COG failed: {made.status_code} {made.text[:300]}")
        item = next(i for i in c.get(f"/projects/{slug}/imagery").json() if i["id"] == path.stem)
    return slug, item


def sample_tiles(path: Path, zoom: int, count: int) -> list[tuple[int, int, int]]:
    """``count`` tiles of a zoom level spread evenly over the COG's middle (70 % of its extent each way), in turn."""
    import morecantile
    from rio_tiler.io import Reader

    with Reader(str(path)) as r:
        west, south, east, north = r.get_geographic_bounds("EPSG:4326")
    dx, dy = (east - west) * 0.15, (north - south) * 0.15  # the UTM square is tilted in lon/lat: keep off its edges
    inside = list(morecantile.tms.get("WebMercatorQuad").tiles(west + dx, south + dy, east - dx, north - dy, [zoom]))
    if len(inside) >= count:
        picks = np.linspace(0, len(inside) - 1, count).astype(int)
    else:  # fewer tiles than asked (4 zooms below the native one): each is requested again, by both sides
        picks = np.arange(count) % len(inside)
    return [(inside[i].z, inside[i].x, inside[i].y) for i in picks]


def direct(path: Path, recipe: str, ranges: list[tuple[float, float]]) -> Callable[[tuple[int, int, int]], bytes]:
    """rio-tiler alone: open the COG, read the tile, rescale by ``ranges``, render a PNG (colour map for an index)."""
    from rio_tiler.colormap import cmap
    from rio_tiler.io import Reader

    index = {name: i + 1 for i, name in enumerate(BANDS)}
    colours = cmap.get("rdylgn")

    def tile(zxy: tuple[int, int, int]) -> bytes:
        z, x, y = zxy
        with Reader(str(path)) as r:
            if recipe.startswith("index:"):
                nir, red = index["nir"], index["red"]
                img = r.tile(x, y, z, expression=f"(b{nir}-b{red})/(b{nir}+b{red})", resampling_method="bilinear",
                             reproject_method="bilinear")
                return img.rescale(in_range=ranges).render(img_format="PNG", colormap=colours)
            img = r.tile(x, y, z, indexes=[index[b] for b in RECIPES[recipe]], resampling_method="bilinear",
                         reproject_method="bilinear")
            return img.rescale(in_range=ranges).render(img_format="PNG")

    return tile


def ranges_of(path: Path, recipe: str) -> list[tuple[float, float]]:
    """The 2-98 % ranges rio-tiler's statistics give (the baseline's stretch; the route computes its own once)."""
    from rio_tiler.io import Reader

    with Reader(str(path)) as r:
        if recipe.startswith("index:"):
            stats = r.statistics(expression="(b5-b4)/(b5+b4)", max_size=512)
        else:
            stats = r.statistics(indexes=[BANDS.index(b) + 1 for b in RECIPES[recipe]], max_size=512)
    return [(s.percentile_2, s.percentile_98) for s in stats.values()]


def measure(server: Server, slug: str, item: str, path: Path, recipe: str,
            tiles: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per tile over HTTP and by rio-tiler directly, alternating tile by tile (after 3 untimed of each)."""
    render = direct(path, recipe, ranges_of(path, recipe))
    ours, theirs = [], []
    with server.client() as c:
        for i, (z, x, y) in enumerate(tiles[:3] + tiles):
            t0 = time.perf_counter()
            answer = c.get(f"/projects/{slug}/imagery/{item}/tiles/{z}/{x}/{y}.png", params={"recipe": recipe})
            t1 = time.perf_counter()
            render((z, x, y))
            t2 = time.perf_counter()
            if answer.status_code != 200:
                raise SystemExit(f"tile {z}/{x}/{y} {recipe}: {answer.status_code} {answer.text[:300]}")
            if i >= 3:
                ours.append(t1 - t0)
                theirs.append(t2 - t1)
    return np.array(ours), np.array(theirs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiles", type=int, default=60, help="Timed tiles per recipe and zoom level")
    ap.add_argument("--size", type=int, default=10000, help="Width and height of the COG in pixels")
    args = ap.parse_args()
    use_this_checkout()
    from rio_tiler.io import Reader

    with tempfile.TemporaryDirectory(prefix="eoengine-bench-tiles-") as tmp:
        t0 = time.perf_counter()
        cog = make_cog(Path(tmp) / "bench8.tif", args.size)
        print(f"COG {args.size}x{args.size}, {len(BANDS)} bands uint16, {cog.stat().st_size / 1e6:.0f} MB, "
              f"made in {time.perf_counter() - t0:.0f} s; {machine()}")
        with Reader(str(cog)) as r:
            native = r.maxzoom
        with platform_server(Path(tmp) / "home", "", *NO_WORKER) as server:
            slug, item = upload(server, cog)
            print(f"{'recipe':<22}{'zoom':>5}{'tiles':>7}{'distinct':>9}{'ours p50':>10}{'p99':>8}{'rio-tiler p50':>15}{'p99':>8}"
                  f"{'ratio p50':>11}{'ratio p99':>11}   (ms; ratio = rio-tiler / ours)")
            for recipe in RECIPES:
                for zoom in (native, native - 2, native - 4):
                    tiles = sample_tiles(cog, zoom, args.tiles)
                    ours, theirs = measure(server, slug, str(item["id"]), cog, recipe, tiles)
                    o50, o99, t50, t99 = (float(np.percentile(a, q)) * 1000 for a in (ours, theirs) for q in (50, 99))
                    print(f"{recipe:<22}{zoom:>5}{len(tiles):>7}{len(set(tiles)):>9}{o50:>10.1f}{o99:>8.1f}{t50:>15.1f}{t99:>8.1f}"
                          f"{t50 / o50:>11.2f}{t99 / o99:>11.2f}")
    print(f"at the end: {machine()}")


if __name__ == "__main__":
    main()
