"""Loading chips of a dataset split for training: normalisation, targets and augmentation.

Inputs are normalised with the dataset's train-split statistics; nodata (NaN) becomes 0
after normalisation (the train mean) and its pixels are already unlabelled, so they cost
nothing in the loss. Each chip comes with every target the dataset holds: the class mask,
the chip's majority class and present classes (from the index), and normalised values
for regression. Augmentations are in :mod:`eoengine.training.augment`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from eoengine.config.schema import AugmentationConfig
from eoengine.datasets.chunks import ChunkReader
from eoengine.datasets.store import ARRAYS, INDEX, open_all_arrays, read_manifest
from eoengine.features.normalise import normalise
from eoengine.labels import IGNORE
from eoengine.training.augment import augment

IN_MEMORY_LIMIT = 2 * 1024**3
"""Splits smaller than this (bytes) are read once and held in memory."""

Item = tuple[torch.Tensor, dict[str, torch.Tensor]]


def chip_targets(rows: Any, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From index rows: majority class (IGNORE if none), present classes (0/1) and class pixel counts."""
    n, k = len(rows), len(names)
    label = np.full(n, IGNORE, dtype=np.int64)
    if "label" in rows:
        label = np.where(rows["label"].to_numpy() >= 0, rows["label"].to_numpy(), IGNORE).astype(np.int64)
    present = np.zeros((n, k), dtype=np.float32)
    if names and f"present_{names[0]}" in rows:
        present = np.array(rows[[f"present_{c}" for c in names]].to_numpy(), dtype=np.float32)
    counts = np.array(rows[[f"count_{c}" for c in names]].to_numpy(), dtype=np.float64) if names else np.zeros((n, 0))
    return label, present, counts


class ChipDataset(Dataset[Item]):
    """Chips of one split: (normalised image (C,P,P) float32, targets by name)."""

    def __init__(self, root: Path, split: str, augmentation: AugmentationConfig | None = None, seed: int = 0) -> None:
        self.root = Path(root)
        manifest = read_manifest(self.root)
        stats = manifest["statistics"]["train"]
        self.mean = np.asarray(stats["mean"], dtype=np.float32)
        self.std = np.asarray(stats["std"], dtype=np.float32)
        values = (manifest.get("targets") or {}).get("values")
        self.value_norm = (values["statistics"]["mean"][0], values["statistics"]["std"][0]) if values else None
        index = gpd.read_parquet(self.root / INDEX)
        rows = index.loc[index["split"] == split]
        self.ids = rows["chip_id"].to_numpy()
        names = [c["name"] for c in manifest.get("classes", [])]
        self.chip_label, self.present, self.class_counts = chip_targets(rows, names)
        self.augmentation = augmentation
        self.seed = seed
        self._readers: dict[str, ChunkReader] | None = None
        self._cache: dict[str, np.ndarray] | None = None
        c, p = len(manifest["channels"]), manifest["patch_size"]
        if len(self.ids) * c * p * p * 4 <= IN_MEMORY_LIMIT and len(self.ids):
            order = np.sort(self.ids)
            pos = np.searchsorted(order, self.ids)
            arrays = open_all_arrays(self.root)
            self._cache = {k: a.get_orthogonal_selection((order,))[pos] for k, a in arrays.items()}
            self._cache["images"] = normalise(self._cache["images"], self.mean, self.std)

    def __len__(self) -> int:
        return len(self.ids)

    def _raw(self, i: int) -> dict[str, np.ndarray]:
        if self._cache is not None:
            return {k: v[i] for k, v in self._cache.items()}
        if self._readers is None:
            self._readers = {k: ChunkReader(self.root / ARRAYS / k, a) for k, a in open_all_arrays(self.root).items()}
        cid = int(self.ids[i])
        raw = {k: r[cid] for k, r in self._readers.items()}
        raw["images"] = normalise(raw["images"], self.mean, self.std)
        return raw

    def __getitem__(self, key: int) -> Item:
        """Chip ``key % len``; ``key // len`` is the epoch (see :class:`EpochSampler`).

        Augmentation draws from a generator seeded by (seed, key), so an epoch's batches are
        the same whether or not training was interrupted and resumed before it.
        """
        i = key % len(self.ids)
        raw = self._raw(i)
        image = torch.from_numpy(raw["images"])
        maps = {"mask": torch.from_numpy(raw["labels"].astype(np.int64))}
        if "values" in raw and self.value_norm:
            maps["values"] = torch.from_numpy((raw["values"] - self.value_norm[0]) / self.value_norm[1])
        if self.augmentation is not None:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(key))
            image, maps = augment(image, maps, self.augmentation, gen)
        targets = maps | {"label": torch.tensor(self.chip_label[i]), "present": torch.from_numpy(self.present[i])}
        return image, targets


def balanced_weights(class_counts: np.ndarray) -> np.ndarray:
    """Per-chip sampling weights so rare classes are drawn about as often as common ones.

    A chip's weight is the sum over classes of (its share of the chip) / (the class's share
    of the split): chips full of a rare class weigh most. Chips without labels get the mean.
    """
    if class_counts.size == 0:
        return np.ones(len(class_counts))
    totals = class_counts.sum(axis=0)
    inverse = np.where(totals > 0, totals.sum() / np.maximum(totals, 1), 0.0)
    per_chip = class_counts.sum(axis=1, keepdims=True)
    shares = np.divide(class_counts, per_chip, out=np.zeros_like(class_counts), where=per_chip > 0)
    w = shares @ inverse
    w[w <= 0] = w[w > 0].mean() if (w > 0).any() else 1.0
    return w / w.sum()


class EpochSampler(Sampler[int]):
    """Shuffles (or draws by ``weights``) anew each epoch from (seed, epoch) alone, and tags indices with the epoch.

    Lightning calls ``set_epoch`` before every epoch, including after a resume, so the order
    of every epoch is reproducible without carrying a generator's state across processes.
    Under DDP each of ``replicas`` processes takes every ``replicas``-th index from ``rank``.
    """

    def __init__(self, size: int, seed: int, weights: np.ndarray | None = None, rank: int = 0, replicas: int = 1) -> None:
        self.size, self.seed, self.epoch = size, seed, 0
        self.weights = torch.as_tensor(weights, dtype=torch.float64) if weights is not None else None
        self.rank, self.replicas = rank, replicas

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order to produce."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.size, replacement=True, generator=gen)
        else:
            order = torch.randperm(self.size, generator=gen)
        offset = self.epoch * self.size
        mine = order[self.rank::self.replicas][: len(self)]
        return iter(offset + int(i) for i in mine)

    def __len__(self) -> int:
        return self.size // self.replicas


class ChipDataModule(L.LightningDataModule):
    """Train/val/test loaders over a dataset folder."""

    def __init__(
        self,
        root: Path,
        batch_size: int,
        num_workers: int = 0,
        augmentation: AugmentationConfig | None = None,
        seed: int = 0,
        sampling: str = "shuffle",
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmentation = augmentation
        self.seed = seed
        self.sampling = sampling

    def setup(self, stage: str | None = None) -> None:
        """Open the splits."""
        self.train = ChipDataset(self.root, "train", self.augmentation, self.seed)
        self.val = ChipDataset(self.root, "val")
        self.test = ChipDataset(self.root, "test")

    def _loader(self, ds: ChipDataset, shuffle: bool) -> DataLoader[Any]:
        sampler: Sampler[int] | None = None
        if shuffle:
            weights = balanced_weights(ds.class_counts) if self.sampling == "balanced" else None
            world = self.trainer.world_size if self.trainer is not None else 1
            rank = self.trainer.global_rank if self.trainer is not None else 0
            sampler = EpochSampler(len(ds), self.seed, weights, rank, world)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled (or class-balanced), augmented train chips."""
        return self._loader(self.train, True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation chips (training refuses a dataset without them)."""
        return self._loader(self.val, False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test chips."""
        return self._loader(self.test, False)
