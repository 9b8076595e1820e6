"""The Apache Beam pipelines of a dataset build.

One element per candidate chip. On one machine the DirectRunner runs them with several
worker processes; ``--runner`` and any other Beam option pass through unchanged, so the
same pipeline runs on Flink, Spark or Dataflow (the dataset folder must then be on storage
the workers share). A bad input met in a worker (an unreadable block, a full disk) reaches
the driver as the same one-line :class:`EOError` the driver would raise; local worker
processes start through :mod:`eoengine.datasets.worker_main`, so they die with the driver.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from rasterio.windows import Window

from eoengine.datasets.chipper import ChipMaker
from eoengine.datasets.plan import BuildPlan, Candidate
from eoengine.errors import EOError, from_worker, os_error, worker_error


def beam_options(
    runner: str, num_workers: int, running_mode: str, extra: Sequence[str] = ()
) -> PipelineOptions:
    """Pipeline options: the configured runner and workers, then any user-given Beam flags."""
    args = [f"--runner={runner}", "--default_sdk_harness_log_level=WARNING"]
    if runner == "DirectRunner":
        args += [f"--direct_num_workers={num_workers}", f"--direct_running_mode={running_mode}"]
    return PipelineOptions(args + list(extra))


class WorkerRunner(FnApiRunner):  # type: ignore[misc]
    """The DirectRunner's engine, its worker processes started by :mod:`eoengine.datasets.worker_main`."""

    def run_via_runner_api(self, pipeline_proto: Any, options: PipelineOptions) -> Any:
        """Run the pipeline with every subprocess worker started through eoengine's entry point.

        Args:
            pipeline_proto: The pipeline, as the runner API describes it.
            options: The pipeline options.

        Returns:
            Beam's result of the run.

        """
        command = f"exec {shlex.quote(sys.executable)} -m eoengine.datasets.worker_main {os.getpid()}"
        for env in pipeline_proto.components.environments.values():
            if env.urn == python_urns.SUBPROCESS_SDK:
                env.payload = command.encode()
        return super().run_via_runner_api(pipeline_proto, options)


def _runner(options: PipelineOptions) -> WorkerRunner | None:
    local = options.view_as(StandardOptions).runner in (None, "DirectRunner")
    return WorkerRunner() if local and options.view_as(DirectOptions).direct_running_mode == "multi_processing" else None


@contextmanager
def pipeline(options: PipelineOptions) -> Iterator[beam.Pipeline]:
    """A Beam pipeline that runs when the block ends; a worker's :class:`EOError` is raised as itself.

    Args:
        options: The pipeline options (see :func:`beam_options`).

    Yields:
        The pipeline to add transforms to.

    Raises:
        EOError: A worker met a bad input (see :func:`to_driver`).

    """
    try:
        with beam.Pipeline(runner=_runner(options), options=options) as p:
            yield p
    except EOError:
        raise
    except Exception as exc:
        found = from_worker(exc)
        if found is None:
            raise
        raise found from None


@contextmanager
def to_driver() -> Iterator[None]:
    """Inside a worker: send a bad input (an :class:`EOError` or a failed file operation) to the driver.

    Raises:
        RuntimeError: The error, in a form :func:`pipeline` recognises in the driver.

    """
    try:
        yield
    except EOError as exc:
        raise worker_error(exc) from None
    except OSError as exc:
        raise worker_error(os_error(exc)) from None


class _MakeChips(beam.DoFn):  # type: ignore[misc]
    def __init__(self, plan: BuildPlan, root: str, resampling: str, resolution: float | None) -> None:
        self.plan, self.root, self.resampling, self.resolution = plan, root, resampling, resolution

    def setup(self) -> None:
        self.maker = ChipMaker(self.plan, Path(self.root), self.resampling, self.resolution)

    def process(self, cand: Candidate) -> Iterator[bool]:
        with to_driver():
            kept = bool(self.maker.make(cand)["kept"])
        yield kept

    def teardown(self) -> None:
        self.maker.close()


class _CountLabels(beam.DoFn):  # type: ignore[misc]
    """Class pixel counts of a candidate's labels (for stratified sampling); reads no bands."""

    def __init__(self, plan: BuildPlan, root: str, resampling: str, resolution: float | None) -> None:
        self.plan, self.root, self.resampling, self.resolution = plan, root, resampling, resolution

    def setup(self) -> None:
        self.maker = ChipMaker(self.plan, Path(self.root), self.resampling, self.resolution)

    def process(self, cand: Candidate) -> Iterator[tuple[int, list[int]]]:
        p = self.plan.patch_size
        with to_driver():
            label = self.maker.labeler(cand.scene).read(Window(cand.col, cand.row, p, p))
        counts = np.bincount(label.ravel(), minlength=256)[: self.plan.n_classes]
        yield cand.chip_id, counts.astype(int).tolist()

    def teardown(self) -> None:
        self.maker.close()


def _write_json(items: list[Any], path: str) -> None:
    Path(path).write_text(json.dumps(sorted(items)))


def run_chips(
    plan: BuildPlan,
    root: Path,
    candidates: list[Candidate],
    options: PipelineOptions,
    resampling: str,
    resolution: float | None,
) -> None:
    """Make every candidate chip (skipping those already done)."""
    with pipeline(options) as p:
        _ = (
            p
            | "Candidates" >> beam.Create(candidates)
            | "Spread" >> beam.Reshuffle()
            | "MakeChips" >> beam.ParDo(_MakeChips(plan, str(root), resampling, resolution))
        )


def run_label_counts(
    plan: BuildPlan,
    root: Path,
    candidates: list[Candidate],
    options: PipelineOptions,
    out: Path,
    resampling: str,
    resolution: float | None,
) -> dict[int, list[int]]:
    """Count label classes of each candidate; returns chip_id -> counts."""
    with pipeline(options) as p:
        _ = (
            p
            | "Candidates" >> beam.Create(candidates)
            | "Spread" >> beam.Reshuffle()
            | "Count" >> beam.ParDo(_CountLabels(plan, str(root), resampling, resolution))
            | "Gather" >> beam.combiners.ToList()
            | "Write" >> beam.Map(_write_json, str(out))
        )
    return {int(k): v for k, v in json.loads(out.read_text())}
