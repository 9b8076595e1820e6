"""The Python client's label routes over real HTTP: export, import (all or none), snapshots, their build, comments."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import rasterio
from annotation_io_support import annotation_project, set_state, user_id
from jobs_support import worker
from platform_server import LiveServer, live_platform

from eoengine.client import Client
from eoengine.errors import Invalid, NotFound
from eoengine.platform.annotation.schemas import ImportRefused


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


def test_the_client_moves_labels_in_and_out(live: LiveServer, tmp_path: Path) -> None:
    made = annotation_project(live)
    grid, tasks, admin = made["grid"], made["tasks"], user_id(live, "admin")
    set_state(live, list(tasks.values()), "open", assignee=admin)
    good = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": grid.box(10, 20, 13, 25), "properties": {"label": 2}}]}
    bad = {"type": "FeatureCollection", "features": [*good["features"],
                                                     {"type": "Feature", "geometry": None, "properties": {"label": 9}}]}
    (tmp_path / "good.geojson").write_text(json.dumps(good))
    (tmp_path / "bad.geojson").write_text(json.dumps(bad))
    with Client(live.url, live.admin.token) as c:
        with pytest.raises(ImportRefused) as refused:
            c.import_labels("tiny", made["set"], tmp_path / "bad.geojson")
        assert refused.value.problems == [{"index": 1, "reason": "the feature has no geometry"}]
        with pytest.raises(NotFound):
            c.import_labels("tiny", made["set"], tmp_path / "missing.geojson")
        assert c.import_labels("tiny", made["set"], tmp_path / "good.geojson").model_dump() == {"imported": 1, "tasks": 1}
        out = c.export_labels("tiny", made["set"], "geojson", tmp_path, state="all")
        assert out.name == "labels-all.geojson"
        assert [f["geometry"] for f in json.loads(out.read_text())["features"]] == [good["features"][0]["geometry"]]
        with pytest.raises(Invalid):
            c.export_labels("tiny", made["set"], "shp", tmp_path / "x.shp")
        assert not (tmp_path / "x.shp").exists()
        set_state(live, [tasks[(0, 0)]], "accepted", reviewer=admin)
        raster = c.export_labels("tiny", made["set"], "raster", tmp_path / "labels.tif")
        with rasterio.open(raster) as ds:
            assert (ds.read(1)[10:13, 20:25] == 2).all()
        snap = c.take_snapshot("tiny", made["set"])
        assert c.snapshots("tiny", made["set"]) == [snap] and (snap.features, snap.tasks) == (1, 1)
        archive = c.download_snapshot("tiny", made["set"], snap.hash, tmp_path)
        assert archive.name == f"labels-{snap.hash[:12]}.zip"
        assert "eoengine.yaml" in zipfile.ZipFile(archive).namelist()
        job = c.build_snapshot("tiny", made["set"], snap.hash)
        with worker(live.platform.settings, tmp_path / "worker.log"):
            done = job.wait(300)
        assert done.state == "succeeded", done.error
        assert Path(done.result["path"]).name.startswith(f"tiny-{snap.hash[:12]}@")
        comment = c.comment_task("tiny", tasks[(0, 1)], "the river bank is off")
        assert c.resolve_comment("tiny", comment.id).resolved is True
        assert c.resolve_comment("tiny", comment.id, resolved=False).resolved is False
        with pytest.raises(NotFound):
            c.resolve_comment("tiny", 999)
