"""Issue 10: a split the chip filters leave with one chip warns, and imported datasets get the build's warnings."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from conftest import run_cli, save_config, tiny_config, write_raster
from shapely.geometry import Polygon, box

from eoengine.config.load import load_config
from eoengine.config.schema import ProjectConfig
from eoengine.datasets.build import build_dataset
from eoengine.datasets.plan import plan_build
from eoengine.datasets.tfrecord import example_class, write_records

X0, Y0, RES = 462405.0, 1741815.0, 10.0  # a 64 x 64 scene of 16 px chips: 4 x 4 candidates


def _config(tmp: Path, labels: Path) -> dict[str, object]:
    stack = write_raster(tmp / "scene.tif", np.random.default_rng(0).random((2, 64, 64)).astype(np.float32),
                         res=RES, origin=(X0, Y0))
    cfg = tiny_config(tmp, labels={"type": "vector", "path": str(labels), "class_column": "cls"},
                      classes=[{"value": 1, "name": "a"}, {"value": 2, "name": "b"}],
                      **{"features.indices": [], "dataset.split": {"method": "blocks"},
                         "dataset.min_labelled_fraction": 0.5})
    cfg["imagery"] = {"bands": [{"name": "a"}, {"name": "b"}], "scenes": [{"id": "s", "stack": str(stack)}]}
    return cfg


def _label_chips(path: Path, chips: list[tuple[int, int]]) -> Path:
    """Label the whole of each (row, col) chip: class a on its left half, b on its right half."""
    def half(r: int, c: int, left: int) -> Polygon:
        return box(X0 + (c + left) * RES, Y0 - (r + 16) * RES, X0 + (c + left + 8) * RES, Y0 - r * RES)

    boxes = [half(r, c, left) for r, c in chips for left in (0, 8)]
    gpd.GeoDataFrame({"cls": [1, 2] * len(chips)}, geometry=boxes, crs="EPSG:32615").to_file(path)
    return path


def test_a_split_left_with_one_chip_by_the_filters_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labels = tmp_path / "labels.geojson"
    everything = [(r, c) for r in range(0, 64, 16) for c in range(0, 64, 16)]
    planned = plan_build(ProjectConfig.model_validate(_config(tmp_path, _label_chips(labels, everything))),
                         tmp_path / "scratch").candidates
    val = [(p.row, p.col) for p in planned if p.split == "val"]
    assert len(val) >= 2  # the plan's minimum holds before the chips are filtered
    keep = [(p.row, p.col) for p in planned if p.split != "val"] + val[:1]  # unlabelled chips fail min_labelled_fraction
    _label_chips(labels, keep)
    built = build_dataset(load_config(save_config(tmp_path, _config(tmp_path, labels))))
    assert built.manifest.splits["val"] == 1
    assert "the val split has only 1 chip (each split needs 2)" in caplog.text
    assert "dataset.min_labelled_fraction" in caplog.text  # the fix
    assert "the test split" not in caplog.text


def _export(path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n):
        ex = example_class()()
        ex.features.feature["B1"].float_list.value.extend(rng.random(16).tolist())
        ex.features.feature["landcover"].int64_list.value.extend(rng.integers(0, 3, 16).tolist())
        records.append(ex.SerializeToString())
    write_records(path, records)
    return path


def test_import_tfrecord_warns_like_a_build(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    train, val = _export(tmp_path / "train.tfrecord.gz", 6, 0), _export(tmp_path / "val.tfrecord.gz", 1, 1)
    code, _, err = run_cli(["dataset", "import-tfrecord", f"train={train}", f"val={val}", "--out", str(tmp_path / "ds"),
                            "--label", "landcover", "--num-classes", "4"], capsys)
    assert code == 0, err
    assert "the val split has only 1 chip (each split needs 2)" in caplog.text
    assert "export more records" in caplog.text
    assert "class 'class3' has no labelled pixels in the dataset" in caplog.text and "--num-classes" in caplog.text
    assert "test split" not in caplog.text  # no test files given: no test split asked for
