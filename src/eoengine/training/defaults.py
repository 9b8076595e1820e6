"""Training defaults that depend on the dataset, applied where the config leaves a setting unset.

Point datasets (1×1 chips, e.g. Earth Engine point exports imported with ``dataset
import-tfrecord``) are tabular: a flip or rotation of one pixel changes nothing but costs a
pass per chip, and 16 rows per step make an epoch of many tiny steps. So with a patch size
of 1, unless the config sets them: no geometric augmentation, and batches of
:data:`POINT_BATCH_SIZE`. A setting the config gives is always kept.
"""

from __future__ import annotations

from typing import Any

from eoengine.config.schema import ProjectConfig, changed
from eoengine.datasets.schema import DatasetManifest

POINT_BATCH_SIZE = 256
"""Batch size for 1×1 chips unless ``training.batch_size`` is set."""

GEOMETRIC = ("hflip", "vflip", "rot90")
"""Augmentations that move pixels (nothing to move in a 1×1 chip)."""


def dataset_defaults(cfg: ProjectConfig, manifest: DatasetManifest) -> ProjectConfig:
    """The config with the dataset's defaults filled into the training settings it leaves unset.

    Args:
        cfg: The project config as loaded (``model_fields_set`` tells what it sets).
        manifest: The dataset's manifest (its ``patch_size``).

    Returns:
        ``cfg`` itself for chips larger than 1×1, else a copy with point defaults.

    """
    if manifest.patch_size != 1:
        return cfg
    tc = cfg.training
    aug = tc.augmentation
    unset = {k: False for k in GEOMETRIC if k not in aug.model_fields_set}
    update: dict[str, Any] = {"augmentation": changed(aug, **unset)}
    if "batch_size" not in tc.model_fields_set:
        update["batch_size"] = POINT_BATCH_SIZE
    return changed(cfg, training=changed(tc, **update))
