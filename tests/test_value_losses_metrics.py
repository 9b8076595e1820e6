"""Regression and multi-label losses and metrics on known values, and against torchmetrics/torch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.functional.classification import multilabel_f1_score, multilabel_hamming_distance

from eoengine.errors import EOError
from eoengine.training.losses import build_loss, loss_names
from eoengine.training.value_metrics import MultilabelMetrics, RegressionMetrics

NAN = float("nan")


def test_regression_losses_known_values_and_skip_unknown_targets() -> None:
    pred = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    target = torch.tensor([[0.0, 2.0], [6.0, NAN]])  # diffs 1, 0, -3; the NaN pixel does not count
    assert float(build_loss("mse", kind="regression")(pred, target)) == pytest.approx((1 + 0 + 9) / 3)
    assert float(build_loss("mae", kind="regression")(pred, target)) == pytest.approx((1 + 0 + 3) / 3)
    huber = build_loss("huber", kwargs={"delta": 1.0}, kind="regression")(pred, target)
    assert float(huber) == pytest.approx((0.5 + 0 + (3 - 0.5)) / 3)
    assert float(huber) == pytest.approx(float(F.huber_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 6.0]), delta=1.0)))
    logcosh = build_loss("log_cosh", kind="regression")(pred, target)
    assert float(logcosh) == pytest.approx((math.log(math.cosh(1)) + 0 + math.log(math.cosh(3))) / 3, rel=1e-5)
    q = build_loss("quantile", kwargs={"quantile": 0.9}, kind="regression")(pred, target)
    # errors t - p: -1 (over-prediction, weight 0.1), 0, +3 (under, weight 0.9)
    assert float(q) == pytest.approx((0.1 * 1 + 0 + 0.9 * 3) / 3)
    assert float(build_loss("mse", kind="regression")(pred, torch.full_like(target, NAN))) == 0.0


def test_multilabel_losses_known_values() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 3.0, -2.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    bce = build_loss("bce", kind="multilabel")(logits, target)
    assert float(bce) == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, target)))
    focal = build_loss("focal", kwargs={"gamma": 0.0, "alpha": None}, kind="multilabel")(logits, target)
    assert float(focal) == pytest.approx(float(bce))  # gamma 0, no alpha: plain BCE
    sharper = build_loss("focal", kwargs={"gamma": 2.0, "alpha": None}, kind="multilabel")(logits, target)
    assert float(sharper) < float(focal)  # easy answers count less
    asl = build_loss("asymmetric", kwargs={"gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0}, kind="multilabel")
    assert float(asl(logits, target)) == pytest.approx(float(bce), rel=1e-5)  # no asymmetry: BCE
    assert float(build_loss("asymmetric", kind="multilabel")(logits, target)) < float(bce)


def test_losses_are_checked_against_the_output_type() -> None:
    from eoengine.training.losses import LOSSES_BY_TYPE

    assert len({cls for table in LOSSES_BY_TYPE.values() for cls in table.values()}) + 1 >= 15  # + combined
    assert "huber" in loss_names("regression") and "asymmetric" in loss_names("multilabel")
    with pytest.raises(EOError, match=r"loss 'dice' does not apply to a regression output.*\n?.*huber"):
        build_loss("dice", kind="regression")
    with pytest.raises(EOError, match="loss 'mse' does not apply to a segmentation output"):
        build_loss("mse")
    with pytest.raises(EOError, match="did you mean 'huber'"):
        build_loss("hubber", kind="regression")
    with pytest.raises(EOError, match="bad arguments"):
        build_loss("huber", kwargs={"delta": -1}, kind="regression")


def test_regression_metrics_match_torchmetrics() -> None:
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 8, 8, generator=gen), torch.randn(4, 8, 8, generator=gen)
    target[0, :2] = NAN
    m = RegressionMetrics()
    m.update(pred[:2], target[:2])
    m.update(pred[2:], target[2:])
    s = m.compute()
    ok = torch.isfinite(target)
    p, t = pred[ok], target[ok]
    assert s["rmse"] == pytest.approx(float(mean_squared_error(p, t)) ** 0.5, rel=1e-5)
    assert s["mae"] == pytest.approx(float(mean_absolute_error(p, t)), rel=1e-5)
    assert s["r2"] == pytest.approx(float(r2_score(p, t)), rel=1e-4)
    assert s["bias"] == pytest.approx(float((p - t).mean()), abs=1e-6) and s["pixels"] == int(ok.sum())
    perfect = RegressionMetrics()
    perfect.update(t, t)
    assert perfect.compute()["r2"] == pytest.approx(1.0) and perfect.compute()["rmse"] == 0.0


def test_multilabel_metrics_known_values() -> None:
    logits = torch.tensor([[3.0, -3.0, 3.0], [-3.0, 3.0, -3.0], [3.0, 3.0, -3.0]])
    target = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    m = MultilabelMetrics(3)
    m.update(logits, target)
    s = m.compute()
    assert s["exact_match"] == pytest.approx(2 / 3)  # the second chip misses class 2
    assert s["hamming"] == pytest.approx(float(multilabel_hamming_distance(logits.sigmoid(), target, 3)))
    assert s["f1"] == pytest.approx(float(multilabel_f1_score(logits.sigmoid(), target, 3)))
    assert s["chips"] == 3
