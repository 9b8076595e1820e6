"""Issue 10: ``--engine auto`` chooses once per model and machine, so repeated runs give the same bytes.

The first ``auto`` run times PyTorch and ONNX Runtime and records the faster in the cache
folder's ``engines.json``; later runs use the recorded engine (a timing would follow noise).
"""

import hashlib
import json
from pathlib import Path

import pytest
import rasterio
from conftest import four_band_stack, run_cli, saved_package

from eoengine.models.package import ONNX, export_onnx, load_package


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "cache"))
    path = saved_package(tmp_path / "m")
    export_onnx(load_package(path).model, 4, 32, path / ONNX)
    return path


def _predict(model: Path, scene: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    code, _, err = run_cli(["predict", str(model), str(scene), "--out", str(out), "--probabilities",
                            str(out.with_name(f"p-{out.name}"))], capsys)
    assert code == 0, err
    with rasterio.open(out) as ds:
        engine = ds.tags()["EOENGINE_ENGINE"]
    return engine, hashlib.sha256(out.with_name(f"p-{out.name}").read_bytes()).hexdigest()


def test_auto_records_its_choice_and_keeps_it(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = four_band_stack(tmp_path / "scene.tif")
    first = _predict(model, scene, tmp_path / "a.tif", capsys)
    record = tmp_path / "cache" / "engines.json"
    choices = json.loads(record.read_text())
    assert list(choices.values()) == [first[0]] and first[0] in ("torch", "onnx")
    assert _predict(model, scene, tmp_path / "b.tif", capsys) == first  # same engine, same probabilities
    other = "onnx" if first[0] == "torch" else "torch"
    record.write_text(json.dumps(dict.fromkeys(choices, other)))  # the record, not a new timing, decides
    assert _predict(model, scene, tmp_path / "c.tif", capsys)[0] == other


def test_an_unwritable_cache_still_predicts(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "afile" / "cache"))
    engine, _ = _predict(model, four_band_stack(tmp_path / "scene.tif"), tmp_path / "a.tif", capsys)
    assert engine in ("torch", "onnx")
