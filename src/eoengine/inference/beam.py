"""Prediction over many scenes as an Apache Beam pipeline: one element per scene.

Each worker loads the model package once (``setup``) and predicts the scenes it is given
into one COG each; the driver then builds the mosaic if asked. The same pipeline runs on the
DirectRunner here (two worker processes, each with its share of the cores) and on a cluster
runner, where the model package, the scenes and the output folder must be on storage every
worker reaches. Scenes already predicted (same model run and inputs) are skipped, so a
rerun continues an interrupted job.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam

from eoengine.config.schema import PredictionConfig
from eoengine.datasets.pipeline import beam_options
from eoengine.errors import EOError
from eoengine.inference.many import mosaic, predict_scenes, scene_name


class _PredictScene(beam.DoFn):  # type: ignore[misc]
    def __init__(self, model: str, options: str, engine: str, out_dir: str, threads: int) -> None:
        self.model, self.options, self.engine, self.out_dir, self.threads = model, options, engine, out_dir, threads

    def setup(self) -> None:
        import torch

        from eoengine.deploy.package import load_package
        from eoengine.inference.predict import Predictor

        os.environ["OMP_NUM_THREADS"] = str(self.threads)
        torch.set_num_threads(self.threads)
        self.predictor = Predictor(load_package(Path(self.model)), PredictionConfig.model_validate_json(self.options), self.engine)
        torch.set_num_threads(self.threads)  # the predictor asks for every core; share them between workers

    def process(self, files: list[str]) -> Iterator[str]:
        yield str(predict_scenes(self.predictor, [files], Path(self.out_dir))[0])


def predict_beam(
    model: Path, scenes: list[list[str]], options: PredictionConfig, engine: str, out: Path | None,
    out_dir: Path | None, runner: str = "DirectRunner", workers: int = 2, extra: list[str] | None = None,
) -> list[Path]:
    """Predict ``scenes`` with Beam into ``out_dir`` (one COG each) and/or a mosaic at ``out``."""
    from eoengine.deploy.package import load_package
    from eoengine.training.heads import heads_from_meta, map_head

    if out is None and out_dir is None:
        raise EOError("many scenes need --out (one mosaic) or --out-dir (one map per scene)", "add one of them")
    values = map_head(heads_from_meta(load_package(model).meta)).type == "regression"
    work = (out_dir or out.with_name(f".{out.name}.scenes")).resolve()  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // workers)
    opts = beam_options(runner, workers, "multi_processing", extra or [])
    with beam.Pipeline(options=opts) as p:
        _ = (p | beam.Create([[str(Path(f).resolve()) for f in s] for s in scenes]) | beam.Reshuffle()
             | beam.ParDo(_PredictScene(str(Path(model).resolve()), options.model_dump_json(), engine, str(work), threads)))
    maps = [work / f"{scene_name(s)}.tif" for s in scenes]
    missing = [str(m) for m in maps if not m.exists()]
    if missing:
        raise EOError(f"the pipeline finished without these maps: {missing}", "see the worker logs above")
    if out is None:
        return maps
    mosaic(maps, out, values)
    if out_dir is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return [out]
