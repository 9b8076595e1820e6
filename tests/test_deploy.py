"""Deployment: ONNX export check, int8 quantization, pruning, the MLflow Model Registry, ONNX Runtime prediction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio
import torch
from conftest import four_band_stack, run_cli, train_tiny_unet

from eoengine.models.package import load_package


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("deploy")
    result = train_tiny_unet(tmp, epochs=3)
    return {"tmp": tmp, "result": result, "scene": four_band_stack(tmp / "scene4.tif")}


def _copy(model: dict, name: str) -> Path:
    dst = model["tmp"] / name
    if not dst.exists():
        shutil.copytree(model["result"].model_path, dst)
    return dst


def test_export_checks_onnx_against_pytorch_on_real_chips(model: dict, capsys: pytest.CaptureFixture[str]) -> None:
    pkg_dir = _copy(model, "export")
    (pkg_dir / "model.onnx").unlink()
    code, out, err = run_cli(["export", str(pkg_dir), "--format", "onnx"], capsys)
    assert code == 0, err
    assert "sides 16, 32" in out and "classes agree on 100.000%" in out
    assert (pkg_dir / "model.onnx").stat().st_size > 100_000 and not list(pkg_dir.glob("*.data"))  # weights inline
    code, _, err = run_cli(["export", str(pkg_dir), "--format", "tflite"], capsys)
    assert code == 2 and "use --format onnx" in err


def test_a_graph_that_disagrees_is_caught(model: dict) -> None:
    from eoengine.deploy.onnx import compare, sample_chips
    from eoengine.models.package import export_onnx

    pkg = load_package(_copy(model, "export"))
    other = load_package(_copy(model, "other"))
    with torch.no_grad():
        for p in other.model.parameters():
            p.add_(0.5)
    bad = model["tmp"] / "bad.onnx"
    export_onnx(other.model, len(pkg.meta.channels), 16, bad)
    worst, agree, _ = compare(pkg, bad, sample_chips(pkg, 8))
    assert worst > 1e-2 and agree < 1.0


def test_quantize_reports_size_speed_and_scores(model: dict, capsys: pytest.CaptureFixture[str]) -> None:
    pkg_dir = _copy(model, "quant")
    code, out, err = run_cli(["quantize", str(pkg_dir), "--json", "--calibration-chips", "16"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"pytorch_fp32", "onnx_fp32", "onnx_int8_static", "onnx_int8_dynamic"}
    fp32, int8 = report["onnx_fp32"], report["onnx_int8_static"]
    assert int8["size_mb"] < fp32["size_mb"] * 0.6  # int8 weights, plus per-channel scales
    assert abs(int8["scores"]["miou"] - fp32["scores"]["miou"]) < 0.1
    assert report["onnx_fp32"]["scores"]["miou"] == pytest.approx(report["pytorch_fp32"]["scores"]["miou"], abs=1e-3)
    assert (pkg_dir / "model.int8.onnx").exists() and (pkg_dir / "quantization.json").exists()
    code, out, err = run_cli(["predict", str(pkg_dir), str(model["scene"]), "--out", str(model["tmp"] / "q.tif"),
                              "--engine", "onnx-int8"], capsys)
    assert code == 0, err


def test_prune_writes_a_sparser_package(model: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.deploy.compress import sparsity

    pkg_dir = _copy(model, "prune")
    code, out, err = run_cli(["prune", str(pkg_dir), "--amount", "0.6", "--finetune-epochs", "1", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    pruned = load_package(Path(report["package"]))
    assert sparsity(pruned.model) == pytest.approx(0.6, abs=0.02)  # fine-tuning kept the zeros
    assert report["pruned"]["size_mb"] < report["original"]["size_mb"]
    assert pruned.meta.pruning.amount == 0.6 and (pruned.path / "model.onnx").exists()
    code, out, err = run_cli(["prune", str(pkg_dir), "--amount", "0.5", "--method", "structured", "--out",
                              str(model["tmp"] / "structured")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["prune", str(pkg_dir), "--amount", "1.5"], capsys)
    assert code == 2 and "between 0 and 1" in err


def test_registry_aliases_and_predict_by_alias(model: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOENGINE_CACHE", str(model["tmp"] / "cache"))
    uri = model["result"].tracking_uri
    pkg_dir = _copy(model, "reg")
    client = mlflow.MlflowClient(tracking_uri=uri)
    trained = client.get_run(model["result"].run_id).info
    code, out, err = run_cli(["register", str(pkg_dir), "--name", "landcover", "--alias", "champion", "--tracking-uri", uri], capsys)
    assert code == 0, err
    after = client.get_run(model["result"].run_id).info  # registering leaves the training run's times and status alone
    assert (after.status, after.start_time, after.end_time) == (trained.status, trained.start_time, trained.end_time)
    assert "models:/landcover/1" in out and "models:/landcover@champion" in out
    mv = client.get_model_version_by_alias("landcover", "champion")
    assert str(mv.version) == "1" and mv.tags["eoengine.dataset.version"] and mv.run_id == model["result"].run_id
    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model("models:/landcover@champion")
    logits = pyfunc.predict(np.zeros((2, 5, 16, 16), dtype=np.float32))
    assert logits.shape == (2, 5, 16, 16)
    assert pyfunc.metadata.get_input_schema().inputs[0].shape == (-1, 5, -1, -1)
    code, out, err = run_cli(["register", str(pkg_dir), "--name", "landcover", "--alias", "champion", "--tracking-uri", uri], capsys)
    assert code == 0 and str(client.get_model_version_by_alias("landcover", "champion").version) == "2"
    out_map = model["tmp"] / "by_alias.tif"
    code, out, err = run_cli(["predict", "models:/landcover@champion", str(model["scene"]), "--out", str(out_map),
                              "--tracking-uri", uri, "--engine", "onnx"], capsys)
    assert code == 0, err
    with rasterio.open(out_map) as ds:
        assert ds.tags()["EOENGINE_ENGINE"] == "onnx"
    code, _, err = run_cli(["predict", "models:/landcover@nope", str(model["scene"]), "--out", str(out_map),
                            "--tracking-uri", uri], capsys)
    assert code == 2 and "not in the registry" in err


def test_onnx_and_torch_maps_agree(model: dict, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = str(model["result"].model_path)
    maps = {}
    for engine in ("torch", "onnx", "auto"):
        out_map = model["tmp"] / f"map_{engine}.tif"
        code, _, err = run_cli(["predict", pkg, str(model["scene"]), "--out", str(out_map), "--engine", engine], capsys)
        assert code == 0, err
        with rasterio.open(out_map) as ds:
            maps[engine] = ds.read(1)
            assert ds.tags()["EOENGINE_ENGINE"] in ("torch", "onnx")
    assert (maps["torch"] == maps["onnx"]).mean() > 0.999 and (maps["auto"] == maps["torch"]).mean() > 0.999
    code, _, err = run_cli(["predict", pkg, str(model["scene"]), "--out", str(model["tmp"] / "x.tif"), "--engine", "tpu"], capsys)
    assert code == 2 and "unknown engine" in err
    code, _, err = run_cli(["predict", pkg, str(model["scene"]), "--out", str(model["tmp"] / "x.tif"), "--engine", "onnx-int8"], capsys)
    assert code == 2 and "eoengine quantize" in err and not (model["tmp"] / "x.tif").exists()


def _halves(model: dict) -> tuple[Path, Path]:
    """The sample scene as two overlapping scenes; the second in another UTM zone's CRS."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    from rasterio.windows import Window

    left, right = model["tmp"] / "left.tif", model["tmp"] / "right.tif"
    with rasterio.open(model["scene"]) as ds:
        w = Window(0, 0, 150, 250)
        profile = ds.profile | {"width": 150, "height": 250, "transform": ds.window_transform(w)}
        with rasterio.open(left, "w", **profile) as dst:
            dst.write(ds.read(window=w))
        w2 = Window(100, 0, 150, 250)
        data, tr = ds.read(window=w2), ds.window_transform(w2)
        bounds = rasterio.windows.bounds(w2, ds.transform)
        dst_tr, width, height = calculate_default_transform(ds.crs, "EPSG:32616", 150, 250, *bounds)
        out = np.zeros((4, height, width), dtype=data.dtype)
        reproject(data, out, src_transform=tr, src_crs=ds.crs, dst_transform=dst_tr, dst_crs="EPSG:32616",
                  resampling=Resampling.nearest, src_nodata=-9999, dst_nodata=-9999)
        prof = ds.profile | {"width": width, "height": height, "transform": dst_tr, "crs": "EPSG:32616", "nodata": -9999}
        with rasterio.open(right, "w", **prof) as dst:
            dst.write(out)
    return left, right


def test_many_scenes_per_scene_mosaic_and_beam(model: dict, capsys: pytest.CaptureFixture[str]) -> None:
    left, right = _halves(model)
    pkg = str(model["result"].model_path)
    per = model["tmp"] / "per_scene"
    code, _, err = run_cli(["predict", pkg, "--scene", str(left), "--scene", str(right), "--out-dir", str(per),
                              "--engine", "torch"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in per.glob("*.tif")) == ["left.tif", "right.tif"]
    mosaic = model["tmp"] / "mosaic.tif"
    code, _, err = run_cli(["predict", pkg, "--scene", str(left), "--scene", str(right), "--out", str(mosaic),
                              "--engine", "torch"], capsys)
    assert code == 0, err
    whole = model["tmp"] / "whole.tif"
    run_cli(["predict", pkg, str(model["scene"]), "--out", str(whole), "--engine", "torch"], capsys)
    with rasterio.open(mosaic) as m, rasterio.open(whole) as w:
        assert m.crs == w.crs and m.colormap(1)[1] == w.colormap(1)[1] and m.tags()["EOENGINE_MOSAIC_OF"] == "2"
        assert abs(m.bounds.left - w.bounds.left) < 1 and m.bounds.right >= w.bounds.right - 31
        a = m.read(1, window=rasterio.windows.from_bounds(*w.bounds, transform=m.transform), boundless=True, fill_value=255)
        b = w.read(1)
        inner = (a != 255) & (b != 255)
        inner[:, 140:160] = False  # the scenes' seam, where tiles saw less context
        assert inner.mean() > 0.8 and (a[inner] == b[inner]).mean() > 0.9
    assert not (model["tmp"] / ".mosaic.tif.scenes").exists()
    beam_dir = model["tmp"] / "beam"
    code, _, err = run_cli(["predict", pkg, "--scene", str(left), "--scene", str(right), "--out-dir", str(beam_dir),
                              "--engine", "torch", "--beam"], capsys)
    assert code == 0, err
    for name in ("left.tif", "right.tif"):
        with rasterio.open(beam_dir / name) as x, rasterio.open(per / name) as y:
            assert np.array_equal(x.read(1), y.read(1))  # strips predicted apart give the whole-scene map
            assert len(json.loads(x.tags()["EOENGINE_STRIPS"])) >= 2 and x.colormap(1)[1] == y.colormap(1)[1]
    code, _, err = run_cli(["predict", pkg, str(left), "--scene", str(right), "--out", str(mosaic)], capsys)
    assert code == 2 and "one scene" in err
    code, _, err = run_cli(["predict", pkg, "--scene", str(left), "--scene", str(right)], capsys)
    assert code == 2 and "--out-dir" in err
    code, _, err = run_cli(["predict", pkg, str(left), "--beam", "--out", str(mosaic)], capsys)
    assert code == 2 and "given with --scene" in err  # not silently run without Beam
