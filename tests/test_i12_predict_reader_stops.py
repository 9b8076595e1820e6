"""A failed prediction stops its reader thread before the scene's files close.

CI crashed (SIGSEGV) in a mosaic on a full disk: the writer's error ended the prediction while the
reader thread was still inside a GDAL read, and the scene's datasets were closed under it.
"""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import four_band_stack, saved_package
from rasterio.windows import Window

from eoengine.inference.predict import Predictor
from eoengine.inference.sources import sources_for_package
from eoengine.models.package import load_package
from eoengine.raster.scene import SceneReader


class SlowReader(SceneReader):
    """A scene reader whose reads take a while and which records a close during a read."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reading = 0
        self.closed_while_reading = False
        self.lock = threading.Lock()

    def read_raw(self, window: Window) -> np.ndarray:
        with self.lock:
            self.reading += 1
        try:
            time.sleep(0.3)
            return super().read_raw(window)
        finally:
            with self.lock:
                self.reading -= 1

    def close(self) -> None:
        with self.lock:
            self.closed_while_reading |= self.reading > 0
        super().close()


def test_a_failed_prediction_waits_for_its_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = load_package(saved_package(tmp_path / "m"))
    predictor = Predictor(pkg, engine="torch")

    def fail(*_: object) -> np.ndarray:
        time.sleep(0.05)  # the reader is inside its next read
        raise RuntimeError("the model failed")

    monkeypatch.setattr(predictor, "_compute", fail)
    scene = str(four_band_stack(tmp_path / "scene.tif"))
    reader = SlowReader(sources_for_package(pkg.meta, [scene]), pkg.meta.resampling)
    with pytest.raises(RuntimeError, match="model failed"), reader:
        predictor.predict(reader, tmp_path / "map.tif")
    assert not reader.closed_while_reading
    assert not [t for t in threading.enumerate() if t.name != "MainThread" and "read_all" in str(t)]
    assert not (tmp_path / "map.tif").exists()
