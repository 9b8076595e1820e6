"""Assets in object storage read in place through GDAL, against storage servers on 127.0.0.1.

Each server runs in its own process (a process that serves files and reads them with GDAL
would deadlock on the GIL) and speaks its cloud's protocol to GDAL: moto's S3 server for
``s3://`` (requests signed with the credentials eoengine hands GDAL), Azurite (Microsoft's
Azure Storage emulator, installed from npm by the Makefile) for ``az://`` with a connection
string, and gcp-storage-emulator for ``gs://`` through ``CPL_GS_ENDPOINT``.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from conftest import OGT, REPO, free_port, run_cli, save_config, start_server, tiny_config

from eoengine.errors import EOError
from eoengine.sourcing.scan import scan_folder
from eoengine.sourcing.storage import parse_options, redacted, resolve

SECRET = "s3cr3t-Value-0123456789"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # Azurite's documented dev key
AZURITE = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
BBOX = "-93.36,15.68,-93.27,15.76"
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"]


@dataclass
class Store:
    """A running storage server: its URL scheme and the options (with secrets as env:) GDAL needs."""

    scheme: str
    options: dict[str, str]
    secrets: dict[str, str]  # environment variables the options name


def upload_s3(endpoint: str, files: list[Path]) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id="AKIDEOENGINE",
                          aws_secret_access_key=SECRET, region_name="us-east-1")
    client.create_bucket(Bucket="imagery")
    for f in files:
        client.upload_file(str(f), "imagery", f"landsat/{f.name}")


def upload_az(connection: str, files: list[Path]) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection)
    service.create_container("imagery")
    for f in files:
        with f.open("rb") as data:
            service.get_blob_client("imagery", f"landsat/{f.name}").upload_blob(data)


def upload_gs(base: str, files: list[Path]) -> None:
    post = {"data": json.dumps({"name": "imagery"}).encode(), "headers": {"Content-Type": "application/json"}}
    urllib.request.urlopen(urllib.request.Request(f"{base}/storage/v1/b?project=eo", method="POST", **post))
    for f in files:
        url = f"{base}/upload/storage/v1/b/imagery/o?uploadType=media&name=landsat/{f.name}"
        urllib.request.urlopen(urllib.request.Request(url, data=f.read_bytes(), method="POST"))


@pytest.fixture(scope="module", params=["s3", "az", "gs"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    files = sorted(OGT.glob("LE7*_stack.gtif"))
    port = free_port()
    launch: dict[str, Callable[[], tuple[list[str], Store, Callable[[], None]]]] = {
        "s3": lambda: ([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                       Store("s3", {"AWS_S3_ENDPOINT": f"127.0.0.1:{port}", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
                                    "AWS_ACCESS_KEY_ID": "AKIDEOENGINE", "AWS_SECRET_ACCESS_KEY": "env:EO_TEST_SECRET"},
                             {"EO_TEST_SECRET": SECRET}),
                       lambda: upload_s3(f"127.0.0.1:{port}", files)),
        "az": lambda: ([str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--silent", "--skipApiVersionCheck",
                        "--location", str(tmp_path_factory.mktemp("azurite"))],
                       Store("az", {"AZURE_STORAGE_CONNECTION_STRING": "env:EO_TEST_AZURE"}, {"EO_TEST_AZURE": (
                           f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
                           f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")}),
                       lambda: upload_az(
                           f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
                           f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;", files)),
        "gs": lambda: ([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
                        "--in-memory"],
                       Store("gs", {"CPL_GS_ENDPOINT": f"http://127.0.0.1:{port}/", "GS_ACCESS_KEY_ID": "GOOG1EOENGINE",
                                    "GS_SECRET_ACCESS_KEY": "env:EO_TEST_SECRET"}, {"EO_TEST_SECRET": SECRET}),
                       lambda: upload_gs(f"http://127.0.0.1:{port}", files)),
    }
    if request.param == "az" and not AZURITE.exists():
        pytest.fail(f"{AZURITE} is missing: run 'make setup' (it installs Azurite from npm)")
    cmd, found, upload = launch[request.param]()
    proc = start_server(cmd, port)
    try:
        upload()
        yield found
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def clean_env(store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in [v for v in os.environ if v.startswith(("AWS_", "GS_", "AZURE_", "CPL_GS_"))]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.aws/credentials and the like
    for var, value in store.secrets.items():
        monkeypatch.setenv(var, value)


def remote_catalog(root: Path, scheme: str) -> Path:
    """The sample Landsat scenes scanned, with their assets moved to <scheme>://imagery/landsat/."""
    scan_folder(OGT, root / "landsat", "landsat-7", exclude=["training_data*"], band_names=BANDS)
    for path in (root / "landsat").rglob("*.json"):
        if path.name == "collection.json":
            continue
        item = pystac.Item.from_file(str(path))
        for asset in item.assets.values():
            asset.href = f"{scheme}://imagery/landsat/{Path(asset.get_absolute_href() or asset.href).name}"
        item.save_object(include_self_link=False, dest_href=str(path))
    return root


def test_fetch_reads_remote_assets_in_place(store: Store, clean_env: None, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    catalog = remote_catalog(tmp_path / "catalog", store.scheme)
    items = tmp_path / "items.json"
    code, _, err = run_cli(["source", "search", str(catalog), "--out", str(items)], capsys)
    assert code == 0, err
    base = ["source", "fetch", str(items), "--bands", "red,nir", "--bbox", BBOX, "--cache", str(tmp_path / "cache")]
    code, out, err = run_cli(base, capsys)  # no credentials (or endpoint) anywhere
    assert code == 2 and f"{store.scheme}://imagery/landsat/" in err and "credentials" in err
    args = [*base, *[f"--storage={k}={v}" for k, v in store.options.items()]]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and out.count("fetched") == 2, out + err
    fetched = sorted((tmp_path / "cache").rglob("*.tif"))
    local = tmp_path / "local.json"  # the same request over the local files gives the same pixels
    scan_folder(OGT, tmp_path / "local" / "landsat", "landsat-7", exclude=["training_data*"], band_names=BANDS)
    run_cli(["source", "search", str(tmp_path / "local"), "--out", str(local)], capsys)
    run_cli(["source", "fetch", str(local), "--bands", "red,nir", "--bbox", BBOX, "--cache", str(tmp_path / "c2")], capsys)
    for a, b in zip(fetched, sorted((tmp_path / "c2").rglob("*.tif")), strict=True):
        with rasterio.open(a) as da, rasterio.open(b) as db:
            assert da.shape == db.shape and np.array_equal(da.read(), db.read(), equal_nan=True)
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and out.count("cached") == 2
    written = "".join(p.read_text(errors="ignore") for p in (tmp_path / "cache").rglob("*") if p.is_file())
    shown = written + out + err + caplog.text
    assert SECRET not in shown and AZURITE_KEY not in shown


def test_a_config_sources_remote_scenes_without_recording_secrets(store: Store, clean_env: None, tmp_path: Path) -> None:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset

    remote_catalog(tmp_path / "catalog", store.scheme)
    cfg = tiny_config(tmp_path)
    cfg["imagery"]["scenes"] = []
    cfg["imagery"]["source"] = {"catalog": "catalog", "datetime": "1999-01-01T00:00:00Z/2000-01-01T00:00:00Z",
                                "bbox": [float(v) for v in BBOX.split(",")], "storage": store.options}
    built = build_dataset(load_config(save_config(tmp_path, cfg)))
    assert [s.id for s in built.manifest.scenes] == ["LE70220491999322EDC01_stack"] and built.manifest.n_chips > 10
    recorded = json.dumps(built.manifest.as_dict()) + "".join(p.read_text(errors="ignore") for p in built.path.rglob("*.json"))
    assert "storage" not in json.dumps(built.manifest.config)
    assert SECRET not in recorded and AZURITE_KEY not in recorded


def test_storage_options_are_checked_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(EOError, match="NOT_SET_ANYWHERE, which is not set"):
        resolve({"AWS_SECRET_ACCESS_KEY": "env:NOT_SET_ANYWHERE"})
    with pytest.raises(EOError, match="not a GDAL/cloud option name"):
        resolve({"aws secret": "x"})
    with pytest.raises(EOError, match="not KEY=VALUE"):
        parse_options(["AWS_S3_ENDPOINT"])
    from rasterio._env import get_gdal_config

    from eoengine.sourcing.storage import storage_env

    with storage_env({"AWS_S3_ENDPOINT": "minio.local:9000"}):
        assert get_gdal_config("AWS_S3_ENDPOINT", normalize=False) == "minio.local:9000"
    assert get_gdal_config("AWS_S3_ENDPOINT", normalize=False) is None  # nothing lingers for the next fetch
    shown = redacted({"AWS_SECRET_ACCESS_KEY": "abc", "AZURE_STORAGE_SAS_TOKEN": "t", "AWS_S3_ENDPOINT": "h:1",
                      "AWS_SESSION_TOKEN": "env:TOKEN"})
    assert shown == {"AWS_SECRET_ACCESS_KEY": "***", "AZURE_STORAGE_SAS_TOKEN": "***", "AWS_S3_ENDPOINT": "h:1",
                     "AWS_SESSION_TOKEN": "env:TOKEN"}
