"""Project folders: made from a config (or a bundled sample), validated as the CLI does, kept inside the server.

A project's folder is ``HOME/projects/<slug>/``: its ``eoengine.yaml``, its data, and ``out/``
(the config's ``output_dir``). Its config is validated by the CLI's schema with the CLI's
messages; on top of that, every file it names must lie inside the project folder or a data
root the server admits, and it may not name its own MLflow store (the project's is under
``output_dir``), so one project cannot read another's files or the server's.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from eoengine.config.load import config_from_mapping, parse_yaml
from eoengine.config.schema import BandFiles, ProjectConfig
from eoengine.errors import Conflict, Invalid, NotFound
from eoengine.files import atomic_write_text

CONFIG = "eoengine.yaml"
OUTPUT_DIR = "out"
TEMPLATES = {"nc-landsat": "nc_landsat7_landclass96"}
"""Bundled samples a project can start from: name → folder under the examples."""
_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """A project's slug: its name lowercased, runs of other characters as ``-`` (at most 48 characters).

    Args:
        name: The project's name.

    Returns:
        The slug.

    Raises:
        Invalid: The name has no letter or digit.

    """
    slug = _SLUG.sub("-", name.lower()).strip("-")[:48].strip("-")
    if not slug:
        raise Invalid(f"project name {name!r} has no letter or digit", "name it with letters or digits, e.g. 'nc-landcover'")
    return slug


def _band_files(entry: BandFiles) -> Iterator[str]:
    yield from (entry.files or {}).values()
    yield from (p for p in (entry.stack, entry.stac_item) if p)


def config_files(cfg: ProjectConfig) -> Iterator[tuple[str, str]]:
    """Every local path a config names, as (field, path); URLs are left out.

    Args:
        cfg: The config.

    Yields:
        (dotted field name, path as written).

    """
    yield "output_dir", cfg.output_dir
    for scene in (cfg.imagery.scenes if cfg.imagery else []):
        for entry in [scene, *(scene.timesteps or [])]:
            yield from ((f"imagery.scenes[{scene.id}]", p) for p in _band_files(entry))
        if scene.labels:
            yield f"imagery.scenes[{scene.id}].labels", scene.labels
    source = cfg.imagery.source if cfg.imagery else None
    named = [("imagery.source.catalog", source.catalog if source else None),
             ("imagery.source.aoi", source.aoi if source else None),
             ("imagery.source.cache", source.cache if source else None),
             ("labels.path", cfg.labels.path if cfg.labels else None),
             ("labels.values.path", cfg.labels.values.path if cfg.labels and cfg.labels.values else None),
             ("dataset.split.path", cfg.dataset.split.path), ("training.dataset", cfg.training.dataset)]
    yield from ((field, path) for field, path in named if path and "://" not in path)


def check_confined(cfg: ProjectConfig, folder: Path, data_roots: tuple[Path, ...] = ()) -> None:
    """Refuse a config that names a file outside its project folder (and the admitted data roots).

    Args:
        cfg: The config (``base_dir`` set to the project folder).
        folder: The project folder.
        data_roots: Other folders the server lets projects read from.

    Raises:
        Invalid: A path leaves the folder, or the config names its own MLflow store.

    """
    roots = [folder.resolve(), *(r.resolve() for r in data_roots)]
    for field, path in config_files(cfg):
        resolved = cfg.resolve(path)
        if not any(resolved == r or r in resolved.parents for r in roots):
            raise Invalid(f"{CONFIG}: {field} ({path}) is outside the project folder",
                          "use a path inside the project (upload the file first), or ask the server admin to add "
                          "its folder as a data root (eoengine server run --data-root DIR)")
    if cfg.training.tracking_uri:
        raise Invalid(f"{CONFIG}: training.tracking_uri is set, but a project on the server keeps its runs in its "
                      "own store", "remove training.tracking_uri")


def validate_config(text: str, folder: Path, data_roots: tuple[Path, ...] = ()) -> ProjectConfig:
    """A project config from its YAML text, checked as the CLI checks it, and confined to the project.

    Args:
        text: The YAML text.
        folder: The project folder its relative paths resolve against.
        data_roots: Other folders projects may read from.

    Returns:
        The validated config.

    Raises:
        ConfigError: It does not validate (the CLI's messages).
        EOError: Malformed YAML, or a path outside the project.

    """
    cfg = config_from_mapping(parse_yaml(text, CONFIG), CONFIG, folder)
    check_confined(cfg, folder, data_roots)
    return cfg


def config_hash(text: str) -> str:
    """The SHA-256 of a config's text."""
    return hashlib.sha256(text.encode()).hexdigest()


def _template_text(source: Path) -> str:
    """A sample's config with its output under the project (``output_dir: out``)."""
    text = (source / CONFIG).read_text()
    return re.sub(r"(?m)^output_dir:.*$", f"output_dir: {OUTPUT_DIR}", text)


def create_folder(projects_dir: Path, slug: str, text: str | None, template: str | None, examples: Path | None,
                  data_roots: tuple[Path, ...] = ()) -> tuple[Path, str]:
    """Make a project folder from a config's text or a bundled sample, validated before it appears.

    The folder is assembled beside its final place and renamed into it, so a failed check
    leaves nothing behind.

    Args:
        projects_dir: Where project folders live.
        slug: The project's slug (its folder's name).
        text: The config's YAML text (or None with ``template``).
        template: A sample's name (see :data:`TEMPLATES`).
        examples: The folder of bundled samples.
        data_roots: Other folders projects may read from.

    Returns:
        (the folder, the config text written).

    Raises:
        Conflict: The folder exists.
        NotFound: An unknown template, or no samples on this server.
        Invalid: Neither or both of config and template, or a config that fails its checks.

    """
    if (text is None) == (template is None):
        raise Invalid("give either 'config' (YAML text) or 'template'", f"templates: {', '.join(TEMPLATES)}")
    final = projects_dir / slug
    if final.exists():
        raise Conflict(f"a project folder {slug!r} exists already", "choose another name")
    projects_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{slug}-", dir=projects_dir))
    try:
        if template is not None:
            source = (examples / TEMPLATES[template]) if examples and template in TEMPLATES else None
            if source is None or not source.is_dir():
                raise NotFound(f"no sample project {template!r} on this server", f"templates: {', '.join(TEMPLATES)}")
            shutil.copytree(source, staging, dirs_exist_ok=True)
            text = _template_text(source)
        assert text is not None
        validate_config(text, staging, data_roots)
        atomic_write_text(staging / CONFIG, text)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final, text
