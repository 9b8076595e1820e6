"""Distribution drift between a reference sample and a current one: pure numpy (and scipy) functions.

A monitor compares what a model sees now with what it was trained and graded on; these
functions measure by how much one sample of values differs from another:

- :func:`psi`, the population stability index over ten quantile bins of the reference
  (the credit-scoring convention: below 0.1 stable, 0.1 to 0.25 a moderate shift, above
  0.25 a significant one);
- :func:`ks`, the two-sample Kolmogorov–Smirnov statistic (the largest gap between the two
  empirical distribution functions) and its p-value. With the tens of thousands of pixels a
  monitor samples, the p-value is tiny for any shift, so thresholds act on the statistic;
- :func:`mean_shift` in reference standard deviations and :func:`std_ratio`, which say which
  way a distribution moved;
- :func:`total_variation` for class shares (categorical distributions).

NaN values are ignored everywhere (nodata pixels). A sample with no values left gives NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

EPSILON = 1e-4
"""The smallest share a PSI bin (or class) counts with: an empty bin would make the index infinite."""


def _finite(values: np.ndarray) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return flat[~np.isnan(flat)]


def _psi_terms(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.maximum(p, EPSILON), np.maximum(q, EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """The population stability index of ``current`` against ``reference``.

    The bins are the reference's quantiles (``bins`` of equal reference share; fewer where
    tied values make quantiles coincide), open-ended below the first and above the last, so
    every current value falls in one. PSI = Σ (q − p)·ln(q / p) over the bins, where p and q
    are the reference's and the current sample's shares, each at least :data:`EPSILON`.

    Args:
        reference: The reference values (any shape; NaN ignored).
        current: The current values (any shape; NaN ignored).
        bins: Quantile bins of the reference.

    Returns:
        The index (0 for identical distributions, larger the further apart); NaN if either
        sample has no values.

    """
    ref, cur = _finite(reference), _finite(current)
    if not len(ref) or not len(cur):
        return math.nan
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=len(inner) + 1) / len(ref)
    q = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=len(inner) + 1) / len(cur)
    return _psi_terms(p, q)


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov–Smirnov statistic and p-value (scipy's ``ks_2samp``, two-sided).

    Args:
        reference: The reference values (NaN ignored).
        current: The current values (NaN ignored).

    Returns:
        (statistic, p-value): the largest distance between the two empirical distribution
        functions (0 to 1), and the chance of one at least as large if both samples came from
        one distribution; (NaN, NaN) if either sample has no values.

    """
    ref, cur = _finite(reference), _finite(current)
    if not len(ref) or not len(cur):
        return math.nan, math.nan
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def mean_shift(reference: np.ndarray, current: np.ndarray) -> float:
    """How far the current mean is from the reference mean, in reference standard deviations.

    Args:
        reference: The reference values (NaN ignored).
        current: The current values (NaN ignored).

    Returns:
        (mean(current) − mean(reference)) / std(reference): signed; ±inf if the reference is
        constant and the means differ (0 if they do not); NaN if either sample is empty.

    """
    ref, cur = _finite(reference), _finite(current)
    if not len(ref) or not len(cur):
        return math.nan
    diff, std = float(cur.mean() - ref.mean()), float(ref.std())
    if std == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / std


def std_ratio(reference: np.ndarray, current: np.ndarray) -> float:
    """The current standard deviation over the reference one.

    Args:
        reference: The reference values (NaN ignored).
        current: The current values (NaN ignored).

    Returns:
        std(current) / std(reference): 1 for the same spread; inf if only the reference is
        constant, 1 if both are; NaN if either sample is empty.

    """
    ref, cur = _finite(reference), _finite(current)
    if not len(ref) or not len(cur):
        return math.nan
    a, b = float(ref.std()), float(cur.std())
    if a == 0:
        return 1.0 if b == 0 else math.inf
    return b / a


def total_variation(reference: ArrayLike, current: ArrayLike) -> float:
    """The total variation distance between two categorical distributions: half the sum of absolute differences.

    Args:
        reference: The reference shares (summing to 1).
        current: The current shares, category by category.

    Returns:
        The share of the mass that would have to move (0 to 1).

    """
    return float(0.5 * np.abs(np.asarray(current, dtype=np.float64) - np.asarray(reference, dtype=np.float64)).sum())


@dataclass(frozen=True)
class ChannelDrift:
    """How one channel's current values differ from its reference values."""

    channel: str
    psi: float
    ks: float
    ks_pvalue: float
    mean_shift: float
    """In reference standard deviations, signed."""
    std_ratio: float
    reference_count: int
    """Reference values compared (NaN left out)."""
    current_count: int
    """Current values compared (NaN left out)."""

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dictionary (JSON-ready: NaN and inf as None)."""
        return {k: json_number(v) for k, v in asdict(self).items()}


def json_number(value: Any) -> Any:
    """``value`` with a non-finite float as None (JSON has no NaN or infinity); anything else as it is."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def drift_of(name: str, reference: np.ndarray, current: np.ndarray, bins: int = 10) -> ChannelDrift:
    """Every measure of this module for one channel's (or one output's) values.

    Args:
        name: What the values are (a channel name, "confidence", ...).
        reference: The reference values (NaN ignored).
        current: The current values (NaN ignored).
        bins: PSI's quantile bins.

    Returns:
        The channel's record.

    """
    statistic, pvalue = ks(reference, current)
    return ChannelDrift(
        channel=name, psi=psi(reference, current, bins), ks=statistic, ks_pvalue=pvalue,
        mean_shift=mean_shift(reference, current), std_ratio=std_ratio(reference, current),
        reference_count=len(_finite(reference)), current_count=len(_finite(current)),
    )


def channel_drift(reference: np.ndarray, current: np.ndarray, names: Sequence[str], bins: int = 10) -> list[ChannelDrift]:
    """Drift of every channel: reference pixels (n, C) against current pixels (m, C).

    Args:
        reference: Reference values, one row per pixel, one column per channel.
        current: Current values in the same columns.
        names: The channels' names, one per column.
        bins: PSI's quantile bins.

    Returns:
        One record per channel, in column order.

    Raises:
        ValueError: The arrays are not 2-D with one column per name.

    """
    reference, current = np.asarray(reference), np.asarray(current)
    if reference.ndim != 2 or current.ndim != 2 or reference.shape[1] != len(names) or current.shape[1] != len(names):
        raise ValueError(f"channel_drift needs (n, {len(names)}) and (m, {len(names)}) arrays, "
                         f"got {reference.shape} and {current.shape}")
    return [drift_of(name, reference[:, k], current[:, k], bins) for k, name in enumerate(names)]


def input_distance(drifts: Sequence[ChannelDrift]) -> float:
    """One number for how far a sample's inputs are from the reference: the mean |mean shift| over channels.

    Args:
        drifts: Per-channel records (:func:`channel_drift`); channels without values are left out.

    Returns:
        The mean absolute mean shift, in reference standard deviations; NaN if no channel has values.

    """
    shifts = [abs(d.mean_shift) for d in drifts if not math.isnan(d.mean_shift)]
    return float(np.mean(shifts)) if shifts else math.nan
