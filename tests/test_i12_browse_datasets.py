"""Datasets over real HTTP: a real build of a project's dataset, browsed, archived, described as STAC, its files served.

The project is the tiny config (the open-geo-tutorial scene, a data root of the server) with
its output in the project folder; its dataset is built in-process with the job runner's core
function and indexed as the job runner indexes it.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from browse_support import error_of, tiny_project
from PIL import Image
from platform_server import EXAMPLES, LiveServer, live_platform

from eoengine.datasets.schema import DatasetManifest


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, module_db: str) -> Iterator[tuple[LiveServer, Any]]:
    with live_platform(tmp_path_factory.mktemp("datasets") / "home", db_url=module_db, data_roots=(EXAMPLES,)) as live:
        _, built = tiny_project(live)
        yield live, built


def _base(built: Any) -> str:
    return f"/projects/tiny/datasets/tiny@{built.version[:12]}"


def test_datasets_are_listed_with_their_chips(served: tuple[LiveServer, Any]) -> None:
    live, built = served
    manifest = DatasetManifest.read(built.path)
    with live.client() as c:
        [listed] = c.get("/projects/tiny/datasets").json()
    assert listed["name"] == "tiny" and listed["version"] == built.version and listed["ref"] == f"tiny@{built.version[:12]}"
    assert listed["path"] == f"out/datasets/tiny@{built.version[:12]}"
    assert listed["chips"] == manifest.n_chips > 0 and listed["splits"] == manifest.splits


def test_a_version_shows_manifest_balance_and_band_stats(served: tuple[LiveServer, Any]) -> None:
    live, built = served
    manifest = DatasetManifest.read(built.path)
    with live.client() as c:
        short, full = c.get(_base(built)).json(), c.get(f"/projects/tiny/datasets/tiny@{built.version}").json()
    assert short == full and short["manifest"]["version"] == built.version
    assert [ch["name"] for ch in short["band_stats"]["channels"]] == manifest.channels  # bands then NDVI
    train_means = manifest.statistics.train.mean
    assert all(abs(ch["mean"] - m) < 1e-3 for ch, m in zip(short["band_stats"]["channels"], train_means, strict=True))
    balance = short["class_balance"]
    assert {s["split"] for s in balance["splits"]} == set(manifest.splits)
    train = next(s for s in balance["splits"] if s["split"] == "train")
    assert [c["pixels"] for c in train["classes"]] == manifest.class_frequencies["train"]


def test_footprints_previews_and_leakage(served: tuple[LiveServer, Any]) -> None:
    live, built = served
    manifest = DatasetManifest.read(built.path)
    with live.client() as c:
        features = c.get(f"{_base(built)}/footprints").json()["features"]
        preview = c.get(f"{_base(built)}/chips/{features[0]['id']}/preview.png", params={"bands": "nir,red,green"})
        labels = c.get(f"{_base(built)}/chips/{features[0]['id']}/labels.png")
        body = error_of(c.get(f"{_base(built)}/chips/0/preview.png", params={"bands": "thermal"}), 422)
        error_of(c.get(f"{_base(built)}/chips/999999/preview.png"), 404)
        error_of(c.get(f"{_base(built)}/chips/{2**64}/labels.png"), 422)
        error_of(c.get(f"{_base(built)}/chips/0/preview.png", params={"stretch": "p98,p2"}), 422)
        leak = c.get(f"{_base(built)}/leakage").json()
        error_of(c.get(f"{_base(built)}/leakage", params={"threshold_m": -1}), 422)
    assert len(features) == manifest.n_chips
    assert {f["properties"]["split"] for f in features} == set(manifest.splits)
    assert "nir" in body["fix"]
    for png in (preview, labels):
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(png.content)).size == (manifest.patch_size, manifest.patch_size)
    assert leak["verdict"] in ("separated", "near", "overlap") and {s["split"] for s in leak["splits"]} <= {"val", "test"}


def test_archive_streams_the_whole_folder(served: tuple[LiveServer, Any]) -> None:
    live, built = served
    with live.client() as c:
        r = c.get(f"{_base(built)}/archive")
    assert r.status_code == 200 and r.headers["content-disposition"] == f'attachment; filename="tiny@{built.version[:12]}.tar"'
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        names = tar.getnames()
        manifest = tar.extractfile(next(n for n in names if n.endswith("manifest.json")))
        assert manifest is not None and manifest.read() == (built.path / "manifest.json").read_bytes()
    on_disk = [p for p in built.path.rglob("*") if p.is_file()]
    assert len([n for n in names if not n.endswith("/")]) >= len(on_disk)


def test_stac_collection_links_to_itself_and_the_files(served: tuple[LiveServer, Any]) -> None:
    live, built = served
    with live.client() as c:
        stac = c.get(f"{_base(built)}/stac").json()
    url = f"{live.url}/api/v1{_base(built)}"
    assert stac["type"] == "Collection" and stac["id"] == f"tiny@{built.version[:12]}"
    assert {link["href"] for link in stac["links"] if link["rel"] == "self"} == {f"{url}/stac"}
    assert all(a["href"].startswith(f"{url}/files/") for a in stac["assets"].values())


def test_files_are_served_with_ranges_and_kept_inside(served: tuple[LiveServer, Any]) -> None:
    live, built = served
    manifest = (built.path / "manifest.json").read_bytes()
    outside = built.path.parent / "secret.txt"
    outside.write_text("not for you")
    os.symlink(outside, built.path / "link.txt")
    with live.client() as c:
        files = f"{_base(built)}/files"
        assert c.get(f"{files}/manifest.json").content == manifest
        part = c.get(f"{files}/manifest.json", headers={"Range": "bytes=10-49"})
        assert part.status_code == 206 and part.content == manifest[10:50]
        assert part.headers["content-range"] == f"bytes 10-49/{len(manifest)}"
        head = c.head(f"{files}/chips.parquet")
        assert head.status_code == 200 and int(head.headers["content-length"]) == (built.path / "chips.parquet").stat().st_size
        for bad in ("../secret.txt", "..%2Fsecret.txt", "%2Fetc%2Fhostname", "link.txt", "data.zarr", "nope.json"):
            error_of(c.get(f"{files}/{bad}"), 404)
        error_of(c.get("/projects/tiny/datasets/tiny@000000000000/files/manifest.json"), 404)
        error_of(c.get("/projects/tiny/datasets/tiny/files/manifest.json"), 422)
        error_of(c.get("/projects/tiny/datasets/other@" + built.version[:12]), 404)


def test_another_machine_reads_the_dataset_through_its_url(served: tuple[LiveServer, Any], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from eoengine.datasets.location import TOKEN_ENV
    from eoengine.datasets.remote import dataset_root
    from eoengine.datasets.store import open_all_arrays

    live, built = served
    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(TOKEN_ENV, live.admin.token)
    root = dataset_root(f"{live.url}/api/v1{_base(built)}")
    assert DatasetManifest.read(root).version == built.version
    rows = np.arange(DatasetManifest.read(built.path).n_array_rows)
    local, remote = open_all_arrays(built.path), open_all_arrays(root)
    assert sorted(remote) == sorted(local)
    for name in local:
        assert [np.asarray(remote[name][int(i)]).tobytes() for i in rows] == [
            np.asarray(local[name][int(i)]).tobytes() for i in rows]
    assert json.loads((root / "remote.json").read_text())["version"] == built.version


def test_datasets_need_membership(served: tuple[LiveServer, Any]) -> None:
    live, built = served
    outsider = live.user("oscar-ds")
    with live.client(outsider) as o:
        error_of(o.get("/projects/tiny/datasets"), 404)
        error_of(o.get(f"{_base(built)}/files/manifest.json"), 404)
    error_of(httpx.get(f"{live.url}/api/v1{_base(built)}/files/manifest.json"), 401)
