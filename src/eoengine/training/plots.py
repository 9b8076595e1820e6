"""Pictures a person would rather see than read: training curves and confusion matrices."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_curves(history: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """Loss curves (left) and validation scores (right) per epoch."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, series in sorted(history.items()):
        if not series or not (key.endswith("loss") or key.startswith("val_")):
            continue  # e.g. the learning rate, on another scale
        xs, ys = zip(*series, strict=True)
        target = ax1 if key.endswith("loss") else ax2
        target.plot(xs, ys, marker=".", label=key)
    ax1.set(title="loss", xlabel="epoch")
    ax2.set(title="validation scores", xlabel="epoch", ylim=(0, 1))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(cm: list[list[int]], names: list[str], path: Path, title: str = "confusion matrix") -> Path:
    """Row-normalised confusion matrix with counts in each cell."""
    m = np.asarray(cm, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    size = max(4.5, 0.7 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(names)):
        for j in range(len(names)):
            if m[i, j]:
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
