"""Inference engines: PyTorch fp32 vs ONNX Runtime fp32 and int8 on the same scene, and the metric change.

Trains a small U-Net (depth 3, width 16) on the bundled Landsat sample (a few epochs), then
``eoengine quantize`` writes the int8 models (static, calibrated on train chips; dynamic) and
scores every variant on the test split. Each engine then predicts the same synthetic 4-band
scene end to end (``Predictor``, 256 px tiles, batch 8) and reports megapixels/s.

    .venv/bin/python benchmarks/bench_engines.py [--size 4000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("EOENGINE_PROGRESS", "0")

from conftest import save_config, tiny_config

from eoengine.config.load import load_config
from eoengine.datasets.build import build_dataset
from eoengine.deploy.compress import quantize
from eoengine.inference.predict import PredictOptions, Predictor
from eoengine.models.package import load_package
from eoengine.raster.scene import BandSource, SceneReader


def make_scene(path: Path, size: int) -> None:
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 4, "dtype": "int16", "crs": "EPSG:32615",
               "transform": from_origin(462405, 1741815, 30, 30), "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate"}
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            dst.write(rng.integers(200, 3000, (4, h, size), dtype=np.int16), window=Window(0, r0, size, h))


def main() -> None:
    from eoengine.training.train import train

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cfg = load_config(save_config(t, tiny_config(t, **{
            "model": {"name": "unet", "kwargs": {"depth": 3, "base_channels": 16}}, "training.epochs": 8,
            "dataset.patch_size": 32, "dataset.stride": 16})))
        build_dataset(cfg)
        pkg = load_package(train(cfg).model_path)
        report = quantize(pkg, calibration_chips=64)
        scene = t / "scene.tif"
        make_scene(scene, args.size)
        sources = [BandSource(n, str(scene), i + 1, 0.0001) for i, n in enumerate(["blue", "green", "red", "nir"])]
        mp = args.size**2 / 1e6
        print(f"U-Net depth 3 / width 16 on 4 bands + NDVI; test split of the Landsat sample; scene {args.size}², {os.cpu_count()} cores")
        print(f"{'engine':<22}{'MP/s':>8}{'vs torch':>10}{'model MB':>10}{'test mIoU':>11}{'Δ mIoU':>9}")
        base_rate, base_miou = None, report["pytorch_fp32"]["scores"]["miou"]
        for engine, key in (("torch", "pytorch_fp32"), ("onnx", "onnx_fp32"), ("onnx-int8", "onnx_int8_static")):
            opts = PredictOptions(tile_size=256, overlap=32, batch_size=8, region_size=1024)
            with SceneReader(sources) as reader:
                predictor = Predictor(pkg, opts, engine)
                start = time.perf_counter()
                predictor.predict(reader, t / f"map_{engine}.tif")
                rate = mp / (time.perf_counter() - start)
            base_rate = base_rate or rate
            r = report[key]
            print(f"{engine:<22}{rate:>8.2f}{rate / base_rate:>10.2f}{r['size_mb']:>10.2f}{r['scores']['miou']:>11.4f}"
                  f"{r['scores']['miou'] - base_miou:>+9.4f}")
        dyn = report["onnx_int8_dynamic"]
        if "scores" in dyn:
            print(f"(dynamic int8: {dyn['ms_per_batch']:.1f} ms per batch of {dyn['batch']} chips vs "
                  f"{report['onnx_fp32']['ms_per_batch']:.1f} ms fp32, test mIoU {dyn['scores']['miou']:.4f})")


if __name__ == "__main__":
    main()
