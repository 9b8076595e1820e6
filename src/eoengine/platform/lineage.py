"""Lineage from the event log: scenes and labels → dataset version → run → model → maps.

Every event that records a made artefact lists its ``inputs`` as ``type:id`` (the artefact
index writes them: a dataset's scenes and label files, a run's dataset version, a map's run
or model). The lineage of an object is everything it came from and everything made from it,
walked over those edges.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.errors import NotFound
from eoengine.platform.db.models import Event
from eoengine.platform.schemas import Lineage, LineageEdge, LineageNode


def _graph(session: Session, project_id: int) -> tuple[dict[str, LineageNode], set[tuple[str, str]]]:
    nodes: dict[str, LineageNode] = {}
    edges: set[tuple[str, str]] = set()
    events = session.scalars(select(Event).where(Event.project_id == project_id).order_by(Event.id))
    for e in events:
        inputs: list[Any] = (e.data or {}).get("inputs") or []
        key = f"{e.object_type}:{e.object_id}"
        if not inputs and key not in nodes:
            continue
        nodes.setdefault(key, LineageNode(type=e.object_type, id=e.object_id, event=e.id, at=e.at.isoformat()))
        for source in map(str, inputs):
            kind, _, ident = source.partition(":")
            nodes.setdefault(source, LineageNode(type=kind, id=ident))
            edges.add((source, key))
    return nodes, edges


def _resolve(obj: str, nodes: dict[str, LineageNode]) -> str:
    """``obj`` itself, or the one node it names by a version prefix (``dataset:NAME@4d47e74fa4e7``)."""
    name, at, version = obj.partition("@")
    if obj in nodes or not at or len(version) < 6:
        return obj
    matches = [key for key in nodes if key.startswith(f"{name}@") and key.partition("@")[2].startswith(version)]
    return matches[0] if len(matches) == 1 else obj


def lineage(session: Session, project_id: int, obj: str) -> Lineage:
    """The lineage of one object of a project.

    Args:
        session: A database session.
        project_id: The project.
        obj: ``type:id`` (e.g. ``dataset:nc-landcover@4d47e74fa4e7``, ``run:<run id>``, ``map:out/map.tif``).

    Returns:
        Its ancestors and descendants and the edges among them.

    Raises:
        NotFound: The object is in no lineage of the project.

    """
    nodes, edges = _graph(session, project_id)
    obj = _resolve(obj, nodes)
    if obj not in nodes:
        raise NotFound(f"{obj} is in no lineage of this project",
                       "name an artefact a job made, as TYPE:ID (see GET /api/v1/events?project=SLUG)")
    up: dict[str, set[str]] = defaultdict(set)
    down: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        up[target].add(source)
        down[source].add(target)
    keep = {obj}
    for links in (up, down):
        frontier = [obj]
        while frontier:
            for nxt in links[frontier.pop()] - keep:
                keep.add(nxt)
                frontier.append(nxt)
    return Lineage(object=obj, nodes=[nodes[k] for k in sorted(keep)],
                   edges=[LineageEdge(source=s, target=t) for s, t in sorted(edges) if s in keep and t in keep])
