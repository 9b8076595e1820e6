"""Starting Earth Engine export tasks and following them (the network calls of the provider)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eoengine.errors import EOError, Unavailable, first_line
from eoengine.sourcing.ee_auth import require_ee

DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


def start(task: Any) -> dict[str, Any]:
    """Start ``task``; its id, operation name, description and destination."""
    ee = require_ee()
    try:
        task.start()
    except ee.EEException as exc:
        raise EOError(f"Earth Engine refused export '{task.config.get('description')}': {first_line(exc)}",
                      "check the bucket's write permission for the account, the bands and the region") from None
    except Exception as exc:  # noqa: BLE001 - googleapiclient/httplib2 transport errors vary
        raise Unavailable(f"cannot start export '{task.config.get('description')}': {type(exc).__name__}: {first_line(exc)}",
                          "check the network and try again; the request id makes a retry safe") from None
    options = task.config.get("fileExportOptions", {})
    gcs = options.get("cloudStorageDestination", {})
    return {"id": task.id, "operation": task.name, "description": task.config.get("description"),
            "format": options.get("fileFormat"), "destination": f"gs://{gcs.get('bucket')}/{gcs.get('filenamePrefix')}"}


def operation_name(task_id: str, project: str | None) -> str:
    """The long-running operation of a task id (ids given as full names pass through)."""
    if task_id.startswith("projects/"):
        return task_id
    if not project:
        raise EOError(f"task '{task_id}' needs its Cloud project to be looked up", "pass --project")
    return f"projects/{project}/operations/{task_id}"


def status(name: str) -> dict[str, Any]:
    """A task's state, progress, output URIs and error (from its operation)."""
    ee = require_ee()
    try:
        op = ee.data.getOperation(name)
    except ee.EEException as exc:
        raise EOError(f"cannot look up task {name}: {first_line(exc)}", "check the task id and project") from None
    meta = op.get("metadata", {})
    return {"name": op.get("name", name), "state": meta.get("state", "UNKNOWN"), "description": meta.get("description"),
            "progress": float(meta.get("progress", 0.0)), "outputs": meta.get("destinationUris", []),
            "error": op.get("error", {}).get("message")}


def wait(name: str, every: float = 30.0, timeout: float = 24 * 3600.0,
         report: Callable[[dict[str, Any]], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll ``name`` until it ends; raise :class:`EOError` if it failed, was cancelled or timed out."""
    waited = 0.0
    while True:
        st = status(name)
        if report:
            report(st)
        if st["state"] in DONE:
            break
        if waited >= timeout:
            raise EOError(f"task {name} is still {st['state']} after {timeout:.0f} s",
                          "follow it with 'eoengine source ee status', or raise --timeout")
        sleep(every)
        waited += every
    if st["state"] != "SUCCEEDED":
        raise EOError(f"task {name} {st['state'].lower()}: {st['error'] or 'no reason given'}",
                      "fix the cause (often bucket permissions or too many pixels) and export again")
    return st
