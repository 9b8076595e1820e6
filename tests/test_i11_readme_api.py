"""The README's Python API section names only what exists: every dotted name resolves, its
example's imports run, and the spec it builds round-trips."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from conftest import REPO


def _section() -> str:
    text = (REPO / "README.md").read_text()
    return text[text.index("### Python API"):text.index("### Errors")]


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"{dotted} does not import")


def test_every_name_the_python_api_section_gives_exists() -> None:
    names = sorted(set(re.findall(r"`(eoengine(?:\.\w+)+)", _section())))
    assert len(names) > 15
    missing = []
    for name in names:
        try:
            _resolve(name)
        except (AssertionError, AttributeError) as exc:
            missing.append(f"{name}: {exc}")
    assert missing == []


def test_the_example_imports_and_its_spec_round_trips() -> None:
    code = re.search(r"```python\n(.*?)```", _section(), re.S).group(1)  # type: ignore[union-attr]
    imports = "\n".join(line for line in code.splitlines() if line.startswith(("from ", "import ")))
    scope: dict[str, object] = {}
    exec(imports, scope)
    spec = scope["PredictSpec"](model="runs:/0123", scene=["scene.tif"], output=Path("map.tif"))  # type: ignore[operator]
    assert scope["parse_spec"](spec.model_dump_json()) == spec  # type: ignore[operator, attr-defined]
