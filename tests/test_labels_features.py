from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from conftest import OGT
from rasterio.windows import Window
from shapely.geometry import Polygon, box

from eoengine.config.schema import ClassSpec
from eoengine.errors import EOError
from eoengine.features.indices import compute_indices
from eoengine.labels import IGNORE
from eoengine.labels.vector import VectorLabeler, labels_for_grid, read_vector_labels
from eoengine.raster.scene import Grid

CLASSES = [ClassSpec(value=1, name="forest"), ClassSpec(value=2, name="water")]
GRID = Grid("EPSG:32615", (30.0, 0.0, 462405.0, 0.0, -30.0, 1741815.0), 250, 250)


def _write(tmp: Path, frame: gpd.GeoDataFrame, name: str = "l.gpkg") -> Path:
    path = tmp / name
    frame.to_file(path)
    return path


def test_reads_real_shapefile_and_matches_names_or_values() -> None:
    gdf = read_vector_labels(OGT / "training_data.shp", "id", CLASSES)
    assert set(gdf["class_index"]) == {0, 1}
    by_name = read_vector_labels(OGT / "training_data.shp", "class", CLASSES)
    assert len(by_name) > 0


def test_label_errors(tmp_path: Path) -> None:
    geom = [box(462500, 1740000, 463000, 1740500)]
    no_crs = _write(tmp_path, gpd.GeoDataFrame({"c": [1]}, geometry=geom, crs="EPSG:32615"), "a.shp")
    no_crs.with_suffix(".prj").unlink()
    with pytest.raises(EOError, match="have no CRS"):
        read_vector_labels(no_crs, "c", CLASSES)
    ok = gpd.GeoDataFrame({"c": [1]}, geometry=geom, crs="EPSG:32615")
    with pytest.raises(EOError, match=r"no column 'klass' \(columns: \['c'\]\)"):
        read_vector_labels(_write(tmp_path, ok, "b.gpkg"), "klass", CLASSES)
    with pytest.raises(EOError, match="contain no features"):
        read_vector_labels(_write(tmp_path, ok.iloc[:0], "c.gpkg"), "c", CLASSES)
    with pytest.raises(EOError, match="no value of 'c' matches a configured class"):
        read_vector_labels(_write(tmp_path, ok.assign(c=[9]), "d.gpkg"), "c", CLASSES)
    with pytest.raises(EOError, match="labels file not found"):
        read_vector_labels(tmp_path / "none.gpkg", "c", CLASSES)


def test_invalid_geometry_is_repaired(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bowtie = Polygon([(462500, 1740000), (463000, 1740500), (463000, 1740000), (462500, 1740500)])
    frame = gpd.GeoDataFrame({"c": [1]}, geometry=[bowtie], crs="EPSG:32615")
    gdf = read_vector_labels(_write(tmp_path, frame), "c", CLASSES)
    assert gdf.geometry.is_valid.all() and "repaired 1 invalid" in caplog.text


def test_reprojects_clips_and_rasterizes(caplog: pytest.LogCaptureFixture) -> None:
    inside = box(462405 + 300, 1741815 - 600, 462405 + 600, 1741815 - 300)  # pixels 10..20
    straddle = box(462405 - 300, 1741815 - 300, 462405 + 150, 1741815 - 150)
    outside = box(0, 0, 10, 10)
    frame = gpd.GeoDataFrame({"class_index": [0, 1, 1]}, geometry=[inside, straddle, outside], crs="EPSG:32615")
    frame = frame.to_crs("EPSG:4326")
    g = labels_for_grid(frame, GRID, "test")
    assert len(g) == 2 and "dropped 1 features outside the scene, clipped 1" in caplog.text
    lab = VectorLabeler(g, GRID).read(Window(0, 0, 30, 30))
    assert lab[15, 15] == 0 and lab[7, 2] == 1 and lab[25, 25] == IGNORE


def test_labels_without_overlap_fail() -> None:
    frame = gpd.GeoDataFrame({"class_index": [0]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(EOError, match="do not overlap the scene"):
        labels_for_grid(frame, GRID, "x.gpkg")


def test_indices_by_common_name_with_known_values() -> None:
    img = np.array([[[0.1]], [[0.5]], [[0.3]]], dtype=np.float32)  # red, nir, green
    out = compute_indices(img, ["NDVI", "NDWI", "SAVI"], ["r", "n", "g"], ["red", "nir", "green"])
    np.testing.assert_allclose(out[0, 0, 0], (0.5 - 0.1) / 0.6, rtol=1e-6)
    np.testing.assert_allclose(out[1, 0, 0], (0.3 - 0.5) / 0.8, rtol=1e-6)
    np.testing.assert_allclose(out[2, 0, 0], 2.0 * 0.4 / (0.5 + 0.1 + 1.0), rtol=1e-5)  # spyndex default L=1
    half = compute_indices(img, ["SAVI"], ["r", "n", "g"], ["red", "nir", "green"], {"L": 0.5})
    np.testing.assert_allclose(half[0, 0, 0], 1.5 * 0.4 / (0.5 + 0.1 + 0.5), rtol=1e-5)
    nan = compute_indices(np.full((3, 1, 1), np.nan, np.float32), ["NDVI"], ["r", "n", "g"], ["red", "nir", "green"])
    assert np.isnan(nan).all()


def test_index_errors() -> None:
    img = np.ones((2, 1, 1), np.float32)
    with pytest.raises(EOError, match=r"index EVI needs band\(s\) B \(blue\)"):
        compute_indices(img, ["EVI"], ["r", "n"], ["red", "nir"])
    with pytest.raises(EOError, match="unknown spectral index 'NDVII'.*NDVI"):
        compute_indices(img, ["NDVII"], ["r", "n"], ["red", "nir"])


def test_indices_equal_spyndex_for_every_index_of_four_bands() -> None:
    """The compiled formulas give exactly what spyndex.computeIndex gives, constants and NaN included."""
    import spyndex

    from eoengine.features.indices import compute_indices

    rng = np.random.default_rng(0)
    image = rng.uniform(0.01, 0.6, (4, 16, 16)).astype(np.float32)
    image[2, 0, 0] = np.nan
    names = ["blue", "green", "red", "nir"]
    symbols = {"B": 0, "G": 1, "R": 2, "N": 3}
    checked = 0
    for name, index in spyndex.indices.items():
        bands = [b for b in index.bands if b not in spyndex.constants]
        consts = [c for c in index.bands if c in spyndex.constants]
        if not bands or not set(bands) <= set(symbols) or any(spyndex.constants[c].default is None for c in consts):
            continue
        params = {b: image[symbols[b]].astype(np.float64) for b in bands}
        params |= {c: spyndex.constants[c].default for c in consts}
        with np.errstate(all="ignore"):
            expected = np.asarray(spyndex.computeIndex(index=name, params=params), dtype=np.float64)
        expected[~np.isfinite(expected)] = np.nan
        ours = compute_indices(image, [name], names, names)[0]
        np.testing.assert_array_equal(ours, expected.astype(np.float32), err_msg=name)
        checked += 1
    assert checked >= 20
