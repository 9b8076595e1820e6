"""Prediction over many scenes as an Apache Beam pipeline: one element per group of region rows.

Every scene is cut into strips of ``rows_per_element`` rows of regions (1024 px each by
default); each strip is one element, so the workers share large scenes as well as many
small ones. Each worker loads the model package once (``setup``) and writes its strips as
sparse GeoTIFFs (see :mod:`eoengine.inference.strips`: a strip equals the rows a whole-scene
run would write); the driver joins each scene's strips into one COG and builds the mosaic
if asked. The same pipeline runs on the DirectRunner here (two worker processes, each with
its share of the cores) and on a cluster runner, where the model package, the scenes and the
output folder must be on storage every worker reaches. Finished strips and scenes are
skipped, so a rerun continues an interrupted job. A bad input or a full disk met in a worker
reaches the driver as the same one-line :class:`EOError` as without Beam (through
:func:`eoengine.datasets.pipeline.to_driver`, as in a dataset build), and the failed run's
strips are deleted. Workers write each strip to a temporary file in a scratch folder of the run
and rename it into place when complete; the driver deletes that folder once the pipeline has
stopped, before the failed run's strips: a worker still busy when another failed (Beam raises
in the driver while the others run on, then stops them, killing a worker process mid-write)
can then leave neither a temporary file nor a strip renamed into place after the tidying.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import apache_beam as beam

from eoengine.config.schema import PredictionConfig
from eoengine.datasets.pipeline import beam_options, pipeline, to_driver
from eoengine.errors import EOError
from eoengine.inference.many import is_done, mosaic, output_folder, scene_name
from eoengine.inference.predict import Predictor
from eoengine.inference.sources import sources_for_package
from eoengine.inference.strips import join_strips, predict_strip, region_rows
from eoengine.raster.scene import SceneReader


class _PredictStrip(beam.DoFn):  # type: ignore[misc]
    def __init__(self, model: str, options: str, engine: str, threads: int) -> None:
        self.model, self.options, self.engine, self.threads = model, options, engine, threads

    def setup(self) -> None:
        import torch

        from eoengine.models.package import load_package

        os.environ["OMP_NUM_THREADS"] = str(self.threads)
        torch.set_num_threads(self.threads)
        self.predictor = Predictor(load_package(Path(self.model)), PredictionConfig.model_validate_json(self.options), self.engine)
        torch.set_num_threads(self.threads)  # the predictor asks for every core; share them between workers

    def process(self, element: tuple[list[str], int, int, str, str]) -> Iterator[str]:
        files, first, last, strip, scratch = element
        meta = self.predictor.pkg.meta
        with to_driver(), SceneReader(sources_for_package(meta, files), meta.resampling) as reader:
            done = predict_strip(self.predictor, reader, first, last, Path(strip), Path(scratch))
        yield str(done)


Plan = dict[str, tuple[list[str], list[tuple[int, int, Path]]]]
"""Per scene still to predict: its files and its strips (first row, last row, strip file)."""


def _plan(planner: Predictor, scenes: list[list[str]], work: Path, rows_per_element: int) -> Plan:
    """The strips of every scene whose map in ``work`` is not finished yet."""
    meta = planner.pkg.meta
    plan: Plan = {}
    for files in scenes:
        name = scene_name(files)
        if is_done(work / f"{name}.tif", str(meta.run_id or ""), files):
            continue
        with SceneReader(sources_for_package(meta, files), meta.resampling) as r:
            rows = region_rows(planner, r)
        strips = [(a, min(a + rows_per_element, rows) - 1, work / f".{name}.strip-{a:05d}.tif")
                  for a in range(0, rows, rows_per_element)]
        plan[name] = (files, strips)
    return plan


@contextmanager
def _scratch(work: Path) -> Iterator[Path]:
    """A fresh folder in ``work`` for the run's temporary strip files, deleted when the block ends, however it ends.

    A worker that outlived the pipeline may be writing into it meanwhile; the folder is deleted
    again until it is gone, and once it is, no temporary file can be made or renamed into a strip.
    """
    folder = Path(tempfile.mkdtemp(prefix=".strips-", dir=work))
    try:
        yield folder
    finally:
        for _ in range(5):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                break


def _run_strips(plan: Plan, model: Path, options: PredictionConfig, engine: str, runner: str, workers: int,
                extra: list[str], scratch: Path) -> None:
    """Predict every planned strip in a Beam pipeline (finished strips are skipped by the workers)."""
    elements = [(files, a, b, str(p), str(scratch)) for files, strips in plan.values() for a, b, p in strips]
    if not elements:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    opts = beam_options(runner, workers, "multi_processing", extra)
    with pipeline(opts) as p:  # workers that die with the driver, and keep quiet
        _ = (p | beam.Create(elements) | beam.Reshuffle()
             | beam.ParDo(_PredictStrip(str(Path(model).resolve()), options.model_dump_json(), engine, threads)))


def _join(planner: Predictor, plan: Plan, work: Path) -> None:
    """Join each scene's strips into its map in ``work``, then delete them."""
    meta = planner.pkg.meta
    for name, (files, strips) in plan.items():
        missing = [str(s[2]) for s in strips if not s[2].exists()]
        if missing:
            raise EOError(f"the pipeline finished without these strips: {missing}", "see the worker logs above")
        with SceneReader(sources_for_package(meta, files), meta.resampling) as r:
            join_strips(planner, r, strips, work / f"{name}.tif", files)
        _drop_strips({name: (files, strips)})


def _drop_strips(plan: Plan) -> None:
    for _, strips in plan.values():
        for _, _, path in strips:
            path.unlink(missing_ok=True)


def predict_beam(
    model: Path, scenes: list[list[str]], options: PredictionConfig, engine: str, out: Path | None,
    out_dir: Path | None, runner: str = "DirectRunner", workers: int = 2, extra: list[str] | None = None,
    rows_per_element: int = 1,
) -> list[Path]:
    """Predict ``scenes`` with Beam into ``out_dir`` (one COG each) and/or a mosaic at ``out``."""
    from eoengine.models.heads import heads_from_meta, map_head
    from eoengine.models.package import load_package

    if out is None and out_dir is None:
        raise EOError("many scenes need --out (one mosaic) or --out-dir (one map per scene)", "add one of them")
    if rows_per_element < 1:
        raise EOError(f"--rows-per-element {rows_per_element}: must be at least 1", "use --rows-per-element 1 or more")
    pkg = load_package(model)
    values = map_head(heads_from_meta(pkg.meta)).type == "regression"
    work = (out_dir or out.with_name(f".{out.name}.scenes")).resolve()  # type: ignore[union-attr]
    planner = Predictor(pkg, options, "torch")  # layout only; workers choose their own engine
    scenes = [[str(Path(f).resolve()) for f in s] for s in scenes]
    with output_folder(work, out_dir is None):
        plan = _plan(planner, scenes, work, rows_per_element)
        try:
            with _scratch(work) as scratch:  # deleted after the pipeline stopped, before the strips below
                _run_strips(plan, model, options, engine, runner, workers, extra or [], scratch)
            _join(planner, plan, work)
        except EOError:
            _drop_strips(plan)
            raise
        maps = [work / f"{scene_name(s)}.tif" for s in scenes]
        if out is None:
            return maps
        mosaic(maps, out, values)
    if out_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return [out]
