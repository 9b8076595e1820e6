"""Dice's ``smooth`` is the standard one, (2tp + s) / (2tp + fp + fn + s) (issue 10).

Moving Dice onto the shared Tversky counts (tp + s) / (tp + fp/2 + fn/2 + s) (commit c453632)
doubled its smoothing unseen, as the known-value tests used s = 0; it moved the demo's U-Net
from 0.704 accuracy / 0.305 mean IoU (at its parent) to 0.667 / 0.260.
"""

import torch

from eoengine.labels import IGNORE
from eoengine.training.losses import build_loss


def _standard_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float) -> torch.Tensor:
    """1 - mean over classes present in the targets of (2tp + s) / (sum p + sum y + s), labelled pixels only."""
    valid = target != IGNORE
    probs = logits.softmax(1).permute(0, 2, 3, 1)[valid]
    onehot = torch.nn.functional.one_hot(target[valid], logits.shape[1]).float()
    tp, card = (probs * onehot).sum(0), probs.sum(0) + onehot.sum(0)
    present = onehot.sum(0) > 0
    return 1 - ((2 * tp + smooth) / (card + smooth))[present].mean()


def test_dice_smoothing_is_the_standard_one() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 3, 3, generator=gen)
    target = torch.tensor([[[0, 0, 1], [1, 1, IGNORE], [3, 3, 0]], [[0, 1, 1], [IGNORE, 0, 0], [1, 1, 1]]])
    for smooth in (0.0, 1.0, 5.0):  # small counts: the smoothing weighs
        torch.testing.assert_close(build_loss("dice", kwargs={"smooth": smooth})(logits, target),
                                   _standard_dice(logits, target, smooth), rtol=0, atol=1e-6)
