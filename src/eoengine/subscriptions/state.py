"""What a subscription remembers between runs, what each run records, and what a dry run answers.

:class:`SubscriptionState` is all a runner needs to know what is due next: the last due time
fired, the newest scene processed, the run keys done, the periods that failed (retried next
time) and the previous map (the base of the change). It is plain JSON, persisted by the caller:
the server in its database, ``eoengine subscription run`` in ``SPEC.state.json`` next to the
spec, written atomically (:func:`save_state`: a temporary file, then a rename) so a crash leaves
the old state or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eoengine.errors import Invalid

RunStatus = Literal["succeeded", "failed", "no-imagery", "skipped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PeriodRef(_Model):
    """A period of imagery, ``[start, end)`` (UTC); for ``each-new-scene`` the span of the scenes' times."""

    start: dt.datetime
    end: dt.datetime


class SubscriptionState(_Model):
    """What is persisted between runs; ``SubscriptionState()`` is a subscription that never ran."""

    last_due: dt.datetime | None = Field(default=None, description="The last due time fired (clocked cadences)")
    newest_scene: dt.datetime | None = Field(default=None, description="Acquisition time of the newest scene processed")
    keys_done: list[str] = Field(default_factory=list, description="Run keys whose outputs are complete")
    failed: list[PeriodRef] = Field(default_factory=list, description="Periods that failed; retried at the next run")
    previous_key: str | None = Field(default=None, description="The last successful run's key (its map is the change base)")
    previous_map: str | None = Field(default=None, description="The last successful run's map (a path)")
    completed: bool = Field(default=False, description="The subscription's end has passed and every period ran")
    runs: int = Field(default=0, description="How many runs were recorded in all")
    pixels_per_second: float | None = Field(default=None, description="The model's throughput, measured at the last run")


class Delivery(_Model):
    """One webhook notification: where it went, how often it was tried and how it ended (never the secret)."""

    id: str
    topic: str
    url: str
    attempts: int
    status_code: int | None = None
    error: str | None = None
    outcome: Literal["delivered", "failed"]


class ClassStat(_Model):
    """The area of one class within the subscription's area."""

    code: int
    name: str
    pixels: int
    hectares: float


class Transition(_Model):
    """Hectares that went from class ``from_class`` in the previous run's map to ``to_class`` in this one."""

    from_class: str
    to_class: str
    hectares: float


class ChangeSummary(_Model):
    """The change against the previous successful run."""

    previous_key: str
    changed_hectares: float
    transitions: list[Transition]
    polygons: str = Field(description="GeoJSON file of the change polygons (lon/lat)")
    polygon_count: int


class Drift(_Model):
    """Grading's monitor on this run's scenes: ``ok`` / ``alert`` with its measures, or ``no-reference``."""

    status: Literal["ok", "warn", "alert", "no-reference"]
    measure: dict[str, Any] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)


class RunError(_Model):
    """Why a run failed, and what to do about it."""

    error: str
    fix: str | None = None


class RunRecord(_Model):
    """One run of a subscription: its key, period, scenes, model, outputs, measures and notifications."""

    key: str | None = Field(default=None, description="hash(model version + sorted scene ids + composite); None without scenes")
    period_start: dt.datetime
    period_end: dt.datetime
    status: RunStatus
    scene_ids: list[str] = Field(default_factory=list)
    newest_scene: dt.datetime | None = Field(default=None, description="Acquisition time of the newest input scene")
    composite: str = "newest"
    model: str = Field(default="", description="The reference the spec names")
    model_version: str | None = Field(default=None, description="name/version for a registry model, else the package path")
    map_path: str | None = None
    pixels: int | None = Field(default=None, description="Pixels of the map")
    predict_seconds: float | None = Field(default=None, description="Time the prediction took")
    item_path: str | None = None
    stats: list[ClassStat] = Field(default_factory=list)
    change: ChangeSummary | None = None
    drift: Drift | None = None
    deliveries: list[Delivery] = Field(default_factory=list)
    error: RunError | None = None
    started: dt.datetime
    finished: dt.datetime | None = None


class PeriodPlan(_Model):
    """What a dry run found for one period."""

    start: dt.datetime
    end: dt.datetime
    scene_ids: list[str]
    chosen: list[str] = Field(description="The scenes the composite rule takes")
    tiles: int
    pixels: int


class DryRun(_Model):
    """What running now would do, answered from metadata only (nothing fetched, nothing written)."""

    periods: list[PeriodPlan]
    tiles: int
    pixels: int
    compute_seconds: float
    storage_bytes: int
    basis: str = Field(description="How the estimates were made")
    completed: bool = False


def load_state(path: Path) -> SubscriptionState:
    """The state saved at ``path``, or the empty state if there is none yet.

    Args:
        path: the state file (JSON).

    Returns:
        The state.

    Raises:
        Invalid: the file is not a subscription state.

    """
    if not path.is_file():
        return SubscriptionState()
    try:
        return SubscriptionState.model_validate_json(path.read_text())
    except (ValidationError, ValueError) as exc:
        raise Invalid(f"{path} is not a subscription state: {str(exc).splitlines()[0]}",
                      "restore it from a backup, or delete it to start over (runs already done are found again)") from None


def save_state(state: SubscriptionState, path: Path) -> Path:
    """Write the state atomically (a temporary file, flushed, then renamed over the old one).

    Args:
        state: the state to keep.
        path: the state file.

    Returns:
        ``path``.

    """
    write_json_atomic(path, state.model_dump_json(indent=2))
    return path


def write_json_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    Args:
        path: the final file.
        text: what it holds.

    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
