"""Issue 10: a validation split with one class cannot score an untrained, constant prediction 1.0."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from eoengine.config.schema import ComponentConfig, ProjectConfig
from eoengine.datasets.schema import ClassInfo, DatasetManifest, Targets
from eoengine.training.heads import build_heads
from eoengine.training.metrics import scores_from_confusion
from eoengine.training.module import TrainingTask


def test_classes_train_has_count_in_validation_means() -> None:
    cm = torch.zeros(3, 3)
    cm[0, 0] = 100  # truth and prediction: class 0 only
    assert scores_from_confusion(cm)["miou"] == 1.0  # test/evaluate: absent classes neither help nor hurt
    honest = scores_from_confusion(cm, [True, True, False])
    assert honest["miou"] == pytest.approx(0.5) and honest["f1"] == pytest.approx(0.5)
    assert honest["iou_per_class"] == [1.0, 0.0, 0.0]


def test_untrained_constant_model_scores_below_one_on_a_one_class_validation_split(tmp_path: Path) -> None:
    cfg = ProjectConfig.model_validate(tiny_config(tmp_path))
    manifest = DatasetManifest.model_construct(  # the parts build_heads reads
        targets=Targets(classes=True, values=None), classes=[ClassInfo(index=i, name=c.name) for i, c in enumerate(cfg.classes)],
        class_frequencies={"train": [50, 20, 10, 5, 0]})
    heads, losses = build_heads(cfg, manifest)
    constant = torch.nn.Conv2d(4, 5, 1)  # an untrained model that says "forest" everywhere
    with torch.no_grad():
        constant.weight.zero_()
        constant.bias.copy_(torch.tensor([5.0, 0, 0, 0, 0]))
    task = TrainingTask(constant, heads, losses, ComponentConfig(name="Adam"))
    batch = (torch.randn(2, 4, 8, 8), {"mask": torch.zeros(2, 8, 8, dtype=torch.long)})  # all forest
    task.validation_step(batch, 0)
    task.test_step(batch, 0)
    assert task.val_metrics[0].compute()["miou"] == pytest.approx(0.25)  # 4 classes in train, 1 checked
    assert task.test_metrics[0].compute()["miou"] == 1.0
