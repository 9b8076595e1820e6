"""Issue 11: one preprocessing path and one output path for every route.

The same pixels — a GeoTIFF with a nodata value in one band, NaN in another, and pixels that
hold the file's nodata tag where the model's bands declare their own nodata — go through
``Predictor`` on the file, the upload route, the instances route and the tiles route (at the
scene's native zoom, on a Web Mercator grid aligned with the tile's pixels). A per-pixel model
(no spatial context) makes every route's classes depend on each pixel alone, so the class
maps and nodata pixels must be identical. Probabilities agree to float tolerance: tiled
prediction blends overlapping tiles (a weighted sum divided by the summed weights) and runs
the model on batches of other shapes than one whole-image pass, so the last bits may differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from fastapi.testclient import TestClient
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from eoengine.inference.predict import Predictor
from eoengine.inference.sources import sources_for_package
from eoengine.models.package import load_package, save_package
from eoengine.models.registry import build_model
from eoengine.raster.scene import SceneReader
from eoengine.serving.app import Settings, create_app

BANDS = ["blue", "green", "red", "nir"]
OWN_NODATA, FILE_NODATA = -9999.0, 0.0
ZOOM, OFFSET, SHAPE = 16, (40, 50), (100, 90)  # the scene's (row, col) in its tile, and its (height, width)
COLOURS = ["#1b7837", "#1f78b4", "#e31a1c"]
HEADERS = {"X-API-Key": "k"}


def _package(dest: Path) -> Path:
    """A per-pixel network on four bands and NDVI whose bands declare their own nodata."""
    torch.manual_seed(3)
    model = build_model("pixel_dnn", 5, 3, hidden=[8], batch_norm=False)
    meta: dict[str, Any] = {
        "model": "pixel_dnn", "model_kwargs": {"hidden": [8], "batch_norm": False}, "bands": BANDS,
        "band_specs": [{"name": b, "common_name": b, "scale": 0.0001, "nodata": OWN_NODATA} for b in BANDS],
        "indices": ["NDVI"], "index_constants": {}, "channels": [*BANDS, "NDVI"],
        "normalization": {"mean": [0.05, 0.07, 0.06, 0.3, 0.5], "std": [0.02, 0.02, 0.03, 0.1, 0.3]},
        "patch_size": 32, "resampling": "bilinear",
        "classes": [{"index": i, "value": i, "name": f"c{i}", "color": c} for i, c in enumerate(COLOURS)],
        "prediction": {"tile_size": 32, "overlap": 8, "batch_size": 4, "region_size": 64},
    }
    return save_package(model, meta, dest, onnx=False)


def _scene(path: Path) -> tuple[Path, Any]:
    """A float32 stack in EPSG:3857 whose pixels are those of tile ZOOM at OFFSET; returns it and the tile."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    tile = tms.tile(-93.32, 15.72, ZOOM)
    b = tms.xy_bounds(tile)
    res = (b.right - b.left) / 256
    rng = np.random.default_rng(5)
    data = np.stack([rng.uniform(200, 900, SHAPE), rng.uniform(300, 1100, SHAPE), rng.uniform(200, 1200, SHAPE),
                     rng.uniform(1000, 5000, SHAPE)]).astype(np.float32)
    data[2, 10:20, 10:30] = OWN_NODATA  # the band's own nodata in one band: nodata
    data[0, 60:70, 5:15] = np.nan  # NaN in one band: nodata
    data[:, 80:90, 40:60] = FILE_NODATA  # the file's nodata tag, which the bands' own nodata replaces: data
    transform = from_origin(b.left + OFFSET[1] * res, b.top - OFFSET[0] * res, res, res)
    with rasterio.open(path, "w", driver="GTiff", width=SHAPE[1], height=SHAPE[0], count=4, dtype="float32",
                       crs="EPSG:3857", transform=transform, nodata=FILE_NODATA) as dst:
        dst.write(data)
    return path, tile


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every route's class positions (255: nodata) and top probability over the scene's pixels."""
    from rio_tiler.io import Reader

    tmp = tmp_path_factory.mktemp("one_path")
    model = _package(tmp / "model")
    scene, tile = _scene(tmp / "scene.tif")
    with Reader(str(scene)) as r:
        assert r.maxzoom == ZOOM  # the tile route reads the scene's own pixels
    pkg = load_package(model)
    with SceneReader(sources_for_package(pkg.meta, [str(scene)])) as reader:
        Predictor(pkg, engine="torch").predict(reader, tmp / "map.tif", tmp / "probs.tif")
    with rasterio.open(tmp / "map.tif") as m, rasterio.open(tmp / "probs.tif") as p:
        out: dict[str, Any] = {"file": m.read(1), "file_prob": p.read().max(axis=0)}
    client = TestClient(create_app(pkg, Settings(api_key="k", model_name="m", engine="torch", tiles_scene=[str(scene)])))
    upload = client.post("/predict", files={"file": ("s.tif", scene.read_bytes(), "image/tiff")}, headers=HEADERS)
    assert upload.status_code == 200, upload.text
    with MemoryFile(upload.content) as mem, mem.open() as ds:
        out["upload"] = ds.read(1)
    with rasterio.open(scene) as ds:
        raw = ds.read()
    body = json.dumps({"instances": [{"image": raw.tolist()}]})  # NaN as JSON's NaN, as Python clients send it
    answer = client.post("/v1/models/m:predict", content=body, headers=HEADERS | {"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    pred = answer.json()["predictions"][0]
    out["instances"], out["instances_prob"] = np.array(pred["class"]), np.array(pred["probability"])
    png = client.get(f"/tiles/{tile.z}/{tile.x}/{tile.y}.png", headers=HEADERS)
    assert png.status_code == 200, png.text
    with MemoryFile(png.content) as mem, mem.open() as ds:
        whole = ds.read()
    inside = (slice(OFFSET[0], OFFSET[0] + SHAPE[0]), slice(OFFSET[1], OFFSET[1] + SHAPE[1]))
    rgba = whole[:, inside[0], inside[1]].copy()
    whole[3][inside] = 0
    out["outside_alpha"] = whole[3]
    rgb = [tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in COLOURS]
    classes = np.full(SHAPE, 255, dtype=np.int64)
    for i, colour in enumerate(rgb):
        classes[(rgba[:3] == np.array(colour)[:, None, None]).all(axis=0) & (rgba[3] == 255)] = i
    out["tiles"], out["tiles_alpha"] = classes, rgba[3]
    out["raw"] = raw
    return out


def test_every_route_masks_the_same_nodata(routes: dict[str, Any]) -> None:
    raw = routes["raw"]
    expected = (raw == OWN_NODATA).any(axis=0) | np.isnan(raw).any(axis=0)
    assert expected.sum() == 200 + 100 and not expected[80:90, 40:60].any()  # the file's tag is data here
    for route in ("file", "upload", "instances", "tiles"):
        np.testing.assert_array_equal(routes[route] == 255, expected, err_msg=route)
    np.testing.assert_array_equal(routes["tiles_alpha"] == 0, expected)  # transparent exactly where there is no data
    assert (routes["outside_alpha"] == 0).all()  # and around the scene


def test_every_route_gives_the_same_classes_and_probabilities(routes: dict[str, Any]) -> None:
    file = routes["file"]
    assert len(np.unique(file[file != 255])) == 3  # every class occurs: equal maps say something
    for route in ("upload", "instances", "tiles"):
        np.testing.assert_array_equal(routes[route], file, err_msg=route)
    valid = file != 255
    assert np.isnan(routes["file_prob"][~valid]).all()
    np.testing.assert_allclose(routes["instances_prob"][valid], routes["file_prob"][valid], atol=1e-5)


def test_a_tile_is_transparent_outside_the_scene(tmp_path: Path) -> None:
    """An int16 stack (the sample's bands): the tile is opaque over the scene's footprint only (it was opaque everywhere)."""
    import morecantile
    from conftest import four_band_stack, saved_package
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, reproject, transform_bounds

    stack = four_band_stack(tmp_path / "four.tif")
    client = TestClient(create_app(load_package(saved_package(tmp_path / "m")),
                                   Settings(api_key="k", model_name="m", engine="torch", tiles_scene=[str(stack)])))
    tms = morecantile.tms.get("WebMercatorQuad")
    with rasterio.open(stack) as ds:
        assert ds.dtypes[0] == "int16"
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        tile = tms.tile((w + e) / 2, (s + n) / 2, 12)
        b = tms.xy_bounds(tile)
        footprint = np.zeros((256, 256), dtype=np.uint8)
        reproject(np.ones((ds.height, ds.width), dtype=np.uint8), footprint, src_transform=ds.transform, src_crs=ds.crs,
                  dst_transform=from_bounds(b.left, b.bottom, b.right, b.top, 256, 256), dst_crs="EPSG:3857",
                  resampling=Resampling.nearest, dst_nodata=0)
    png = client.get(f"/tiles/{tile.z}/{tile.x}/{tile.y}.png", headers=HEADERS)
    assert png.status_code == 200, png.text
    with MemoryFile(png.content) as mem, mem.open() as img:
        opaque = img.read(4) == 255
    assert 0.2 < footprint.mean() < 0.8  # the tile shows the scene's edge
    assert (opaque != (footprint == 1)).mean() < 0.01  # up to a pixel's rounding along the edge


def test_model_input_takes_the_bands_own_nodata_over_the_files_and_batches() -> None:
    from eoengine.inference.preprocess import input_spec, model_input

    meta = {"bands": BANDS, "band_specs": [{"name": "blue", "nodata": -1.0, "scale": 0.5}] + [{"name": b} for b in BANDS[1:]],
            "indices": [], "index_constants": {}, "normalization": {"mean": [0.0] * 4, "std": [1.0] * 4}}
    raw = np.full((2, 4, 3, 3), 5.0, dtype=np.float32)
    raw[0, 0, 0, 0] = 7  # the file's nodata in blue, which has its own: data
    raw[0, 0, 0, 1] = -1  # blue's own nodata
    raw[0, 1, 0, 2] = 7  # the file's nodata in green, which has none of its own
    raw[1, 2, 2, 2] = np.nan
    before = raw.copy()
    image, nodata = model_input(raw, input_spec(meta), [7.0] * 4)
    expected = np.zeros((2, 3, 3), dtype=bool)
    expected[0, 0, 1] = expected[0, 0, 2] = expected[1, 2, 2] = True
    np.testing.assert_array_equal(nodata, expected)
    assert image[0, 0, 0, 0] == 3.5 and image[0, 0, 0, 1] == 0 and image[0, 1, 0, 2] == 0  # scaled; nodata is 0
    np.testing.assert_array_equal(raw, before)  # the caller's array is left as it was
    one, one_nodata = model_input(raw[1], input_spec(meta), [7.0] * 4)
    np.testing.assert_array_equal(one, image[1])
    np.testing.assert_array_equal(one_nodata, nodata[1])


def test_finish_gives_classes_values_and_chip_answers_per_head() -> None:
    from eoengine.inference.postprocess import finish
    from eoengine.models.heads import Head

    logits = torch.tensor(np.random.default_rng(0).normal(size=(7, 2, 3)).astype(np.float32))
    nodata = np.array([[True, False, False], [False, False, False]])
    seg = Head("seg", "segmentation", 0, 3, 1.0, "", 3)
    classes, probs = finish(logits, seg, nodata)
    assert classes[0, 0] == 255 and (classes[~nodata] == logits[:3].argmax(0).numpy()[~nodata]).all()
    np.testing.assert_allclose(probs.sum(axis=0), 1, rtol=1e-6)
    values, _ = finish(logits, Head("v", "regression", 3, 4, 1.0, "", 3, value_mean=10.0, value_std=2.0), nodata)
    assert np.isnan(values[0, 0]) and np.allclose(values[~nodata], (logits[3] * 2 + 10).numpy()[~nodata])
    present, p = finish(logits, Head("m", "multilabel", 4, 7, 1.0, "", 3))
    np.testing.assert_allclose(p, torch.sigmoid(logits[4:7].mean(dim=(1, 2))).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(present, p > 0.5)
    label, _ = finish(logits, Head("c", "classification", 0, 3, 1.0, "", 3))
    assert int(label) == int(logits[:3].mean(dim=(1, 2)).argmax())
