"""The package's layers: each stage imports only the stages before it; adapters are imported by none.

Every import counts, at module level or inside a function, so a lazy import cannot hide an
edge against the order. The model server and the inference path must not load the training
stack (Lightning) or the vector stack (geopandas).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "eoengine"

BASE = ("errors", "files", "hashing", "progress", "runtime", "templates")
"""Modules every layer may import: they import no stage."""

STAGES = ("config", "raster", "labels", "features", "sourcing", "datasets", "models", "tracking",
          "training", "deploy", "inference", "grading", "subscriptions", "jobs")
"""The pipeline stages in order: a stage imports only the ones before it."""

ADAPTERS = ("serving", "platform", "client", "cli", "__main__")
"""Entry points: they import stages and no stage imports them; the command line (``__main__``,
then ``cli``) starts the HTTP apps of ``serving``, so an adapter imports only those before it."""


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, imported eoengine module) of every import in a file, relative ones resolved."""
    package = ["eoengine", *path.relative_to(root).parts[:-1]]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found += [(node.lineno, f"{module}.{a.name}" if module == "eoengine" else module) for a in node.names]
    return [(line, m) for line, m in found if m.startswith("eoengine.")]


def _allowed(source: str, target: str) -> bool:
    if source == target or target in BASE:
        return True
    if target in ADAPTERS:
        return source in ADAPTERS and ADAPTERS.index(target) < ADAPTERS.index(source)
    if source in ADAPTERS:
        return True
    if source in BASE:
        return False
    return source in STAGES and target in STAGES and STAGES.index(target) < STAGES.index(source)


def edges_against_order(root: Path = SRC) -> list[str]:
    """Every import in the package that goes against the layer order, as ``file:line -> module``."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        source = rel.parts[0].removesuffix(".py")
        for line, module in _imports(path, root):
            if not _allowed(source, _part(module)):
                bad.append(f"{rel}:{line} -> {module}")
    return bad


def test_every_module_is_in_a_layer() -> None:
    parts = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SRC.rglob("*.py")} - {"__init__"}
    assert parts <= set(BASE + STAGES + ADAPTERS), sorted(parts - set(BASE + STAGES + ADAPTERS))


def test_no_import_goes_against_the_layer_order() -> None:
    assert edges_against_order() == []


def test_the_check_sees_a_lazy_import_against_the_order(tmp_path: Path) -> None:
    root = tmp_path / "eoengine"
    (root / "raster").mkdir(parents=True)
    (root / "raster" / "scene.py").write_text("def f():\n    from eoengine.training.train import train\n")
    (root / "config").mkdir()
    (root / "config" / "load.py").write_text("from ..raster import scene\nfrom eoengine.cli import main\n")
    assert edges_against_order(root) == ["config/load.py:1 -> eoengine.raster",
                                         "config/load.py:2 -> eoengine.cli",
                                         "raster/scene.py:2 -> eoengine.training.train"]


def test_every_package_folder_has_an_init() -> None:
    folders = {p.parent for p in SRC.rglob("*.py")}
    assert sorted(str(f.relative_to(SRC)) for f in folders if not (f / "__init__.py").exists()) == []


@pytest.mark.parametrize("module", ["eoengine.serving.app", "eoengine.inference.predict", "eoengine.inference.many"])
def test_serving_and_inference_do_not_load_the_training_stack(module: str) -> None:
    heavy = ["lightning", "torchmetrics", "geopandas", "mlflow", "apache_beam"]
    code = f"import sys, json, {module}; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
