import pytest
import torch
import torch.nn.functional as F

from eoengine.errors import EOError
from eoengine.labels import IGNORE
from eoengine.models.registry import build_model
from eoengine.training.losses import build_loss, class_weights
from eoengine.training.metrics import scores_from_confusion
from eoengine.training.optim import build_optimizer


@pytest.mark.parametrize("name,kwargs", [("pixel_dnn", {"hidden": [8]}), ("cnn", {"width": 8}), ("unet", {"depth": 2, "base_channels": 4})])
@pytest.mark.parametrize("bands", [1, 4, 13])
def test_models_take_any_band_count(name: str, kwargs: dict, bands: int) -> None:
    model = build_model(name, bands, 5, **kwargs).eval()
    assert model(torch.randn(2, bands, 16, 16)).shape == (2, 5, 16, 16)


def test_unet_has_skip_connections_and_depth() -> None:
    unet = build_model("unet", 3, 2, depth=3, base_channels=4)
    assert len(unet.encoder.down) == 3 and unet.size_multiple == 8
    assert unet.decoder.dec[0][0][0].in_channels == 2 * 16  # decoder sees upsampled + skip


def test_model_errors() -> None:
    with pytest.raises(EOError, match="unknown model 'unnet' \\(did you mean 'unet'\\?\\)"):
        build_model("unnet", 3, 2)
    with pytest.raises(EOError, match="does not take argument\\(s\\) \\['dept'\\].*depth"):
        build_model("unet", 3, 2, dept=3)
    with pytest.raises(EOError, match="unknown activation"):
        build_model("cnn", 3, 2, activation="relux")


def test_custom_model_by_dotted_path() -> None:
    m = build_model("eoengine.models.cnn.CNN", 3, 4, width=4, layers=1)
    assert m(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 8, 8)
    with pytest.raises(EOError, match="cannot import model"):
        build_model("nope.Model", 3, 2)


def test_cross_entropy_ignores_unlabelled_and_matches_torch() -> None:
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0] = IGNORE
    ours = build_loss("cross_entropy")(logits, target)
    keep = target != IGNORE
    ref = F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], target[keep])
    torch.testing.assert_close(ours, ref)
    assert build_loss("cross_entropy")(logits, torch.full_like(target, IGNORE)) == 0


def test_dice_and_focal_known_values() -> None:
    target = torch.tensor([[[0, 1], [1, IGNORE]]])
    perfect = F.one_hot(target.clamp(max=1), 2).permute(0, 3, 1, 2).float() * 50
    assert build_loss("dice", kwargs={"smooth": 0.0})(perfect, target) < 1e-6
    logits = torch.zeros(1, 2, 2, 2)
    focal = build_loss("focal", kwargs={"gamma": 0.0})(logits, target)
    torch.testing.assert_close(focal, torch.tensor(0.6931), atol=1e-4, rtol=0)  # gamma 0 = CE = ln 2
    combo = build_loss("combined", terms=[("cross_entropy", 1.0, {}), ("focal", 2.0, {"gamma": 0.0})])(logits, target)
    torch.testing.assert_close(combo, torch.tensor(3 * 0.6931), atol=1e-3, rtol=0)


def test_loss_and_optimizer_errors() -> None:
    with pytest.raises(EOError, match="use one of: bce, combined, cross_entropy, dice, focal, focal_tversky, jaccard, lovasz, tversky"):
        build_loss("hinge")
    with pytest.raises(EOError, match="cannot import loss 'nope.Loss'"):
        build_loss("nope.Loss")
    with pytest.raises(EOError, match="bad arguments"):
        build_loss("focal", kwargs={"gama": 2})
    with pytest.raises(EOError, match="unknown optimizer 'adam' \\(did you mean 'Adam'\\?\\)"):
        build_optimizer("adam", [torch.nn.Parameter(torch.zeros(1))], {})


def test_class_weights() -> None:
    w = class_weights([900, 100, 0], "inverse")
    assert w[2] == 0 and w[1] == pytest.approx(9 * w[0]) and (w[0] + w[1]) / 2 == pytest.approx(1)
    assert class_weights([1, 1], "none") is None


def test_scores_from_a_known_confusion_matrix() -> None:
    cm = torch.tensor([[8, 2, 0], [1, 9, 0], [0, 0, 0]])  # class 2 absent: not averaged
    s = scores_from_confusion(cm)
    assert s["accuracy"] == pytest.approx(17 / 20)
    assert s["iou_per_class"][0] == pytest.approx(8 / 11) and s["miou"] == pytest.approx((8 / 11 + 9 / 12) / 2)
    pe = (10 * 9 + 10 * 11) / 400
    assert s["kappa"] == pytest.approx((0.85 - pe) / (1 - pe))


def test_scores_agree_with_torchmetrics() -> None:
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_cohen_kappa,
        multiclass_jaccard_index,
    )

    from eoengine.training.metrics import SegmentationMetrics

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, 16, 16, generator=g)
    target = torch.randint(0, 5, (4, 16, 16), generator=g)
    target[:, :3] = IGNORE
    m = SegmentationMetrics(5)
    m.update(logits[:2], target[:2])
    m.update(logits[2:], target[2:])
    s = m.compute()
    pred = logits.argmax(1)
    kw = {"num_classes": 5, "ignore_index": IGNORE}
    assert s["accuracy"] == pytest.approx(float(multiclass_accuracy(pred, target, average="micro", **kw)), abs=1e-6)
    assert s["kappa"] == pytest.approx(float(multiclass_cohen_kappa(pred, target, **kw)), abs=1e-6)
    per_class = multiclass_jaccard_index(pred, target, average="none", **kw)
    assert s["iou_per_class"] == pytest.approx(per_class.tolist(), abs=1e-6)
    from torchmetrics.functional.classification import (
        multiclass_auroc,
        multiclass_average_precision,
        multiclass_calibration_error,
        multiclass_matthews_corrcoef,
    )

    assert s["balanced_accuracy"] == pytest.approx(float(multiclass_accuracy(pred, target, average="macro", **kw)), abs=1e-6)
    assert s["mcc"] == pytest.approx(float(multiclass_matthews_corrcoef(pred, target, **kw)), abs=1e-6)
    probs = logits.softmax(1)
    assert s["auroc"] == pytest.approx(float(multiclass_auroc(probs, target, thresholds=200, **kw)), abs=1e-5)
    assert s["average_precision"] == pytest.approx(float(multiclass_average_precision(probs, target, thresholds=200, **kw)), abs=1e-5)
    assert s["calibration_error"] == pytest.approx(float(multiclass_calibration_error(probs, target, n_bins=15, **kw)), abs=1e-5)


def _sharp(target: torch.Tensor, k: int, wrong: torch.Tensor | None = None) -> torch.Tensor:
    """Near one-hot logits for ``target`` (or ``wrong`` where given)."""
    pred = target.clamp(max=k - 1) if wrong is None else wrong
    return F.one_hot(pred, k).permute(0, 3, 1, 2).float() * 40


def test_overlap_losses_known_values() -> None:
    target = torch.tensor([[[0, 0, 1, 1], [0, 2, 2, IGNORE]]])
    perfect = _sharp(target, 3)
    for name in ("dice", "jaccard", "tversky", "focal_tversky", "lovasz"):
        assert build_loss(name, kwargs={} if name == "lovasz" else {"smooth": 0.0})(perfect, target) < 1e-5, name
    # predict class 0 everywhere: per class (tp, fp, fn) = (3,4,0), (0,0,2), (0,0,2)
    wrong = _sharp(target, 3, torch.zeros_like(target))
    dice = build_loss("dice", kwargs={"smooth": 0.0})(wrong, target)
    torch.testing.assert_close(dice, torch.tensor((1 - 6 / 10 + 1 + 1) / 3), atol=1e-4, rtol=0)
    jac = build_loss("jaccard", kwargs={"smooth": 0.0})(wrong, target)
    torch.testing.assert_close(jac, torch.tensor((1 - 3 / 7 + 1 + 1) / 3), atol=1e-4, rtol=0)
    tv = build_loss("tversky", kwargs={"smooth": 0.0, "alpha": 0.3, "beta": 0.7})(wrong, target)
    torch.testing.assert_close(tv, torch.tensor((1 - 3 / (3 + 0.3 * 4) + 1 + 1) / 3), atol=1e-4, rtol=0)
    ft = build_loss("focal_tversky", kwargs={"smooth": 0.0, "alpha": 0.3, "beta": 0.7, "gamma": 2.0})(wrong, target)
    torch.testing.assert_close(ft, torch.tensor(((1 - 3 / 4.2) ** 2 + 1 + 1) / 3), atol=1e-4, rtol=0)
    # on hard predictions the Lovász extension equals 1 - IoU per class
    torch.testing.assert_close(build_loss("lovasz")(wrong, target), jac, atol=1e-4, rtol=0)


def test_bce_matches_torch_on_labelled_pixels() -> None:
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    target = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(2))
    target[0, 0] = IGNORE
    keep = target != IGNORE
    onehot = F.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    ref = F.binary_cross_entropy_with_logits(logits.permute(0, 2, 3, 1)[keep], onehot.permute(0, 2, 3, 1)[keep])
    torch.testing.assert_close(build_loss("bce")(logits, target), ref)


def test_custom_loss_by_dotted_path() -> None:
    loss = build_loss("eoengine.training.region_losses.Jaccard", torch.ones(3), {"smooth": 0.0})
    target = torch.tensor([[[0, 1], [2, 2]]])
    assert loss(_sharp(target, 3), target) < 1e-5 and loss.weight is not None
    with pytest.raises(EOError, match="is not a torch nn.Module"):
        build_loss("collections.OrderedDict", kwargs={})


def test_probability_scores_stay_small_under_deterministic_mode() -> None:
    from eoengine.training.metrics import SegmentationMetrics

    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        m = SegmentationMetrics(7)
        m.update(torch.randn(16, 7, 128, 128), torch.randint(0, 7, (16, 128, 128)))  # 262k px: GBs on the fallback
        assert 0 <= m.compute()["auroc"] <= 1
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_binned_curves_count_exactly_as_torchmetrics() -> None:
    """The histogram update gives torchmetrics' own binned state, at probabilities on and between thresholds."""
    from torchmetrics.classification import MulticlassAUROC, MulticlassAveragePrecision

    from eoengine.training.metrics import SegmentationMetrics, binned_confusion

    torch.manual_seed(0)
    k = 5
    probs = (torch.randn(6, k, 16, 16) * 3).softmax(1)
    grid = torch.linspace(0, 1, 200)
    probs[0, 2, 0, :16] = grid[::13][:16]  # exactly on thresholds, 0 and 1 among them
    probs[0, 4, 1, :2] = torch.tensor([0.0, 1.0])
    target = torch.randint(0, k, (6, 16, 16))
    target[1, :4] = IGNORE
    ours = SegmentationMetrics(k)
    for name, stock in (("auroc", MulticlassAUROC), ("average_precision", MulticlassAveragePrecision)):
        ours.prob_metrics[name].update(probs, target)  # the probabilities SegmentationMetrics.update passes on
        ref = stock(num_classes=k, ignore_index=IGNORE, average="macro", thresholds=200)
        ref.update(probs, target)
        assert torch.equal(ours.prob_metrics[name].confmat, ref.confmat), name
        assert float(ours.prob_metrics[name].compute()) == pytest.approx(float(ref.compute()), abs=1e-6)
    # a known answer: two pixels of class 1 at probability 0.3 and 0.8, one of class 0 at 0.6 (for class 1)
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    counts = binned_confusion(p, torch.tensor([1, 1, 0]), torch.tensor([0.0, 0.5, 0.75, 1.0]))
    tp, fp = counts[:, 1, 1, 1].tolist(), counts[:, 1, 0, 1].tolist()
    assert tp == [2, 1, 1, 0] and fp == [1, 1, 0, 0]
    assert (counts.sum((2, 3)) == 3).all()
