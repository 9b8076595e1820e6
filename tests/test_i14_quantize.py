"""Issue 14: ``eoengine quantize MODEL --max-drop 0.01`` keeps int8 only if no graded slice drops more.

A tiny U-Net is trained on the bundled scene; a copy is poisoned so that one activation channel (the input
of the output layer) is ~10^4 while the layer ignores it: fp32 predicts exactly as before, but int8's
per-tensor activation scale then crushes the channels that matter. The two nodes around that activation
must rank most sensitive, and leaving them in fp32 must bring int8 back within the budget.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import edited_copy, run_cli, train_tiny_unet

from eoengine.deploy.int8 import excluded_nodes
from eoengine.grading.grade import grade
from eoengine.grading.quantize import BUDGET_REPORT, quantize_within
from eoengine.grading.suite import load_suite
from eoengine.models.package import load_package

POISONED = ("/decoder/dec.1/dec.1.1/dec.1.1.0/Conv", "/decoder/head/Conv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The trained package, a poisoned copy and a slices-only suite."""
    tmp = tmp_path_factory.mktemp("quantize")
    result = train_tiny_unet(tmp, epochs=3)

    def poison(state: dict[str, Any]) -> None:
        state["decoder.dec.1.1.1.bias"][0] += 1e4   # BN bias of the head's input: channel 0 becomes ~1e4 after ReLU
        state["decoder.head.weight"][:, 0] = 0.0    # ... and the head ignores it, so fp32 is unchanged

    poisoned = edited_copy(result.model_path, tmp / "poisoned", poison)
    suite = tmp / "slices.yaml"
    suite.write_text(yaml.safe_dump({"uncertainty": {"bootstrap": 0}, "robustness": {"corruptions": []},
                                     "error_maps": False, "slices": {"min_pixels": 20}}))
    return {"tmp": tmp, "pkg": result.model_path, "poisoned": poisoned, "suite": suite}


def _copy(trained: dict[str, Any], key: str, name: str) -> Path:
    dest = trained["tmp"] / name
    shutil.copytree(trained[key], dest)
    return dest


def test_loose_budget_keeps_plain_int8_and_grades_fp32_like_pytorch(trained: dict[str, Any]) -> None:
    path = _copy(trained, "pkg", "loose")
    suite = load_suite(trained["suite"])
    result = quantize_within(load_package(path), suite, 1.0, calibration_chips=16)
    assert result.kept == "int8" and result.file == path / "model.int8.onnx" and result.file.exists()
    assert len(result.attempts) == 1 and result.attempts[0].excluded == [] and excluded_nodes(result.file) == []
    assert result.ranking == []  # nothing to exclude: the ranking is never computed
    # the fp32 reference is the ONNX export of the model: its overall mIoU is the PyTorch grade's
    torch_grade = grade(load_package(path), suite, trained["tmp"] / "torch-grade")
    overall = next(d for d in result.attempts[0].drops if d.dimension == "overall")
    assert overall.reference == pytest.approx(float(torch_grade.overall.values["miou"][0]), abs=1e-3)
    assert overall.drop == pytest.approx(overall.reference - overall.candidate)
    drops = [d.drop for d in result.attempts[0].drops]
    assert drops == sorted(drops, reverse=True)
    assert all(d.pixels >= 20 for d in result.attempts[0].drops if d.dimension != "overall")
    doc = json.loads((path / BUDGET_REPORT).read_text())
    assert doc["kept"] == "int8" and doc["verdict"].startswith("int8 kept") and doc["excluded_nodes"] == []


def test_sensitive_nodes_stay_fp32_until_the_budget_holds(trained: dict[str, Any]) -> None:
    path = _copy(trained, "poisoned", "budget")
    suite = load_suite(trained["suite"])
    plain = quantize_within(load_package(path), suite, 0.0, calibration_chips=16, max_excluded=0)
    first = plain.attempts[0].worst.drop
    assert first > 0.05, "the poisoned activation must hurt plain int8"
    budget = first / 4
    result = quantize_within(load_package(path), suite, budget, calibration_chips=16)
    assert {r.node for r in result.ranking[:2]} == set(POISONED)
    assert result.kept == "int8" and result.attempts[-1].worst.drop <= budget
    kept = result.attempts[-1].excluded
    assert kept == [r.node for r in result.ranking[:len(kept)]] and set(kept) <= set(POISONED) and kept
    assert all(a.worst.drop > budget for a in result.attempts[:-1])
    assert excluded_nodes(path / "model.int8.onnx") == kept
    assert result.verdict.startswith("int8 kept") and f"{len(kept)} node" in result.verdict


def test_an_unmet_budget_keeps_fp32_and_removes_the_old_int8(trained: dict[str, Any],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(trained, "poisoned", "fp32")
    assert run_cli(["quantize", str(path), "--calibration-chips", "16"], capsys)[0] == 0
    assert (path / "model.int8.onnx").exists()
    suite = load_suite(trained["suite"])
    result = quantize_within(load_package(path), suite, 0.0, calibration_chips=16, max_excluded=1)
    assert result.kept == "fp32" and result.file is None and result.removed_int8
    assert not (path / "model.int8.onnx").exists() and len(result.attempts) == 2
    assert "keeping fp32" in result.verdict and "beyond --max-drop 0" in result.verdict
    best = min(a.worst.drop for a in result.attempts)
    assert result.best.worst.drop == best


def test_cli_max_drop_table_json_and_bad_input(trained: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(trained, "pkg", "cli")
    code, out, err = run_cli(["quantize", str(path), "--max-drop", "1", "--suite", str(trained["suite"]),
                              "--calibration-chips", "16"], capsys)
    assert code == 0, err
    assert "int8 within --max-drop 1" in out and "int8 kept" in out and "model.int8.onnx" in out
    code, out, _ = run_cli(["quantize", str(path), "--max-drop", "1", "--suite", str(trained["suite"]),
                            "--calibration-chips", "16", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["kept"] == "int8" and doc["attempts"][0]["worst"]["where"]
    assert np.isfinite(doc["attempts"][0]["worst"]["drop"])
    before = sorted(p.name for p in path.iterdir())
    for args, words in ((["--max-drop", "-0.1"], "--max-drop must be a number of 0 or more"),
                        (["--suite", str(trained["suite"])], "--suite is only read with --max-drop"),
                        (["--max-drop", "0.01", "--suite", str(trained["tmp"] / "missing.yaml")], "missing.yaml")):
        code, out, err = run_cli(["quantize", str(path), *args], capsys)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (args, err)
    assert sorted(p.name for p in path.iterdir()) == before
