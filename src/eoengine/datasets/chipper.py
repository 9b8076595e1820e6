"""Turn one candidate window into a chip: read, derive features, label, filter, write.

:class:`ChipMaker` is the per-worker state of the Beam pipeline (open rasters, labelers,
arrays). Each chip ends with a small JSON marker written atomically after its arrays, so
an interrupted build resumes by skipping chips whose marker exists.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from rasterio.windows import Window

from eoengine.datasets.chunks import ChunkReader
from eoengine.datasets.plan import BuildPlan, Candidate
from eoengine.datasets.store import ARRAYS, MARKERS, open_all_arrays
from eoengine.features.indices import stack_features
from eoengine.files import atomic_write_json
from eoengine.labels import IGNORE
from eoengine.labels.raster import RasterLabeler, ValueReader
from eoengine.labels.vector import VectorLabeler
from eoengine.raster.scene import SceneReader


def chip_stats(image: np.ndarray) -> dict[str, list[float]]:
    """Per-channel count, sum, sum of squares, min and max over non-NaN pixels."""
    flat = image.reshape(image.shape[0], -1)
    count = (~np.isnan(flat)).sum(axis=1)
    filled = np.nan_to_num(flat, nan=0.0)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels: count is 0, min/max NaN
        mins, maxs = np.nanmin(flat, axis=1), np.nanmax(flat, axis=1)
    return {
        "count": count.astype(float).tolist(),
        "sum": filled.sum(axis=1, dtype=np.float64).tolist(),
        "sumsq": np.einsum("ij,ij->i", filled, filled, dtype=np.float64).tolist(),
        "min": mins.astype(np.float64).tolist(),
        "max": maxs.astype(np.float64).tolist(),
    }


class ChipMaker:
    """Per-worker chip production for one build plan."""

    def __init__(self, plan: BuildPlan, root: Path, resampling: str, resolution: float | None) -> None:
        self.plan = plan
        self.root = root
        self.resampling = resampling
        self.resolution = resolution
        self._readers: dict[str, SceneReader] = {}
        self._labelers: dict[str, Any] = {}
        self._values: dict[str, ValueReader] = {}
        self._arrays: dict[str, ChunkReader] | None = None

    def _reader(self, scene: str) -> SceneReader:
        if scene not in self._readers:
            sp = self.plan.scenes[scene]
            self._readers[scene] = SceneReader(sp.sources, self.resampling, self.resolution)
        return self._readers[scene]

    def values(self, scene: str) -> ValueReader:
        """The (cached) reader of ``scene``'s regression targets."""
        if scene not in self._values:
            sp = self.plan.scenes[scene]
            assert sp.values_raster
            self._values[scene] = ValueReader(sp.values_raster, sp.grid, self.plan.values_resampling, self.plan.values_nodata)
        return self._values[scene]

    def labeler(self, scene: str) -> Any:
        """The (cached) label reader of ``scene``."""
        if scene not in self._labelers:
            sp = self.plan.scenes[scene]
            if sp.label_raster:
                self._labelers[scene] = RasterLabeler(sp.label_raster, sp.grid, self.plan.class_values)
            else:
                assert sp.label_vector
                frame = gpd.read_parquet(sp.label_vector)
                area = gpd.read_parquet(sp.label_area) if sp.label_area else None
                self._labelers[scene] = VectorLabeler(frame, sp.grid, self.plan.all_touched, self.plan.background, area)
        return self._labelers[scene]

    def marker(self, chip_id: int) -> Path:
        """Path of the marker that says chip ``chip_id`` is done."""
        return self.root / MARKERS / f"{chip_id:08d}.json"

    def make(self, cand: Candidate) -> dict[str, Any]:
        """Produce (or, when resuming, recall) the record of one candidate chip."""
        marker = self.marker(cand.chip_id)
        if marker.exists():
            done: dict[str, Any] = json.loads(marker.read_text())
            return done
        p = self.plan.patch_size
        window = Window(cand.col, cand.row, p, p)
        raw = self._reader(cand.scene).read(window)
        nodata = np.isnan(raw).any(axis=0)
        pl = self.plan
        image = stack_features(raw, pl.timesteps, pl.indices, pl.band_names, pl.common_names, pl.index_constants)
        if pl.has_classes:
            label = self.labeler(cand.scene).read(window)
        else:
            label = np.full((p, p), IGNORE, dtype=np.uint8)
        label[nodata] = IGNORE
        image[:, nodata] = np.nan
        targets = {"labels": label}
        labelled = label != IGNORE
        if self.plan.scenes[cand.scene].values_raster:
            values = self.values(cand.scene).read(window)
            values[nodata] = np.nan
            targets["values"] = values
            labelled |= np.isfinite(values)
        nodata_fraction = float(nodata.mean())
        labelled_fraction = float(labelled.mean())
        record: dict[str, Any] = asdict(cand) | {
            "nodata_fraction": nodata_fraction,
            "labelled_fraction": labelled_fraction,
        }
        if nodata_fraction > self.plan.max_nodata_fraction:
            record |= {"kept": False, "reason": "nodata"}
        elif labelled_fraction < self.plan.min_labelled_fraction or labelled_fraction == 0:
            record |= {"kept": False, "reason": "unlabelled"}
        else:
            if self._arrays is None:
                arrays = open_all_arrays(self.root, mode="r+")
                self._arrays = {k: ChunkReader(self.root / ARRAYS / k, a) for k, a in arrays.items()}
            self._arrays["images"].put(cand.chip_id, image)
            for key, target in targets.items():
                self._arrays[key].put(cand.chip_id, target)
            digest = hashlib.sha256(b"".join(a.tobytes() for a in (image, *targets.values()))).hexdigest()
            counts = np.bincount(label[label != IGNORE], minlength=self.plan.n_classes)
            record |= {
                "kept": True,
                "class_counts": counts[: self.plan.n_classes].astype(int).tolist(),
                "stats": chip_stats(image),
                "digest": digest,
            }
            if "values" in targets:
                record["value_stats"] = chip_stats(targets["values"][None])
        atomic_write_json(marker, record)
        return record

    def close(self) -> None:
        """Close every open raster."""
        for r in self._readers.values():
            r.close()
        for lab in [*self._labelers.values(), *self._values.values()]:
            if hasattr(lab, "close"):
                lab.close()
        self._readers.clear()
        self._labelers.clear()
        self._values.clear()
