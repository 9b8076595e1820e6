"""1x1 point datasets train the DNN with larger batches and no geometric augmentation, unless the config says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, save_config, tiny_config
from mlflow.tracking import MlflowClient
from test_i10_classical import _points, _trained

from eoengine.config.load import load_config
from eoengine.datasets.schema import DatasetManifest
from eoengine.training.defaults import POINT_BATCH_SIZE, dataset_defaults


def _params(text: str) -> dict[str, str]:
    run_id, _, uri = _trained(text)
    return MlflowClient(tracking_uri=uri).get_run(run_id).data.params


def test_point_datasets_default_to_large_batches_without_flips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _points(tmp_path, capsys, (120, 30, 30))
    cfg = tiny_config(tmp_path, **{"training.dataset": str(data), "model.name": "pixel_dnn", "model.kwargs": {},
                                   "classes": [{"value": i, "name": f"class{i}"} for i in range(3)], "training.epochs": 1})
    del cfg["training"]["batch_size"]
    code, text, err = run_cli(["train", str(save_config(tmp_path, cfg, "defaults.yaml"))], capsys)
    assert code == 0, err
    params = _params(text)
    assert params["training.batch_size"] == str(POINT_BATCH_SIZE)
    assert [params[f"training.augmentation.{k}"] for k in ("hflip", "vflip", "rot90")] == ["False"] * 3

    cfg["training"] |= {"batch_size": 8, "augmentation": {"hflip": True}}
    code, text, err = run_cli(["train", str(save_config(tmp_path, cfg, "set.yaml"))], capsys)
    assert code == 0, err
    params = _params(text)
    assert params["training.batch_size"] == "8" and params["training.augmentation.hflip"] == "True"
    assert params["training.augmentation.vflip"] == "False"


def test_chips_larger_than_one_pixel_keep_the_usual_defaults(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    del cfg["training"]["batch_size"]
    loaded = load_config(save_config(tmp_path, cfg))
    kept = dataset_defaults(loaded, DatasetManifest.model_construct(patch_size=16))
    assert kept.training.batch_size == 16 and kept.training.augmentation.hflip
    points = dataset_defaults(loaded, DatasetManifest.model_construct(patch_size=1))
    assert points.training.batch_size == POINT_BATCH_SIZE and not points.training.augmentation.rot90
    assert loaded.training.batch_size == 16  # the loaded config is not changed
