"""When a subscription runs: its cadence as due times, and the period of imagery each run covers.

A cadence is ``daily`` (00:00 UTC), ``weekly`` (Mondays 00:00 UTC), ``monthly`` (the 1st, 00:00
UTC), a five-field cron expression (minute hour day-of-month month day-of-week, UTC), or
``each-new-scene`` (no clock: a run whenever the search finds scenes newer than the last run's).
A run due at ``t`` covers the imagery acquired in ``[previous due time, t)``; the first covers
``[start, first due time)``. Missed due times are never fired twice: :func:`due_times` lists each
once, and whoever fires them (the server's scheduler, or ``eoengine subscription run``) records
the last one it fired.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eoengine.errors import Invalid

EACH_NEW_SCENE = "each-new-scene"
NAMED = {"daily": "0 0 * * *", "weekly": "0 0 * * mon", "monthly": "0 0 1 * *"}
"""The named cadences as cron expressions (UTC)."""
CADENCE_FIX = "use daily, weekly, monthly, each-new-scene, or a cron expression like '0 6 * * 1' (minute hour day month weekday, UTC)"
MAX_DUE = 10_000
"""At most this many due times are listed at once (a minutely cron over years is refused, not looped)."""


@dataclass(frozen=True)
class Period:
    """The imagery one run covers: acquired in ``[start, end)`` (UTC), for the run due at ``end``."""

    start: dt.datetime
    end: dt.datetime

    def interval(self) -> str:
        """The period as a STAC ``datetime`` interval (closed at both ends, the end one microsecond before ``end``)."""
        last = self.end - dt.timedelta(microseconds=1)
        return f"{_iso(self.start)}/{_iso(last)}"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def utc(t: dt.datetime) -> dt.datetime:
    """``t`` as an aware UTC time (a naive time is taken as UTC)."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


@lru_cache(maxsize=256)
def _trigger(expression: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(expression, timezone=dt.UTC)


def check_cadence(cadence: str) -> str:
    """The cadence, normalised (lower case, single spaces), if it parses.

    Args:
        cadence: a named cadence, ``each-new-scene`` or a cron expression.

    Returns:
        The normalised cadence.

    Raises:
        Invalid: it is not a named cadence and not a five-field cron expression.

    """
    text = " ".join(str(cadence).split()).lower()
    if text in NAMED or text == EACH_NEW_SCENE:
        return text
    if len(text.split()) != 5:
        raise Invalid(f"the cadence {cadence!r} does not parse: not a named cadence, and a cron expression has 5 fields",
                      CADENCE_FIX)
    try:
        _trigger(text)
    except ValueError as exc:
        raise Invalid(f"the cadence {cadence!r} does not parse: {exc}", CADENCE_FIX) from None
    return text


def is_clocked(cadence: str) -> bool:
    """Whether the cadence has due times (every cadence but ``each-new-scene``)."""
    return check_cadence(cadence) != EACH_NEW_SCENE


def next_due(cadence: str, after: dt.datetime) -> dt.datetime | None:
    """The first due time strictly after ``after``.

    Args:
        cadence: a clocked cadence (see :func:`check_cadence`).
        after: the time to look after.

    Returns:
        The due time (UTC), or None for ``each-new-scene``.

    Raises:
        Invalid: the cadence does not parse.

    """
    text = check_cadence(cadence)
    if text == EACH_NEW_SCENE:
        return None
    after = utc(after)
    fire: dt.datetime | None = _trigger(NAMED.get(text, text)).get_next_fire_time(None, after + dt.timedelta(seconds=1))
    while fire is not None and fire <= after:  # the trigger rounds to whole seconds
        fire = _trigger(NAMED.get(text, text)).get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return None if fire is None else utc(fire)


def due_times(cadence: str, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Every due time in ``(after, until]``, oldest first.

    Args:
        cadence: a clocked cadence.
        after: the last due time already fired (or the subscription's start).
        until: now (or the subscription's end, if sooner).

    Returns:
        The due times, each once; empty for ``each-new-scene``.

    Raises:
        Invalid: the cadence does not parse, or more than :data:`MAX_DUE` times fall in the span.

    """
    out: list[dt.datetime] = []
    t = next_due(cadence, after)
    until = utc(until)
    while t is not None and t <= until:
        out.append(t)
        if len(out) > MAX_DUE:
            raise Invalid(f"the cadence {cadence!r} falls due more than {MAX_DUE} times between {_iso(after)} and {_iso(until)}",
                          "choose a slower cadence, or a later start for the backfill")
        t = next_due(cadence, t)
    return out


def periods(cadence: str, start: dt.datetime, dues: list[dt.datetime], previous: dt.datetime | None) -> list[Period]:
    """The imagery period of each due time: from the due time before it (or ``previous``, or ``start``).

    Args:
        cadence: the cadence (only used to name it in errors).
        start: the subscription's start.
        dues: due times, oldest first (from :func:`due_times`).
        previous: the last due time fired before ``dues[0]``, if any.

    Returns:
        One period per due time.

    Raises:
        Invalid: the due times are not in order.

    """
    out: list[Period] = []
    begin = utc(previous) if previous is not None else utc(start)
    for due in dues:
        if due <= begin and out:
            raise Invalid(f"the due times of {cadence!r} are not in order", "list them with due_times")
        out.append(Period(min(begin, due), due))
        begin = due
    return out
