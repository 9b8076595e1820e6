"""Issue 10: per-class scores by class name in 'evaluate --json' and 'runs list|compare'; no empty report heading."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import run_cli, save_config, tiny_config

from eoengine.training.metrics import is_per_class, metric_key


def test_per_class_scores_are_named_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.training.train import train

    path = save_config(tmp_path, tiny_config(tmp_path, **{"training.epochs": 1}))
    cfg = load_config(path)
    build_dataset(cfg)
    a, b = train(cfg), train(cfg)
    water = a.test["iou_per_class"][1]

    code, out, err = run_cli(["evaluate", str(a.model_path), "--json"], capsys)
    assert code == 0, err
    scores = json.loads(out)
    assert list(scores["iou_per_class"]) == ["forest", "water", "herbaceous", "barren", "urban"]
    assert scores["iou_per_class"]["water"] == pytest.approx(water)
    assert set(scores["support_per_class"]) == set(scores["f1_per_class"]) and scores["classes"][1] == "water"

    page = Path(scores["report"]).read_text()
    assert not re.search(r"<h(\d)>\s*</h\1>", page) and "<h3>Per class</h3>" in page

    code, out, err = run_cli(["runs", "list", "--config", str(path), "--metric", "test_iou_water"], capsys)
    assert code == 0, err
    assert "test_iou_water" in out and f"{water:.4f}" in out
    code, out, err = run_cli(["runs", "compare", a.run_id, b.run_id, "--config", str(path), "--metric", "test_iou_water",
                              "--plot", str(tmp_path / "cmp.png")], capsys)
    assert code == 0, err
    row = next(ln for ln in out.splitlines() if "test_iou_water" in ln)
    assert f"{water:.4f}" in row and "test_iou_forest" not in out  # per class only when asked for
    assert "eval_test_iou_water" in run_cli(["runs", "show", a.run_id, "--config", str(path)], capsys)[1]

    code, _, err = run_cli(["runs", "list", "--config", str(path), "--metric", "test_iou_lake"], capsys)
    assert code == 2 and "no run has the metric(s) test_iou_lake" in err and "test_iou_water" in err


def test_metric_names_of_classes() -> None:
    assert metric_key("open water") == "open_water" and metric_key("Wald/Forst") == "Wald_Forst"
    assert is_per_class("test_iou_open_water") and is_per_class("best_val_lc_f1_urban")
    assert not is_per_class("test_miou") and not is_per_class("best_val_average_precision")
