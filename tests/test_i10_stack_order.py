"""Issue 10: a stack is read in one way only, and the server reads uploads as the CLI reads files.

A model trained on bands [3, 1, 2] of a stack, given a file with exactly its band count and no
band descriptions, cannot know whether the file is in the model's order or the training
stack's: it refuses and says how to name the bands. The server's upload route takes what
``eoengine predict`` takes (the very training stack too), and a wrong band count is a 422.
"""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import OGT, four_band_stack, run_cli, saved_package
from fastapi.testclient import TestClient

from eoengine.models.package import load_package
from eoengine.serving.app import Settings, create_app

STACK = OGT / "LE70220491999322EDC01_stack.gtif"
AUTH = {"X-API-Key": "k"}


def _map(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_a_reordering_stack_layout_with_the_model_s_band_count_is_refused(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    model = saved_package(tmp_path / "m", stack_indexes=[4, 3, 2, 1])
    four = four_band_stack(tmp_path / "four.tif")  # blue, green, red, nir: the model's order, no descriptions
    code, _, err = run_cli(["predict", str(model), str(four), "--out", str(tmp_path / "x.tif")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{four} has the model's 4 bands" in err and "trained on bands [4, 3, 2, 1]" in err
    assert f"{four}:N once per band" in err and f"blue={four}:4" in err
    assert not list(tmp_path.glob("*x.tif*"))
    code, _, err = run_cli(["predict", str(model), *[f"{four}:{i}" for i in (1, 2, 3, 4)], "--out", str(tmp_path / "y.tif")],
                           capsys)
    assert code == 0, err  # the fix it names works


def test_an_in_order_layout_or_a_larger_stack_still_reads_without_asking(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    four = four_band_stack(tmp_path / "four.tif")
    code, _, err = run_cli(["predict", str(saved_package(tmp_path / "a", stack_indexes=[1, 2, 3, 4])), str(four),
                            "--out", str(tmp_path / "a.tif")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["predict", str(saved_package(tmp_path / "b", stack_indexes=[4, 3, 2, 1])), str(STACK),
                            "--out", str(tmp_path / "b.tif")], capsys)
    assert code == 0, err  # 8 bands: only the training layout fits


def test_the_server_takes_the_training_stack_as_the_cli_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = saved_package(tmp_path / "m", stack_indexes=[1, 2, 3, 4])
    client = TestClient(create_app(load_package(model), Settings(api_key="k", engine="torch")))
    r = client.post("/predict", files={"file": ("s.tif", STACK.read_bytes(), "image/tiff")}, headers=AUTH)
    assert r.status_code == 200, r.text
    (tmp_path / "served.tif").write_bytes(r.content)
    code, _, err = run_cli(["predict", str(model), str(STACK), "--out", str(tmp_path / "cli.tif"), "--engine", "torch"], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "served.tif"), _map(tmp_path / "cli.tif"))


def test_a_wrong_band_count_upload_is_a_422_naming_the_upload(tmp_path: Path) -> None:
    model = saved_package(tmp_path / "m", stack_indexes=[1, 2, 3, 4])
    with rasterio.open(STACK) as ds:
        profile, data = ds.profile | {"count": 3}, ds.read([1, 2, 3])
    three = tmp_path / "three.tif"
    with rasterio.open(three, "w", **profile) as dst:
        dst.write(data)
    client = TestClient(create_app(load_package(model), Settings(api_key="k", engine="torch")))
    r = client.post("/predict", files={"file": ("s.tif", three.read_bytes(), "image/tiff")}, headers=AUTH)
    assert r.status_code == 422 and set(r.json()) == {"error", "fix"}, r.text
    assert r.json()["error"] == "the model expects 4 bands (blue, green, red, nir); the upload give(s) 3 band(s)"
    assert "the stack the model was trained on" in r.json()["fix"]
