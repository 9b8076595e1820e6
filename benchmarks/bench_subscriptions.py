"""Subscription run overhead: one run (search + fetch + predict + stats + change + drift + notify) vs predicting directly.

A static STAC catalog of tiny real scenes (192² windows of the sample Landsat stack) and the tests'
tiny U-Net package. Each repeat adds a newer scene to the catalog and times ``run_due`` (one run,
the fetch cache cold for that scene, a webhook to a local HTTP receiver, the change against the
previous run), then times ``Predictor.predict`` of the same fetched stack with the same model into
another COG. The difference is what a subscription adds to a prediction (target: ≤ 2 s per run).

    .venv/bin/python benchmarks/bench_subscriptions.py [--repeats 5] [--size 192]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, not the installed one

import subscriptions_support as support
from conftest import saved_package

from eoengine.inference.area import predict_fetched
from eoengine.inference.predict import Predictor
from eoengine.models.package import load_package
from eoengine.subscriptions.run import run_due
from eoengine.subscriptions.spec import parse_spec
from eoengine.subscriptions.state import SubscriptionState


def main() -> None:
    """Run the benchmark and print both timings per repeat and their medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=192, help="scene side in pixels (at most 200: windows of the 250² sample)")
    args = parser.parse_args()
    support.SIZE = args.size
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        package = saved_package(tmp / "pkg")
        predictor = Predictor(load_package(package), engine="torch")
        receiver = support.Receiver()
        scenes: list[tuple[str, str, float, Path]] = []
        first = support.write_scene(tmp / "scenes", "s0")
        spec = parse_spec(support.spec_data(tmp / "cat", package, support.area_of(first, margin=0.05),
                                            webhooks=[{"url": receiver.url, "secret": support.SECRET}]))
        state, runs, direct = SubscriptionState(), [], []
        for i in range(args.repeats + 1):  # the first run warms the imports and the model; not counted
            path = first if i == 0 else support.write_scene(tmp / "scenes", f"s{i}", shift=i % 8, gain=1 + 0.05 * i)
            scenes.append((f"s{i}", f"2021-03-{i + 1:02d}", 10.0, path))
            support.catalog(tmp / "cat", scenes)
            began = time.perf_counter()
            state, [record] = run_due(spec, state, tmp / "out", tmp / "cache", dt.datetime(2021, 6, 1, tzinfo=dt.UTC))
            took = time.perf_counter() - began
            assert record.status == "succeeded", record.error
            stack = next((tmp / "cache").rglob(f"s{i}/*.tif"))
            began = time.perf_counter()
            predict_fetched(predictor, [stack], [f"s{i}"], tmp / f"direct{i}.tif")
            plain = time.perf_counter() - began
            if i:
                runs.append(took)
                direct.append(plain)
                print(f"run {i}: subscription {took:.2f} s, direct predict {plain:.2f} s, extra {took - plain:+.2f} s")
        receiver.close()
    run_s, direct_s = statistics.median(runs), statistics.median(direct)
    print(f"median of {args.repeats} ({args.size}x{args.size} px, load {os.getloadavg()[0]:.2f}): subscription run "
          f"{run_s:.2f} s, direct predict {direct_s:.2f} s, overhead {run_s - direct_s:+.2f} s per run")


if __name__ == "__main__":
    main()
