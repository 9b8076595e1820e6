"""Load a project config from YAML and turn validation errors into readable problems.

A loaded config's folder becomes importable (its custom models and losses) without
growing ``sys.path``: see :class:`ProjectModules`.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from eoengine.config.schema import ProjectConfig
from eoengine.errors import ConfigError, EOError, NotFound, check_not_folder


class ProjectModules(importlib.abc.MetaPathFinder):
    """Finds top-level modules in the folders of loaded configs, after everything on ``sys.path``.

    A config names its custom models and losses by dotted path (``extensions.models.MyNet``),
    importable from the config's folder. The folders are looked in here, in the order
    their configs were first loaded, rather than added to ``sys.path``: loading the same
    or many projects leaves ``sys.path`` as it was, and each folder is kept once.
    """

    def __init__(self) -> None:
        self.folders: dict[str, None] = {}  # an ordered set

    def add(self, folder: Path) -> None:
        """Make modules in ``folder`` importable (if they are not found elsewhere first).

        Args:
            folder: A config's folder.

        """
        self.folders.setdefault(str(folder), None)
        if self not in sys.meta_path:
            sys.meta_path.append(self)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        """Find a top-level module in the folders (submodules are found through their package).

        Args:
            fullname: The module's dotted name.
            path: The parent package's search path; None for a top-level module.
            target: A module being reloaded, if any.

        Returns:
            The module's spec, or None when no folder has it.

        """
        if path is not None:
            return None
        return PathFinder.find_spec(fullname, list(self.folders), target)


PROJECT_MODULES = ProjectModules()
"""The finder :func:`load_config` registers config folders with."""


def _loc(loc: tuple[int | str | list[int], ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, list):
            out += f"[{', '.join(map(str, part))}]"
        else:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _as_model(hint: Any) -> type[BaseModel] | None:
    """The config section (pydantic model) a type hint holds: itself, or inside a list, dict or optional."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    return next((m for m in map(_as_model, get_args(hint)) if m is not None), None)


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The config section at ``loc`` (list indices and dict keys step into the items' section)."""
    node: type[BaseModel] | None = model
    in_items = False
    for part in loc:
        if in_items:  # the index or key of an item
            in_items = False
            continue
        if node is None or not isinstance(part, str) or part not in node.model_fields:
            return None
        hint = node.model_fields[part].annotation
        node = _as_model(hint)
        in_items = any(get_origin(h) in (list, dict, tuple) for h in (hint, *get_args(hint)))
    return node


def _problem(e: ErrorDetails, loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    """The text of one problem, after its field path."""
    if e["type"] == "missing":
        return "required field is missing"
    if e["type"] == "extra_forbidden":
        section = _model_at(model, loc[:-1])
        valid = f"; valid fields: {', '.join(section.model_fields)}" if section else ""
        return f"unknown field '{loc[-1]}'{valid} (check the spelling; see 'eoengine init')"
    value = e.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} is not valid: {e['msg'].removeprefix('Value error, ')}"


def _names(data: Any, loc: tuple[int | str, ...], at: int, indices: list[int]) -> str:
    """The names (or ids) of the list items at position ``at`` of ``loc``, when they have them."""
    node = data
    for part in loc[:at]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    items = [node[i] if isinstance(node, list) and i < len(node) else None for i in indices]
    names = [str(it.get("name") or it.get("id")) for it in items if isinstance(it, dict) and (it.get("name") or it.get("id"))]
    return f" ({', '.join(names)})" if len(names) == len(indices) else ""


def format_validation_error(
    err: ValidationError, model: type[BaseModel] = ProjectConfig, data: Any = None
) -> list[str]:
    """One line per problem: field path, the bad value and what is allowed.

    The same problem in several items of a list (say every band) is said once, naming them.

    Args:
        err: What pydantic raised.
        model: The model that was validated (for the valid fields of a section).
        data: The input that was validated (for the names of list items).

    Returns:
        The problems, one line each.

    """
    groups: dict[tuple[Any, ...], tuple[tuple[int | str, ...], list[tuple[int, ...]]]] = {}
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        text = _problem(e, loc, model)
        shape = tuple(None if isinstance(p, int) else p for p in loc)
        key = (shape, text)
        groups.setdefault(key, (loc, []))[1].append(tuple(p for p in loc if isinstance(p, int)))
    problems = []
    for (_, text), (loc, seen) in groups.items():
        positions = [i for i, p in enumerate(loc) if isinstance(p, int)]
        shown: list[int | str | list[int]] = list(loc)
        named = ""
        for k, at in enumerate(positions):
            values = sorted({idx[k] for idx in seen})
            if len(values) > 1:
                shown[at] = values
                named = _names(data, loc, at, values) if data is not None else ""
        problems.append(f"{_loc(tuple(shown))}{named}: {text}")
    return problems


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file and line on a syntax error."""
    if not path.exists():
        raise NotFound(f"config file not found: {path}", "check the path, or run 'eoengine init DIR'")
    check_not_folder(path, "a config file", f"pass the YAML file, e.g. {path / 'eoengine.yaml'}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EOError(f"{path}: not a text file", "pass a YAML config file") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text that must hold a mapping, naming ``source`` and the line on a syntax error.

    Args:
        text: The YAML text.
        source: What to call it in messages (a file name).

    Returns:
        The mapping.

    Raises:
        EOError: The text is malformed YAML or not a mapping.

    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EOError(
            f"{source}: malformed YAML{where}: {problem}", "fix the YAML syntax (indentation, colons)"
        ) from None
    if not isinstance(data, dict):
        raise EOError(f"{source}: the config must be a YAML mapping", "see 'eoengine init DIR'")
    return data


def config_from_mapping(data: dict[str, Any], source: str, base_dir: Path) -> ProjectConfig:
    """Validate a decoded config, as :func:`load_config` does for a file.

    Args:
        data: The decoded YAML mapping.
        source: What to call it in messages (a file name).
        base_dir: The folder its relative paths are relative to.

    Returns:
        The validated config, with ``base_dir`` set.

    Raises:
        ConfigError: It does not validate (every problem listed).

    """
    try:
        cfg = ProjectConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, format_validation_error(err, ProjectConfig, data)) from None
    cfg.base_dir = base_dir.resolve()
    return cfg


def load_config(path: str | Path) -> ProjectConfig:
    """Load and validate a project config; its folder's modules become importable (custom models, losses).

    Args:
        path: The YAML file.

    Returns:
        The validated config, with ``base_dir`` its folder.

    Raises:
        ConfigError: the config does not validate (every problem listed).
        EOError: the file is missing, a folder, or not a YAML mapping.

    """
    path = Path(path)
    cfg = config_from_mapping(read_yaml(path), str(path), path.resolve().parent)
    PROJECT_MODULES.add(cfg.base_dir)  # custom models and losses next to the config import by dotted path
    return cfg
