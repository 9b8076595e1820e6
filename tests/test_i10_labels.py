"""Labels nobody here has seen: footprints with no class column, background, lines and points with buffers."""

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from conftest import run_cli, save_config, tiny_config, write_raster
from rasterio.windows import Window
from shapely.geometry import LineString, Point, box

from eoengine.config.load import load_config
from eoengine.config.schema import BufferConfig
from eoengine.datasets.build import build_dataset
from eoengine.errors import EOError
from eoengine.labels import IGNORE
from eoengine.labels.vector import VectorLabeler, labels_for_grid, read_vector_labels
from eoengine.raster.scene import Grid

X0, Y0 = 462405.0, 1741815.0  # the scene's top-left corner (EPSG:32615), 10 m pixels, 64 x 64
CLASSES = [{"value": 0, "name": "background"}, {"value": 1, "name": "building"}]


def _footprints(tmp: Path) -> Path:
    """A buildings file as footprint datasets ship it: geometries only, no class column."""
    squares = [box(X0 + 40 + 120 * i, Y0 - 40 - 120 * j - 60, X0 + 100 + 120 * i, Y0 - 40 - 120 * j) for i in range(5) for j in range(5)]
    path = tmp / "buildings.geojson"
    gpd.GeoDataFrame(geometry=squares, crs="EPSG:32615").to_file(path)
    return path


def _config(tmp: Path, labels: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    stack = write_raster(tmp / "scene.tif", rng.random((2, 64, 64)).astype(np.float32), res=10.0, origin=(X0, Y0))
    cfg = tiny_config(tmp, labels=labels, classes=CLASSES, **{"features.indices": []})
    cfg["imagery"] = {"bands": [{"name": "a"}, {"name": "b"}], "scenes": [{"id": "s", "stack": str(stack)}]}
    return cfg


def test_footprints_without_class_column_get_a_background(tmp_path: Path) -> None:
    labels = {"type": "vector", "path": str(_footprints(tmp_path)), "class_value": "building", "background": "background"}
    built = build_dataset(load_config(save_config(tmp_path, _config(tmp_path, labels))))
    freq = built.manifest["class_frequencies"]
    background, building = (sum(freq[s][i] for s in freq) for i in (0, 1))
    assert building == 25 * 36  # 25 squares of 6 x 6 pixels
    assert background == 64 * 64 - building  # every other pixel of the scene, not unlabelled


def test_a_class_with_no_pixels_warns_at_build(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labels = {"type": "vector", "path": str(_footprints(tmp_path)), "class_value": 1}
    built = build_dataset(load_config(save_config(tmp_path, _config(tmp_path, labels))))
    assert sum(built.manifest["class_frequencies"]["train"]) > 0
    assert "class 'background' has no labelled pixels in the dataset" in caplog.text
    assert "labels.background" in caplog.text


def test_background_only_inside_the_labelled_area(tmp_path: Path) -> None:
    area = tmp_path / "area.gpkg"
    gpd.GeoDataFrame(geometry=[box(X0, Y0 - 640, X0 + 320, Y0)], crs="EPSG:32615").to_file(area)  # left half
    labels = {"type": "vector", "path": str(_footprints(tmp_path)), "class_value": "building",
              "background": 0, "labelled_area": str(area)}
    cfg = load_config(save_config(tmp_path, _config(tmp_path, labels)))
    grid = Grid("EPSG:32615", (10.0, 0.0, X0, 0.0, -10.0, Y0), 64, 64)
    feats = labels_for_grid(read_vector_labels(Path(labels["path"]), None, cfg.classes, class_value="building"), grid, "b")
    area_on_grid = labels_for_grid(gpd.read_file(area), grid, "area")
    lab = VectorLabeler(feats, grid, background=0, area=area_on_grid).read(Window(0, 0, 64, 64))
    assert lab[1, 1] == 0 and lab[1, 60] == IGNORE  # background left of x=32 only
    assert lab[6, 6] == 1 and lab[6, 54] == 1  # buildings on both sides


def test_label_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_footprints(tmp_path))
    bad = [
        ({"type": "vector", "path": path}, "one of 'class_column'"),
        ({"type": "vector", "path": path, "class_value": "roof"}, "labels.class_value 'roof' is not a configured class"),
        ({"type": "vector", "path": path, "class_value": 1, "background": "sky"}, "labels.background 'sky'"),
        ({"type": "vector", "path": path, "class_value": 1, "labelled_area": path}, "'labelled_area' needs 'background'"),
        ({"type": "vector", "path": path, "class_value": 1, "buffer": {"distance": 0}}, "greater than 0"),
    ]
    for i, (labels, message) in enumerate(bad):
        code, _, err = run_cli(["validate", str(save_config(tmp_path, _config(tmp_path, labels), f"c{i}.yaml"))], capsys)
        assert code == 2 and message in err, err
    labels = {"type": "vector", "path": path, "class_value": 1, "background": 0, "labelled_area": str(tmp_path / "no.gpkg")}
    code, _, err = run_cli(["validate", str(save_config(tmp_path, _config(tmp_path, labels), "c.yaml"))], capsys)
    assert code == 2 and "labels.labelled_area: labelled area file not found" in err
    with pytest.raises(EOError, match="holds no polygons"):
        from eoengine.labels.vector import read_labelled_area

        pts = tmp_path / "pts.gpkg"
        gpd.GeoDataFrame(geometry=[Point(X0, Y0)], crs="EPSG:32615").to_file(pts)
        read_labelled_area(pts)


def _width(lab: np.ndarray) -> int:
    return int((lab[lab.shape[0] // 2] == 0).sum())


def test_buffers_in_pixels_and_metres_in_a_projected_crs() -> None:
    grid = Grid("EPSG:32615", (2.0, 0.0, X0, 0.0, -2.0, Y0), 100, 100)
    road = gpd.GeoDataFrame({"class_index": [0]}, geometry=[LineString([(X0 + 100, Y0), (X0 + 100, Y0 - 200)])],
                            crs="EPSG:32615")
    window = Window(0, 0, 100, 100)
    for buffer, width in ((BufferConfig(distance=5, units="metres"), 5), (BufferConfig(distance=3, units="pixels"), 6)):
        lab = VectorLabeler(labels_for_grid(road, grid, "roads", buffer), grid).read(window)
        assert _width(lab) == width, buffer
    unbuffered = VectorLabeler(labels_for_grid(road, grid, "roads"), grid).read(window)
    assert _width(unbuffered) <= 1


def test_metre_buffer_in_a_geographic_scene_is_metres_not_degrees() -> None:
    res = 0.0001  # degrees: ~11.1 m at the equator
    grid = Grid("EPSG:4326", (res, 0.0, 10.0, 0.0, -res, 0.005), 100, 100)
    survey = gpd.GeoDataFrame({"class_index": [0]}, geometry=[Point(10.005, 0.0)], crs="EPSG:4326")
    lab = VectorLabeler(labels_for_grid(survey, grid, "points", BufferConfig(distance=50)), grid).read(Window(0, 0, 100, 100))
    assert _width(lab) in (8, 9, 10)  # 100 m across / 11.1 m per pixel, not 50 degrees (the whole scene)
    assert (lab == 0).sum() < 100


def test_point_labels_with_a_buffer_build(tmp_path: Path) -> None:
    points = tmp_path / "survey.gpkg"
    spots = [Point(X0 + 55 + 80 * i, Y0 - 55 - 80 * j) for i in range(7) for j in range(7)]
    gpd.GeoDataFrame({"kind": ["building"] * len(spots)}, geometry=spots, crs="EPSG:32615").to_file(points)
    labels = {"type": "vector", "path": str(points), "class_column": "kind", "background": "background",
              "buffer": {"distance": 15, "units": "metres"}}
    built = build_dataset(load_config(save_config(tmp_path, _config(tmp_path, labels))))
    freq = built.manifest["class_frequencies"]
    building = sum(freq[s][1] for s in freq)
    assert building == 49 * 9  # each point at a pixel centre: the 3 x 3 pixels within 15 m, not one pixel


def test_metre_buffer_in_a_feet_crs_is_converted() -> None:
    x0, y0 = 2000000.0, 800000.0  # NC State Plane, US survey feet
    grid = Grid("EPSG:2264", (1.0, 0.0, x0, 0.0, -1.0, y0), 100, 100)
    road = gpd.GeoDataFrame({"class_index": [0]}, geometry=[LineString([(x0 + 50, y0), (x0 + 50, y0 - 100)])],
                            crs="EPSG:2264")
    lab = VectorLabeler(labels_for_grid(road, grid, "roads", BufferConfig(distance=3)), grid).read(Window(0, 0, 100, 100))
    assert _width(lab) in (19, 20)  # 2 x 3 m = 19.7 ft, not 6 ft
