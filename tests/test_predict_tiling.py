"""Tiled prediction is seamless and independent of how the scene is cut into regions."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from conftest import write_raster

from eoengine.inference.predict import PredictOptions, Predictor
from eoengine.inference.tiling import blend_weights, tile_positions
from eoengine.models.package import ModelPackage
from eoengine.models.registry import build_model
from eoengine.raster.scene import BandSource, SceneReader


def _package(tmp: Path) -> ModelPackage:
    torch.manual_seed(0)
    model = build_model("unet", 2, 3, depth=2, base_channels=4).eval()
    meta = {"model": "unet", "model_kwargs": {"depth": 2, "base_channels": 4}, "bands": ["a", "b"],
            "band_specs": [{"name": "a"}, {"name": "b"}], "indices": [], "index_constants": {}, "channels": ["a", "b"],
            "normalization": {"mean": [0.5, 0.5], "std": [0.3, 0.3]}, "patch_size": 32, "size_multiple": 4,
            "classes": [{"index": i, "name": f"c{i}", "color": "#00ff00"} for i in range(3)]}
    return ModelPackage(tmp, meta, model)


def test_weights_and_positions() -> None:
    w = blend_weights(64, 16)
    assert w.min() > 0 and w[32, 32] == 1 and w[0, 0] < 0.01
    assert tile_positions(100, 64, 16) == [0, 36] and tile_positions(50, 64, 16) == [0]


@pytest.mark.parametrize("shape", [(150, 170), (40, 30)])
def test_region_size_does_not_change_the_map_and_tiles_run_once(tmp_path: Path, shape: tuple[int, int]) -> None:
    data = np.random.default_rng(1).random((2, *shape)).astype(np.float32)
    data[:, :10, :] = -1
    path = write_raster(tmp_path / "s.tif", data, nodata=-1)
    pkg = _package(tmp_path)
    calls: list[int] = []
    forward = pkg.model.forward
    pkg.model.forward = lambda x: calls.append(len(x)) or forward(x)  # type: ignore[method-assign]
    outs = []
    for region in (40, 64, 4096):
        calls.clear()
        with SceneReader([BandSource("a", str(path), 1), BandSource("b", str(path), 2)]) as r:
            out = tmp_path / f"m{region}.tif"
            Predictor(pkg, PredictOptions(tile_size=48, overlap=12, batch_size=3, region_size=region)).predict(
                r, out, tmp_path / f"p{region}.tif")
        with rasterio.open(out) as m, rasterio.open(tmp_path / f"p{region}.tif") as p:
            outs.append((m.read(1), p.read()))
        assert sum(calls) == len(tile_positions(shape[0], 48, 12)) * len(tile_positions(shape[1], 48, 12))
    for other in outs[1:]:
        np.testing.assert_array_equal(outs[0][0], other[0])
        np.testing.assert_allclose(outs[0][1], other[1], atol=1e-5)
    assert (outs[0][0][:10] == 255).all() and (outs[0][0][10:] < 3).all()


def test_interrupted_prediction_resumes_to_the_same_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = np.random.default_rng(2).random((2, 200, 150)).astype(np.float32)
    path = write_raster(tmp_path / "s.tif", data)
    pkg = _package(tmp_path)
    opts = PredictOptions(tile_size=48, overlap=12, batch_size=4, region_size=72)

    def run(out: Path) -> None:
        with SceneReader([BandSource("a", str(path), 1), BandSource("b", str(path), 2)]) as r:
            Predictor(pkg, opts).predict(r, out, tmp_path / f"{out.stem}-p.tif")

    run(tmp_path / "straight.tif")
    original = Predictor._compute
    seen: list[tuple[int, int]] = []

    def crash_in_row_2(self, reg, data):  # type: ignore[no-untyped-def]
        seen.append((reg.i, reg.j))
        if reg.i == 2:
            raise KeyboardInterrupt
        return original(self, reg, data)

    monkeypatch.setattr(Predictor, "_compute", crash_in_row_2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "m.tif")
    assert not (tmp_path / "m.tif").exists() and (tmp_path / ".m.tif.partial.json").exists()
    seen.clear()
    monkeypatch.setattr(Predictor, "_compute", lambda self, reg, data: seen.append((reg.i, reg.j)) or original(self, reg, data))
    run(tmp_path / "m.tif")
    assert min(i for i, _ in seen) == 2  # rows 0 and 1 were not predicted again
    with rasterio.open(tmp_path / "m.tif") as a, rasterio.open(tmp_path / "straight.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    with rasterio.open(tmp_path / "m-p.tif") as a, rasterio.open(tmp_path / "straight-p.tif") as b:
        np.testing.assert_allclose(a.read(), b.read(), atol=1e-6)
    assert not list(tmp_path.glob(".m.tif.partial*"))
