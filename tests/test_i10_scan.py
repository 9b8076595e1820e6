"""Issue 10: ``source scan`` on files nobody here has seen — undated, oddly named bands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import run_cli, write_raster


def _scene(folder: Path, name: str = "field_plot.tif", bands: int = 3, descriptions: list[str] | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    path = write_raster(folder / name, np.ones((bands, 8, 8), dtype=np.uint16))
    if descriptions:
        with rasterio.open(path, "r+") as ds:
            for i, d in enumerate(descriptions, start=1):
                ds.set_band_description(i, d)
    return path


def _items(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in out.rglob("*.json") if p.name != "collection.json"]


def test_datetime_dates_undated_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _scene(tmp_path / "img")
    code, _, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "cat")], capsys)
    assert code == 2 and "--datetime 2024-06-01" in err and not (tmp_path / "cat").exists()
    code, _, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "cat"),
                            "--datetime", "2024-06-01"], capsys)
    assert code == 0, err
    assert [i["properties"]["datetime"] for i in _items(tmp_path / "cat")] == ["2024-06-01T00:00:00Z"]
    code, _, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "c2"),
                            "--datetime", "June"], capsys)
    assert code == 2 and "--datetime 'June' is not a date" in err and len(err.strip().splitlines()) == 1


def test_a_dated_name_wins_over_datetime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _scene(tmp_path / "img", "plot_20230105.tif")
    code, _, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "cat"),
                            "--datetime", "2024-06-01"], capsys)
    assert code == 0, err
    assert _items(tmp_path / "cat")[0]["properties"]["datetime"].startswith("2023-01-05")


@pytest.mark.parametrize(("names", "message"), [
    ("red,red,green", "--band-names repeats red"),
    ("blue,green", "gives 2 name(s) but"),
    ("blue,green,red,nir", "gives 4 name(s) but"),
    ("blue,,red", "has an empty name"),
])
def test_bad_band_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], names: str, message: str) -> None:
    _scene(tmp_path / "img")
    code, _, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "cat"),
                            "--datetime", "2024-06-01", "--band-names", names], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "cat").exists()


def test_only_eo_common_names_are_written_as_common_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _scene(tmp_path / "img")
    code, out, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "cat"),
                              "--datetime", "2024-06-01", "--band-names", "red,nir,ndvi"], capsys)
    assert code == 0, err
    assert "ndvi written as band name(s) only" in out
    bands = _items(tmp_path / "cat")[0]["assets"]["data"]["eo:bands"]
    assert bands == [{"name": "red", "common_name": "red"}, {"name": "nir", "common_name": "nir"}, {"name": "ndvi"}]


def test_repeated_band_descriptions_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _scene(tmp_path / "img", descriptions=["red", "red", "nir"])
    code, _, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "cat"),
                            "--datetime", "2024-06-01"], capsys)
    assert code == 2 and "several bands named red" in err and "--band-names" in err
    code, _, err = run_cli(["source", "scan", str(tmp_path / "img"), "--out", str(tmp_path / "cat"),
                            "--datetime", "2024-06-01", "--band-names", "red,green,nir"], capsys)
    assert code == 0, err
