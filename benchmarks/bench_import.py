"""Import time of the model server and the inference path, against the same code before a change.

Each tree (a ``src`` folder; the current one and any given with ``--baseline``) is imported in
fresh interpreters, interleaved, and the median wall time of ``import MODULE`` is printed with
the heavy packages the import loaded and the ratio against the first baseline.

    git worktree add /tmp/eoengine-before 5f48c8d
    .venv/bin/python benchmarks/bench_import.py --baseline /tmp/eoengine-before/src
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HEAVY = ("lightning", "torchmetrics", "geopandas", "mlflow", "apache_beam", "sklearn", "rich", "torch", "rasterio")
CODE = """
import json, sys, time
t = time.perf_counter()
import {module}
dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def measure(src: Path, module: str) -> dict[str, object]:
    """One fresh interpreter importing ``module`` from ``src``: seconds and heavy packages loaded."""
    out = subprocess.run([sys.executable, "-c", CODE.format(module=module, heavy=HEAVY)], check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(src), "PATH": ""})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print the median import time per tree and module, and the ratio against the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, action="append", default=[], help="a src folder to compare with")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--module", action="append", default=[])
    args = parser.parse_args()
    trees = [*args.baseline, Path(__file__).resolve().parents[1] / "src"]
    modules = args.module or ["eoengine.serving.app", "eoengine.inference.predict"]
    for module in modules:
        for tree in trees:  # one warm-up each, so the file cache is warm for every tree alike
            measure(tree, module)
        runs: dict[Path, list[dict[str, object]]] = {t: [] for t in trees}
        for _ in range(args.repeat):
            for tree in trees:
                runs[tree].append(measure(tree, module))
        first = statistics.median(float(r["seconds"]) for r in runs[trees[0]])  # type: ignore[arg-type]
        print(f"import {module} (median of {args.repeat})")
        for tree in trees:
            sec = statistics.median(float(r["seconds"]) for r in runs[tree])  # type: ignore[arg-type]
            label = "current" if tree == trees[-1] else str(tree)
            print(f"  {label:40s} {sec:6.2f} s  ratio {sec / first:5.2f}  loads: {', '.join(runs[tree][0]['loaded'])}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
