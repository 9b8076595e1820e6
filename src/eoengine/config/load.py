"""Load a project config from YAML and turn validation errors into readable problems."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eoengine.config.schema import ProjectConfig
from eoengine.errors import ConfigError, EOError


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def format_validation_error(err: ValidationError) -> list[str]:
    """One line per problem: field path, the bad value and what is allowed."""
    problems = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            problems.append(f"{_loc(loc)}: required field is missing")
        elif e["type"] == "extra_forbidden":
            problems.append(f"{_loc(loc)}: unknown field (check the spelling; see 'eoengine init')")
        else:
            value = e.get("input")
            shown = repr(value) if not isinstance(value, dict) else "{...}"
            if len(shown) > 60:
                shown = shown[:57] + "..."
            problems.append(f"{_loc(loc)}: {shown} is not valid: {msg}")
    return problems


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file and line on a syntax error."""
    if not path.exists():
        raise EOError(f"config file not found: {path}", "check the path, or run 'eoengine init DIR'")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EOError(
            f"{path}: malformed YAML{where}: {problem}", "fix the YAML syntax (indentation, colons)"
        ) from None
    except UnicodeDecodeError:
        raise EOError(f"{path}: not a text file", "pass a YAML config file") from None
    if not isinstance(data, dict):
        raise EOError(f"{path}: the config must be a YAML mapping", "see 'eoengine init DIR'")
    return data


def load_config(path: str | Path) -> ProjectConfig:
    """Load and validate a project config; raise :class:`ConfigError` listing every problem."""
    path = Path(path)
    data = read_yaml(path)
    try:
        cfg = ProjectConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(str(path), format_validation_error(err)) from None
    cfg.base_dir = path.resolve().parent
    if str(cfg.base_dir) not in sys.path:  # custom models and losses next to the config import by dotted path
        sys.path.append(str(cfg.base_dir))
    return cfg
