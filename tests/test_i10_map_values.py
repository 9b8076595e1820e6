"""Issue 10: class maps hold the configured class values, wherever the map is finished.

A class with value 255 is written as 255 (not as its position), nodata is a value no class
has, the colour table is keyed by value and the tags say what the pixels hold. Files, the
strips Beam joins, mosaics and the model server's GeoTIFF answer agree.
"""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import OGT, four_band_stack, run_cli, saved_package

from eoengine.datasets.schema import ClassInfo, DatasetManifest, SceneInfo, SourceInfo
from eoengine.errors import EOError
from eoengine.inference.output import ClassCoding
from eoengine.inference.predict import Predictor, prediction_options
from eoengine.inference.sources import sources_for_package
from eoengine.models.package import load_package
from eoengine.raster.scene import SceneReader


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """The four bands with a nodata corner."""
    path = four_band_stack(tmp_path / "scene.tif")
    with rasterio.open(path, "r+") as ds:
        data = ds.read()
        data[:, :20, :20] = -9999
        ds.write(data)
    return path


def _read(path: Path) -> tuple[np.ndarray, dict, int]:
    with rasterio.open(path) as ds:
        return ds.read(1), ds.tags(), ds.nodata


def test_maps_hold_class_values_with_a_free_nodata_and_colours_by_value(tmp_path: Path, scene: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    model = saved_package(tmp_path / "m", classes=[1, 2, 255])
    code, _, err = run_cli(["predict", str(model), str(scene), "--out", str(tmp_path / "v.tif")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["predict", str(model), str(scene), "--out", str(tmp_path / "p.tif"), "--class-codes", "positions"], capsys)
    assert code == 0, err
    values, tags, nodata = _read(tmp_path / "v.tif")
    positions, ptags, pnodata = _read(tmp_path / "p.tif")
    assert nodata == 0 and pnodata == 255 and (values[:20, :20] == 0).all()
    assert set(np.unique(values[20:, 20:])) <= {1, 2, 255} and set(np.unique(positions[20:, 20:])) <= {0, 1, 2}
    assert len(np.unique(positions[20:, 20:])) > 1  # several classes predicted: the comparison below means something
    np.testing.assert_array_equal(values[20:, 20:], np.array([1, 2, 255], dtype=np.uint8)[positions[20:, 20:]])
    assert tags["EOENGINE_CLASS_CODES"] == "values" and tags["EOENGINE_CLASS_VALUES"] == '{"1": "c0", "2": "c1", "255": "c2"}'
    assert ptags["EOENGINE_CLASS_CODES"] == "positions"
    with rasterio.open(tmp_path / "v.tif") as ds:
        cmap = ds.colormap(1)
    assert cmap[255] == (80, 128, 175, 255) and cmap[1] == (0, 128, 255, 255) and cmap[0][3] == 0


def _classes(*values: int | str) -> list[ClassInfo]:
    return [ClassInfo(index=i, value=v, name=f"c{i}") for i, v in enumerate(values)]


def test_values_beyond_a_byte_and_text_values(tmp_path: Path, scene: Path) -> None:
    wide = ClassCoding.of(_classes(10, 1000, -3))
    assert (wide.dtype, wide.nodata) == ("int16", 32767)
    assert ClassCoding.of(_classes(0, 255)).nodata == 1  # both ends taken: the lowest free value
    named = ClassCoding.of(_classes("forest", "water"))
    assert (named.kind, named.codes, named.nodata) == ("positions", (0, 1), 255)
    pkg = load_package(saved_package(tmp_path / "m", classes=[10, 20, 1000]))
    with SceneReader(sources_for_package(pkg.meta, [str(scene)])) as reader:
        out = Predictor(pkg, engine="torch").predict(reader, tmp_path / "wide.tif")
    codes, _, nodata = _read(out)
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "uint16" and ds.colormap(1)[1000][3] == 255
    assert nodata == 65535 and set(np.unique(codes)) <= {10, 20, 1000, 65535}


def test_strips_mosaics_and_evaluation_use_the_same_values(tmp_path: Path, scene: Path) -> None:
    from eoengine.grading.evaluate import quicklook
    from eoengine.inference.many import predict_many
    from eoengine.inference.strips import join_strips, predict_strip, region_rows

    pkg = load_package(saved_package(tmp_path / "m", classes=[1, 2, 255], prediction={"tile_size": 64, "overlap": 16,
                                                                                      "region_size": 64}))
    predictor = Predictor(pkg, engine="torch")
    with SceneReader(sources_for_package(pkg.meta, [str(scene)])) as reader:
        whole = predictor.predict(reader, tmp_path / "whole.tif")
        rows = region_rows(predictor, reader)
        assert rows >= 2  # a strip boundary to cross
        strips = [(a, min(a + 1, rows) - 1, tmp_path / f"strip-{a}.tif") for a in range(rows)]
        for a, b, path in strips:
            predict_strip(predictor, reader, a, b, path)
        joined = join_strips(predictor, reader, strips, tmp_path / "joined.tif", [str(scene)])
    [mosaic] = predict_many(predictor, [[str(scene)]], tmp_path / "mosaic.tif", None)
    expected, tags, nodata = _read(whole)
    for other in (joined, mosaic):
        got, other_tags, other_nodata = _read(other)
        np.testing.assert_array_equal(got, expected)
        assert other_nodata == nodata == 0 and other_tags["EOENGINE_CLASS_VALUES"] == tags["EOENGINE_CLASS_VALUES"]
        with rasterio.open(other) as ds:
            assert ds.colormap(1)[255] == (80, 128, 175, 255)
    manifest = DatasetManifest.model_construct(scenes=[SceneInfo.model_construct(  # the parts quicklook reads
        id="s", sources=[SourceInfo(name=b, path=str(scene), index=i + 1) for i, b in enumerate(pkg.bands)])])
    assert quicklook(pkg, manifest, tmp_path / "look").exists()


def test_the_server_answers_with_the_same_values(tmp_path: Path, scene: Path) -> None:
    from fastapi.testclient import TestClient

    from eoengine.serving.app import Settings, create_app

    pkg = load_package(saved_package(tmp_path / "m", classes=[1, 2, 255]))
    with SceneReader(sources_for_package(pkg.meta, [str(scene)])) as reader:
        local = Predictor(pkg, engine="torch").predict(reader, tmp_path / "local.tif")
    client = TestClient(create_app(pkg, Settings(api_key="k", engine="torch")))
    r = client.post("/predict", files={"file": ("s.tif", scene.read_bytes(), "image/tiff")}, headers={"X-API-Key": "k"})
    assert r.status_code == 200, r.text
    (tmp_path / "served.tif").write_bytes(r.content)
    np.testing.assert_array_equal(_read(tmp_path / "served.tif")[0], _read(local)[0])
    assert _read(tmp_path / "served.tif")[2] == 0


def test_the_map_compares_with_the_label_raster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The tiny config's classes are 1..5, as in the sample's label raster: the map uses the same numbers."""
    model = saved_package(tmp_path / "m", classes=[1, 2, 3, 4, 5], stack_indexes=[1, 2, 3, 4])
    code, _, err = run_cli(["predict", str(model), str(OGT / "LE70220491999322EDC01_stack.gtif"),
                            "--out", str(tmp_path / "map.tif")], capsys)
    assert code == 0, err
    with rasterio.open(tmp_path / "map.tif") as m, rasterio.open(OGT / "training_data.gtif") as labels:
        predicted, truth = m.read(1), labels.read(1)
        assert m.nodata not in range(1, 6)
    assert set(np.unique(predicted)) <= {1, 2, 3, 4, 5} and set(np.unique(truth[truth != 0])) <= {1, 2, 3, 4, 5}


def test_class_codes_option_is_validated_and_configurable() -> None:
    assert prediction_options({}, class_codes="positions").class_codes == "positions"
    assert prediction_options({"class_codes": "positions"}).class_codes == "positions"
    with pytest.raises(EOError, match="--class-codes 'labels'"):
        prediction_options({}, class_codes="labels")
