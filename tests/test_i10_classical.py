"""Classical models (random forest, gradient boosting) train, track, evaluate, predict and serve like networks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
import rasterio
import torch
from conftest import four_band_stack, one_problem, run_cli, save_config, serve_in_thread, tiny_config
from mlflow.tracking import MlflowClient
from rasterio.windows import Window

from eoengine.datasets.tfrecord import encode_example, write_records
from eoengine.features.indices import stack_features
from eoengine.features.normalise import normalise
from eoengine.inference.sources import sources_for_model
from eoengine.models.package import load_package
from eoengine.raster.scene import SceneReader
from eoengine.training.classical import _labelled_blocks, sample_pixels

BANDS = ["B2", "B3", "B4", "B8"]
KEY = "classical-test-key"


def _points(tmp: Path, capsys: pytest.CaptureFixture[str], sizes: tuple[int, int, int] = (300, 80, 80)) -> Path:
    """A point dataset (1x1 chips, three overlapping classes) imported from TFRecords the test writes."""
    files = []
    for seed, (split, n) in enumerate(zip(("train", "val", "test"), sizes, strict=True)):
        if not n:
            continue
        rng = np.random.default_rng(seed)
        records = []
        for _ in range(n):
            label = rng.integers(0, 3, (1, 1)).astype(np.float32)
            feats = {b: (rng.normal(size=(1, 1)) + label * (i + 1) * 0.6).astype(np.float32) for i, b in enumerate(BANDS)}
            records.append(encode_example(feats | {"class": label}))
        write_records(tmp / f"{split}.tfrecord.gz", records)
        files.append(f"{split}={tmp / f'{split}.tfrecord.gz'}")
    out = tmp / "points"
    code, _, err = run_cli(["dataset", "import-tfrecord", *files, "--out", str(out), "--bands", ",".join(BANDS)], capsys)
    assert code == 0, err
    return out


def _point_config(tmp: Path, dataset: Path, model: str, kwargs: dict[str, Any], name: str) -> Path:
    cfg = tiny_config(tmp, **{"training.dataset": str(dataset), "model.name": model, "model.kwargs": kwargs,
                              "classes": [{"value": i, "name": f"class{i}"} for i in range(3)]})
    return save_config(tmp, cfg, name)


def _run_metrics(uri: str, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    return run.data.metrics, run.data.params


def _trained(text: str) -> tuple[str, Path, str]:
    """(run id, package, tracking URI) from the output of 'eoengine train'."""
    run_id = text.split("run ")[1].split()[0]
    model = Path(text.split("model: ")[1].split("\n")[0].strip())
    uri = text.split("tracking: ")[1].split("\n")[0].strip()
    return run_id, model, uri


def test_random_forest_on_points_is_tracked_evaluated_exported_and_matches_sklearn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _points(tmp_path, capsys)
    config = _point_config(tmp_path, data, "random_forest", {"n_estimators": 25, "n_jobs": 1}, "rf.yaml")
    code, text, err = run_cli(["train", str(config)], capsys)
    assert code == 0, err
    run_id, model, uri = _trained(text)
    assert (model / "model.onnx").exists() and not (model / "weights.pt").exists()
    metrics, params = _run_metrics(uri, run_id)
    assert params["model.name"] == "random_forest" and params["estimator.n_estimators"] == "25"
    assert params["estimator.random_state"] == "1" and params["train_pixels"] == "300"  # seeded with training.seed
    assert {"val_accuracy", "best_val_miou", "test_accuracy", "test_kappa"} <= set(metrics)
    artifacts = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(run_id, "model")}
    assert "model/model.onnx" in artifacts

    # ONNX Runtime (what evaluate, predict and serve run) gives the scikit-learn forest's answers
    pkg = load_package(model)
    forest = joblib.load(model / "estimator.joblib")
    x, y = next(_labelled_blocks(data, json.loads((data / "manifest.json").read_text()), "test"))
    with torch.inference_mode():
        logits = pkg.model(torch.from_numpy(x[:, :, None, None]))[:, :, 0, 0]
    expected = forest.predict_proba(x)
    assert np.abs(logits.softmax(1).numpy() - expected).max() < 1e-5
    ordered = np.sort(expected, axis=1)
    clear = ordered[:, -1] - ordered[:, -2] > 1e-6  # leave out exact vote ties (either class is the forest's)
    assert clear.mean() > 0.8
    assert np.array_equal(logits.argmax(1).numpy()[clear], forest.predict(x)[clear])

    code, text, err = run_cli(["evaluate", str(model), "--json"], capsys)
    assert code == 0, err
    scores = json.loads(text)
    assert scores["accuracy"] == pytest.approx(metrics["test_accuracy"]) and scores["pixels"] == len(y)
    code, text, err = run_cli(["export", str(model), "--out", str(tmp_path / "copy.onnx")], capsys)
    assert code == 0 and "already ONNX" in text and (tmp_path / "copy.onnx").exists()
    code, _, err = run_cli(["quantize", str(model)], capsys)
    assert code == 2 and "works on networks" in err


def test_served_point_predictions_are_the_forest_s(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.serving.app import Settings, create_app

    data = _points(tmp_path, capsys, (200, 40, 0))
    config = _point_config(tmp_path, data, "gradient_boosting", {"max_iter": 15}, "gb.yaml")
    code, text, err = run_cli(["train", str(config)], capsys)
    assert code == 0, err
    model = _trained(text)[1]
    pkg = load_package(model)
    booster = joblib.load(model / "estimator.joblib")
    raw = np.array([[0.1, 0.2, 0.0, 0.3], [0.7, 1.3, 2.0, 2.5], [1.3, 2.5, 3.7, 4.9]], dtype=np.float32)
    stats = pkg.meta["normalization"]
    rows = (raw - np.asarray(stats["mean"], np.float32)) / np.asarray(stats["std"], np.float32)
    app = create_app(pkg, Settings(api_key=KEY, model_name="points"))
    url, server = serve_in_thread(app)
    try:
        assert httpx.get(f"{url}/readyz").json()["engine"] == "onnx"
        body = {"instances": [{b: [[float(v)]] for b, v in zip(BANDS, point, strict=True)} for point in raw]}
        r = httpx.post(f"{url}/v1/models/points:predict", json=body, headers={"X-API-Key": KEY})
        assert r.status_code == 200, r.text
        assert [p["class"][0][0] for p in r.json()["predictions"]] == booster.predict(rows).tolist()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]


def test_gradient_boosting_maps_a_scene_per_pixel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Segmentation chips: a bounded pixel sample with class weights; the tiled COG equals per-pixel predictions."""
    cfg = tiny_config(tmp_path, **{"model.name": "gradient_boosting", "model.kwargs": {"max_iter": 10, "max_pixels": 700},
                                   "training.loss": {"class_weights": "inverse"}})
    config = save_config(tmp_path, cfg)
    assert run_cli(["dataset", "build", str(config)], capsys)[0] == 0
    code, text, err = run_cli(["train", str(config)], capsys)
    assert code == 0, err
    run_id, model, uri = _trained(text)
    assert _run_metrics(uri, run_id)[1]["train_pixels"] == "700"
    stack = four_band_stack(tmp_path / "stack.tif")
    code, _, err = run_cli(["predict", str(model), str(stack), "--out", str(tmp_path / "map.tif")], capsys)
    assert code == 0, err
    with rasterio.open(tmp_path / "map.tif") as ds:
        assert ds.tags()["EOENGINE_ENGINE"] == "onnx" and ds.overviews(1)
        mapped = ds.read(1)
    pkg = load_package(model)
    meta = pkg.meta
    with SceneReader(sources_for_model(meta["band_specs"], [str(stack)])) as reader:
        raw = reader.read(Window(0, 0, reader.grid.width, reader.grid.height))
    valid = ~np.isnan(raw).any(axis=0)
    feats = stack_features(raw, 1, meta["indices"], meta["bands"], [b.get("common_name") for b in meta["band_specs"]],
                           meta["index_constants"])
    x = normalise(feats, np.asarray(meta["normalization"]["mean"]), np.asarray(meta["normalization"]["std"]))
    booster = joblib.load(model / "estimator.joblib")
    values = np.array([c["value"] for c in meta["classes"]])  # maps hold the configured class values
    expected = values[booster.predict(x.reshape(x.shape[0], -1).T)].reshape(mapped.shape)
    assert (mapped[valid] == expected[valid]).mean() > 0.999
    code, _, err = run_cli(["predict", str(model), str(stack), "--out", str(tmp_path / "t.tif"), "--engine", "torch"], capsys)
    assert code == 2 and "runs its ONNX graph only" in err and not (tmp_path / "t.tif").exists()


def test_pixel_sample_is_bounded_uniform_and_seeded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from eoengine.training import classical

    data = _points(tmp_path, capsys)
    manifest = json.loads((data / "manifest.json").read_text())
    x, y = sample_pixels(data, manifest, "train", 120, seed=5)
    again, _ = sample_pixels(data, manifest, "train", 120, seed=5)
    other, _ = sample_pixels(data, manifest, "train", 120, seed=6)
    everything, all_y = sample_pixels(data, manifest, "train", 10_000, seed=5)
    assert x.shape == (120, 4) and len(y) == 120 and np.array_equal(x, again) and not np.array_equal(x, other)
    assert len(all_y) == 300 and {tuple(r) for r in x} <= {tuple(r) for r in everything}
    monkeypatch.setattr(classical, "BLOCK_PIXELS", 50)  # read in 6 blocks: the reservoir keeps the same pixels
    blocked, blocked_y = sample_pixels(data, manifest, "train", 120, seed=5)
    assert np.array_equal(blocked, x) and np.array_equal(blocked_y, y)


def test_bad_classical_configs_fail_in_one_line_before_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _points(tmp_path, capsys, (60, 20, 0))
    cases = [
        ({"model.kwargs": {"n_trees": 5}}, "does not take argument(s) ['n_trees']"),
        ({"model.kwargs": {"max_pixels": 0}}, "model.kwargs.max_pixels is 0"),
        ({"task": {"type": "classification"}}, "classifies pixels"),
        ({"model.name": "random_forrest"}, "did you mean 'random_forest'"),
    ]
    for i, (overrides, message) in enumerate(cases):
        cfg = tiny_config(tmp_path, **{"training.dataset": str(data), "model.name": "random_forest", "model.kwargs": {},
                                       "classes": [{"value": i, "name": f"class{i}"} for i in range(3)], **overrides})
        code, _, err = run_cli(["train", str(save_config(tmp_path, cfg, f"bad{i}.yaml"))], capsys)
        assert code == 2 and message in err and one_problem(err), err
    assert not (tmp_path / "out" / "runs").exists()
    code, _, err = run_cli(["train", str(tmp_path / "bad0.yaml"), "--resume", "abc"], capsys)
    assert code == 2 and "trains in one step" in err


def test_settings_are_swept_on_validation_and_the_package_registers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_config(tmp_path, **{"model.name": "gradient_boosting", "model.kwargs": {"max_iter": 10, "max_pixels": 2000}},
                      sweep={"trials": 2, "sampler": "random", "prune": False,
                             "params": {"model.kwargs.max_depth": {"type": "categorical", "choices": [2, 6]}}})
    code, out, err = run_cli(["sweep", str(save_config(tmp_path, cfg))], capsys)
    assert code == 0 and "best: val_miou" in out, err
    uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    best = runs[runs["tags.eoengine.sweep.best"] == "true"]
    assert len(runs) == 2 and best["metrics.best_val_miou"].iloc[0] == runs["metrics.best_val_miou"].max()
    package = tmp_path / "out" / "runs" / best["run_id"].iloc[0] / "model"
    code, _, err = run_cli(["register", str(package), "--name", "forest", "--alias", "champion", "--tracking-uri", uri], capsys)
    assert code == 0, err
    logits = mlflow.pyfunc.load_model("models:/forest@champion").predict(np.zeros((2, 5, 4, 4), dtype=np.float32))
    assert logits.shape == (2, 5, 4, 4) and np.allclose(np.exp(logits).sum(axis=1), 1, atol=1e-4)
