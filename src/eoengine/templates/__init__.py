"""Project scaffolds for ``eoengine init --template``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from eoengine.errors import Conflict

TEMPLATES = {
    "basic": {"eoengine.yaml": "config/example.yaml"},
    "custom": {
        "eoengine.yaml": "templates/custom/eoengine.yaml",
        "extensions/__init__.py": "templates/custom/extensions/__init__.py",
        "extensions/models.py": "templates/custom/extensions/models.py",
        "extensions/losses.py": "templates/custom/extensions/losses.py",
    },
    "imported": {"eoengine.yaml": "templates/imported/eoengine.yaml"},
}
"""Template name -> {file in the project: packaged source file}."""


def write_template(name: str, directory: Path, force: bool = False) -> list[Path]:
    """Write template ``name`` into ``directory``; refuses to overwrite unless ``force``."""
    files = TEMPLATES[name]
    targets = [directory / rel for rel in files]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise Conflict(f"{', '.join(existing)} already exist(s)", "use --force to overwrite, or pick an empty folder")
    root = resources.files("eoengine")
    for target, source in zip(targets, files.values(), strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(root.joinpath(source).read_text())
    return targets
