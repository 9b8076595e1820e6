"""Uploads over real HTTP: streamed into the project's uploads/, checked with rasterio / pyogrio, indexed, capped."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from browse_support import error_of
from conftest import NC, write_raster
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.platform.db.models import Artifact, Event

RED = NC / "data" / "lsat7_2000_30.tif"



@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, module_db: str) -> Iterator[LiveServer]:
    with live_platform(tmp_path_factory.mktemp("uploads") / "home", db_url=module_db) as server:
        with server.client() as c:
            assert c.post("/projects", json={"name": "up", "template": "nc-landsat"}).status_code == 201
        yield server


def _upload(c: httpx.Client, path: Path, kind: str = "imagery", name: str | None = None) -> httpx.Response:
    with path.open("rb") as f:
        return c.post("/projects/up/uploads", files={"file": (name or path.name, f, "application/octet-stream")},
                      data={"kind": kind})


def _folder(live: LiveServer) -> Path:
    return live.platform.settings.projects_dir / "up" / "uploads"


def _uploads(live: LiveServer) -> list[Artifact]:
    with live.platform.db.read() as s:
        return list(s.scalars(select(Artifact).where(Artifact.kind == "upload")))


def test_imagery_upload_is_stored_checked_and_indexed(live: LiveServer) -> None:
    with live.client() as c:
        r = _upload(c, RED, name="../../sub/red band.tif")
        assert r.status_code == 201, r.text
        made = r.json()
        listed = c.get("/projects/up/uploads").json()
    assert made["name"] == "red_band.tif" and made["path"] == "uploads/red_band.tif" and made["kind"] == "upload"
    stored = _folder(live) / "red_band.tif"
    assert stored.read_bytes() == RED.read_bytes()
    meta = made["meta"]
    assert meta["kind"] == "imagery" and meta["size"] == RED.stat().st_size
    assert meta["sha256"] == hashlib.sha256(RED.read_bytes()).hexdigest()
    assert meta["crs"] == "EPSG:32119" and meta["bands"] == ["b1"] and meta["format"] == "raster"
    lon, lat = meta["footprint"]["coordinates"][0][0]
    assert -79 < lon < -78.5 and 35.6 < lat < 35.9
    assert [u["id"] for u in listed] == [made["id"]]
    with live.platform.db.read() as s:
        event = s.scalars(select(Event).where(Event.action == "upload.create")).one()
    assert event.object_id == str(made["id"]) and event.data["sha256"] == meta["sha256"]


def test_vector_labels_upload(live: LiveServer) -> None:
    with live.client() as c:
        r = _upload(c, NC / "split_halves.geojson", kind="labels")
    assert r.status_code == 201, r.text
    meta = r.json()["meta"]
    assert meta["format"] == "vector" and meta["features"] == 3 and meta["kind"] == "labels"
    assert meta["footprint"]["type"] == "Polygon"


def test_not_a_raster_is_refused_and_nothing_stays(live: LiveServer, tmp_path: Path) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("just some text\n" * 100)
    nocrs = write_raster(tmp_path / "nocrs.tif", np.ones((1, 8, 8), np.uint8), crs=None)  # type: ignore[arg-type]
    before = _uploads(live)
    with live.client() as c:
        assert "not a raster" in error_of(_upload(c, text), 422)["error"]
        assert "not a raster" in error_of(_upload(c, text, kind="labels", name="notes.geojson"), 422)["error"]
        assert "no CRS" in error_of(_upload(c, nocrs), 422)["error"]
        assert "kind" in error_of(_upload(c, RED, kind="weights", name="other.tif"), 422)["error"]
        error_of(c.post("/projects/up/uploads", data={"kind": "imagery"}), 422)  # no file part
        error_of(c.post("/projects/up/uploads", json={"kind": "imagery"}), 422)  # not multipart
        error_of(c.post("/projects/up/uploads", content=b"--x\r\nnot a part header\r\n\r\n--x--",
                        headers={"content-type": "multipart/form-data; boundary=x"}), 422)  # malformed
        assert "usable" in error_of(_upload(c, RED, name=".."), 422)["error"]
        vrt = tmp_path / "elsewhere.tif"  # a VRT naming a file outside the project (here: its config's imagery)
        vrt.write_text(f'<VRTDataset rasterXSize="8" rasterYSize="8"><VRTRasterBand dataType="Byte" band="1">'
                       f'<SimpleSource><SourceFilename>{RED}</SourceFilename><SourceBand>1</SourceBand></SimpleSource>'
                       f'</VRTRasterBand></VRTDataset>')
        assert "VRT raster, which an upload may not be" in error_of(_upload(c, vrt), 422)["error"]
        geojson = tmp_path / "labels.geojson"
        geojson.write_text('{"type": "FeatureCollection", "features": []}')
        for bad in ("code.py", "labels.geojson.py", "noext"):
            assert "a suffix that labels uploads take" in error_of(_upload(c, geojson, kind="labels", name=bad), 422)["error"]
        assert "a suffix that imagery uploads take" in error_of(_upload(c, RED, name="red.py"), 422)["error"]
        assert _upload(c, RED, name="dup.tif").status_code == 201
        assert "already" in error_of(_upload(c, RED, name="dup.tif"), 409)["error"]
    names = sorted(p.name for p in _folder(live).iterdir())
    assert "notes.tif" not in names and "nocrs.tif" not in names and "elsewhere.tif" not in names and not [n for n in names if n.startswith(".")]
    assert len(_uploads(live)) == len(before) + 1


def test_roles(live: LiveServer) -> None:
    viewer, outsider = live.user("vic-up"), live.user("otto-up")
    with live.client() as c:
        assert c.post("/projects/up/members", json={"username": "vic-up", "role": "viewer"}).status_code == 201
    with live.client(viewer) as v:
        assert "reviewer" in error_of(_upload(v, RED, name="v.tif"), 403)["fix"]
        assert v.get("/projects/up/uploads").status_code == 200
    with live.client(outsider) as o:
        error_of(_upload(o, RED, name="o.tif"), 404)
        error_of(o.get("/projects/up/uploads"), 404)


def _multipart(path: Path, boundary: str = "eoengine-test-boundary") -> Iterator[bytes]:
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nimagery\r\n"
           f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.tif\"\r\n"
           "Content-Type: image/tiff\r\n\r\n").encode()
    with path.open("rb") as f:
        while chunk := f.read(65536):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def test_upload_over_the_cap_is_stopped_while_streaming(tmp_path: Path) -> None:
    with live_platform(tmp_path / "home", max_upload_mb=0.25) as small:
        with small.client() as c:
            assert c.post("/projects", json={"name": "up", "template": "nc-landsat"}).status_code == 201
            declared = _upload(c, RED)  # 850 kB, with its Content-Length: refused before it is read
            assert "0.25 MB" in error_of(declared, 413)["error"]
            streamed = c.post("/projects/up/uploads", content=_multipart(RED),  # chunked: no length to refuse by
                              headers={"content-type": "multipart/form-data; boundary=eoengine-test-boundary"})
            error_of(streamed, 413)
            assert c.post("/projects/up/uploads", content=_multipart(NC / "split_halves.geojson"), headers={
                "content-type": "multipart/form-data; boundary=eoengine-test-boundary"}).status_code == 422
        folder = small.platform.settings.projects_dir / "up" / "uploads"
        assert list(folder.iterdir()) == []  # the partial file is gone
        with small.platform.db.read() as s:
            assert s.scalars(select(Artifact)).all() == []
