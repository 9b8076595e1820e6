"""Issue 14: the drift measures, against values computed here from the normal distribution.

For a reference N(0, 1) and a current N(δ, 1), the reference's deciles are the normal's
quantiles z_i, each bin holds p = 0.1 of the reference and q_i = Φ(z_{i+1} − δ) − Φ(z_i − δ) of
the current, so PSI = Σ (q_i − p) ln(q_i / p); the two distribution functions are furthest
apart at δ/2, so KS = 2Φ(δ/2) − 1. Large samples must land close to those.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from eoengine.grading.drift import (
    EPSILON,
    channel_drift,
    input_distance,
    ks,
    mean_shift,
    psi,
    std_ratio,
    total_variation,
)

N = 400_000


def _normal_psi(delta: float, bins: int = 10) -> float:
    edges = np.concatenate([[-np.inf], norm.ppf(np.arange(1, bins) / bins), [np.inf]])
    q = norm.cdf(edges[1:] - delta) - norm.cdf(edges[:-1] - delta)
    p = np.full(bins, 1 / bins)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(N)


def test_identical_samples_have_no_drift(reference: np.ndarray) -> None:
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert ks(reference, reference) == (0.0, 1.0)
    assert mean_shift(reference, reference) == 0.0
    assert std_ratio(reference, reference) == 1.0


@pytest.mark.parametrize("delta", [0.25, 0.5, 1.0])
def test_a_shifted_normal_gives_the_psi_and_ks_of_the_normal_distribution(reference: np.ndarray, delta: float) -> None:
    current = np.random.default_rng(2).standard_normal(N) + delta
    assert psi(reference, current) == pytest.approx(_normal_psi(delta), rel=0.05)
    statistic, pvalue = ks(reference, current)
    assert statistic == pytest.approx(2 * norm.cdf(delta / 2) - 1, abs=0.005)
    assert pvalue < 1e-10
    assert mean_shift(reference, current) == pytest.approx(delta, abs=0.01)
    assert std_ratio(reference, current) == pytest.approx(1.0, abs=0.01)


def test_drift_grows_with_the_shift(reference: np.ndarray) -> None:
    noise = np.random.default_rng(3).standard_normal(50_000)
    shifts = [0.0, 0.1, 0.3, 0.6, 1.0, 2.0]
    psis = [psi(reference, noise + d) for d in shifts]
    kss = [ks(reference, noise + d)[0] for d in shifts]
    assert psis == sorted(psis) and len(set(psis)) == len(psis)
    assert kss == sorted(kss) and len(set(kss)) == len(kss)


def test_empty_bins_count_with_epsilon() -> None:
    ref = np.arange(1000, dtype=float)
    current = np.full(50, 5000.0)  # every value above the reference: nine empty bins, one full
    expected = 9 * (EPSILON - 0.1) * math.log(EPSILON / 0.1) + (1 - 0.1) * math.log(1 / 0.1)
    assert psi(ref, current) == pytest.approx(expected)


def test_tied_values_merge_bins() -> None:
    ref = np.repeat([0.0, 1.0, 2.0, 3.0], 250)  # deciles coincide: four bins remain
    assert psi(ref, ref[::-1].copy()) == pytest.approx(0.0, abs=1e-12)
    current = np.repeat([0.0, 1.0, 2.0, 3.0], [400, 200, 200, 200])
    p, q = np.full(4, 0.25), np.array([0.4, 0.2, 0.2, 0.2])
    assert psi(ref, current) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))


def test_nan_is_ignored(reference: np.ndarray) -> None:
    current = np.random.default_rng(4).standard_normal(10_000) + 0.5
    holed = np.concatenate([reference[:10_000], np.full(3000, np.nan)])
    assert psi(holed, current) == psi(reference[:10_000], current)
    assert ks(holed, current) == ks(reference[:10_000], current)
    assert mean_shift(holed, current) == mean_shift(reference[:10_000], current)
    assert math.isnan(psi(np.full(5, np.nan), current))
    assert math.isnan(ks(current, np.full(5, np.nan))[0])


def test_mean_shift_and_std_ratio_of_an_affine_change(reference: np.ndarray) -> None:
    current = 2 * reference + 3
    m, s = reference.mean(), reference.std()
    assert mean_shift(reference, current) == pytest.approx((2 * m + 3 - m) / s)
    assert std_ratio(reference, current) == pytest.approx(2.0)
    assert mean_shift(np.ones(10), np.full(4, 2.0)) == math.inf
    assert std_ratio(np.ones(10), current[:10]) == math.inf


def test_channel_drift_gives_one_record_per_channel(reference: np.ndarray) -> None:
    ref = np.stack([reference[:20_000], reference[20_000:40_000] * 2], axis=1)
    cur = np.stack([reference[40_000:50_000] + 1, reference[50_000:60_000] * 2], axis=1)
    records = channel_drift(ref, cur, ["red", "nir"])
    assert [r.channel for r in records] == ["red", "nir"]
    red, nir = records
    assert red.psi == psi(ref[:, 0], cur[:, 0]) and red.ks == ks(ref[:, 0], cur[:, 0])[0]
    assert red.mean_shift == pytest.approx(1.0, abs=0.03) and abs(nir.mean_shift) < 0.05
    assert (red.reference_count, red.current_count) == (20_000, 10_000)
    assert red.psi > 0.25 > 0.1 > nir.psi
    assert input_distance(records) == pytest.approx((abs(red.mean_shift) + abs(nir.mean_shift)) / 2)
    assert nir.as_dict()["channel"] == "nir"
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        channel_drift(ref, cur[:, :1], ["red", "nir"])


def test_total_variation_of_class_shares() -> None:
    assert total_variation([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == 0.0
    assert total_variation([0.5, 0.5, 0.0], [0.2, 0.5, 0.3]) == pytest.approx(0.3)
    assert total_variation([1.0, 0.0], [0.0, 1.0]) == 1.0
