"""What the model tests share: a tiny project trained once, its dataset and run indexed as the job runner indexes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browse_support import tiny_project
from platform_server import LiveServer
from sqlalchemy import delete, select

from eoengine.jobs.run import run_spec
from eoengine.jobs.specs import AnySpec, BuildDatasetSpec, TrainSpec
from eoengine.platform.db.models import Artifact, Project
from eoengine.platform.index import outputs_of, store_artifacts


def index_outputs(live: LiveServer, slug: str, result: Any, spec: AnySpec, folder: Path) -> None:
    """Index a job's outputs with their events, as the runner does after the job (the test ran the core function)."""
    outputs = outputs_of(result, spec, folder)
    with live.platform.db.write() as s:
        project = s.scalar(select(Project).where(Project.slug == slug))
        assert project is not None
        store_artifacts(s, project.id, None, None, outputs)


def trained_project(live: LiveServer, slug: str = "tiny") -> dict[str, Any]:
    """The tiny project built and trained for one epoch, both indexed with their lineage events.

    Returns:
        ``run`` (the TrainResult), ``built`` (the BuildDatasetResult) and ``folder``.

    """
    folder, built = tiny_project(live, slug, **{"training.epochs": 1})
    with live.platform.db.write() as s:  # indexed again below as a build job's output is, with its event
        s.execute(delete(Artifact).where(Artifact.kind == "dataset"))
    index_outputs(live, slug, built, BuildDatasetSpec(config=folder / "eoengine.yaml"), folder)
    spec = TrainSpec(config=folder / "eoengine.yaml")
    result = run_spec(spec)
    index_outputs(live, slug, result, spec, folder)
    return {"run": result, "built": built, "folder": folder}
