"""What the browsing tests share: the error check, decoding a tile, indexing an artefact, a built tiny project."""

from __future__ import annotations

import io
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


def tiny_project(live: LiveServer, slug: str = "tiny", **overrides: Any) -> tuple[Path, Any]:
    """A project of the tiny config (output in the project), its dataset built and indexed: (folder, build result).

    The server needs the examples as a data root (the config reads the open-geo-tutorial scene there).
    """
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import BuildDatasetSpec

    cfg = tiny_config(Path("unused"), **overrides) | {"name": slug, "output_dir": "out"}
    with live.client() as c:
        r = c.post("/projects", json={"name": slug, "config": yaml.safe_dump(cfg, sort_keys=False)})
        assert r.status_code == 201, r.text
    folder = live.platform.settings.projects_dir / slug
    built = run_spec(BuildDatasetSpec(config=folder / "eoengine.yaml"))
    index_artifact(live, slug, "dataset", slug, str(built.path.relative_to(folder)), version=built.version)
    return folder, built
