"""Stratified chip sampling: favour chips that hold rare classes.

Only training chips are sampled; validation and test keep their full grid so metrics stay
unbiased estimates over the area.
"""

from __future__ import annotations

import numpy as np

from eoengine.datasets.plan import Candidate


def stratified_select(
    candidates: list[Candidate], counts: dict[int, list[int]], n: int, seed: int
) -> list[Candidate]:
    """Pick ``n`` train chips with probability proportional to their rarity-weighted pixels.

    A chip's score is sum_c count_c / total_c, so a chip full of a rare class scores as
    high as one full of a common class scores low; chips without labels are never picked.
    """
    train = [c for c in candidates if c.split == "train"]
    rest = [c for c in candidates if c.split != "train"]
    if len(train) <= n:
        return candidates
    table = np.array([counts[c.chip_id] for c in train], dtype=np.float64)
    totals = table.sum(axis=0)
    weights = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    score = table @ weights
    if score.sum() == 0:
        return rest
    k = min(n, int((score > 0).sum()))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(train), size=k, replace=False, p=score / score.sum())
    picked = {train[i].chip_id for i in chosen}
    return [c for c in candidates if c.split != "train" or c.chip_id in picked]
