"""Every task end to end on the real Landsat sample: build, train, evaluate and (for maps) predict.

The sample has two dates of the same place (1999 and 2002) and polygon labels. Targets that
the sample lacks are derived from its pixels, so a model can learn them: canopy "greenness"
(scaled NDVI) for regression, and a change mask where NDVI moved by more than 0.15 between
the dates for change detection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from conftest import OGT, four_band_stack, run_cli, save_config, tiny_config

from eoengine.config.load import load_config
from eoengine.datasets.build import build_dataset
from eoengine.datasets.schema import DatasetManifest
from eoengine.datasets.store import open_all_arrays
from eoengine.errors import EOError

S1999 = OGT / "LE70220491999322EDC01_stack.gtif"
S2002 = OGT / "LE70220492002106EDC00_stack.gtif"


def _ndvi(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        red, nir = ds.read(3).astype(np.float64), ds.read(4).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((nir - red) / (nir + red))


def _like(path: Path, out: Path, data: np.ndarray, dtype: str, nodata: float | None) -> Path:
    with rasterio.open(path) as ds:
        profile = ds.profile | {"count": 1, "dtype": dtype, "nodata": nodata}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data.astype(dtype), 1)
    return out


def _two_dates() -> dict[str, Any]:
    return {"id": "pair", "timesteps": [
        {"datetime": "1999-11-18", "stack": str(S1999), "stack_indexes": [1, 2, 3, 4]},
        {"datetime": "2002-04-16", "stack": str(S2002), "stack_indexes": [1, 2, 3, 4]},
    ]}


def _train(tmp: Path, cfg_dict: dict[str, Any]) -> tuple[Any, Any]:
    from eoengine.training.train import train

    cfg = load_config(save_config(tmp, cfg_dict))
    build_dataset(cfg)
    return cfg, train(cfg)


def test_regression_learns_a_value_map_and_predicts_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = _like(S1999, tmp_path / "greenness.tif", 100 * _ndvi(S1999), "float32", -9999.0)
    cfg = tiny_config(tmp_path, **{
        "labels": {"type": "none", "values": {"path": str(target), "name": "greenness"}},
        "classes": [], "task": {"type": "regression"}, "features": {"indices": []},
        "training.epochs": 6, "model.kwargs": {"width": 16, "layers": 2},
    })
    _, result = _train(tmp_path, cfg)
    test = result.test
    assert set(test) >= {"rmse", "mae", "r2", "mse", "bias"}
    spread = float(np.std(100 * _ndvi(S1999)))
    assert test["r2"] > 0.5 and test["rmse"] < 0.7 * spread  # learnt, in target units
    four = four_band_stack(tmp_path / "s1999_4.tif", S1999)
    code, out, err = run_cli(["predict", str(result.model_path), str(four), "--out", str(tmp_path / "g.tif")], capsys)
    assert code == 0, err
    with rasterio.open(tmp_path / "g.tif") as ds:
        assert ds.dtypes[0] == "float32" and ds.descriptions[0] == "greenness"
        pred = ds.read(1)
    truth = 100 * _ndvi(S1999)
    assert np.corrcoef(pred[np.isfinite(pred)], truth[np.isfinite(pred)])[0, 1] > 0.8
    code, out, _ = run_cli(["evaluate", str(result.model_path)], capsys)
    assert code == 0 and "RMSE" in out and "R²" in out
    # graded beside a per-pixel random forest regressing the same values (greenness is a function of two bands)
    suite = tmp_path / "suite.yaml"
    suite.write_text("uncertainty: {bootstrap: 30}\nrobustness: {corruptions: [{name: noise, severities: [3]}]}\n")
    code, out, err = run_cli(["grade", str(result.model_path), "--baseline", "random_forest", "--suite", str(suite),
                              "--out", str(tmp_path / "grade"), "--engine", "torch"], capsys)
    assert code == 0, err
    import json

    doc = json.loads((tmp_path / "grade" / "comparison.json").read_text())
    assert doc["metric"] == "rmse" and [p["b"] for p in doc["pairs"]] == ["random_forest"]
    forest = json.loads((tmp_path / "grade" / "random_forest" / "grade.json").read_text())["overall"]["metrics"]
    assert forest["r2"] > 0.9 and forest["rmse"] < 0.3 * spread  # NDVI from red and nir: a forest learns it
    mine = json.loads((tmp_path / "grade" / "cnn" / "grade.json").read_text())["overall"]["metrics"]
    assert mine["rmse"] == pytest.approx(test["rmse"], rel=1e-4)  # the same test pixels evaluate scored


def test_classification_and_multilabel_targets_come_from_the_builder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_config(tmp_path, **{"task": {"type": "classification"}, "training.epochs": 3,
                                   "model": {"name": "resnet_classifier", "kwargs": {"depth": 2, "base_channels": 8}}})
    _, result = _train(tmp_path, cfg)
    import geopandas as gpd

    index = gpd.read_parquet(next((tmp_path / "out" / "datasets").glob("tiny@*")) / "chips.parquet")
    counts = index[[c for c in index if c.startswith("count_")]].to_numpy()
    assert (index["label"].to_numpy() == counts.argmax(axis=1)).all()  # majority class per chip
    assert index["present_forest"].dtype == bool
    assert 0 <= result.test["accuracy"] <= 1 and sum(map(sum, result.test["confusion_matrix"])) == (index["split"] == "test").sum()
    four = four_band_stack(tmp_path / "s1999_4.tif", S1999)
    code, _, err = run_cli(["predict", str(result.model_path), str(four), "--out", str(tmp_path / "x.tif")], capsys)
    assert code == 2 and "labels whole chips" in err and not (tmp_path / "x.tif").exists()

    ml = tiny_config(tmp_path / "ml", **{"task": {"type": "multilabel"}, "training.epochs": 2})
    (tmp_path / "ml").mkdir()
    _, res = _train(tmp_path / "ml", ml)
    assert set(res.test) >= {"exact_match", "hamming", "f1", "average_precision", "auroc"}


def test_change_detection_with_a_siamese_unet_on_two_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change = (np.abs(_ndvi(S2002) - _ndvi(S1999)) > 0.15).astype(np.uint8) + 1  # 1 stable, 2 changed
    labels = _like(S1999, tmp_path / "change.tif", change, "uint8", 0)
    cfg = tiny_config(tmp_path, **{
        "imagery.scenes": [_two_dates()], "features": {"indices": []},
        "labels": {"type": "raster", "path": str(labels)},
        "classes": [{"value": 1, "name": "stable"}, {"value": 2, "name": "changed", "color": "#ff0000"}],
        "task": {"type": "change_detection"}, "training.epochs": 4,
        "model": {"name": "siamese_unet", "kwargs": {"depth": 2, "base_channels": 8}},
    })
    _, result = _train(tmp_path, cfg)
    m = DatasetManifest.read(next((tmp_path / "out" / "datasets").glob("tiny@*")))
    assert m.timesteps == 2 and m.channels[:2] == ["t0:blue", "t0:green"] and len(m.channels) == 8
    assert result.test["miou"] > 0.4
    out_map = tmp_path / "change_map.tif"
    stacks_map = tmp_path / "from_stacks.tif"
    code, _, err = run_cli(["predict", str(result.model_path), str(S1999), str(S2002), "--out", str(stacks_map)], capsys)
    assert code == 0, err  # the 8-band training stacks as they are: the package records their stack_indexes
    dates = [str(four_band_stack(tmp_path / f"{src.stem}_4.tif", src)) for src in (S1999, S2002)]
    code, _, err = run_cli(["predict", str(result.model_path), *dates, "--out", str(out_map)], capsys)
    assert code == 0, err
    with rasterio.open(out_map) as ds, rasterio.open(stacks_map) as st:
        pred = ds.read(1)
        assert np.array_equal(pred, st.read(1))
    assert ((pred == 2) == (change == 2)).mean() > 0.8  # the map holds the class values (2 = changed)


def test_time_series_fusion_and_multi_output(tmp_path: Path) -> None:
    ts = tiny_config(tmp_path, **{"imagery.scenes": [_two_dates()], "task": {"type": "time_series"},
                                  "model": {"name": "tempcnn", "kwargs": {"width": 8, "hidden": 16}}})
    _, result = _train(tmp_path, ts)
    assert result.test["pixels"] > 0
    assert len(DatasetManifest.read(next((tmp_path / "out" / "datasets").glob("tiny@*"))).channels) == 10  # 2 x (4 bands + NDVI)

    fusion_dir = tmp_path / "fusion"
    fusion_dir.mkdir()
    fu = tiny_config(fusion_dir, **{"model": {"name": "fusion_unet", "kwargs": {"depth": 2, "base_channels": 4}}})
    for band in fu["imagery"]["bands"]:
        band["group"] = "thermal" if band["name"] == "nir" else "optical"
    _, fres = _train(fusion_dir, fu)
    groups = DatasetManifest.read(next((fusion_dir / "out" / "datasets").glob("tiny@*"))).channel_groups
    assert groups == {"optical": [0, 1, 2], "thermal": [3], "indices": [4]}
    assert fres.test["pixels"] > 0

    mo_dir = tmp_path / "multi"
    mo_dir.mkdir()
    target = _like(S1999, mo_dir / "greenness.tif", 100 * _ndvi(S1999), "float32", -9999.0)
    mo = tiny_config(mo_dir, **{
        "labels.values": {"path": str(target)},
        "task": {"type": "multi_output", "outputs": [
            {"name": "landcover", "type": "segmentation", "loss": {"name": "dice"}},
            {"name": "scene", "type": "classification", "weight": 0.5},
            {"name": "greenness", "type": "regression", "weight": 0.2, "loss": {"name": "huber", "kwargs": {"delta": 0.5}}},
        ]},
        "model": {"name": "unet", "kwargs": {"depth": 2, "base_channels": 8}},
    })
    _, mres = _train(mo_dir, mo)
    assert set(mres.test) == {"landcover", "scene", "greenness"}
    assert "miou" in mres.test["landcover"] and "rmse" in mres.test["greenness"]
    import mlflow

    mlflow.set_tracking_uri(mres.tracking_uri)
    metrics = mlflow.get_run(mres.run_id).data.metrics
    assert {"val_landcover_miou", "val_scene_accuracy", "val_greenness_rmse", "val_greenness_loss"} <= set(metrics)


def test_task_mismatches_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = _like(S1999, tmp_path / "v.tif", _ndvi(S1999), "float32", -9999.0)
    bad = tiny_config(tmp_path, **{"labels": {"type": "none", "values": {"path": str(target)}}, "classes": [],
                                   "task": {"type": "regression"}, "training.loss": {"name": "dice"}})
    code, _, err = run_cli(["validate", str(save_config(tmp_path, bad))], capsys)
    assert code != 0 and "loss 'dice' does not apply to a regression output" in err and "mse" in err
    no_values = tiny_config(tmp_path, **{"task": {"type": "regression"}})
    code, _, err = run_cli(["validate", str(save_config(tmp_path, no_values, "b.yaml"))], capsys)
    assert code != 0 and "needs labels.values" in err
    cd = tiny_config(tmp_path, **{"task": {"type": "change_detection"}})
    code, _, err = run_cli(["validate", str(save_config(tmp_path, cd, "c.yaml"))], capsys)
    assert code != 0 and "exactly 2 timesteps" in err
    seg = tiny_config(tmp_path, **{"model": {"name": "resnet_classifier", "kwargs": {"depth": 2}}})
    with pytest.raises(EOError, match="returns one vector per chip, but a segmentation output needs a map"):
        _train(tmp_path, seg)
    wrong = tiny_config(tmp_path, **{"model": {"name": "cnn", "kwargs": {"in_channels": 7, "width": 4}}})
    with pytest.raises(EOError, match="in_channels is 7 but the dataset has 5 channels"):
        _train(tmp_path, wrong)


def test_value_targets_are_stored_with_nan_for_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = 100 * _ndvi(S1999)
    values[:50] = -9999.0
    target = _like(S1999, tmp_path / "v.tif", values, "float32", -9999.0)
    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path, **{"labels.values": {"path": str(target)}})))
    built = build_dataset(cfg)
    arrays = open_all_arrays(built.path)
    assert set(arrays) == {"images", "labels", "values"}
    stats = built.manifest.targets.values.statistics
    assert stats.count[0] > 0 and -100 <= stats.mean[0] <= 100
    import geopandas as gpd

    index = gpd.read_parquet(built.path / "chips.parquet")
    top = index.loc[index["row"] == 0, "chip_id"]
    for cid in top:  # rows 0-49 had no value: stored as NaN, never as -9999
        chip = arrays["values"][int(cid)]
        assert np.isnan(chip).all()
    assert np.nanmin(arrays["values"][:]) > -200
    code, out, err = run_cli(["dataset", "info", str(built.path)], capsys)
    assert code == 0 and "target 'value' (train): mean" in out and "class balance" in out, err
