"""Every bad input gets one clear line, exit 2, no traceback, and leaves nothing behind."""

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from conftest import OGT, REPO, run_cli, save_config, tiny_config, write_raster
from shapely.geometry import box


def _build(tmp: Path, capsys: pytest.CaptureFixture[str], **overrides: object) -> tuple[int, str]:
    cfg = save_config(tmp, tiny_config(tmp, **overrides))
    code, _, err = run_cli(["dataset", "build", str(cfg)], capsys)
    datasets = tmp / "out" / "datasets"
    assert not datasets.exists() or not any(datasets.iterdir()), "a failed build left files behind"
    return code, err


def _labels(tmp: Path, frame: gpd.GeoDataFrame, name: str) -> str:
    path = tmp / name
    frame.to_file(path)
    return str(path)


def _scene(stack: str) -> list[dict]:
    return [{"id": "s", "stack": stack, "stack_indexes": [1, 2, 3, 4]}]


def test_missing_raster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _build(tmp_path, capsys, **{"imagery.scenes": _scene(str(tmp_path / "gone.tif"))})
    assert code == 2 and "input file not found" in err and "gone.tif" in err


def test_corrupt_geotiff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage" * 10)
    code, err = _build(tmp_path, capsys, **{"imagery.scenes": _scene(str(bad))})
    assert code == 2 and "cannot read raster" in err and "bad.tif" in err


def test_band_name_not_in_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"blue": str(OGT / "LE70220491999322EDC01_stack.gtif"), "green": "x", "red": "x", "nir2": "x"}
    code, err = _build(tmp_path, capsys, **{"imagery.scenes": [{"id": "s", "files": files}]})
    assert code == 2 and "files do not match the bands" in err and "nir2" in err


def test_band_index_not_in_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenes = [{"id": "s", "stack": str(OGT / "LE70220491999322EDC01_stack.gtif"), "stack_indexes": [1, 2, 3, 12]}]
    code, err = _build(tmp_path, capsys, **{"imagery.scenes": scenes})
    assert code == 2 and "has 8 band(s), no band 12" in err


def test_index_needs_missing_band(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _build(tmp_path, capsys, **{"features.indices": ["NBR"]})
    assert code == 2 and "index NBR needs band(s) S2 (swir22)" in err


def test_labels_outside_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    far = gpd.GeoDataFrame({"id": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    code, err = _build(tmp_path, capsys, **{"labels.path": _labels(tmp_path, far, "far.gpkg")})
    assert code == 2 and "do not overlap the scene" in err


def test_labels_crs_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = gpd.read_file(OGT / "training_data.shp")
    path = _labels(tmp_path, frame, "nocrs.shp")
    Path(path).with_suffix(".prj").unlink()
    code, err = _build(tmp_path, capsys, **{"labels.path": path})
    assert code == 2 and "have no CRS" in err


def test_class_column_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _build(tmp_path, capsys, **{"labels.class_column": "landcover"})
    assert code == 2 and "no column 'landcover'" in err and "'class'" in err


def test_empty_label_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = gpd.read_file(OGT / "training_data.shp").iloc[:0]
    code, err = _build(tmp_path, capsys, **{"labels.path": _labels(tmp_path, empty, "empty.gpkg")})
    assert code == 2 and "contain no features" in err


def test_patch_larger_than_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _build(tmp_path, capsys, **{"dataset.patch_size": 512})
    assert code == 2 and "patch_size 512 is larger than scene 's1999' (250x250 px)" in err


def test_unknown_model_in_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = save_config(tmp_path, tiny_config(tmp_path, **{"model.name": "segformer"}))
    code, _, err = run_cli(["train", str(cfg)], capsys)
    assert code == 2 and "unknown model 'segformer'" in err and "unet" in err


def test_label_raster_without_overlap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = write_raster(tmp_path / "lab.tif", np.ones((50, 50), np.uint8), origin=(100000, 200000))
    code, err = _build(tmp_path, capsys, labels={"type": "raster", "path": str(lab)})
    assert code == 2 and "does not overlap the scene" in err


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    cfg = save_config(tmp_path, tiny_config(tmp_path, **{"dataset.patch_size": 999}))
    proc = subprocess.run([sys.executable, "-m", "eoengine", "dataset", "build", str(cfg)], capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "patch_size 999" in proc.stderr


def test_every_chip_filtered_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _build(tmp_path, capsys, **{"dataset.min_labelled_fraction": 1.0})
    assert code == 2 and "every chip was filtered out" in err and "min_labelled_fraction" in err
