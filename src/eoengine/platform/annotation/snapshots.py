"""Label snapshots: the accepted labels of a set frozen into files named by the hash of their content, and built.

A snapshot is a folder ``labels/snapshots/<hash>/`` of the project holding ``labels.geojson``
(the accepted tasks' features) and ``complete.geojson`` (their completeness areas), written as
canonical JSON (:func:`eoengine.platform.annotation.export.label_documents`): the hash is the
SHA-256 of both files' content, so the same accepted labels give the same snapshot. The folder
is written under a temporary name and renamed, and indexed as an artefact of kind ``labels``
(``version`` = the hash) with the event ``labels.snapshot``. Taking one locks the set's row
(PostgreSQL; SQLite's write transactions are serial already), so two requests for the same
labels at once index it once: the second waits, then finds the first's.

Building a snapshot writes ``build.yaml`` beside its files: the project's config with its paths
made absolute, its labels the snapshot's (``labels.geojson`` by ``label``, background inside
``complete.geojson``), and its name ``<project name>-<hash[:12]>``, so the dataset lands in the
project's datasets folder. A dataset's version hashes its label files by name and content, so
the CLI gives the same version from the exported files (under the same names) and those settings.
A change set's config is a ``change_detection`` one (:mod:`eoengine.platform.annotation.change`):
its two items as one scene's two dates, classes no-change / change, no-change the background;
items that cannot make that scene are refused before a snapshot, a build or a download.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.errors import Invalid, NotFound
from eoengine.hashing import canonical_hash
from eoengine.platform.annotation.change import NO_CHANGE, change_config
from eoengine.platform.annotation.export import (
    COMPLETE_FILE,
    LABELS_FILE,
    canonical_text,
    label_documents,
    set_labels,
)
from eoengine.platform.db.models import AnnotationSet, Artifact
from eoengine.platform.index import Output, relative, store_artifacts

SNAPSHOTS = Path("labels") / "snapshots"
BUILD_CONFIG = "build.yaml"
KIND = "labels"
_PATH_KEYS = ("stack", "stac_item", "labels")


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as the API shows it: its hash, folder (relative to the project), counts and when it was made."""

    hash: str
    path: str
    features: int
    tasks: int
    created: str

    @classmethod
    def of(cls, row: Artifact) -> Snapshot:
        """The snapshot an indexed ``labels`` artefact is."""
        return cls(row.version, str(Path(row.path).parent.as_posix()), int(row.meta.get("features", 0)),
                   int(row.meta.get("tasks", 0)), row.created_at.isoformat())


def _write(final: Path, texts: dict[str, str]) -> None:
    """Write the files into a temporary sibling folder, then rename it to ``final`` (kept if another got there first)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, text in texts.items():
            (staging / name).write_text(text)
        if not final.exists():
            staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def set_snapshots(session: Session, aset: AnnotationSet) -> list[Artifact]:
    """The snapshot artefacts taken of a set, newest first."""
    rows = session.scalars(select(Artifact).where(Artifact.project_id == aset.project_id, Artifact.kind == KIND)
                           .order_by(Artifact.id.desc()))
    return [r for r in rows if (r.meta or {}).get("set_id") == aset.id]


def take_snapshot(session: Session, aset: AnnotationSet, folder: Path, actor_id: int | None) -> tuple[Snapshot, bool]:
    """Freeze a set's accepted labels (or find the snapshot of the same content).

    Args:
        session: The request's session (the artefact and event are written in its transaction).
        aset: The set.
        folder: The project folder.
        actor_id: Who takes it.

    Returns:
        The snapshot, and whether it was made now (False: the same labels were frozen before).

    Raises:
        Invalid: No task of the set is accepted.

    """
    session.refresh(aset, with_for_update=True)  # one snapshot of a set at a time: the second finds the first's
    labels = set_labels(session, aset, "accepted")
    if not labels.tasks:
        raise Invalid(f"no task of annotation set {aset.name!r} is accepted",
                      "accept tasks first (POST .../annotation/tasks/ID/review with decision accept)")
    docs = label_documents(labels)
    texts = {LABELS_FILE: canonical_text(docs[0]), COMPLETE_FILE: canonical_text(docs[1])}
    digest = canonical_hash(texts)
    known = next((r for r in set_snapshots(session, aset) if r.version == digest), None)
    if known is not None:
        return Snapshot.of(known), False
    _write(folder / SNAPSHOTS / digest, texts)
    path = (SNAPSHOTS / digest / LABELS_FILE).as_posix()
    meta = {"set_id": aset.id, "set": aset.name, "features": len(docs[0]["features"]), "tasks": len(labels.tasks),
            "complete": (SNAPSHOTS / digest / COMPLETE_FILE).as_posix()}
    (row,) = store_artifacts(session, aset.project_id, actor_id, None, [Output(
        KIND, aset.name, "labels.snapshot", path, version=digest, path=path, meta=meta,
        inputs=[f"annotation_set:{aset.id}"])])
    return Snapshot.of(row), True


def find_snapshot(session: Session, aset: AnnotationSet, digest: str) -> Artifact:
    """A snapshot of a set by its hash.

    Raises:
        NotFound: The set has no snapshot of that hash.

    """
    found = next((r for r in set_snapshots(session, aset) if r.version == digest), None)
    if found is None:
        raise NotFound(f"annotation set {aset.name!r} has no snapshot {digest!r}",
                       "list its snapshots (GET .../annotation/sets/ID/snapshots) or take one (POST)")
    return found


def _absolute(value: Any, folder: Path) -> Any:
    """A config path made absolute against the project folder (a URL, or anything not a path, as it is)."""
    if not isinstance(value, str) or "://" in value or Path(value).is_absolute():
        return value
    return str((folder / value).resolve())


def _rebased(mapping: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The project's config with every file it names made absolute, so it reads the same files from another folder."""
    out = dict(mapping)
    out["output_dir"] = _absolute(out.get("output_dir", "eoengine-out"), folder)
    imagery = dict(out.get("imagery") or {})
    scenes = []
    for scene in imagery.get("scenes") or []:
        entries = [dict(scene), *(dict(t) for t in scene.get("timesteps") or [])]
        for entry in entries:
            entry.update({k: _absolute(entry[k], folder) for k in _PATH_KEYS if k in entry})
            if isinstance(entry.get("files"), dict):
                entry["files"] = {band: _absolute(p, folder) for band, p in entry["files"].items()}
        if scene.get("timesteps"):
            entries[0]["timesteps"] = entries[1:]
        scenes.append(entries[0])
    if scenes:
        imagery["scenes"] = scenes
    if isinstance(imagery.get("source"), dict):
        imagery["source"] = {k: _absolute(v, folder) if k in ("catalog", "aoi", "cache") else v
                             for k, v in imagery["source"].items()}
    if imagery:
        out["imagery"] = imagery
    for section, key in (("dataset", "split"), ("training", "dataset")):
        part = dict(out.get(section) or {})
        if key == "split" and isinstance(part.get("split"), dict) and part["split"].get("path"):
            part["split"] = {**part["split"], "path": _absolute(part["split"]["path"], folder)}
        elif key == "dataset" and isinstance(part.get("dataset"), str):
            part["dataset"] = _absolute(part["dataset"], folder)
        if part:
            out[section] = part
    return out


def _build_mapping(aset: AnnotationSet, snapshot: Artifact, mapping: dict[str, Any],
                   where: str = "") -> dict[str, Any]:
    """The project's config made a snapshot's: its name ``<project>-<hash[:12]>``, its labels the snapshot's files.

    ``where`` is the label files' folder relative to the config ("": beside it). A change set's
    background is ``no-change`` (its config already made a change set's by :func:`project_mapping`).
    """
    background = NO_CHANGE if aset.kind == "change" else aset.completeness.get("background")
    built = dict(mapping)
    built["name"] = f"{mapping.get('name', 'eoengine-project')}-{snapshot.version[:12]}"
    built["labels"] = {"type": "vector", "path": where + LABELS_FILE, "class_column": "label",
                       "all_touched": bool((mapping.get("labels") or {}).get("all_touched", False)),
                       **({"background": background, "labelled_area": where + COMPLETE_FILE}
                          if background is not None else {})}
    return built


def project_mapping(aset: AnnotationSet, items: Mapping[str, dict[str, Any]], folder: Path,
                    config_text: str) -> dict[str, Any]:
    """The project's config as a set's build starts from it: a change set's has its two dates and binary classes.

    Args:
        aset: The set.
        items: The project catalog's items by id (only a change set reads them).
        folder: The project folder.
        config_text: The project's config (YAML).

    Returns:
        The config as a mapping, its paths as written.

    Raises:
        Invalid: A change set whose items cannot make a two-date scene (:func:`change.change_scene`).
        Conflict: A change set's item is gone from the project's imagery.

    """
    mapping = yaml.safe_load(config_text) or {}
    return change_config(aset, dict(items), mapping, folder) if aset.kind == "change" else mapping


def snapshot_config(aset: AnnotationSet, snapshot: Artifact, folder: Path, config_text: str,
                    items: Mapping[str, dict[str, Any]]) -> Path:
    """Write the build config of a snapshot beside its files (``build.yaml``).

    Args:
        aset: The set (its background class; a change set's kind and items).
        snapshot: The snapshot's artefact.
        folder: The project folder.
        config_text: The project's config (YAML).
        items: The project catalog's items by id (a change set's dates are read from them).

    Returns:
        The config's path, relative to the project folder.

    Raises:
        Invalid: A change set whose items cannot make a two-date scene (:func:`change.change_scene`).
        Conflict: A change set's item is gone from the project's imagery.

    """
    built = _build_mapping(aset, snapshot, _rebased(project_mapping(aset, items, folder, config_text), folder))
    path = folder / SNAPSHOTS / snapshot.version / BUILD_CONFIG
    path.write_text(yaml.safe_dump(built, sort_keys=False))
    return Path(relative(path, folder))


PORTABLE_CONFIG = "eoengine.yaml"
PORTABLE_HEADER = """\
# The build config of label snapshot {digest} of annotation set {name!r}: the project's config, its
# labels the snapshot's files (labels/snapshots/, laid out as in the project). Its imagery paths are the project's, relative to this file: put copies
# of the scenes there (or edit the paths); then `eoengine dataset build eoengine.yaml` gives the
# dataset version the server's build of this snapshot gives, wherever this folder is.
"""


def snapshot_zip(aset: AnnotationSet, snapshot: Artifact, folder: Path, config_text: str,
                 items: Mapping[str, dict[str, Any]]) -> bytes:
    """A snapshot to take away: a build config and the two label files as they are, laid out as in the project.

    The zip's root is the project folder's: ``eoengine.yaml`` (the project's config, its labels the
    snapshot's) and ``labels/snapshots/<hash>/``. A dataset version hashes its inputs in the order of
    their paths, so the same layout (with the scenes copied to the paths the config names) gives the
    same version wherever the zip is unpacked.

    Args:
        aset: The set.
        snapshot: The snapshot's artefact.
        folder: The project folder.
        config_text: The project's config (YAML; its relative paths are kept, relative to the zip's folder).
        items: The project catalog's items by id (a change set's dates are read from them).

    Returns:
        The zip's bytes: ``eoengine.yaml`` and ``labels/snapshots/<hash>/{labels,complete}.geojson``.

    Raises:
        NotFound: The snapshot's files are gone from the project folder.
        Invalid: A change set whose items cannot make a two-date scene.
        Conflict: A change set's item is gone from the project's imagery.

    """
    files = folder / SNAPSHOTS / snapshot.version
    if not all((files / name).is_file() for name in (LABELS_FILE, COMPLETE_FILE)):
        raise NotFound(f"the files of snapshot {snapshot.version} are gone from the project folder",
                       "take the snapshot again (the same labels give the same hash)")
    mapping = project_mapping(aset, items, folder, config_text)
    where = f"{(SNAPSHOTS / snapshot.version).as_posix()}/"
    built = _build_mapping(aset, snapshot, mapping | {"output_dir": "eoengine-out"}, where)
    header = PORTABLE_HEADER.format(digest=snapshot.version, name=aset.name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (LABELS_FILE, COMPLETE_FILE):
            zf.write(files / name, where + name)
        zf.writestr(PORTABLE_CONFIG, header + yaml.safe_dump(built, sort_keys=False))
    return buffer.getvalue()
