"""A failed Beam prediction leaves no strip, even one a still-running worker writes after the failure.

When one worker's element fails, Beam raises in the driver while the other workers still process theirs;
the driver then tidies and stops the workers (a worker process is killed mid-write). A strip written
afterwards, or a temporary file whose writer was killed, must not survive in the output folder. The
order is forced here: the pipeline's workers are threads (``--direct_running_mode=multi_threading``), the
good scene's strip waits until the bad scene's strip has failed and the driver has tidied up, then writes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import saved_package, truncated_stack, write_raster

import eoengine.inference.beam as beam_predict
from eoengine.config.schema import PredictionConfig
from eoengine.errors import EOError


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("where", ["out-dir", "out"])
def test_a_strip_written_after_a_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        where: str) -> None:
    import numpy as np

    good = write_raster(tmp_path / "good.tif", np.random.default_rng(0).integers(200, 4000, (4, 96, 96)).astype("int16"))
    bad = truncated_stack(tmp_path)
    failed, late_done = threading.Event(), threading.Event()
    real = beam_predict.predict_strip
    late: dict[str, Any] = {}

    def ordered(predictor: Any, reader: Any, first: int, last: int, out: Path, *scratch: Path) -> Path:
        if "truncated" in out.name:
            try:
                return real(predictor, reader, first, last, out, *scratch)
            finally:
                failed.set()
        assert failed.wait(60), "the bad strip never ran"
        threading.Event().wait(1.0)  # the driver has raised and tidied by now
        try:
            late["strip"] = real(predictor, reader, first, last, out, *scratch)
        except EOError as exc:
            late["error"] = exc
        finally:
            late_done.set()
        return out

    monkeypatch.setattr(beam_predict, "predict_strip", ordered)
    maps = tmp_path / "maps"
    out_dir, out = (maps, None) if where == "out-dir" else (None, maps / "all.tif")
    maps.mkdir()
    with pytest.raises(EOError, match="corrupt or truncated"):
        beam_predict.predict_beam(saved_package(tmp_path / "m"), [[str(good)], [str(bad)]],
                                  PredictionConfig(tile_size=64, overlap=16, region_size=96), "torch", out, out_dir,
                                  extra=["--direct_running_mode=multi_threading"])
    assert late_done.wait(60), "the good strip never ran"
    assert _left(maps) == [], late
