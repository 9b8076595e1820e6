"""Which periods of imagery are due, the scenes each one holds, and which of them the compositing rule takes.

Clocked cadences fire their due times from the last one fired (the first run: every period from
``start`` with ``backfill``, else only the latest); ``each-new-scene`` has one period, from just
after the newest scene processed (or ``start``) until now (a failed run does not move the newest
scene, so the next period holds its scenes again). Clocked periods that failed before come first,
so nothing is skipped. Nothing after the subscription's ``end`` is due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pystac

from eoengine.config.query import SearchQuery
from eoengine.subscriptions.cadence import EACH_NEW_SCENE, Period, due_times, periods, utc
from eoengine.subscriptions.spec import SubscriptionSpec
from eoengine.subscriptions.state import PeriodRef, SubscriptionState

SCENE_LIMIT = 500
"""The most scenes one period searches for."""


@dataclass(frozen=True)
class Due:
    """The periods to run now, oldest first, and the last due time they fire (None: no clock)."""

    periods: list[Period]
    last_due: dt.datetime | None
    completed: bool


def due_periods(spec: SubscriptionSpec, state: SubscriptionState, now: dt.datetime) -> Due:
    """The periods due at ``now``: the failed ones again, then the new ones (see the module docs).

    Args:
        spec: the subscription.
        state: what earlier runs left.
        now: the time of this run.

    Returns:
        The periods, the last due time fired with them, and whether the subscription is complete after them.

    Raises:
        Invalid: the cadence falls due too often over the span.

    """
    now = utc(now)
    until = min(now, spec.end) if spec.end is not None else now
    if spec.cadence == EACH_NEW_SCENE:  # a failed run left the newest scene where it was: this period retries it
        begin = state.newest_scene + dt.timedelta(microseconds=1) if state.newest_scene else spec.start
        fresh = [Period(begin, until)] if until > begin else []
        return Due(fresh, None, spec.end is not None and now >= spec.end)
    retry = [Period(p.start, p.end) for p in state.failed]
    after = state.last_due or spec.start
    dues = due_times(spec.cadence, after, until) if until > after else []
    new = periods(spec.cadence, spec.start, dues, state.last_due)
    if state.last_due is None and not spec.backfill:
        new = new[-1:]
    last = dues[-1] if dues else state.last_due
    ended = spec.end is not None and now >= spec.end
    return Due(retry + new, last, ended)


def period_query(spec: SubscriptionSpec, period: Period, limit: int = SCENE_LIMIT) -> SearchQuery:
    """The search for the scenes of one period over the subscription's area, with its filters.

    Args:
        spec: the subscription.
        period: the imagery period.
        limit: the most scenes to find.

    Returns:
        The query, newest first.

    """
    return SearchQuery.of({"intersects": spec.area, "datetime": period.interval(), "collections": spec.collections,
                           "max_cloud": spec.max_cloud, "query": spec.query, "limit": limit,
                           "sort": "datetime", "descending": True})


def find_scenes(spec: SubscriptionSpec, period: Period) -> list[pystac.Item]:
    """The scenes of one period over the area, newest first.

    Args:
        spec: the subscription.
        period: the imagery period.

    Returns:
        The items found.

    Raises:
        Unavailable: the catalog cannot be reached.
        BadQuery: the catalog refuses the search.

    """
    from eoengine.inference.area import search_items

    return search_items(spec.source, period_query(spec, period))


def choose(items: list[pystac.Item], rule: str) -> list[pystac.Item]:
    """The scenes the compositing rule takes: the newest, the least cloudy (ties: the newer), or all (median).

    Args:
        items: the period's scenes, newest first.
        rule: ``newest``, ``least-cloudy`` or ``median``.

    Returns:
        The chosen scenes (empty when there are none).

    """
    if not items or rule == "median":
        return list(items)
    if rule == "least-cloudy":
        return [min(items, key=lambda i: float(i.properties.get("eo:cloud_cover", 100.0)))]
    return [items[0]]


def as_ref(period: Period) -> PeriodRef:
    """A period as the state keeps it."""
    return PeriodRef(start=period.start, end=period.end)
