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


def test_chunk_reader_matches_zarr(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import zarr

    from eoengine.datasets.chunks import ChunkReader

    for comp in ("auto", None):
        name = f"a{comp}"
        arr = zarr.create_array(str(tmp_path / name), shape=(4, 2, 8, 8), chunks=(1, 2, 8, 8), dtype="float32",
                                fill_value=np.nan, compressors=comp)
        data = np.random.default_rng(0).random((3, 2, 8, 8)).astype(np.float32)
        arr[:3] = data
        reader = ChunkReader(tmp_path / name, arr)
        assert reader.fast
        np.testing.assert_array_equal(reader[1], data[1])
        assert np.isnan(reader[3]).all()  # never written: fill value
    odd = zarr.create_array(str(tmp_path / "odd"), shape=(4, 8), chunks=(2, 8), dtype="float32")
    odd[:] = 1
    slow = ChunkReader(tmp_path / "odd", odd)
    assert not slow.fast and (slow[0] == 1).all()


def test_chunk_writes_are_read_back_by_zarr(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import zarr

    from eoengine.datasets.chunks import ChunkReader

    for comp in ("auto", None):
        arr = zarr.create_array(str(tmp_path / f"w{comp}"), shape=(3, 2, 4, 4), chunks=(1, 2, 4, 4), dtype="float32",
                                fill_value=np.nan, compressors=comp)
        value = np.arange(32, dtype=np.float32).reshape(2, 4, 4)
        ChunkReader(tmp_path / f"w{comp}", arr).put(1, value)
        again = zarr.open_array(str(tmp_path / f"w{comp}"), mode="r")
        np.testing.assert_array_equal(again[1], value)
        assert np.isnan(again[0]).all()


def test_beam_flags_pass_through() -> None:
    from eoengine.datasets.pipeline import beam_options

    opts = beam_options("DirectRunner", 2, "multi_processing", ["--direct_num_workers=1", "--job_name=x"]).get_all_options()
    assert opts["runner"] == "DirectRunner" and opts["direct_num_workers"] == 1 and opts["job_name"] == "x"
    flink = beam_options("FlinkRunner", 2, "multi_processing", ["--flink_master=host:8081"]).get_all_options()
    assert flink["runner"] == "FlinkRunner" and flink["flink_master"] == "host:8081"
