"""Grading the demo model against plain evaluation passes: time, the split of grading's time, and peak memory.

Builds the demo's dataset (``examples/nc_landsat7_landclass96``) and trains the demo config's U-Net once
into ``--workdir`` (reused when present; ``--epochs`` lowers the demo's 40 epochs: grading time does not
depend on how well the model is trained). Then, in one process:

- the baseline: one plain evaluation pass, ``split_scores(pkg, root, "test")`` (decode, normalise and
  predict the test split once, score every head), best of ``--repeats``;
- grading with the default slices and bootstrap and 5 corruptions (noise, blur, haze, clouds,
  band_dropout) × severities 1-5 on the WHOLE test split (``robustness.max_chips`` = the test chips), error
  maps and the report card: 1 clean pass + 25 corrupted ones, so the baseline × 26 is what running the
  passes one by one would cost (target: grading ≤ 0.5 of that), with each engine grading can run: ``torch``
  (what the plain pass runs), ``onnx`` (the package's graph on ONNX Runtime) and ``auto`` (the faster of the
  two, as ``eoengine predict`` picks; grading's default). The torch grading's phases are timed by wrapping the
  functions :func:`eoengine.grading.grade.grade` calls.

Peak RSS of grading with 1 corruption and with 5 (each in a fresh process, so peaks do not mix) shows
memory flat in the number of corruptions (target: ratio ≈ 1).

    .venv/bin/python benchmarks/bench_grade.py [--workdir out/bench_grade] [--epochs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("EOENGINE_PROGRESS", "0")

import geopandas as gpd
import torch

from eoengine.datasets.store import INDEX
from eoengine.grading import grade as grade_mod
from eoengine.grading import robustness as robustness_mod
from eoengine.grading.report import write_report_card
from eoengine.grading.suite import CorruptionRun, Suite, suite_from_mapping
from eoengine.models.package import ModelPackage, load_package
from eoengine.training.scores import split_scores

CORRUPTIONS = ("noise", "blur", "haze", "clouds", "band_dropout")
SEVERITIES = (1, 2, 3, 4, 5)
MODEL_FILE = "bench_model.json"
"""In the workdir: the trained package's path and the dataset's, so later runs reuse them."""


def demo_model(workdir: Path, epochs: int) -> tuple[Path, Path, bool]:
    """The demo config's U-Net trained on the demo dataset: built and trained once, then reused.

    Returns:
        The model package, the dataset folder, and whether they were reused.

    """
    record = workdir / MODEL_FILE
    if record.exists():
        found = json.loads(record.read_text())
        if Path(found["model"]).exists() and (Path(found["dataset"]) / "manifest.json").exists():
            return Path(found["model"]), Path(found["dataset"]), True
    from eoengine.cli.demo import find_example
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.training.train import train

    cfg = load_config(find_example(None) / "eoengine.yaml")
    cfg.output_dir = str(workdir.resolve())
    cfg.training.epochs = epochs
    if cfg.training.scheduler is not None and "T_max" in cfg.training.scheduler.kwargs:
        cfg.training.scheduler.kwargs["T_max"] = epochs
    built = build_dataset(cfg)
    result = train(cfg, built.path)
    workdir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"model": str(result.model_path), "dataset": str(built.path), "epochs": epochs}))
    return result.model_path, built.path, False


def bench_suite(corruptions: tuple[str, ...], chips: int) -> Suite:
    """The default suite with ``corruptions`` at severities 1-5 on a sample of ``chips`` (the whole split)."""
    runs = [CorruptionRun(name=n, severities=list(SEVERITIES)).model_dump() for n in corruptions]
    return suite_from_mapping({"robustness": {"corruptions": runs, "max_chips": chips}}, "benchmark suite", Path("."))


def test_chips(root: Path) -> int:
    """How many chips the dataset's test split has."""
    index = gpd.read_parquet(root / INDEX)
    return int((index["split"] == "test").sum())


class PhaseTimer:
    """Seconds per phase of a grading, from wrappers around the functions ``grade`` calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with its time added to ``phase``."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - t0
                self.calls[phase] += 1
        return timed


@contextmanager
def timed_phases(timer: PhaseTimer) -> Iterator[None]:
    """Wrap the grading stage's functions while the block runs (restored afterwards)."""
    patches = [(grade_mod, "load_graded", "decode"), (grade_mod, "plan_suite", "check + slice keys"),
               (grade_mod, "_score", "slices + bootstrap"), (grade_mod, "_calibration", "calibration"),
               (grade_mod, "robustness", "robustness"), (robustness_mod, "corrupt", "  of which corrupting"),
               (grade_mod, "write_error_maps", "error maps"), (grade_mod, "applicability", "applicability")]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    engine_predictor = grade_mod.engine_predictor

    def predictor(pkg: ModelPackage, graded: Any, *args: Any, **kwargs: Any) -> Any:
        name, run = engine_predictor(pkg, graded, *args, **kwargs)
        clean, corrupted = timer.wrap("clean predict", run), timer.wrap("  of which predicting", run)
        first = [True]

        def predict(raw: Any) -> Any:
            if first[0]:
                first[0] = False
                return clean(raw)
            return corrupted(raw)
        return name, predict

    try:
        for mod, name, phase in patches:
            setattr(mod, name, timer.wrap(phase, getattr(mod, name)))
        grade_mod.engine_predictor = predictor  # type: ignore[assignment]
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
        grade_mod.engine_predictor = engine_predictor  # type: ignore[assignment]


def run_grade(pkg: ModelPackage, suite: Suite, out: Path, timer: PhaseTimer | None = None,
              engine: str = "torch") -> float:
    """Grade ``pkg`` on ``suite`` and write the report card into ``out``; returns the seconds taken."""
    t0 = time.perf_counter()
    report = grade_mod.grade(pkg, suite, out, "benchmark suite", engine)
    t1 = time.perf_counter()
    write_report_card(report, out)
    if timer is not None:
        timer.seconds["report card"] += time.perf_counter() - t1
        timer.calls["report card"] += 1
    return time.perf_counter() - t0


def evaluate_pass(pkg: ModelPackage, root: Path, repeats: int) -> list[float]:
    """Seconds of each plain evaluation pass (``split_scores`` of the test split)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        split_scores(pkg, root, "test")
        times.append(time.perf_counter() - t0)
    return times


def child_memory(package: Path, root: Path, corruptions: int) -> None:
    """Grade with the first ``corruptions`` corruptions and print the process's peak RSS (JSON)."""
    pkg = load_package(package)
    chips = test_chips(root)
    with tempfile.TemporaryDirectory() as tmp:
        seconds = run_grade(pkg, bench_suite(CORRUPTIONS[:corruptions], chips), Path(tmp))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"corruptions": corruptions, "peak_rss_mb": rss, "seconds": seconds}))


def memory(package: Path, root: Path, counts: tuple[int, ...]) -> list[dict[str, float]]:
    """Peak RSS of grading with each count of corruptions, each in a fresh process."""
    rows = []
    for n in counts:
        proc = subprocess.run([sys.executable, __file__, "--child", str(package), str(root), str(n)],
                              capture_output=True, text=True, check=True, env=os.environ | {"EOENGINE_PROGRESS": "0"})
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def report(timer: PhaseTimer, grades: dict[str, float], eval_times: list[float], passes: int,
           mem: list[dict[str, float]]) -> None:
    """Print the figures: grading (per engine) against the passes it implies, its phases, and peak memory."""
    base = min(eval_times)
    implied = base * passes
    print(f"plain evaluation pass (split_scores, test split, PyTorch): best {base:.2f} s of "
          f"{', '.join(f'{t:.2f}' for t in eval_times)}")
    print(f"{'path':<64}{'seconds':>9}{'ratio':>8}")
    print(f"{f'evaluate pass x {passes} (1 clean + {passes - 1} corrupted)':<64}{implied:>9.1f}{1.0:>8.2f}")
    for label, seconds in grades.items():
        print(f"{f'eoengine grade --engine {label}':<64}{seconds:>9.1f}{seconds / implied:>8.2f}   "
              f"target <= 0.5: {'met' if seconds / implied <= 0.5 else 'NOT met'}")
    torch_s = grades["torch"]
    print("grading's time by phase (--engine torch):")
    for phase, s in timer.seconds.items():
        calls = timer.calls[phase]
        print(f"  {phase:<32}{s:>8.2f} s{s / torch_s:>7.1%}  ({calls} call{'s' if calls != 1 else ''})")
    print(f"{'corruptions':>12}{'peak RSS MB':>13}{'seconds':>9}{'vs 1':>7}")
    for row in mem:
        print(f"{int(row['corruptions']):>12}{row['peak_rss_mb']:>13.0f}{row['seconds']:>9.1f}"
              f"{row['peak_rss_mb'] / mem[0]['peak_rss_mb']:>7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, default=Path("out/bench_grade"))
    ap.add_argument("--epochs", type=int, default=10, help="training epochs (the demo trains 40)")
    ap.add_argument("--repeats", type=int, default=3, help="plain evaluation passes timed (best counts)")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child_memory(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return
    package, root, reused = demo_model(args.workdir, args.epochs)
    pkg = load_package(package)
    chips = test_chips(root)
    trained = json.loads((args.workdir / MODEL_FILE).read_text())["epochs"]
    print(f"demo U-Net ({pkg.meta.model_kwargs}), {len(pkg.meta.channels)} channels, trained {trained} epochs "
          f"(demo: 40; grading time does not depend on it){' (reused)' if reused else ''}; test split {chips} chips "
          f"of {pkg.meta.patch_size} px; {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    print(f"suite: default slices and bootstrap, corruptions {', '.join(CORRUPTIONS)} at severities 1-5 on all "
          f"{chips} test chips, error maps, report card")
    eval_times = evaluate_pass(pkg, root, args.repeats)
    timer = PhaseTimer()
    suite = bench_suite(CORRUPTIONS, chips)
    with tempfile.TemporaryDirectory() as tmp:
        with timed_phases(timer):
            grades = {"torch": run_grade(pkg, suite, Path(tmp) / "torch", timer, "torch")}
        grades["onnx"] = run_grade(pkg, suite, Path(tmp) / "onnx", engine="onnx")
        grades["auto"] = run_grade(pkg, suite, Path(tmp) / "auto", engine="auto")
        chosen = json.loads((Path(tmp) / "auto" / "grade.json").read_text())["model"]["engine"]
    grades[f"auto (picked {chosen})"] = grades.pop("auto")
    mem = memory(package, root, (1, len(CORRUPTIONS)))
    report(timer, grades, eval_times, 1 + len(CORRUPTIONS) * len(SEVERITIES), mem)


if __name__ == "__main__":
    main()
