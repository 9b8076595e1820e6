"""Issue 14: ``eoengine grade`` end to end on a trained tiny model, and every bad suite refused before work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from conftest import run_cli, train_tiny_unet
from shapely.geometry import box

from eoengine.datasets.schema import DatasetManifest


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return train_tiny_unet(tmp_path_factory.mktemp("grade"), epochs=3)


def _scene(trained: Any) -> tuple[DatasetManifest, Any]:
    from eoengine.models.package import load_package

    pkg = load_package(trained.model_path)
    manifest = DatasetManifest.read(Path(pkg.meta.dataset.path))
    return manifest, manifest.scenes[0].grid


def _halves(trained: Any, path: Path, crs: str | None = None) -> float:
    """Left/right halves of the scene as a vector file (in the scene's CRS or ``crs``); returns the middle x."""
    import geopandas as gpd

    _, grid = _scene(trained)
    t = grid.transform
    x0, y0, x1, y1 = t[2], t[5] + t[4] * grid.height, t[2] + t[0] * grid.width, t[5]
    mid = x0 + t[0] * (grid.width // 2)
    frame = gpd.GeoDataFrame({"side": ["left", "right"]},
                             geometry=[box(x0, y0, mid, y1), box(mid, y0, x1, y1)], crs=grid.crs_wkt)
    if crs:
        frame["geometry"] = frame.geometry.segmentize(10.0)
        frame = frame.to_crs(crs)
    frame.to_file(path)
    return mid


def _strata(trained: Any, path: Path) -> None:
    _, grid = _scene(trained)
    data = np.ones((1, grid.height, grid.width), dtype=np.uint8)
    data[0, grid.height // 2:] = 2
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8",
                       crs=grid.crs_wkt, transform=rasterio.Affine(*grid.transform)) as dst:
        dst.write(data)


def _suite(tmp: Path, **sections: Any) -> Path:
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


def test_grade_end_to_end(trained: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow.tracking import MlflowClient

    from eoengine.deploy.registry import register
    from eoengine.models.package import load_package
    from eoengine.training.scores import split_scores

    pkg = load_package(trained.model_path)
    register(pkg, "graded-unet", trained.tracking_uri, ["candidate"])
    _halves(trained, tmp_path / "halves.gpkg")
    _strata(trained, tmp_path / "strata.tif")
    suite = _suite(tmp_path, uncertainty={"bootstrap": 60}, slices={
        "regions": [{"path": "halves.gpkg", "column": "side"}], "strata": [{"path": "strata.tif"}], "min_pixels": 20},
        robustness={"corruptions": [{"name": "haze", "severities": [1, 3]}, {"name": "noise", "severities": [3]}],
                    "max_chips": 24},
        thresholds=[{"metric": "miou", "min": 0.0}, {"metric": "accuracy", "min": 0.999, "every": "region"},
                    {"metric": "miou", "corruption": "haze", "severity": 3, "max_drop": 5.0}, {"metric": "ece", "max": 1.0}])
    out = tmp_path / "card"
    code, stdout, err = run_cli(["grade", str(trained.model_path), "--suite", str(suite), "--out", str(out),
                                 "--engine", "torch"], capsys)  # evaluate runs PyTorch: the same pixels, exactly
    assert code == 0, err
    doc = json.loads((out / "grade.json").read_text())
    assert doc["model"]["engine"] == "torch"
    # the overall scores are evaluate's on the same split (an independent implementation)
    ref = next(iter(split_scores(pkg, Path(pkg.meta.dataset.path), "test").values()))
    assert doc["overall"]["metrics"]["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-9)
    assert doc["overall"]["metrics"]["miou"] == pytest.approx(ref["miou"], abs=1e-9)
    lo, hi = doc["overall"]["ci"]["accuracy"]
    assert lo <= ref["accuracy"] <= hi and lo < hi
    slices = {s["dimension"]: s["slices"] for s in doc["slices"]}
    assert {"class", "scene", "block", "month", "season", "brightness", "ndvi_range", "nodata_share", "region",
            "strata"} <= set(slices)
    labelled = doc["data"]["labelled_pixels"]
    for dim in ("region", "strata", "scene", "block", "brightness", "nodata_share"):
        assert sum(s["pixels"] for s in slices[dim]) == labelled, dim  # each partitions the graded pixels
    assert sum(s["pixels"] for s in slices["class"]) == labelled
    # the error map agrees with the region slices: its correct pixels left and right of the middle
    with rasterio.open(out / "error_s1999.tif") as ds:
        codes = ds.read(1)
        cols = np.arange(ds.width)
        x = ds.transform.c + ds.transform.a * (cols + 0.5)
        tags = json.loads(ds.tags()["EOENGINE_ERROR_CODES"])
        assert ds.crs is not None and ds.colormap(1)[1][:3] == (200, 200, 200)
    mid = _halves(trained, tmp_path / "again.gpkg")
    for side, cols_in in (("left", x < mid), ("right", x >= mid)):
        part = codes[:, cols_in]
        acc = (part == 1).sum() / (part > 0).sum()
        got = next(s for s in slices["region"] if s["slice"] == side)
        assert got["metrics"]["accuracy"] == pytest.approx(acc, abs=1e-9)
    assert tags["1"] == "correct" and any("→" in v for v in tags.values())
    assert (codes > 0).sum() == labelled
    # robustness, calibration, thresholds, grade
    curves = {c["corruption"]: c for c in doc["robustness"]["curves"]}
    assert curves["haze"]["severities"] == [1, 3] and len(curves["haze"]["metrics"]["miou"]) == 2
    assert 0 <= doc["calibration"]["ece"] <= 1 and len(doc["calibration"]["bins"]) == 10
    results = {t["requirement"]: t["passed"] for t in doc["thresholds"]}
    assert results["miou >= 0"] is True and results["accuracy >= 0.999 in every region"] is False
    assert doc["grade"] == "B"  # 3 of 4 passed
    assert doc["weakest"] and doc["weakest"][0]["pixels"] >= 20
    page = (out / "report.html").read_text()
    assert 'id="grade">B<' in page and "Degradation curves" in page and "Reliability diagram" in page
    assert "grade B: 3/4 thresholds passed" in stdout and "tagged model versions: graded-unet/1" in stdout
    # MLflow: metrics and the report card on the run, grades and applicability on the registered version
    client = MlflowClient(tracking_uri=trained.tracking_uri, registry_uri=trained.tracking_uri)
    run = client.get_run(trained.run_id)
    assert run.data.metrics["grade_accuracy"] == pytest.approx(ref["accuracy"])
    assert "grading/report.html" in [a.path for a in client.list_artifacts(trained.run_id, "grading")]
    tags = client.get_model_version("graded-unet", "1").tags
    assert tags["eoengine.grade"] == "B" and tags["eoengine.grade.every_region"] == "fail"
    assert tags["eoengine.grade.overall"] == "pass"
    app = json.loads(tags["eoengine.applicability"])
    assert app["bands"] == ["blue", "green", "red", "nir"] and app["graded_regions"] == ["left", "right"]
    assert app["training_dates"] == ["1999-11-18", "1999-11-18"]


def test_regions_in_another_crs_are_reprojected(trained: Any, tmp_path: Path) -> None:
    from eoengine.grading.check import plan_suite
    from eoengine.grading.chips import load_graded
    from eoengine.grading.suite import suite_from_mapping
    from eoengine.models.package import load_package

    pkg = load_package(trained.model_path)
    mid = _halves(trained, tmp_path / "wgs84.geojson", crs="EPSG:4326")
    graded = load_graded(pkg, Path(pkg.meta.dataset.path), "test")
    suite = suite_from_mapping({"slices": {"by": [], "regions": [{"path": "wgs84.geojson", "column": "side"}]},
                                "robustness": {"corruptions": []}, "thresholds": []}, "suite", tmp_path)
    plan = plan_suite(suite, graded, "suite")
    region = plan.dimensions[0]
    assert region.labels == ["left", "right"]
    a = graded.manifest.scenes[0].grid.transform
    col = graded.rows["col"].to_numpy()[:, None, None] + np.arange(graded.truth.shape[2])[None, None, :] + 0.5
    expected = np.broadcast_to(np.where(a[2] + a[0] * col < mid, 0, 1), region.keys.shape)
    assert (region.keys == expected).mean() > 0.995  # a pixel on the border may fall either side


@pytest.mark.parametrize(("sections", "expected"), [
    ({"metrics": ["iou"]}, "metrics: iou not a metric of a segmentation model"),
    ({"slices": {"by": ["country"]}}, "slices.by: unknown slice(s) country"),
    ({"slicez": {}}, "slicez"),
    ({"thresholds": [{"metric": "accuracy", "min": 0.7, "every": "region"}]}, "thresholds[0].every: 'region' is not a slice"),
    ({"thresholds": [{"metric": "rmse", "max": 1}]}, "thresholds[0].metric: 'rmse' is not measured"),
    ({"thresholds": [{"metric": "miou", "corruption": "haze"}]}, "needs severity and max_drop"),
    ({"robustness": {"corruptions": [{"name": "fog"}]}}, "unknown corruption 'fog'"),
    ({"robustness": {"corruptions": [{"name": "date_shift"}]}}, "date_shift"),
    ({"robustness": {"corruptions": [{"name": "haze", "severities": [0, 6]}]}}, "severities must be 1 to 5"),
    ({"slices": {"regions": [{"path": "nowhere.gpkg", "column": "side"}]}}, "region file not found"),
    ({"slices": {"regions": [{"path": "halves.gpkg", "column": "name"}]}}, "has no column 'name'"),
    ({"slices": {"regions": [{"path": "far.gpkg", "column": "side"}]}}, "'region' has no labelled pixel"),
    ({"slices": {"strata": [{"path": "strata.tif", "band": 2}]}}, "has 1 band(s), not band 2"),
    ({"slices": {"properties": ["eo:cloud_cover"]}}, "have no STAC Item with it"),
    ({"data": {"split": "holdout"}}, "has no 'holdout' chips"),
])
def test_bad_suites_are_refused_before_work(trained: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            sections: dict[str, Any], expected: str) -> None:
    import geopandas as gpd

    _halves(trained, tmp_path / "halves.gpkg")
    _strata(trained, tmp_path / "strata.tif")
    gpd.GeoDataFrame({"side": ["far"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(tmp_path / "far.gpkg")
    out = tmp_path / "card"
    code, _, err = run_cli(["grade", str(trained.model_path), "--suite", str(_suite(tmp_path, **sections)),
                            "--out", str(out)], capsys)
    assert code == 2 and expected in err and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_region_file_without_crs_is_refused(trained: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nocrs.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"side": "a"}, "geometry": box(0, 0, 1, 1).__geo_interface__}]}))
    suite = _suite(tmp_path, slices={"regions": [{"path": "nocrs.geojson", "column": "side"}]})
    code, _, err = run_cli(["grade", str(trained.model_path), "--suite", str(suite)], capsys)
    # GeoJSON is WGS 84 by definition: a file that says nothing is read as such, and this one is far away
    assert code == 2 and "has no labelled pixel" in err


def test_engines_grade_the_same_model(trained: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(tmp_path, uncertainty={"bootstrap": 0}, robustness={"corruptions": [{"name": "haze", "severities": [3]}]},
                   error_maps=False)
    docs = {}
    for engine in ("torch", "onnx", "auto"):
        code, _, err = run_cli(["grade", str(trained.model_path), "--suite", str(suite), "--out", str(tmp_path / engine),
                                "--engine", engine], capsys)
        assert code == 0, err
        docs[engine] = json.loads((tmp_path / engine / "grade.json").read_text())
    assert docs["onnx"]["model"]["engine"] == "onnx" and docs["auto"]["model"]["engine"] in ("torch", "onnx")
    # the ONNX graph is checked against PyTorch at export: the grades agree to within a few pixels
    for engine in ("onnx", "auto"):
        assert docs[engine]["overall"]["metrics"]["miou"] == pytest.approx(docs["torch"]["overall"]["metrics"]["miou"],
                                                                           abs=0.01)
    assert "engine onnx" in (tmp_path / "onnx" / "report.html").read_text()
    code, _, err = run_cli(["grade", str(trained.model_path), "--suite", str(suite), "--out", str(tmp_path / "x"),
                            "--engine", "tpu"], capsys)
    assert code == 2 and err.count("\n") == 1 and "unknown engine 'tpu'" in err and not (tmp_path / "x").exists()


def test_missing_suite_file(trained: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["grade", str(trained.model_path), "--suite", str(tmp_path / "none.yaml")], capsys)
    assert code == 2 and err.count("\n") == 1 and "suite file not found" in err


def test_scene_property_slices(trained: Any) -> None:
    """Slices by the STAC properties the manifest recorded (set here on the one scene's record)."""
    from eoengine.grading.chips import load_graded
    from eoengine.grading.zones import property_slices
    from eoengine.models.package import load_package

    pkg = load_package(trained.model_path)
    graded = load_graded(pkg, Path(pkg.meta.dataset.path), "test")
    graded.manifest.scenes[0].properties = {"eo:cloud_cover": 12.5, "platform": "landsat-7"}
    cloud = property_slices(graded, "eo:cloud_cover", 4)
    assert cloud.labels == ["12.5"] and (cloud.keys == 0).all()
    assert property_slices(graded, "platform", 4).labels == ["landsat-7"]


def test_paired_difference_known_answers() -> None:
    from eoengine.grading.compare import paired_differences

    def paired_difference(*args: Any) -> dict[str, float]:
        return paired_differences(*args)[0]

    rng = np.random.default_rng(0)
    a = rng.integers(0, 30, (12, 1, 3, 3))
    same = paired_difference(a, a.copy(), False, "accuracy", 200, 0, 0.95)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
    b = a.copy()
    for i in range(3):  # B turns some of A's errors into right answers in every block
        b[:, 0, i, i] += a[:, 0, i, (i + 1) % 3]
        b[:, 0, i, (i + 1) % 3] = 0
    better = paired_difference(a, b, False, "accuracy", 200, 0, 0.95)
    assert better["difference"] > 0 and better["low"] > 0 and better["p"] == 0.0



def test_paired_differences_per_slice_known_answers() -> None:
    from eoengine.grading.compare import paired_differences

    rng = np.random.default_rng(1)
    a = rng.integers(0, 30, (12, 3, 2, 2))  # 12 blocks, 3 slices, a 2-class confusion matrix each
    a[6:, 2] = 0  # slice 2 only in the first six blocks
    b = a.copy()
    b[:, 1, 0, 0] += b[:, 1, 0, 1]  # B fixes every error of class 0 in slice 1, nowhere else
    b[:, 1, 0, 1] = 0
    tests = paired_differences(a, b, False, "accuracy", 300, 0, 0.95)
    assert tests[0] == {"difference": 0.0, "low": 0.0, "high": 0.0, "p": 1.0} and tests[2]["p"] == 1.0
    acc = lambda m: np.trace(m.sum(0)) / m.sum()  # noqa: E731 - the known answer, computed directly
    assert tests[1]["difference"] == pytest.approx(acc(b[:, 1]) - acc(a[:, 1]))
    assert tests[1]["low"] > 0 and tests[1]["p"] == 0.0
    empty = paired_differences(np.zeros((4, 1, 2, 2)), np.zeros((4, 1, 2, 2)), False, "accuracy", 50, 0, 0.95)
    assert np.isnan(empty[0]["difference"])


def test_compare_models_and_baseline(trained: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.grading.baseline import random_forest_baseline
    from eoengine.models.package import load_package

    suite = _suite(tmp_path, uncertainty={"bootstrap": 50}, robustness={"corruptions": [{"name": "haze", "severities": [3]}],
                                                                       "max_chips": 8})
    out = tmp_path / "cmp"
    model = str(trained.model_path)
    code, stdout, err = run_cli(["grade", model, model, "--baseline", "random_forest", "--suite", str(suite),
                                 "--out", str(out)], capsys)
    assert code == 0, err
    doc = json.loads((out / "comparison.json").read_text())
    assert set(doc["models"]) == {"unet", "unet#2", "random_forest"}
    same, forest = doc["pairs"]
    assert (same["b"], same["difference"], same["p"], same["real"]) == ("unet#2", 0.0, 1.0, False)
    assert same["slices"] and all(r["difference"] == 0.0 and not r["real"] for r in same["slices"])
    assert {r["dimension"] for r in forest["slices"]} >= {"scene", "brightness"}
    card = json.loads((out / "unet" / "grade.json").read_text())
    sizes = {t["dimension"]: len(t["slices"]) for t in card["slices"]}
    tested = {r["dimension"] for r in forest["slices"]}
    assert tested and all(sizes[d] <= 64 for d in tested) and "class" not in tested  # dimensions of <= 64 slices
    assert all(r["pixels"] >= 50 for r in forest["slices"])  # the default min_pixels
    pkg = load_package(trained.model_path)
    ref = random_forest_baseline(Path(pkg.meta.dataset.path), len(pkg.meta.classes), seed=0)
    assert doc["models"]["random_forest"]["overall"]["metrics"]["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-9)
    assert forest["difference"] == pytest.approx(ref["miou"] - doc["models"]["unet"]["overall"]["metrics"]["miou"])
    for label in doc["models"]:
        assert (out / label / "report.html").exists() and (out / label / "error_s1999.tif").exists()
    assert "unet#2 - unet: miou +0.000" in stdout and "not a real difference" in stdout
    assert "random_forest" in (out / "comparison.html").read_text()
    code, _, err = run_cli(["grade", model, "--baseline", "xgb", "--suite", str(suite), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "unknown baseline 'xgb'" in err and not (tmp_path / "x").exists()


def test_report_card_in_a_browser(trained: Any, tmp_path: Path, page: Any, screenshot: Any,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The default suite's report card opens as a file: grade, thresholds, figures (all loaded), no errors."""
    out = tmp_path / "card"
    code, _, err = run_cli(["grade", str(trained.model_path), "--out", str(out)], capsys)
    assert code == 0, err
    doc = json.loads((out / "grade.json").read_text())
    page.goto((out / "report.html").as_uri())
    assert page.locator("#grade").inner_text() == doc["grade"]
    rows = page.locator("h2:has-text('Thresholds') + table tr")
    assert rows.count() == len(doc["thresholds"]) + 1  # default: ECE and every corruption at severity 3
    assert len(doc["thresholds"]) == 10 and doc["thresholds"][0]["requirement"] == "ece <= 0.1"
    sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.naturalWidth])")
    assert {alt for alt, _ in sizes} >= {"degradation", "reliability", "blocks", "error_s1999"}
    assert all(w > 100 for _, w in sizes)
    assert page.locator("text=Weakest slices").count() == 1
    screenshot("i14_report_card")
