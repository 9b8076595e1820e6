"""Issue 14: grading's metrics per slice, block-bootstrap intervals, calibration, thresholds (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eoengine.grading.grade import Outcome, judge, letter, weakest
from eoengine.grading.robustness import Curve, drop
from eoengine.grading.scoring import (
    SliceScores,
    calibration,
    class_counts,
    class_metrics,
    resample_weights,
    score_cells,
    value_metrics,
    value_sums,
)
from eoengine.grading.suite import Threshold
from eoengine.training.metrics import CONFUSION_SCALARS, scores_from_confusion


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_metrics_equal_training_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cm = rng.integers(0, 50, (5, 5))
    cm[2] = 0  # a class absent from the truth
    cm[:, 2] = 0  # and from the predictions: it does not count in the means
    ours = class_metrics(cm)
    ref = scores_from_confusion(torch.from_numpy(cm))
    for k in CONFUSION_SCALARS:
        assert ours[k] == pytest.approx(ref[k], abs=1e-12), k
    assert ours["iou_per_class"] == pytest.approx(ref["iou_per_class"])
    stacked = class_metrics(np.stack([cm, cm.T]))  # leading axes are vectorised
    assert stacked["miou"][1] == pytest.approx(scores_from_confusion(torch.from_numpy(cm.T.copy()))["miou"])


def test_class_counts_by_block_and_slice() -> None:
    truth = np.array([[0, 1, 1, 2]])
    pred = np.array([[0, 1, 2, 2]])
    keys = np.array([[0, 0, 1, -1]])  # the last pixel is in no slice
    blocks = np.array([[0, 1, 1, 1]])
    keep = np.array([[True, True, True, True]])
    c = class_counts(truth, pred, keep, keys, 2, blocks, 2, 3)
    assert c.shape == (2, 2, 3, 3)
    assert c.sum() == 3
    assert c[0, 0, 0, 0] == 1 and c[1, 0, 1, 1] == 1 and c[1, 1, 1, 2] == 1


def test_value_metrics_known_answer() -> None:
    y = np.array([[1.0, 2.0, 3.0, 4.0, np.nan]])
    p = y + 1
    zeros = np.zeros(y.shape, dtype=np.int32)
    s = value_sums(y, p, np.isfinite(y), zeros, 1, zeros, 1)[0, 0]
    m = value_metrics(s)
    sst = ((y[0, :4] - 2.5) ** 2).sum()
    assert (m["mae"], m["rmse"], m["bias"], m["pixels"]) == pytest.approx((1.0, 1.0, 1.0, 4))
    assert m["r2"] == pytest.approx(1 - 4 / sst)


def test_block_bootstrap_interval_spans_the_blocks() -> None:
    """Two equal blocks, one all right and one all wrong: resampled accuracy is 0, 0.5 or 1."""
    truth = np.zeros((2, 4, 4), dtype=np.int64)
    pred = np.zeros_like(truth)
    pred[1] = 1
    blocks = np.broadcast_to(np.array([0, 1])[:, None, None], truth.shape)
    zeros = np.zeros(truth.shape, dtype=np.int32)
    cells = class_counts(truth, pred, np.ones(truth.shape, bool), zeros, 1, blocks, 2, 2)
    w = resample_weights(2, 400, seed=0)
    px, values, low, high = score_cells(cells, False, ["accuracy"], w, 0.95)
    assert px[0] == 32 and values["accuracy"][0] == pytest.approx(0.5)
    assert (low["accuracy"][0], high["accuracy"][0]) == (0.0, 1.0)
    # one block of the same pixels: nothing to resample, so the interval is the point
    one = class_counts(truth, pred, np.ones(truth.shape, bool), zeros, 1, zeros, 1, 2)
    _, _, low1, high1 = score_cells(one, False, ["accuracy"], resample_weights(1, 50, 0), 0.95)
    assert low1["accuracy"][0] == high1["accuracy"][0] == pytest.approx(0.5)


def test_per_class_slices_are_the_class_scores() -> None:
    cm = np.array([[8, 2], [1, 9]])[None, None]
    px, values, _, _ = score_cells(cm, False, ["miou", "accuracy", "kappa"], None, 0.95, per_class=True)
    assert list(px) == [10, 10]
    assert values["miou"] == pytest.approx([8 / 11, 9 / 12])
    assert values["accuracy"] == pytest.approx([0.8, 0.9])  # a class's accuracy is its recall
    assert "kappa" not in values  # no per-class form


def test_calibration_error_known_answer() -> None:
    conf = np.full(100, 0.9)
    correct = np.arange(100) < 60
    cal = calibration(conf, correct, np.zeros(100, dtype=np.int64), 1, 10, None, 0.95)
    assert cal.ece == pytest.approx(0.3)
    assert cal.bins[9]["pixels"] == 100 and cal.bins[9]["accuracy"] == pytest.approx(0.6)
    calibrated = calibration(np.r_[np.full(50, 0.55), np.full(50, 0.95)],
                             np.r_[np.arange(50) < 27.5, np.arange(50) < 47.5], np.zeros(100, np.int64), 1, 10, None, 0.95)
    assert calibrated.ece == pytest.approx(abs(28 / 50 - 0.55) / 2 + abs(48 / 50 - 0.95) / 2)


def _table(values: list[float], pixels: list[int]) -> SliceScores:
    return SliceScores("region", [f"r{i}" for i in range(len(values))], np.array(pixels),
                       {"accuracy": np.array(values)})


def test_thresholds_every_slice_and_corruption_drop() -> None:
    overall = SliceScores("overall", ["all"], np.array([100]), {"accuracy": np.array([0.8])})
    regions = _table([0.9, 0.65, 0.2], [60, 60, 5])  # the 0.2 region is too small to judge
    every = judge(Threshold(metric="accuracy", min=0.7, every="region"), overall, [regions], None, [], 50)
    assert not every.passed and every.failing == [{"slice": "r1", "value": 0.65, "pixels": 60}]
    assert every.value == pytest.approx(0.65)
    assert judge(Threshold(metric="accuracy", min=0.6, every="region"), overall, [regions], None, [], 50).passed
    curve = Curve("haze", {}, [1, 3], {"accuracy": [0.78, 0.70]}, {"accuracy": [drop(0.8, 0.78, "accuracy"),
                                                                                 drop(0.8, 0.70, "accuracy")]})
    haze = judge(Threshold(metric="accuracy", corruption="haze", severity=3, max_drop=0.1), overall, [], None, [curve], 50)
    assert haze.value == pytest.approx(0.125) and not haze.passed
    assert drop(0.5, 0.6, "rmse") == pytest.approx(0.2)  # an error metric rising is a loss
    assert letter([]) == "-"
    outcomes = [Outcome("a", "", True, 1.0), Outcome("b", "", True, 1.0), Outcome("c", "", True, 1.0),
                Outcome("d", "", False, 0.0)]
    assert letter(outcomes) == "B" and letter(outcomes[:3]) == "A" and letter(outcomes[3:]) == "F"


def test_weakest_slices_rank_by_metric_and_skip_tiny_ones() -> None:
    rows = weakest([_table([0.9, 0.65, 0.2, 0.5], [60, 60, 5, 70])], "accuracy", 50, 2)
    assert [(r["slice"], r["pixels"]) for r in rows] == [("r3", 70), ("r1", 60)]


def test_slices_without_pixels_have_no_score_and_resamples_without_them_do_not_count() -> None:
    truth = np.zeros((2, 2, 2), dtype=np.int64)
    keys = np.zeros_like(truth, dtype=np.int32)
    keys[1] = 1  # slice 1 lies only in block 1, where every pixel is right; slice 2 has no pixel
    blocks = np.broadcast_to(np.array([0, 1])[:, None, None], truth.shape)
    pred = truth.copy()
    pred[0] = 1
    cells = class_counts(truth, pred, np.ones(truth.shape, bool), keys, 3, blocks, 2, 2)
    px, values, low, high = score_cells(cells, False, ["accuracy"], resample_weights(2, 200, 0), 0.95)
    assert list(px) == [4, 4, 0]
    assert values["accuracy"][1] == 1.0 and np.isnan(values["accuracy"][2])
    assert (low["accuracy"][1], high["accuracy"][1]) == (1.0, 1.0)  # not 0: resamples without block 1 are left out
    table = SliceScores("s", ["a", "b", "c"], px, values, low, high)
    assert table.row(2)["metrics"] == {"accuracy": None} and table.row(2)["ci"] == {"accuracy": [None, None]}


def test_a_slice_holding_every_pixel_is_not_a_weak_slice() -> None:
    whole = SliceScores("scene", ["only"], np.array([100]), {"accuracy": np.array([0.5])})
    assert weakest([whole, _table([0.9, 0.6], [50, 50])], "accuracy", 10, 5)[0]["slice"] == "r1"
    assert [r["dimension"] for r in weakest([whole], "accuracy", 10, 5)] == []


def test_calibration_takes_non_finite_confidence_as_none() -> None:
    conf = np.array([np.nan, 0.95, 0.95, 0.95])
    cal = calibration(conf, np.array([False, True, True, True]), np.zeros(4, np.int64), 1, 10, None, 0.95)
    assert cal.bins[0]["pixels"] == 1 and cal.ece == pytest.approx(0.25 * 0 + 0.75 * 0.05)


PIXEL_TRIALS = 40


def test_block_bootstrap_intervals_cover_the_true_value_at_about_the_stated_rate() -> None:
    """Blocks whose accuracies vary around a known mean (pixels within a block share their block's rate):
    the 95 % block-bootstrap interval of the accuracy covers the true mean in about 95 % of trials, while
    a pixel bootstrap (every pixel its own block) covers it far less often — it fakes precision."""
    rng = np.random.default_rng(7)
    n_blocks, pixels, trials, a, b = 40, 50, 300, 6.0, 2.0
    truth_mean = a / (a + b)
    hits = {"block": 0, "pixel": 0}
    for trial in range(trials):
        right = rng.binomial(pixels, rng.beta(a, b, n_blocks))
        cells = np.zeros((n_blocks, 1, 2, 2))
        cells[:, 0, 0, 0], cells[:, 0, 0, 1] = right, pixels - right
        _, _, low, high = score_cells(cells, False, ["accuracy"], resample_weights(n_blocks, 400, trial), 0.95)
        hits["block"] += low["accuracy"][0] <= truth_mean <= high["accuracy"][0]
        if trial >= PIXEL_TRIALS:
            continue
        flat = np.zeros((n_blocks * pixels, 1, 2, 2))
        ok = np.zeros(n_blocks * pixels, bool)
        ok[np.concatenate([np.arange(r) + i * pixels for i, r in enumerate(right)])] = True
        flat[ok, 0, 0, 0], flat[~ok, 0, 0, 1] = 1, 1
        _, _, lo2, hi2 = score_cells(flat, False, ["accuracy"], resample_weights(len(flat), 200, trial), 0.95)
        hits["pixel"] += lo2["accuracy"][0] <= truth_mean <= hi2["accuracy"][0]
    print(hits)
    assert 0.89 <= hits["block"] / trials <= 0.99
    assert hits["pixel"] / PIXEL_TRIALS < 0.8
