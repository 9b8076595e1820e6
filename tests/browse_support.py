"""What the browsing tests share: the error check, decoding a tile, indexing an artefact, a built tiny project."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from conftest import tiny_config
from PIL import Image
from platform_server import LiveServer
from sqlalchemy import select

from eoengine.platform.db.models import Artifact, Project


def error_of(r: httpx.Response, status: int) -> dict[str, str]:
    """The JSON error body of an answer that must have ``status`` (both its fields filled)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and body["fix"]
    return dict(body)


def decode_tile(r: httpx.Response) -> np.ndarray:
    """A 256 px PNG tile answer as (256, 256, 4) RGBA."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content)).convert("RGBA")
    assert img.size == (256, 256)
    return np.asarray(img)


def index_artifact(live: LiveServer, slug: str, kind: str, name: str, path: str, **fields: object) -> int:
    """Index an artefact of a project as the job runner does after a job (kind, name, path relative to the project)."""
    with live.platform.db.write() as s:
        project = s.scalar(select(Project).where(Project.slug == slug))
        assert project is not None
        row = Artifact(project_id=project.id, kind=kind, name=name, path=path, **fields)
        s.add(row)
        s.flush()
        return row.id


_OUTPUTS: dict[str, Path] = {}
"""Copies of projects' output folders, by what made them: the servers of both databases share one build or training."""


def _outputs_copy(folder: Path, key: str) -> Path:
    return folder.parents[2] / f"outputs-{hashlib.sha256(key.encode()).hexdigest()[:12]}"  # beside the server's home


def reuse_outputs(folder: Path, key: str) -> bool:
    """Copy into ``folder/out`` what an earlier project of the session made under ``key``; False the first time.

    A dataset copied so is up to date for the build (its key hashes the config and inputs, not the
    folder). MLflow stores keep their runs' artefact locations: those of the first project.
    """
    kept = _OUTPUTS.get(key)
    if kept is None:
        return False
    shutil.copytree(kept, folder / "out", dirs_exist_ok=True, symlinks=True)
    return True


def keep_outputs(folder: Path, key: str) -> None:
    """Keep a copy of ``folder/out`` as what ``key`` makes, for :func:`reuse_outputs` in later projects."""
    copy = _outputs_copy(folder, key)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder / "out", copy, symlinks=True)
    _OUTPUTS[key] = copy


def tiny_project(live: LiveServer, slug: str = "tiny", **overrides: Any) -> tuple[Path, Any]:
    """A project of the tiny config (output in the project), its dataset built and indexed: (folder, build result).

    The server needs the examples as a data root (the config reads the open-geo-tutorial scene there).
    The dataset is built once per session and config: a later project of the same config gets a copy.
    """
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import BuildDatasetSpec

    cfg = tiny_config(Path("unused"), **overrides) | {"name": slug, "output_dir": "out"}
    text = yaml.safe_dump(cfg, sort_keys=False)
    with live.client() as c:
        r = c.post("/projects", json={"name": slug, "config": text})
        assert r.status_code == 201, r.text
    folder = live.platform.settings.projects_dir / slug
    copied = reuse_outputs(folder, f"dataset:{text}")
    built = run_spec(BuildDatasetSpec(config=folder / "eoengine.yaml"))
    assert built.up_to_date == copied, "a copied dataset must be up to date"
    if not copied:
        keep_outputs(folder, f"dataset:{text}")
    index_artifact(live, slug, "dataset", slug, str(built.path.relative_to(folder)), version=built.version)
    return folder, built
