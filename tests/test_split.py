import numpy as np

from eoengine.datasets.split import assign_counts, block_splitter, grid_positions, grid_windows
from eoengine.raster.scene import Grid


def test_grid_positions_cover_the_edge() -> None:
    assert grid_positions(100, 32, 32) == [0, 32, 64, 68]
    assert grid_positions(20, 32, 32) == []
    assert len(list(grid_windows(64, 64, 32, 16))) == 9


def test_assign_counts_follow_ratios() -> None:
    out = assign_counts(20, {"train": 0.7, "val": 0.15, "test": 0.15})
    assert out.count("train") == 14 and out.count("val") + out.count("test") == 6


def test_block_split_never_lets_chips_of_different_splits_overlap() -> None:
    grid = Grid("EPSG:32615", (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), 300, 300)
    split = block_splitter(grid, 64, {"train": 0.6, "val": 0.2, "test": 0.2}, 1, "s")
    cover = {s: np.zeros((300, 300), bool) for s in ("train", "val", "test")}
    for r, c in grid_windows(300, 300, 32, 8):
        s = split(r, c, 32)
        if s:
            cover[s][r : r + 32, c : c + 32] = True
    assert all(cover[s].any() for s in cover)
    assert not (cover["train"] & cover["test"]).any() and not (cover["train"] & cover["val"]).any()
    again = block_splitter(grid, 64, {"train": 0.6, "val": 0.2, "test": 0.2}, 1, "s")
    assert all(split(r, c, 32) == again(r, c, 32) for r, c in grid_windows(300, 300, 32, 32))
