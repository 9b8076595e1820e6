"""Browsing and uploading through the client over real HTTP: datasets, runs, models, maps, imagery, uploads.

One tiny project is built, trained for one epoch, registered and mapped (in-process, as the
job runner does, then indexed); a second run is logged by hand so there are two to compare.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browse_support import index_artifact, tiny_project
from conftest import OGT
from PIL import Image
from platform_server import EXAMPLES, LiveServer, live_platform

from eoengine.client import Client
from eoengine.errors import Conflict, Denied, Invalid, NotFound

SRC = Path(__file__).resolve().parents[1] / "src"
STACK = OGT / "LE70220491999322EDC01_stack.gtif"


@dataclass
class Tracked:
    """The live platform and what the fixture made in project "tiny"."""

    live: LiveServer
    client: Client
    built: Any
    trained: Any
    other: str
    map_id: int


def _logged_run(uri: str, experiment: str) -> str:
    """A second run of the experiment, logged by hand with another learning rate and a final score."""
    from mlflow.tracking import MlflowClient

    mlflow = MlflowClient(tracking_uri=uri)
    exp = mlflow.get_experiment_by_name(experiment)
    assert exp is not None
    run = mlflow.create_run(exp.experiment_id, run_name="by-hand")
    mlflow.log_param(run.info.run_id, "training.optimizer.kwargs.lr", "0.02")
    mlflow.log_metric(run.info.run_id, "test_miou", 0.25)
    mlflow.set_terminated(run.info.run_id)
    return str(run.info.run_id)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracked]:
    from eoengine.deploy.registry import load_model_ref, register
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import PredictSpec, TrainSpec

    with live_platform(tmp_path_factory.mktemp("client-browse") / "home", data_roots=(EXAMPLES,)) as live:
        folder, built = tiny_project(live, **{"training.epochs": 1})
        trained = run_spec(TrainSpec(config=folder / "eoengine.yaml"))
        register(load_model_ref(str(trained.model_path), trained.tracking_uri), "landcover", trained.tracking_uri,
                 ["champion"])
        other = _logged_run(trained.tracking_uri, "tiny")
        run_spec(PredictSpec(model=str(trained.model_path), scene=[str(STACK)], output=folder / "out/maps/tiny.tif"))
        map_id = index_artifact(live, "tiny", "map", "tiny", "out/maps/tiny.tif")
        with Client(live.url, live.admin.token, timeout=120) as client:
            yield Tracked(live, client, built, trained, other, map_id)


def test_datasets_and_their_detail(tracked: Tracked) -> None:
    c, built = tracked.client, tracked.built
    [listed] = c.datasets("tiny")
    assert (listed.name, listed.version, listed.ref) == ("tiny", built.version, f"tiny@{built.version[:12]}")
    assert listed.chips == sum(listed.splits.values()) > 0 and set(listed.splits) == {"train", "val", "test"}
    detail = c.dataset("tiny", listed.ref)
    assert detail.version == built.version and detail.manifest["version"] == built.version
    balance = {b["split"]: b["chips"] for b in detail.class_balance["splits"]}
    assert balance == listed.splits and detail.band_stats["split"] == "train"
    assert [ch["name"] for ch in detail.band_stats["channels"]] == detail.manifest["channels"]
    with pytest.raises(NotFound, match="no dataset tiny@ffffff"):
        c.dataset("tiny", "tiny@ffffff")
    with pytest.raises(Invalid, match="is not NAME@VERSION"):
        c.dataset("tiny", "tiny")


def test_a_dataset_downloads_as_an_archive(tracked: Tracked, tmp_path: Path) -> None:
    c, built = tracked.client, tracked.built
    ref = f"tiny@{built.version[:12]}"
    into_folder = c.download_dataset("tiny", ref, tmp_path)
    assert into_folder == tmp_path / f"{ref}.tar"
    with tarfile.open(into_folder) as tar:
        names = {Path(n).name for n in tar.getnames()}
        files = {Path(m.name).relative_to(Path(m.name).parts[0]) for m in tar.getmembers() if m.isfile()}
    assert "manifest.json" in names
    on_disk = {p.relative_to(built.path) for p in Path(built.path).rglob("*") if p.is_file()}
    assert files == on_disk
    gz = c.download_dataset("tiny", ref, tmp_path / "named.tar.gz", gz=True)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    with pytest.raises(NotFound):
        c.download_dataset("tiny", "tiny@ffffff", tmp_path / "none.tar")
    assert {p.name for p in tmp_path.iterdir()} == {f"{ref}.tar", "named.tar.gz"}  # nothing half-written


def test_runs_compared_and_models(tracked: Tracked) -> None:
    c, trained = tracked.client, tracked.trained
    assert [r.run_id for r in c.runs("tiny")] == [tracked.other, trained.run_id]  # newest first
    assert [r.run_id for r in c.runs("tiny", sort="test_miou", limit=1)] == [
        max((tracked.other, 0.25), (trained.run_id, trained.scores["test"]["miou"]), key=lambda p: p[1])[0]]
    run = c.run("tiny", trained.run_id)
    assert run.params["training.epochs"] == "1" and run.best_epoch == 0 and run.dataset_version == tracked.built.version
    assert run.registered == ["models:/landcover/1"] and {len(h) for h in run.history.values()} == {1}
    both = c.compare_runs("tiny", [trained.run_id, tracked.other])
    assert both.params["training.optimizer.kwargs.lr"] == ["0.01", "0.02"] and both.metrics["test_miou"][1] == 0.25
    [model] = c.models("tiny")
    assert model.name == "landcover" and model.aliases == {"champion": "1"}
    detail = c.model("tiny", "landcover")
    assert detail.versions[0].run_id == trained.run_id and set(detail.runs) == {trained.run_id}
    with pytest.raises(NotFound, match="no registered model 'nope'"):
        c.model("tiny", "nope")
    with pytest.raises(Invalid, match="2 to"):
        c.compare_runs("tiny", [trained.run_id])


def test_maps_tiles_and_imagery(tracked: Tracked) -> None:
    import morecantile

    c = tracked.client
    [listed] = c.maps("tiny")
    shown = c.map("tiny", tracked.map_id)
    assert listed == shown and shown.kind == "classes" and (shown.width, shown.height) == (250, 250)
    assert [k.name for k in shown.classes] == ["forest", "water", "herbaceous", "barren", "urban"]
    west, south, east, north = shown.bbox
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 14)
    png = Image.open(io.BytesIO(c.map_tile("tiny", tracked.map_id, tile.z, tile.x, tile.y))).convert("RGBA")
    assert png.size == (256, 256) and png.getextrema()[3][1] == 255  # some pixels drawn
    with pytest.raises(NotFound):
        c.map("tiny", 999999)
    [scene] = c.imagery("tiny")
    assert scene.id == "s1999" and "true-color" in scene.recipes


def test_uploads_stream_from_disk_and_are_checked(tracked: Tracked, tmp_path: Path) -> None:
    c = tracked.client
    made = c.upload("tiny", STACK, "imagery")
    assert made.kind == "upload" and made.name == STACK.name and made.path == f"uploads/{STACK.name}"
    assert made.meta["sha256"] == hashlib.sha256(STACK.read_bytes()).hexdigest()
    assert made.meta["size"] == STACK.stat().st_size
    assert made.meta["format"] == "raster" and made.meta["width"] == 250
    with pytest.raises(Conflict, match="has an upload"):
        c.upload("tiny", STACK, "imagery")
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(Invalid, match="not a raster"):
        c.upload("tiny", text, "imagery")
    with pytest.raises(Invalid, match="unknown upload kind"):
        c.upload("tiny", STACK, "pictures")
    with pytest.raises(NotFound, match="is not a file"):
        c.upload("tiny", tmp_path / "missing.tif", "imagery")
    assert [u.id for u in c.uploads("tiny")] == [made.id]
    with Client(tracked.live.url, tracked.live.user("uma-stranger")) as stranger, pytest.raises(NotFound):
        stranger.upload("tiny", STACK, "imagery")  # not a member: the project is not revealed


def test_an_upload_is_not_read_into_memory(tracked: Tracked, tmp_path: Path) -> None:
    import numpy as np
    import rasterio

    big = tmp_path / "big.tif"
    with rasterio.open(big, "w", driver="GTiff", width=8000, height=6000, count=1, dtype="uint8",
                       crs="EPSG:32617", transform=rasterio.transform.from_origin(700000, 4000000, 30, 30)) as ds:
        ds.write(np.random.default_rng(0).integers(0, 255, (1, 6000, 8000), dtype=np.uint8))
    assert big.stat().st_size > 45 * 2**20
    script = ("import sys, tracemalloc; from eoengine.client import Client; tracemalloc.start(); "
              "a = Client(sys.argv[1], sys.argv[2], timeout=120).upload('tiny', sys.argv[3], 'imagery'); "
              "print(a.meta['size'], tracemalloc.get_traced_memory()[1])")
    done = subprocess.run([sys.executable, "-c", script, tracked.live.url, tracked.live.admin.token, str(big)],
                          capture_output=True, text=True, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    size, peak = map(int, done.stdout.split())
    assert size == big.stat().st_size and peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB for {size / 2**20:.0f} MB"


def test_viewers_may_not_upload(tracked: Tracked) -> None:
    live, before = tracked.live, tracked.client.uploads("tiny")
    token = live.user("vic-viewer")
    tracked.client.add_member("tiny", "vic-viewer", "viewer")
    with Client(live.url, token) as viewer:
        with pytest.raises(Denied, match="may not run"):
            viewer.upload("tiny", STACK, "imagery")
        assert viewer.uploads("tiny") == before
