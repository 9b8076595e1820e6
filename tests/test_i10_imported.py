"""A config that only trains on an imported dataset: no imagery or labels, and validate and train agree."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import run_cli, save_config, tiny_config

from eoengine.datasets.schema import DatasetManifest
from eoengine.datasets.tfrecord import encode_example, write_records


def _import(tmp: Path, capsys: pytest.CaptureFixture[str], out: Path) -> Path:
    """An Earth Engine-style export of 16x16 patches with 3 classes, imported into ``out``."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 4)):
        records = []
        for _ in range(n):
            label = rng.integers(0, 3, (16, 16)).astype(np.float32)
            bands = {b: rng.random((16, 16)).astype(np.float32) + label * (i + 1) for i, b in enumerate(("B2", "B3", "B4"))}
            records.append(encode_example(bands | {"landcover": label}))
        write_records(tmp / f"{split}.tfrecord.gz", records)
    code, _, err = run_cli(["dataset", "import-tfrecord", f"train={tmp / 'train.tfrecord.gz'}", f"val={tmp / 'val.tfrecord.gz'}",
                            "--out", str(out), "--label", "landcover", "--classes", "water,forest,urban"], capsys)
    assert code == 0, err
    return out


def test_the_imported_template_validates_and_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "proj"
    code, _, err = run_cli(["init", str(project), "--template", "imported"], capsys)
    assert code == 0, err
    config = project / "eoengine.yaml"
    cfg = yaml.safe_load(config.read_text())
    assert "imagery" not in cfg and "labels" not in cfg
    _import(tmp_path, capsys, project / cfg["training"]["dataset"])
    cfg["training"] |= {"epochs": 1, "batch_size": 4}
    cfg["model"]["kwargs"] = {"depth": 2, "base_channels": 4}
    config.write_text(yaml.safe_dump(cfg))
    code, text, err = run_cli(["validate", str(config)], capsys)
    assert code == 0 and "valid" in text, err
    code, text, err = run_cli(["train", str(config)], capsys)
    assert code == 0, err
    model = Path(text.split("model: ")[1].split()[0])
    meta = json.loads((model / "eoengine-model.json").read_text())
    assert [c["name"] for c in meta["classes"]] == ["water", "forest", "urban"]
    assert meta["output_channels"] == 3  # the dataset's classes: the config lists none
    assert DatasetManifest.read(project / "datasets" / "imported").channels == ["B2", "B3", "B4"]


def _agree(tmp: Path, capsys: pytest.CaptureFixture[str], name: str, cfg: dict[str, Any]) -> tuple[int, str]:
    """Run one config through validate and train; both must give the same verdict (and reason)."""
    config = save_config(tmp, cfg, f"{name}.yaml")
    v_code, _, v_err = run_cli(["validate", str(config)], capsys)
    t_code, _, t_err = run_cli(["train", str(config)], capsys)
    assert v_code == t_code, f"{name}: validate {v_code} ({v_err.strip()}) but train {t_code} ({t_err.strip()})"
    if v_code:  # the same problems, one per line, after the first line (which names the config)
        assert v_err.splitlines()[1:] == t_err.splitlines()[1:], name
    return v_code, v_err


def test_validate_and_train_agree_on_every_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = _import(tmp_path, capsys, tmp_path / "ds")
    only = {"name": "only", "output_dir": str(tmp_path / "out"), "model": {"name": "cnn", "kwargs": {"width": 8, "layers": 2}},
            "training": {"dataset": str(ds), "epochs": 1, "batch_size": 4, "early_stopping": None}}
    rejected = {
        "mistyped": ({"training": only["training"] | {"dataset": str(tmp_path / "dss")}},
                     "training.dataset: " + str(tmp_path / "dss") + " is not an eoengine dataset (not found)"),
        "regression": ({"task": {"type": "regression"}}, "the regression output needs target values"),
        "weights": ({"training": only["training"] | {"loss": {"class_weights": [1, 1, 1, 1, 1]}}},
                    "training.loss.class_weights: 5 values for 3 classes"),
        "channels": ({"model": {"name": "cnn", "kwargs": {"in_channels": 4}}}, "model.kwargs.in_channels is 4"),
        "dates": ({"task": {"type": "change_detection"}}, "change_detection needs scenes with exactly 2 timesteps"),
        "monitor": ({"training": only["training"] | {"early_stopping": {"monitor": "val_rmse"}}}, "is not a logged metric"),
        "nothing": ({"training": {"epochs": 1}}, "a config needs imagery and labels to build a dataset, or training.dataset"),
    }
    for name, (change, message) in rejected.items():
        code, err = _agree(tmp_path, capsys, name, only | change)
        assert code == 2 and message in err, (name, err)
    code, err = _agree(tmp_path, capsys, "fine", only)
    assert code == 0, err
    # training on a named dataset does not read the imagery it was built from: moved files do not matter
    moved = {"imagery": tiny_config(tmp_path)["imagery"] | {"scenes": [{"id": "x", "stack": str(tmp_path / "gone.tif")}]},
             "labels": tiny_config(tmp_path)["labels"], "classes": tiny_config(tmp_path)["classes"]}
    code, err = _agree(tmp_path, capsys, "moved_imagery", only | moved)
    assert code == 0, err


def test_a_training_only_config_cannot_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = save_config(tmp_path, {"name": "x", "training": {"dataset": "somewhere"}})
    code, _, err = run_cli(["dataset", "build", str(config)], capsys)
    assert code == 2 and "has no imagery or labels, so it cannot build a dataset" in err
    assert not (tmp_path / "eoengine-out").exists()
