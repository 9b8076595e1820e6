from pathlib import Path

import numpy as np
import pytest
from conftest import NC, write_raster
from rasterio.windows import Window

from eoengine.errors import EOError
from eoengine.raster.crs import crs_equivalent
from eoengine.raster.scene import BandSource, SceneReader


def test_equivalent_crs_definitions_are_equal() -> None:
    import rasterio

    with rasterio.open(NC / "data" / "lsat7_2000_10.tif") as a, rasterio.open(NC / "data" / "strata.tif") as b:
        assert a.crs.to_wkt() != b.crs.to_wkt()
        assert crs_equivalent(a.crs, b.crs, tuple(a.bounds))
        assert not crs_equivalent(a.crs, "EPSG:32617", tuple(a.bounds))


def test_mixed_resolutions_resample_onto_finest_grid(tmp_path: Path) -> None:
    fine = write_raster(tmp_path / "fine.tif", np.arange(64 * 64, dtype=np.float32).reshape(64, 64), res=10)
    coarse = write_raster(tmp_path / "coarse.tif", np.full((32, 32), 7, dtype=np.int16), res=20, nodata=-1)
    srcs = [BandSource("a", str(fine)), BandSource("b", str(coarse), scale=0.5, offset=1.0)]
    with SceneReader(srcs) as r:
        assert (r.grid.width, r.grid.height, r.grid.res) == (64, 64, 10)
        x = r.read(Window(0, 0, 64, 64))
    assert x.shape == (2, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[1], 7 * 0.5 + 1.0)


def test_nodata_becomes_nan_and_windows_pad(tmp_path: Path) -> None:
    data = np.ones((20, 20), dtype=np.float32)
    data[:5] = -99999
    path = write_raster(tmp_path / "a.tif", data, nodata=-99999)
    with SceneReader([BandSource("a", str(path))]) as r:
        x = r.read(Window(-4, 0, 30, 10))
    assert np.isnan(x[0, :5]).all() and np.isnan(x[0, :, :4]).all() and np.isnan(x[0, :, 24:]).all()
    assert (x[0, 5:, 4:24] == 1).all()


def test_missing_and_corrupt_rasters_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(EOError, match="raster not found: .*nope.tif"):
        SceneReader([BandSource("a", str(tmp_path / "nope.tif"))])
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 100)
    with pytest.raises(EOError, match=r"cannot read raster .*bad.tif"):
        SceneReader([BandSource("a", str(bad))])


def test_truncated_geotiff_fails_on_read_with_file_name(tmp_path: Path) -> None:
    good = write_raster(tmp_path / "g.tif", np.random.default_rng(0).random((1, 300, 300)).astype(np.float32))
    data = good.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(EOError, match="cut.tif"):
        with SceneReader([BandSource("a", str(cut))]) as r:
            r.read(Window(0, 0, 300, 300))
