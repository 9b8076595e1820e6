"""Import Earth Engine / servir-aces TFRecord exports as an eoengine dataset.

Each file (or group of files) becomes a named split, so exported train/val/test files train
and evaluate as they are. Patch records hold P×P values per band (row-major); point records
hold one value per band and become 1×1 chips, which the per-pixel DNN trains on.
"""

from __future__ import annotations

import colorsys
import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from eoengine.datasets.chipper import chip_stats
from eoengine.datasets.manifest import combine_stats
from eoengine.datasets.schema import FORMAT, MANIFEST, DatasetManifest
from eoengine.datasets.split import warn_dataset
from eoengine.datasets.store import INDEX, create_arrays, open_arrays
from eoengine.datasets.tfrecord import decode_example, describe_example, first_record, numeric_features, read_records
from eoengine.errors import Conflict, EOError
from eoengine.hashing import canonical_hash, input_checksums
from eoengine.labels import IGNORE

SPLIT_FIX = "if you rely on it, export more records, with every class, into that split's files and import again"
CLASS_FIX = "check --label, --classes and --num-classes, or export records of that class"


@dataclass
class ImportResult:
    """The imported dataset."""

    path: Path
    version: str
    manifest: DatasetManifest
    up_to_date: bool = False


def _colours(n: int) -> list[str]:
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb(i / max(n, 1), 0.65, 0.85)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return out


def _chip(features: dict[str, np.ndarray], bands: list[str], label: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    missing = [b for b in [*bands, label] if b not in features]
    if missing:
        raise EOError(f"{where}: no feature(s) {missing} (features: {sorted(features)})", "fix --bands / --label")
    n = features[bands[0]].size
    side = math.isqrt(n)
    if side * side != n or any(features[b].size != n for b in [*bands, label]):
        raise EOError(f"{where}: features have {n} values, not one square patch per band", "export square patches or points")
    image = np.stack([features[b].reshape(side, side) for b in bands]).astype(np.float32)
    return image, np.rint(features[label]).reshape(side, side)


def default_bands(path: Path, label: str, compression: str = "GZIP") -> list[str]:
    """The bands to import when none are named: every numeric feature of the first record but the label.

    Args:
        path: a TFRecord file.
        label: the label feature's name.
        compression: GZIP or NONE.

    Returns:
        The band feature names, sorted.

    Raises:
        EOError: the file holds no records, or no feature can be a band.

    """
    return numeric_features(describe_example(first_record(path, compression)), label)


def _check_output(output: Path) -> None:
    if output.exists() and not (output / MANIFEST).is_file():
        raise Conflict(f"{output} already exists and is not an eoengine dataset", "choose a new --out folder or delete it")


def _scan(splits: dict[str, list[str]], bands: list[str], label: str, compression: str) -> tuple[int, int, int]:
    """Pass 1: the number of records, the patch side and the highest class."""
    count, side, top = 0, None, -1
    for files in splits.values():
        for f in files:
            for i, rec in enumerate(read_records(Path(f), compression)):
                image, lab = _chip(decode_example(rec), bands, label, f"{f} record {i}")
                if side is not None and image.shape[-1] != side:
                    raise EOError(f"{f} record {i}: patch size {image.shape[-1]} differs from {side}", "import one patch size per dataset")
                side = image.shape[-1]
                labelled = lab[lab != IGNORE]  # sparse labels (points painted on 255) mark the rest ignored
                top = max(top, int(labelled.max()) if labelled.size else -1)
                count += 1
    if count == 0 or side is None:
        raise EOError("the TFRecord files hold no records", "check the files and --compression")
    return count, side, top


def _place(tmp: Path, output: Path) -> None:
    """Move the finished dataset to ``output``, replacing what is there only once it is complete."""
    old = None
    if output.exists():
        old = output.parent / f".{output.name}.old-{tmp.name}"
        output.rename(old)
    tmp.rename(output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def import_tfrecords(
    splits: dict[str, list[str]],
    output: Path,
    bands: list[str] | None = None,
    label: str = "class",
    class_names: list[str] | None = None,
    num_classes: int | None = None,
    compression: str = "GZIP",
    force: bool = False,
) -> ImportResult:
    """Import ``split -> files`` into a dataset at ``output`` (written atomically).

    Rerunning with the same files and options finds the same version and changes nothing;
    a different import into an existing dataset folder needs ``force``.

    Args:
        splits: split name (train, val, test) -> TFRecord files.
        output: the dataset folder.
        bands: the band features, in channel order; None: every numeric feature but the label.
        label: the label feature.
        class_names: one name per class; None: class0..N.
        num_classes: the number of classes; None: from the names or the highest label.
        compression: GZIP or NONE.
        force: replace a different dataset at ``output``.

    Returns:
        Where the dataset is, its version and manifest, and whether it was already there.

    Raises:
        EOError: bad splits, files, features or class names, or ``output`` holds something else.

    """
    unknown = set(splits) - {"train", "val", "test"}
    if unknown or "train" not in splits:
        raise EOError(f"splits must include train and be among train/val/test (got {sorted(splits)})", "name files train=..., val=..., test=...")
    _check_output(output)
    bands = bands or default_bands(Path(splits["train"][0]), label, compression)
    count, side, top = _scan(splits, bands, label, compression)
    k = num_classes or (len(class_names) if class_names else top + 1)
    names = class_names or [f"class{i}" for i in range(k)]
    if len(names) != k:
        raise EOError(f"{len(names)} class names for {k} classes", "give one name per class")
    checksums = input_checksums([f for fs in splits.values() for f in fs])
    version = canonical_hash({"format": FORMAT, "bands": bands, "label": label, "classes": names,
                              "inputs": [[s, Path(c["path"]).name, c["sha256"]] for s in splits for c in checksums
                                         if c["path"] in splits[s]]})
    if output.exists():
        existing = DatasetManifest.read(output)
        if existing.version == version:
            return ImportResult(output, version, existing, up_to_date=True)
        if not force:
            raise Conflict(f"{output} holds another dataset (version {existing.version[:12]}, this import is {version[:12]})",
                           "use --force to replace it, or choose a new --out folder")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}."))
    try:
        content = _write(tmp, splits, bands, label, names, compression, count, side)
        manifest = DatasetManifest.model_validate(content | {"name": output.name, "version": version, "inputs": checksums})
        manifest.write(tmp)
        _place(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    warn_dataset(manifest.splits, manifest.class_frequencies, dict.fromkeys(splits, 1.0), names,
                 SPLIT_FIX, CLASS_FIX)
    return ImportResult(output, version, manifest)


def _write(tmp: Path, splits: dict[str, list[str]], bands: list[str], label: str, names: list[str],
           compression: str, count: int, side: int) -> dict[str, Any]:
    """Pass 2: write the arrays and the chip index into ``tmp``; returns the manifest's content but name, version, inputs."""
    k = len(names)
    create_arrays(tmp, count, len(bands), side)
    images, labels = open_arrays(tmp, "r+")
    records: list[dict[str, Any]] = []
    cid = 0
    for split, files in splits.items():
        for f in files:
            for rec in read_records(Path(f), compression):
                image, lab = _chip(decode_example(rec), bands, label, f)
                cls = np.where((lab >= 0) & (lab < k), lab, IGNORE).astype(np.uint8)
                cls[np.isnan(image).any(axis=0)] = IGNORE
                images[cid], labels[cid] = image, cls
                counts = np.bincount(cls[cls != IGNORE], minlength=k)[:k]
                records.append({"chip_id": cid, "split": split, "source": Path(f).name, "class_counts": counts.tolist(),
                                "stats": chip_stats(image), "labelled_fraction": float((cls != IGNORE).mean())})
                cid += 1
    index = gpd.GeoDataFrame(
        {"chip_id": [r["chip_id"] for r in records], "scene": [r["source"] for r in records],
         "split": [r["split"] for r in records], "labelled_fraction": [r["labelled_fraction"] for r in records]}
        | {f"count_{n}": [r["class_counts"][i] for r in records] for i, n in enumerate(names)},
        geometry=[None] * len(records), crs="EPSG:4326",
    )
    index.to_parquet(tmp / INDEX)
    freq = {s: np.sum([r["class_counts"] for r in records if r["split"] == s], axis=0).astype(int).tolist() for s in splits}
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {"source": "tfrecord", "splits": splits, "label": label, "compression": compression},
        "bands": bands,
        "band_specs": [{"name": b, "common_name": None, "scale": 1.0, "offset": 0.0, "nodata": None} for b in bands],
        "indices": [], "index_constants": {}, "channels": bands, "patch_size": side,
        "classes": [{"index": i, "value": i, "name": n, "color": c} for i, (n, c) in enumerate(zip(names, _colours(k), strict=True))],
        "class_frequencies": freq | {s: [0] * k for s in ("train", "val", "test") if s not in freq},
        "statistics": {"train": combine_stats([r for r in records if r["split"] == "train"], bands)},
        "splits": {s: sum(r["split"] == s for r in records) for s in ("train", "val", "test")},
        "n_chips": count, "n_array_rows": count, "dropped": {}, "scenes": [],
        "resampling": "nearest", "resolution": None,
    }
