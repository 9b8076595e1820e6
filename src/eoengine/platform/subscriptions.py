"""Subscriptions on the server: a spec checked inside its project, its states, its clock and how it is shown.

A spec is checked as ``eoengine subscription run`` checks it (:func:`eoengine.subscriptions.spec.parse_spec`),
then inside the project: ``source`` defaults to ``project`` (the project's imagery catalog, refreshed
before each run), or is a STAC API URL, or a catalog folder inside the project folder; a model package
folder must lie inside it too; a ``models:/`` reference must name a model version or alias of the
project's own registry, and a ``runs:/`` one a run of its store — now, so a typo is refused on creation
rather than failing every run (an alias is still resolved again at each run).

States (:data:`ACTIONS` says which change is allowed from where): ``pending`` until its start,
``active``, ``suspended`` (paused), ``completed`` (its end passed), ``cancelled``, ``failed`` (after
:data:`MAX_FAILURES` failed runs in a row). The clock is the real one unless ``EOENGINE_CLOCK_FILE``
names a file holding an ISO-8601 time: then that time is "now" for the scheduler, "run now" and the
runs (tests and demos move time by rewriting the file).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from eoengine.errors import Conflict, Invalid
from eoengine.platform.db.models import Subscription, utcnow
from eoengine.subscriptions.cadence import EACH_NEW_SCENE, next_due, utc
from eoengine.subscriptions.spec import SubscriptionSpec, parse_spec

SUBSCRIPTIONS_DIR = "subscriptions"
"""The folder under a project's ``output_dir`` holding each subscription's outputs (``<id>/``) and the fetch cache."""
SOURCE_PROJECT = "project"
"""``source`` of a spec on the server that means the project's own imagery catalog."""
CLOCK_ENV = "EOENGINE_CLOCK_FILE"
MAX_FAILURES = 3
"""Failed runs in a row after which a subscription becomes ``failed`` (resume it once the cause is fixed)."""
STATES = ("pending", "active", "suspended", "completed", "cancelled", "failed")
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "pause": (frozenset({"pending", "active"}), "suspended"),
    "resume": (frozenset({"suspended", "failed"}), "active"),
    "cancel": (frozenset({"pending", "active", "suspended", "failed"}), "cancelled"),
}
"""Per action: the states it may start from, and the state it leads to (resume: ``pending`` before the start)."""
SECRET_SHOWN = "********"


def now() -> dt.datetime:
    """The server's "now": the time in ``EOENGINE_CLOCK_FILE`` when that is set, else the real time (UTC).

    Returns:
        An aware UTC time.

    Raises:
        Invalid: The clock file is missing or holds no ISO-8601 time.

    """
    path = os.environ.get(CLOCK_ENV)
    if not path:
        return utcnow()
    try:
        return utc(dt.datetime.fromisoformat(Path(path).read_text().strip().replace("Z", "+00:00")))
    except (OSError, ValueError) as exc:
        raise Invalid(f"the clock file {path} ({CLOCK_ENV}) holds no ISO-8601 time: {exc}",
                      f"write a time like 2026-01-01T00:00:00Z into it, or unset {CLOCK_ENV}") from None


def server_spec(data: Any) -> SubscriptionSpec:
    """A spec as sent to the server: ``source`` left out means the project's catalog.

    Args:
        data: The spec (JSON object).

    Returns:
        The checked spec.

    Raises:
        Invalid: ``parse_spec``'s messages.

    """
    if isinstance(data, dict) and not data.get("source"):
        data = data | {"source": SOURCE_PROJECT}
    return parse_spec(data)


def first_due(spec: SubscriptionSpec, at: dt.datetime) -> dt.datetime | None:
    """When a new (or resumed) subscription is due first.

    A backfill is due at once (its first run maps the history from the start); otherwise the first
    due time after the later of start and ``at``; ``each-new-scene`` polls from the later of the two.

    Args:
        spec: The spec.
        at: Now.

    Returns:
        The due time (None: none falls before the end).

    """
    begin = max(spec.start, at)
    if spec.cadence == EACH_NEW_SCENE:
        due: dt.datetime | None = begin
    elif spec.backfill and spec.start <= at:
        due = at
    else:
        due = next_due(spec.cadence, begin)
    return due if due is not None and (spec.end is None or due <= spec.end) else None


def start_state(spec: SubscriptionSpec, at: dt.datetime) -> str:
    """``pending`` before the start, else ``active``."""
    return "pending" if at < spec.start else "active"


def transition(sub: Subscription, action: str, at: dt.datetime) -> str:
    """Apply a pause, resume or cancel to a subscription row (its state, ``updated_at``, a failed one's count).

    Args:
        sub: The row (locked by the caller).
        action: ``pause``, ``resume`` or ``cancel``.
        at: Now.

    Returns:
        The state it was in.

    Raises:
        Conflict: The action is not allowed from the subscription's state (the fix says what is).

    """
    starts, target = ACTIONS[action]
    before = sub.state
    if before not in starts:
        allowed = [name for name, (froms, _) in ACTIONS.items() if before in froms]
        raise Conflict(f"subscription {sub.id} is {before}: it cannot be {'resumed' if action == 'resume' else action + 'ed'}",
                       f"from {before} it can be: {', '.join(allowed)}" if allowed else
                       "it has ended; create a new subscription (another name) to watch the area again")
    spec = SubscriptionSpec.model_validate(sub.spec)
    if action == "resume":
        target = start_state(spec, at)
        sub.failures = 0
        if sub.next_due is None or before == "failed":
            sub.next_due = first_due(spec, at)
    sub.state, sub.updated_at = target, at
    return before


def public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored spec as it may be shown or logged: webhook secrets masked.

    Args:
        spec: The stored spec (JSON).

    Returns:
        A copy without the secrets.

    """
    hooks = [hook | {"secret": SECRET_SHOWN} for hook in spec.get("webhooks") or []]
    return spec | {"webhooks": hooks}


def output_folder(output_path: Path, sub_id: int) -> Path:
    """Where a subscription's runs write (the core's output folder: runs, collection, history, statistics).

    Args:
        output_path: The project's ``output_dir``.
        sub_id: The subscription.

    Returns:
        ``<output_dir>/subscriptions/<id>``.

    """
    return output_path / SUBSCRIPTIONS_DIR / str(sub_id)


def runnable(spec: SubscriptionSpec, folder: Path, catalog: Path) -> SubscriptionSpec:
    """A stored spec as it runs on the server: ``project`` the catalog folder, relative paths the project's.

    Args:
        spec: The stored spec.
        folder: The project folder.
        catalog: The project's imagery catalog folder (``<output_dir>/catalog``).

    Returns:
        The spec with an absolute ``source`` (or its URL) and model folder.

    """
    source = str(catalog) if spec.source == SOURCE_PROJECT else spec.source
    if "://" not in source:
        source = str(folder / source)
    model = spec.model if ":/" in spec.model else str(folder / spec.model)
    return spec.model_copy(update={"source": source, "model": model})
