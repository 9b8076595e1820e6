"""Issue 14: ``monitor`` and ``eoengine monitor`` on real GeoTIFFs against a tiny trained model.

The dataset labels every pixel of the sample scene (a background class), so its random
train split is a fair sample of the whole scene: that scene, written again as a GeoTIFF,
must be ok; the same bands times 1.5 plus 100 must alert, naming the channels; the scene at
another resolution must be rated by the factor; a scene short of a band must fail, naming
it, before any sampling or model run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rasterio
from conftest import OGT, four_band_stack, one_problem, run_cli, train_tiny_unet, write_raster

from eoengine.errors import EOError, Invalid
from eoengine.grading import monitor as monitor_module
from eoengine.grading.monitor import MonitorThresholds, monitor, prediction_drift
from eoengine.grading.samples import scene_sample, scene_windows
from eoengine.models.heads import Head
from eoengine.models.package import ModelPackage, load_package
from eoengine.raster.scene import SceneReader

STACK = OGT / "LE70220491999322EDC01_stack.gtif"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("i14monitor")
    result = train_tiny_unet(tmp, epochs=1, **{"labels.background": 3})
    pkg = load_package(Path(result.model_path))
    scene = four_band_stack(tmp / "scene.tif")
    with rasterio.open(scene) as ds:
        profile, data = ds.profile, ds.read().astype("float32")
    shifted = tmp / "shifted.tif"
    with rasterio.open(shifted, "w", **(profile | {"dtype": "float32"})) as dst:
        dst.write(np.where(data == -9999, data, data * 1.5 + 100))
    report = monitor(pkg, [str(scene), [str(shifted)]])
    return {"tmp": tmp, "pkg": pkg, "path": Path(result.model_path), "scene": scene, "shifted": shifted,
            "data": data, "profile": profile, "report": report}


def test_the_datasets_own_scene_is_ok(model: dict[str, Any]) -> None:
    ok = model["report"].scenes[0]
    assert ok.scene == str(model["scene"])
    assert (ok.status, ok.reasons) == ("ok", [])
    assert [d.channel for d in ok.channels] == ["blue", "green", "red", "nir", "NDVI"]
    assert all(d.psi < 0.1 and d.ks < 0.1 and abs(d.mean_shift) < 0.5 for d in ok.channels)
    assert ok.resolution == 30.0 and ok.resolution_factor == 1.0
    assert ok.input_distance < max(model["report"].grading_distances.values()) + 0.25
    assert 0 < ok.pixels <= 20_000 and ok.windows > 0
    p = ok.prediction
    assert p is not None and p.kind == "classes" and set(p.shares) == set(model["pkg"].class_names)
    assert sum(p.shares.values()) == pytest.approx(1.0) and p.share_distance < 0.1


def test_a_shifted_scene_alerts_with_reasons_naming_the_channel(model: dict[str, Any]) -> None:
    report = model["report"]
    shifted = report.scenes[1]
    assert (shifted.status, report.status) == ("alert", "alert")
    name = re.escape(str(model["shifted"]))
    assert any(re.fullmatch(rf"scene {name}: channel nir PSI \d+\.\d\d ≥ 0\.25 \(alert\)", r) for r in shifted.reasons)
    assert any(re.fullmatch(rf"scene {name}: channel nir \|mean shift\| \d+\.\d\d train std \(\+\d+\.\d\d\) ≥ 1 \(alert\)", r)
               for r in shifted.reasons)
    assert any(r.startswith(f"scene {model['shifted']}: input distance ") and r.endswith("(alert)") for r in shifted.reasons)
    nir = next(d for d in shifted.channels if d.channel == "nir")
    assert nir.psi >= 0.25 and nir.mean_shift > 1
    assert report.reasons == shifted.reasons  # the ok scene adds none
    data = json.loads(report.to_json())
    assert data["status"] == "alert" and data["scenes"][1]["channels"][3]["channel"] == "nir"
    assert data["thresholds"]["psi_alert"] == 0.25 and data["grading_distances"]


def test_the_same_seed_gives_the_same_report(model: dict[str, Any]) -> None:
    again = monitor(model["pkg"], [str(model["scene"])])
    assert again.as_dict()["scenes"][0] == model["report"].as_dict()["scenes"][0]
    other = monitor(model["pkg"], [str(model["scene"])], seed=1)
    assert other.scenes[0].channels[0].psi != again.scenes[0].channels[0].psi


def test_thresholds_decide_warn_and_alert(model: dict[str, Any]) -> None:
    only_warn = MonitorThresholds(**{f: 1e9 for f in MonitorThresholds.__dataclass_fields__ if f.endswith("_alert")})
    report = monitor(model["pkg"], [str(model["shifted"])], thresholds=only_warn)
    assert report.status == "warn" and report.reasons and all(r.endswith("(warn)") for r in report.reasons)
    with pytest.raises(Invalid, match="threshold psi: warn 0.5 is above alert 0.25"):
        MonitorThresholds(psi_warn=0.5)


def test_resolution_is_rated_by_its_factor(model: dict[str, Any]) -> None:
    tmp, data = model["tmp"], model["data"]
    coarse = write_raster(tmp / "at45.tif", data.astype("int16"), res=45.0, nodata=-9999)
    coarser = write_raster(tmp / "at90.tif", data.astype("int16"), res=90.0, nodata=-9999)
    report = monitor(model["pkg"], [str(coarse), str(coarser)])
    warn, alert = report.scenes
    assert warn.resolution_factor == 1.5 and f"scene {coarse}: resolution 45 against 30 in training, a factor 1.50 ≥ 1.5 (warn)" in warn.reasons
    assert warn.status == "warn"
    assert f"scene {coarser}: resolution 90 against 30 in training, a factor 3.00 ≥ 3 (alert)" in alert.reasons


def test_a_scene_without_the_models_bands_fails_before_any_work(model: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    three = model["tmp"] / "three.tif"
    with rasterio.open(three, "w", **(model["profile"] | {"count": 3})) as dst:
        dst.write(model["data"][:3].astype("int16"))
        dst.descriptions = ("blue", "green", "red")

    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the reference was sampled before the scenes were checked")

    monkeypatch.setattr(monitor_module, "reference", no_work)
    with pytest.raises(EOError, match=r"the model expects 4 bands .*three.tif give\(s\) 3 band\(s\) \(missing: nir\)") as err:
        monitor(model["pkg"], [str(model["scene"]), str(three)])
    assert err.value.fix and "one stack with exactly those bands" in err.value.fix


def test_a_scene_without_data_alerts(model: dict[str, Any]) -> None:
    empty = write_raster(model["tmp"] / "empty.tif", np.full((4, 64, 64), -9999, dtype="int16"), nodata=-9999)
    scene = monitor(model["pkg"], [str(empty)], windows=4).scenes[0]
    assert scene.status == "alert" and scene.reasons == [f"scene {empty}: no pixel with data in 4 sampled windows (alert)"]


def test_a_scene_is_read_in_a_few_windows_not_whole(model: dict[str, Any]) -> None:
    from eoengine.grading.samples import ModelRunner
    from eoengine.inference.sources import sources_for_package

    pkg: ModelPackage = model["pkg"]
    runner = ModelRunner(pkg, "torch", (1, 5, 16, 16))
    with SceneReader(sources_for_package(pkg.meta, [str(model["scene"])])) as reader:
        read: list[int] = []
        original = reader.read_raw
        reader.read_raw = lambda w: (read.append(int(w.width * w.height)), original(w))[1]  # type: ignore[method-assign]
        sample = scene_sample(reader, runner, 16, 8, 500, np.random.default_rng(0))
    assert sum(read) == 8 * 16 * 16 < 250 * 250 // 20
    assert sample.parts == 8 and len(sample.pixels) == 8 * 62  # 500 // 8 pixels of each window
    assert sample.outputs is not None and sample.outputs.shape == (8 * 62, 5)


def test_windows_are_a_seeded_choice_of_distinct_tiles() -> None:
    windows = scene_windows(10_000, 10_000, 256, 32, np.random.default_rng(5))
    corners = {(w.row_off, w.col_off) for w in windows}
    assert len(corners) == 32 and all(r % 256 == 0 and c % 256 == 0 and r < 10_000 and c < 10_000 for r, c in corners)
    assert windows == scene_windows(10_000, 10_000, 256, 32, np.random.default_rng(5))
    assert len(scene_windows(40, 40, 16, 32, np.random.default_rng(5))) == 9  # every tile of a small scene


def test_a_value_model_compares_its_predicted_values() -> None:
    runner = SimpleNamespace(head=Head("height", "regression", 0, 1, 1.0, "", 0))
    rng = np.random.default_rng(0)
    same = prediction_drift(runner, [], rng.normal(10, 2, (5000, 1)), rng.normal(10, 2, (5000, 1)))  # type: ignore[arg-type]
    moved = prediction_drift(runner, [], rng.normal(10, 2, (5000, 1)), rng.normal(14, 2, (5000, 1)))  # type: ignore[arg-type]
    assert same is not None and moved is not None and same.kind == moved.kind == "values"
    assert same.distribution is not None and moved.distribution is not None
    assert same.distribution.psi < 0.05 and moved.distribution.psi > 1
    assert moved.distribution.mean_shift == pytest.approx(2.0, abs=0.1)


def test_cli_prints_the_report_writes_json_and_exits_by_fail_on(model: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = model["tmp"] / "reports" / "monitor.json"
    code, stdout, _ = run_cli(["monitor", str(model["path"]), str(model["scene"]), "--json", str(out), "--fail-on", "warn"], capsys)
    assert code == 0 and "status: ok" in stdout and f"report: {out}" in stdout
    assert json.loads(out.read_text())["status"] == "ok"
    code, stdout, _ = run_cli(["monitor", str(model["path"]), str(model["shifted"]), "--sample", "5000", "--fail-on", "alert"], capsys)
    assert code == 3 and re.search(r"channel nir PSI \d+\.\d\d ≥ 0\.25 \(alert\)", stdout) and "status: alert" in stdout
    code, stdout, _ = run_cli(["monitor", str(model["path"]), str(model["shifted"]), "--json", "-"], capsys)
    assert code == 0 and json.loads(stdout)["status"] == "alert"
    # looser limits: the same shift is no longer an alert on PSI
    code, stdout, _ = run_cli(["monitor", str(model["path"]), str(model["shifted"]), "--sample", "5000",
                               "--limit", "psi_warn=50", "--limit", "psi_alert=100", "--json", "-"], capsys)
    doc = json.loads(stdout)
    assert code == 0 and doc["thresholds"]["psi_warn"] == 50 and not any(" PSI " in r for r in doc["reasons"]), doc


def test_cli_bad_input_is_one_line(model: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    three = model["tmp"] / "three_cli.tif"
    write_raster(three, model["data"][:3].astype("int16"), nodata=-9999)
    code, _, err = run_cli(["monitor", str(model["path"]), str(three)], capsys)
    assert code == 2 and one_problem(err) and "the model expects 4 bands" in err and "give(s) 3 band(s)" in err
    code, _, err = run_cli(["monitor", str(model["path"]), str(model["scene"]), "--fail-on", "sometimes"], capsys)
    assert code == 2 and one_problem(err) and "use --fail-on warn or --fail-on alert" in err
    code, _, err = run_cli(["monitor", str(model["tmp"] / "no-model"), str(model["scene"])], capsys)
    assert code == 2 and one_problem(err) and "model not found" in err
    for limit, words in (("psi=0.2", "does not name a threshold"), ("psi_warn=high", "is not a number"),
                         ("psi_warn=0.5", "warn 0.5 is above alert 0.25")):
        code, _, err = run_cli(["monitor", str(model["path"]), str(model["scene"]), "--limit", limit], capsys)
        assert code == 2 and one_problem(err) and words in err, err


def test_reasons_name_the_measure_the_number_and_the_limit() -> None:
    from eoengine.grading.drift import ChannelDrift
    from eoengine.grading.ratings import Verdict, rate_distribution

    verdict = Verdict("s.tif")
    d = ChannelDrift("height", psi=0.12, ks=0.05, ks_pvalue=0.0, mean_shift=-1.2, std_ratio=0.4, reference_count=9, current_count=9)
    rate_distribution(verdict, "predicted value", d, MonitorThresholds(), unit="test-split std")
    assert verdict.reasons == [
        "scene s.tif: predicted value PSI 0.12 ≥ 0.1 (warn)",
        "scene s.tif: predicted value |mean shift| 1.20 test-split std (-1.20) ≥ 1 (alert)",
        "scene s.tif: predicted value std ratio 0.40 (a factor 2.50) ≥ 2 (alert)",
    ]
    assert verdict.status == "alert"
    verdict.rate("channel red PSI", float("nan"), 0.1, 0.25)  # not measured: not rated
    assert len(verdict.reasons) == 3
