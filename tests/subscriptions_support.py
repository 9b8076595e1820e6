"""Helpers for the subscription tests: a static STAC catalog of tiny real scenes, a webhook receiver, a spec."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from conftest import OGT
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely.geometry import box, mapping, shape

SOURCE = OGT / "LE70220491999322EDC01_stack.gtif"
SIZE = 64
SECRET = "a-webhook-secret-of-some-length"
BANDS = ["blue", "green", "red", "nir"]


def write_scene(folder: Path, name: str, shift: int = 0, gain: float = 1.0) -> Path:
    """A 4-band (blue, green, red, nir) 64×64 window of the sample Landsat stack; ``shift``/``gain`` vary it."""
    with rasterio.open(SOURCE) as ds:
        window = Window(40 + shift, 40 + shift, SIZE, SIZE)
        data = ds.read([1, 2, 3, 4], window=window).astype("float32") * gain
        profile = ds.profile | {"count": 4, "width": SIZE, "height": SIZE, "transform": ds.window_transform(Window(40, 40, SIZE, SIZE)),
                                "dtype": "uint16", "nodata": 0}
    path = folder / f"{name}.tif"
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.clip(data, 1, 65535).astype("uint16"))
    return path


def catalog(folder: Path, scenes: list[tuple[str, str, float, Path]]) -> Path:
    """A static STAC catalog at ``folder`` of ``(id, date, cloud cover, file)`` scenes; rewritten when called again."""
    from eoengine.sourcing.scan import make_item, write_collection

    items = []
    for item_id, date, cloud, path in scenes:
        item = make_item(item_id, [(path, None)], band_names=BANDS, fixed_date=dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC))
        item.properties["eo:cloud_cover"] = cloud
        items.append(item)
    write_collection(items, folder, "tiny-landsat", "tiny scenes for subscriptions")
    return folder


def area_of(path: Path, margin: float = 0.15) -> dict[str, Any]:
    """A lon/lat polygon inside the scene ``path`` (its footprint shrunk by ``margin`` of its size each side)."""
    with rasterio.open(path) as ds:
        w, s, e, n = ds.bounds
        dx, dy = (e - w) * margin, (n - s) * margin
        return dict(transform_geom(ds.crs, "EPSG:4326", mapping(box(w + dx, s + dy, e - dx, n - dy))))


def spec_data(source: Path, model: Path, area: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A subscription spec (as data) over ``source`` with ``model``."""
    return {"name": "tiny watch", "area": area, "model": str(model), "source": str(source), "cadence": "each-new-scene",
            "start": "2020-01-01T00:00:00Z", "engine": "torch"} | extra


class Receiver:
    """A real HTTP server on 127.0.0.1 recording every POST; answers ``status`` after ``delay`` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, topic: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies received (of ``topic``)."""
        return [json.loads(b) for h, b in self.received if topic is None or h["x-eoengine-event"] == topic]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def inside(geometry: dict[str, Any], area: dict[str, Any], slack: float = 1e-6) -> bool:
    """Whether ``geometry`` lies within ``area`` (lon/lat)."""
    return bool(shape(area).buffer(slack).contains(shape(geometry)))


def item_of(record: Any) -> pystac.Item:
    """The run's STAC Item, read back."""
    return pystac.Item.from_file(record.item_path)


def serve_on(app: Any, port: int) -> Any:
    """Run an ASGI app with uvicorn on 127.0.0.1:``port`` in a daemon thread; returns the server."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server
