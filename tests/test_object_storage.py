"""Assets in object storage, read in place through GDAL's /vsis3/ against an S3 server on 127.0.0.1.

The server is moto's S3 server in its own process (a process that serves files and reads them
with GDAL would deadlock on the GIL). GDAL speaks the real S3 protocol to it, signing every
request with the credentials eoengine hands it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from conftest import OGT, free_port, run_cli, save_config, tiny_config

from eoengine.errors import EOError
from eoengine.sourcing.scan import scan_folder
from eoengine.sourcing.storage import parse_options, redacted, resolve

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

SECRET = "s3cr3t-Value-0123456789"
BBOX = "-93.36,15.68,-93.27,15.76"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    endpoint = f"127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id="AKIDEOENGINE",
                          aws_secret_access_key=SECRET, region_name="us-east-1")
    client.create_bucket(Bucket="imagery")
    for tif in OGT.glob("LE7*_stack.gtif"):
        client.upload_file(str(tif), "imagery", f"landsat/{tif.name}")
    yield endpoint
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in [v for v in os.environ if v.startswith(("AWS_", "GS_", "AZURE_"))]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.aws/credentials
    monkeypatch.setenv("EO_TEST_SECRET", SECRET)


def s3_catalog(root: Path) -> Path:
    """The sample Landsat scenes scanned, with their assets moved to s3://imagery/landsat/."""
    scan_folder(OGT, root / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    for path in (root / "landsat").rglob("*.json"):
        if path.name == "collection.json":
            continue
        item = pystac.Item.from_file(str(path))
        for asset in item.assets.values():
            asset.href = f"s3://imagery/landsat/{Path(asset.get_absolute_href() or asset.href).name}"
        item.save_object(include_self_link=False, dest_href=str(path))
    return root


def options(endpoint: str) -> dict[str, str]:
    return {"AWS_S3_ENDPOINT": endpoint, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_ACCESS_KEY_ID": "AKIDEOENGINE", "AWS_SECRET_ACCESS_KEY": "env:EO_TEST_SECRET"}


def test_fetch_reads_s3_assets_in_place(s3: str, clean_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    catalog = s3_catalog(tmp_path / "catalog")
    items = tmp_path / "items.json"
    code, _, err = run_cli(["source", "search", str(catalog), "--out", str(items)], capsys)
    assert code == 0, err
    base = ["source", "fetch", str(items), "--bands", "red,nir", "--bbox", BBOX, "--cache", str(tmp_path / "cache")]
    code, out, err = run_cli(base, capsys)  # no credentials anywhere
    assert code == 2 and "s3://imagery/landsat/" in err and "credentials" in err
    args = [*base, *[f"--storage={k}={v}" for k, v in options(s3).items()]]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and out.count("fetched") == 2, out + err
    fetched = sorted((tmp_path / "cache").rglob("*.tif"))
    local = tmp_path / "local.json"  # the same request over the local files gives the same pixels
    scan_folder(OGT, tmp_path / "local" / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    run_cli(["source", "search", str(tmp_path / "local"), "--out", str(local)], capsys)
    run_cli(["source", "fetch", str(local), "--bands", "red,nir", "--bbox", BBOX, "--cache", str(tmp_path / "c2")], capsys)
    for a, b in zip(fetched, sorted((tmp_path / "c2").rglob("*.tif")), strict=True):
        with rasterio.open(a) as da, rasterio.open(b) as db:
            assert da.shape == db.shape and np.array_equal(da.read(), db.read(), equal_nan=True)
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and out.count("cached") == 2
    written = "".join(p.read_text(errors="ignore") for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert SECRET not in written + out + err + caplog.text


def test_a_config_sources_scenes_from_s3_without_recording_secrets(s3: str, clean_env: None, tmp_path: Path) -> None:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset

    s3_catalog(tmp_path / "catalog")
    cfg = tiny_config(tmp_path)
    cfg["imagery"]["scenes"] = []
    cfg["imagery"]["source"] = {"catalog": "catalog", "datetime": "1999-01-01T00:00:00Z/2000-01-01T00:00:00Z",
                                "bbox": [float(v) for v in BBOX.split(",")], "storage": options(s3)}
    built = build_dataset(load_config(save_config(tmp_path, cfg)))
    assert [s["id"] for s in built.manifest["scenes"]] == ["LE70220491999322EDC01_stack"] and built.manifest["n_chips"] > 10
    recorded = json.dumps(built.manifest) + "".join(p.read_text(errors="ignore") for p in built.path.rglob("*.json"))
    assert SECRET not in recorded and "AKIDEOENGINE" not in recorded and "storage" not in json.dumps(built.manifest["config"])


def test_storage_options_are_checked_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(EOError, match="NOT_SET_ANYWHERE, which is not set"):
        resolve({"AWS_SECRET_ACCESS_KEY": "env:NOT_SET_ANYWHERE"})
    with pytest.raises(EOError, match="not a GDAL/cloud option name"):
        resolve({"aws secret": "x"})
    with pytest.raises(EOError, match="not KEY=VALUE"):
        parse_options(["AWS_S3_ENDPOINT"])
    shown = redacted({"AWS_SECRET_ACCESS_KEY": "abc", "AZURE_STORAGE_SAS_TOKEN": "t", "AWS_S3_ENDPOINT": "h:1",
                      "AWS_SESSION_TOKEN": "env:TOKEN"})
    assert shown == {"AWS_SECRET_ACCESS_KEY": "***", "AZURE_STORAGE_SAS_TOKEN": "***", "AWS_S3_ENDPOINT": "h:1",
                     "AWS_SESSION_TOKEN": "env:TOKEN"}
