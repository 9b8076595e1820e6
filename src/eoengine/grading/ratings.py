"""Ratings of drift measures: thresholds, ok / warn / alert, and the reasons that name scene, measure and number.

:class:`MonitorThresholds` holds where each measure of :mod:`eoengine.grading.monitor` turns
warn and alert; a :class:`Verdict` collects one scene's ratings. A value at or above a limit
takes its level, and every warn or alert is a reason such as
``scene new.tif: channel nir PSI 0.41 ≥ 0.25 (alert)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

from eoengine.errors import Invalid
from eoengine.grading.drift import ChannelDrift

Status = Literal["ok", "warn", "alert"]
LEVELS: tuple[Status, ...] = ("ok", "warn", "alert")


@dataclass(frozen=True)
class MonitorThresholds:
    """Where a measure turns warn and alert (a value at or above the limit); defaults as documented per field.

    Raises:
        Invalid: A warn limit above its alert limit.

    """

    psi_warn: float = 0.1
    """PSI of a channel, the confidence or predicted values: 0.1 and 0.25 are the industry convention."""
    psi_alert: float = 0.25
    ks_warn: float = 0.1
    """Kolmogorov–Smirnov statistic (the largest gap between the distribution functions)."""
    ks_alert: float = 0.2
    shift_warn: float = 0.5
    """|mean shift| of a channel in train standard deviations (of predicted values: in the test split's)."""
    shift_alert: float = 1.0
    spread_warn: float = 1.5
    """Std ratio as a factor either way (a ratio of 0.5 is a factor of 2)."""
    spread_alert: float = 2.0
    shares_warn: float = 0.1
    """Total variation distance between the scene's class shares and the test split's."""
    shares_alert: float = 0.2
    confidence_warn: float = 0.05
    """Drop of the mean confidence (top class probability) from the test split's."""
    confidence_alert: float = 0.15
    resolution_warn: float = 1.5
    """Factor between the scene's resolution and the nearest of the dataset's."""
    resolution_alert: float = 3.0
    distance_warn: float = 0.25
    """Input distance beyond the largest of the test split's scenes, in train standard deviations."""
    distance_alert: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.endswith("_warn") and getattr(self, f.name) > getattr(self, f.name.replace("_warn", "_alert")):
                limit = f.name.removesuffix("_warn")
                raise Invalid(f"threshold {limit}: warn {getattr(self, f.name)} is above alert "
                              f"{getattr(self, limit + '_alert')}", "give a warn limit at or below the alert limit")


def thresholds_from(limits: Sequence[str]) -> MonitorThresholds:
    """Thresholds from ``NAME=VALUE`` overrides of the defaults (e.g. ``psi_warn=0.2``).

    Args:
        limits: The overrides.

    Returns:
        The thresholds.

    Raises:
        Invalid: A malformed override, an unknown name, a value that is not a number, or warn above alert.

    """
    names = [f.name for f in fields(MonitorThresholds)]
    values: dict[str, float] = {}
    for limit in limits:
        name, sep, text = limit.partition("=")
        if not sep or name.strip() not in names:
            raise Invalid(f"--limit {limit!r} does not name a threshold", f"use NAME=VALUE with NAME one of: "
                                                                          f"{', '.join(names)}")
        try:
            values[name.strip()] = float(text)
        except ValueError:
            raise Invalid(f"--limit {limit!r}: {text!r} is not a number", "give a number, e.g. psi_warn=0.2") from None
    return MonitorThresholds(**values)


def worst(statuses: Sequence[Status]) -> Status:
    """The worst of some statuses (ok for none)."""
    return max(statuses, key=LEVELS.index, default="ok")


class Verdict:
    """Ratings of one scene's measures: each warn or alert adds a reason naming the scene, the measure and the number."""

    def __init__(self, scene: str) -> None:
        self.scene = scene
        self.reasons: list[str] = []
        self.statuses: list[Status] = []

    def rate(self, what: str, value: float, warn: float, alert: float, shown: str | None = None) -> None:
        """Rate ``value`` (at or above a limit: that level); NaN is not rated.

        Args:
            what: The measure, as the reason names it (``channel nir PSI``).
            value: The rated number.
            warn: Its warn limit.
            alert: Its alert limit.
            shown: How the reason shows the value (default: two decimals).

        """
        if math.isnan(value):
            return
        status: Status = "alert" if value >= alert else "warn" if value >= warn else "ok"
        if status != "ok":
            limit = alert if status == "alert" else warn
            self.add(status, f"{what} {shown or f'{value:.2f}'} ≥ {limit:g}")

    def add(self, status: Status, reason: str) -> None:
        """Record a status with its reason (``(status)`` is appended)."""
        self.statuses.append(status)
        self.reasons.append(f"scene {self.scene}: {reason} ({status})")

    @property
    def status(self) -> Status:
        """The worst rating so far."""
        return worst(self.statuses)


def rate_distribution(verdict: Verdict, what: str, d: ChannelDrift, t: MonitorThresholds, moments: bool = True,
                       unit: str = "train std") -> None:
    """Rate a distribution's drift: PSI and KS; with ``moments``, its mean shift and spread too.

    Args:
        verdict: The scene's ratings, which the reasons go to.
        what: The distribution, as reasons name it (``channel nir``, ``confidence``).
        d: Its drift.
        t: The thresholds.
        moments: Also rate |mean shift| and the std ratio (as a factor either way).
        unit: What the mean shift is measured in (the reference's standard deviation).

    """
    verdict.rate(f"{what} PSI", d.psi, t.psi_warn, t.psi_alert)
    verdict.rate(f"{what} KS", d.ks, t.ks_warn, t.ks_alert)
    if not moments:
        return
    verdict.rate(f"{what} |mean shift|", abs(d.mean_shift), t.shift_warn, t.shift_alert,
                 f"{abs(d.mean_shift):.2f} {unit} ({d.mean_shift:+.2f})")
    r = d.std_ratio
    if r > 0 and not math.isnan(r):  # a factor either way: half the spread rates as twice the spread
        verdict.rate(f"{what} std ratio", max(r, 1 / r), t.spread_warn, t.spread_alert,
                     f"{r:.2f}" if r >= 1 else f"{r:.2f} (a factor {1 / r:.2f})")
