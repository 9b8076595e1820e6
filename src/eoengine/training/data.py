"""Loading chips of a dataset split for training: normalisation and augmentation.

Inputs are normalised with the dataset's train-split statistics; nodata (NaN) becomes 0
after normalisation (the train mean) and its pixels are already unlabelled, so they cost
nothing in the loss. Augmentations (flips, 90° rotations) apply identically to image and
mask.
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
from eoengine.datasets.store import ARRAYS, INDEX, open_arrays, read_manifest

IN_MEMORY_LIMIT = 2 * 1024**3
"""Splits smaller than this (bytes) are read once and held in memory."""


def normalise(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel; NaN (nodata) becomes 0. Works on (C,H,W) or (B,C,H,W)."""
    shape = (-1, 1, 1)
    out = np.subtract(image, mean.reshape(shape), dtype=np.float32)
    out *= (1.0 / std).astype(np.float32).reshape(shape)
    out[~np.isfinite(out)] = 0.0  # in place: ~8x faster than np.nan_to_num on 2 MiB chips
    return out


def augment(
    image: torch.Tensor, mask: torch.Tensor, cfg: AugmentationConfig, gen: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips and 90° rotations, the same for image (C,H,W) and mask (H,W)."""
    if cfg.hflip and torch.rand(1, generator=gen).item() < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    if cfg.vflip and torch.rand(1, generator=gen).item() < 0.5:
        image, mask = image.flip(-2), mask.flip(-2)
    if cfg.rot90:
        k = int(torch.randint(0, 4, (1,), generator=gen).item())
        if k:
            image, mask = image.rot90(k, (-2, -1)), mask.rot90(k, (-2, -1))
    return image.contiguous(), mask.contiguous()


class ChipDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Chips of one split: (normalised image (C,P,P) float32, labels (P,P) int64)."""

    def __init__(self, root: Path, split: str, augmentation: AugmentationConfig | None = None, seed: int = 0) -> None:
        self.root = Path(root)
        manifest = read_manifest(self.root)
        stats = manifest["statistics"]["train"]
        self.mean = np.asarray(stats["mean"], dtype=np.float32)
        self.std = np.asarray(stats["std"], dtype=np.float32)
        index = gpd.read_parquet(self.root / INDEX)
        self.ids = index.loc[index["split"] == split, "chip_id"].to_numpy()
        self.augmentation = augmentation
        self.seed = seed
        self._images: Any = None
        self._labels: Any = None
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        c, p = len(manifest["channels"]), manifest["patch_size"]
        if len(self.ids) * c * p * p * 4 <= IN_MEMORY_LIMIT and len(self.ids):
            images, labels = open_arrays(self.root)
            order = np.sort(self.ids)
            imgs = images.get_orthogonal_selection((order,))
            labs = labels.get_orthogonal_selection((order,))
            pos = np.searchsorted(order, self.ids)
            self._cache = (normalise(imgs[pos], self.mean, self.std), labs[pos])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Chip ``key % len``; ``key // len`` is the epoch (see :class:`EpochSampler`).

        Augmentation draws from a generator seeded by (seed, key), so an epoch's batches are
        the same whether or not training was interrupted and resumed before it.
        """
        i = key % len(self.ids)
        if self._cache is not None:
            image = torch.from_numpy(self._cache[0][i])
            mask = torch.from_numpy(self._cache[1][i].astype(np.int64))
        else:
            if self._images is None:
                images, labels = open_arrays(self.root)
                self._images = ChunkReader(self.root / ARRAYS / "images", images)
                self._labels = ChunkReader(self.root / ARRAYS / "labels", labels)
            cid = int(self.ids[i])
            image = torch.from_numpy(normalise(self._images[cid], self.mean, self.std))
            mask = torch.from_numpy(self._labels[cid].astype(np.int64))
        if self.augmentation is not None:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(key))
            image, mask = augment(image, mask, self.augmentation, gen)
        return image, mask


class EpochSampler(Sampler[int]):
    """Shuffles anew each epoch from (seed, epoch) alone, and tags indices with the epoch.

    Lightning calls ``set_epoch`` before every epoch, including after a resume, so the order
    of every epoch is reproducible without carrying a generator's state across processes.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order to produce."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        offset = self.epoch * self.size
        return iter(offset + int(i) for i in torch.randperm(self.size, generator=gen))

    def __len__(self) -> int:
        return self.size


class ChipDataModule(L.LightningDataModule):
    """Train/val/test loaders over a dataset folder."""

    def __init__(
        self,
        root: Path,
        batch_size: int,
        num_workers: int = 0,
        augmentation: AugmentationConfig | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmentation = augmentation
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        """Open the splits."""
        self.train = ChipDataset(self.root, "train", self.augmentation, self.seed)
        self.val = ChipDataset(self.root, "val")
        self.test = ChipDataset(self.root, "test")

    def _loader(self, ds: ChipDataset, shuffle: bool) -> DataLoader[Any]:
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(ds), self.seed) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled, augmented train chips."""
        return self._loader(self.train, True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation chips (falls back to train chips when the split is empty)."""
        return self._loader(self.val if len(self.val) else ChipDataset(self.root, "train"), False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test chips."""
        return self._loader(self.test, False)
