"""Issue 10: block splits on small scenes give every split chips (or refuse), and say when a split lacks classes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_config

from eoengine.config.schema import ProjectConfig
from eoengine.datasets.plan import plan_build
from eoengine.datasets.split import MIN_SPLIT_CHIPS, assign_counts, split_warnings
from eoengine.errors import EOError


def _plan(tmp_path: Path, **overrides: object) -> list[str]:
    raw = tiny_config(tmp_path, **{"dataset.split": {"method": "blocks"}, **overrides})
    cfg = ProjectConfig.model_validate(raw)
    return [c.split for c in plan_build(cfg, tmp_path / "scratch").candidates]


def test_small_scene_gets_blocks_that_give_every_split_chips(tmp_path: Path) -> None:
    # 250 px scene, 64 px chips: the default 4 x patch block (256 px) covers the whole scene
    splits = _plan(tmp_path, **{"dataset.patch_size": 64, "dataset.stride": 64})
    assert all(splits.count(s) >= MIN_SPLIT_CHIPS for s in ("train", "val", "test")), splits


def test_rounding_never_leaves_a_split_without_blocks() -> None:
    ratios = {"train": 0.7, "val": 0.15, "test": 0.15}
    for n in range(3, 12):
        out = assign_counts(n, ratios)
        assert len(out) == n and {"train", "val", "test"} <= set(out), (n, out)
    assert assign_counts(20, ratios).count("train") == 14  # enough blocks: the ratios as before


def test_scene_too_small_for_three_splits_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EOError) as exc:
        _plan(tmp_path, **{"dataset.patch_size": 125, "dataset.stride": 125})
    assert "too few chips in a split" in exc.value.problem and "lower dataset.patch_size" in str(exc.value.fix)


def test_configured_block_size_that_empties_a_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EOError) as exc:
        _plan(tmp_path, **{"dataset.patch_size": 64, "dataset.split": {"method": "blocks", "block_size": 256}})
    assert "lower dataset.split.block_size (it is 256)" in str(exc.value.fix)


def test_split_without_a_class_of_train_is_named() -> None:
    names = ["forest", "water", "urban"]
    freq = {"train": [10, 5, 3], "val": [7, 0, 0], "test": [4, 1, 2]}
    found = split_warnings({"train": 5, "val": 2, "test": 2}, freq, {"train": 0.7, "val": 0.15, "test": 0.15}, names)
    assert found == ["the val split has no pixels of water, urban (train has): its scores say nothing about those classes"]
    empty = split_warnings({"train": 5, "val": 0, "test": 2}, freq | {"val": [0, 0, 0]}, {"train": 0.8, "val": 0.1, "test": 0.1}, names)
    assert empty == ["the val split has no chips: it cannot score the model"]
    assert split_warnings({"train": 5, "val": 0, "test": 2}, freq | {"val": [0, 0, 0]}, {"train": 0.9, "test": 0.1}, names) == []
