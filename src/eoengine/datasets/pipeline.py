"""The Apache Beam pipelines of a dataset build.

One element per candidate chip. On one machine the DirectRunner runs them with several
worker processes; ``--runner`` and any other Beam option pass through unchanged, so the
same pipeline runs on Flink, Spark or Dataflow (the dataset folder must then be on storage
the workers share).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from rasterio.windows import Window

from eoengine.datasets.chipper import ChipMaker
from eoengine.datasets.plan import BuildPlan, Candidate

logging.getLogger("apache_beam").setLevel(logging.WARNING)


def beam_options(
    runner: str, num_workers: int, running_mode: str, extra: Sequence[str] = ()
) -> PipelineOptions:
    """Pipeline options: the configured runner and workers, then any user-given Beam flags."""
    args = [f"--runner={runner}", "--default_sdk_harness_log_level=WARNING"]
    if runner == "DirectRunner":
        args += [f"--direct_num_workers={num_workers}", f"--direct_running_mode={running_mode}"]
    return PipelineOptions(args + list(extra))


class _MakeChips(beam.DoFn):  # type: ignore[misc]
    def __init__(self, plan: BuildPlan, root: str, resampling: str, resolution: float | None) -> None:
        self.plan, self.root, self.resampling, self.resolution = plan, root, resampling, resolution

    def setup(self) -> None:
        self.maker = ChipMaker(self.plan, Path(self.root), self.resampling, self.resolution)

    def process(self, cand: Candidate) -> Iterator[bool]:
        yield bool(self.maker.make(cand)["kept"])

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
    with beam.Pipeline(options=options) as p:
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
    with beam.Pipeline(options=options) as p:
        _ = (
            p
            | "Candidates" >> beam.Create(candidates)
            | "Spread" >> beam.Reshuffle()
            | "Count" >> beam.ParDo(_CountLabels(plan, str(root), resampling, resolution))
            | "Gather" >> beam.combiners.ToList()
            | "Write" >> beam.Map(_write_json, str(out))
        )
    return {int(k): v for k, v in json.loads(out.read_text())}
