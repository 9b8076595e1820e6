"""The append-only event log: every change of state, who made it, when, on what, and a hash of its data."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from eoengine.platform.db.models import Event


def payload_hash(data: dict[str, Any]) -> str:
    """The SHA-256 of an event's data as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def record(session: Session, action: str, object_type: str, object_id: str | int, *, actor_id: int | None,
           project_id: int | None, data: dict[str, Any] | None = None) -> Event:
    """Append an event (in the caller's transaction, so it commits with the change it records).

    Args:
        session: The session making the change.
        action: What happened, ``<object>.<verb>`` (``project.create``, ``job.finish`` ...).
        object_type: The kind of object changed (``project``, ``job``, ``dataset`` ...).
        object_id: Its id.
        actor_id: Who did it (None: the system, e.g. a worker re-queueing a job).
        project_id: The project it belongs to, if any.
        data: What changed (no secrets).

    Returns:
        The event (flushed, so it has its id).

    """
    body = json.loads(json.dumps(data or {}, default=str))  # times and paths as text, as they are hashed
    event = Event(action=action, object_type=object_type, object_id=str(object_id), actor_id=actor_id,
                  project_id=project_id, data=body, payload_hash=payload_hash(body))
    session.add(event)
    session.flush()
    return event
