"""Plan a dataset build: check the inputs, then list every candidate chip with its split.

Planning runs in the driver and reads only headers and labels, never pixels; the pixel
work (reading, features, rasterizing, filtering, writing) runs in the Beam pipeline.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd

from eoengine.config.schema import BuildConfig, ProjectConfig, SceneSpec, class_key, class_lookup
from eoengine.datasets.split import (
    MIN_SPLIT_CHIPS,
    SplitFn,
    block_sizes,
    block_splitter,
    geometry_splitter,
    grid_windows,
    random_splitter,
    random_windows,
    short_splits,
    stable_seed,
)
from eoengine.errors import EOError, NotFound
from eoengine.features.indices import check_indices
from eoengine.labels.raster import RasterLabeler, ValueReader
from eoengine.labels.vector import labels_for_grid, read_labelled_area, read_vector_labels
from eoengine.raster.scene import BandSource, Grid, SceneReader, resolve_scene_bands

log = logging.getLogger(__name__)


def stac_properties(spec: SceneSpec, base_dir: Path) -> dict[str, Any] | None:
    """The properties of the STAC Item a scene (its first date) was given as; None for files and stacks."""
    item = spec.dates[0].stac_item
    if item is None or "://" in item:
        return None
    path = Path(item) if Path(item).is_absolute() else base_dir / item
    try:
        props = json.loads(path.read_text(encoding="utf-8")).get("properties")
    except (OSError, ValueError):
        return None  # reading the bands says what is wrong with the item
    return props if isinstance(props, dict) else None


@dataclass
class ScenePlan:
    """One scene as the workers need it: band sources, grid and where its labels are."""

    id: str
    sources: list[BandSource]
    grid: Grid
    datetime: str | None
    label_raster: str | None = None
    label_vector: str | None = None  # GeoParquet of labels already on this scene's grid
    label_area: str | None = None  # GeoParquet of the labelled area (background inside it) on this grid
    values_raster: str | None = None  # continuous targets (regression)
    properties: dict[str, Any] | None = None  # the STAC Item's properties (first date), for grading slices


@dataclass
class Candidate:
    """A window that may become a chip, with its split; ``chip_id`` is its array row."""

    chip_id: int
    scene: str
    row: int
    col: int
    split: str


@dataclass
class BuildPlan:
    """Everything the pipeline needs, all picklable."""

    scenes: dict[str, ScenePlan]
    candidates: list[Candidate]
    band_names: list[str]
    common_names: list[str | None]
    indices: list[str]
    index_constants: dict[str, float]
    patch_size: int
    n_classes: int
    class_values: list[int | str]
    min_labelled_fraction: float
    max_nodata_fraction: float
    all_touched: bool
    timesteps: int = 1
    background: int | None = None  # class index of pixels no label feature covers (None: unlabelled)
    has_classes: bool = True
    values_nodata: float | None = None
    values_resampling: str = "nearest"
    inputs: list[str] = field(default_factory=list)
    dropped_at_split_borders: int = 0


def _split_fn(cfg: ProjectConfig, grid: Grid, scene: str, labels: gpd.GeoDataFrame | None, block: int) -> SplitFn:
    sc = cfg.dataset.split
    if sc.method == "blocks":
        return block_splitter(grid, block, sc.ratios, cfg.dataset.seed, scene)
    if sc.method == "random":
        return random_splitter(sc.ratios, cfg.dataset.seed, scene)
    if sc.method == "regions":
        assert sc.path is not None
        regions = read_regions(cfg.resolve(sc.path), sc.column)
        return geometry_splitter(grid, labels_for_grid(regions, grid, sc.path), sc.column, contain=True)
    if labels is None or sc.column not in labels.columns:
        raise EOError(
            f"split method 'column' needs vector labels with a '{sc.column}' column",
            "add the column to the labels, or use split method 'blocks'",
        )
    return geometry_splitter(grid, labels, sc.column, contain=False)


def read_regions(path: Path, column: str) -> gpd.GeoDataFrame:
    """Read split regions: polygons with a column naming train/val/test."""
    if not path.exists():
        raise NotFound(f"split regions file not found: {path}", "check dataset.split.path")
    frame = gpd.read_file(path)
    if frame.crs is None:
        raise EOError(f"split regions {path} have no CRS", "set the CRS of the regions file")
    if column not in frame.columns:
        raise EOError(
            f"split regions {path} have no column '{column}'", "set dataset.split.column"
        )
    return frame


def _candidates_for_scene(
    cfg: ProjectConfig, scene: str, grid: Grid, split: SplitFn
) -> tuple[list[tuple[int, int, str]], int]:
    ds = cfg.dataset
    p = ds.patch_size
    if p > grid.height or p > grid.width:
        raise EOError(
            f"dataset.patch_size {p} is larger than scene '{scene}' ({grid.width}x{grid.height} px)",
            "use a smaller patch_size",
        )
    out: list[tuple[int, int, str]] = []
    dropped = 0
    if ds.sampling == "random":
        for r, c in random_windows(grid.height, grid.width, p, ds.num_samples, stable_seed(ds.seed, scene)):
            s = split(r, c, p)
            dropped += s is None
            if s is not None:
                out.append((r, c, s))
        return out, dropped
    for stride, wanted in ((ds.stride or p, {"train"}), (ds.eval_stride or p, {"val", "test"})):
        for r, c in grid_windows(grid.height, grid.width, p, stride):
            s = split(r, c, p)
            if s is None:
                dropped += "train" in wanted
            elif s in wanted:
                out.append((r, c, s))
    return out, dropped


Placed = list[tuple[str, int, int, str]]  # scene, row, col, split


def _place_with(cfg: ProjectConfig, scenes: list[tuple[str, Grid, gpd.GeoDataFrame | None]], block: int) -> tuple[Placed, int]:
    placed: Placed = []
    dropped = 0
    for scene, grid, labels in scenes:
        windows, d = _candidates_for_scene(cfg, scene, grid, _split_fn(cfg, grid, scene, labels, block))
        placed += [(scene, r, c, s) for r, c, s in windows]
        dropped += d
    return placed, dropped


def _place_chips(cfg: ProjectConfig, scenes: list[tuple[str, Grid, gpd.GeoDataFrame | None]]) -> tuple[Placed, int]:
    """Every candidate chip of every scene with its split, and how many straddled splits.

    With the ``blocks`` method and no configured block size, the largest of 4, 3, 2 and 1 x
    patch that gives every split at least :data:`MIN_SPLIT_CHIPS` chips is used; when none
    (or the configured size) does, the build is refused rather than left without a test set.
    """
    sc, patch = cfg.dataset.split, cfg.dataset.patch_size
    if sc.method != "blocks":
        return _place_with(cfg, scenes, 0)
    for block in block_sizes(patch, sc.block_size):
        placed, dropped = _place_with(cfg, scenes, block)
        short = short_splits([p[3] for p in placed], sc.ratios)
        if not short:
            if block != block_sizes(patch, sc.block_size)[0]:
                log.info("split blocks of %d px (smaller than 4 x patch: the scenes are small)", block)
            return placed, dropped
    counts = ", ".join(f"{s} {n}" for s, n in short.items())
    fix = (f"lower dataset.split.block_size (it is {sc.block_size}), " if sc.block_size else "lower dataset.patch_size, ")
    raise EOError(
        f"split blocks of {block} px leave too few chips in a split ({counts}; each needs {MIN_SPLIT_CHIPS})",
        fix + f"add scenes, or set dataset.split.ratios of {', '.join(short)} to 0",
    )


def plan_build(cfg: BuildConfig, scratch: Path) -> BuildPlan:
    """Check inputs and list candidate chips. Vector labels are saved per scene in ``scratch``."""
    bands = cfg.imagery.bands
    band_names = [b.name for b in bands]
    common = [b.common_name for b in bands]
    check_indices(cfg.features.indices, band_names, common)
    labels_cfg = cfg.labels
    if cfg.dataset.sampling == "stratified" and labels_cfg.type == "none":
        raise EOError("stratified sampling balances classes, but there are no class labels",
                      "use dataset.sampling grid or random for regression-only datasets")
    vector: gpd.GeoDataFrame | None = None
    inputs: list[str] = []
    if labels_cfg.type == "vector":
        assert labels_cfg.path
        vpath = cfg.resolve(labels_cfg.path)
        vector = read_vector_labels(vpath, labels_cfg.class_column, cfg.classes, labels_cfg.layer, labels_cfg.class_value)
        if cfg.dataset.split.method == "column":
            raw = gpd.read_file(vpath, layer=labels_cfg.layer) if labels_cfg.layer else gpd.read_file(vpath)
            if cfg.dataset.split.column in raw.columns:
                vector[cfg.dataset.split.column] = raw.loc[vector.index, cfg.dataset.split.column]
        inputs.append(str(vpath))
    area = None
    if labels_cfg.labelled_area:
        area = read_labelled_area(cfg.resolve(labels_cfg.labelled_area))
        inputs.append(str(cfg.resolve(labels_cfg.labelled_area)))
    if cfg.dataset.split.path:
        inputs.append(str(cfg.resolve(cfg.dataset.split.path)))
    scenes: dict[str, ScenePlan] = {}
    candidates: list[Candidate] = []
    placing: list[tuple[str, Grid, gpd.GeoDataFrame | None]] = []
    scratch.mkdir(parents=True, exist_ok=True)
    for spec in cfg.imagery.scenes:
        sources = resolve_scene_bands(bands, spec, cfg.base_dir)
        with SceneReader(sources, cfg.imagery.resampling, cfg.imagery.resolution) as reader:
            grid = reader.grid
        inputs += [s.path for s in sources]
        plan = ScenePlan(spec.id, sources, grid, spec.datetime, properties=stac_properties(spec, cfg.base_dir))
        scene_labels = None
        if labels_cfg.values is not None:
            plan.values_raster = str(cfg.resolve(labels_cfg.values.path))
            ValueReader(plan.values_raster, grid, labels_cfg.values.resampling).close()  # checks CRS and overlap
            inputs.append(plan.values_raster)
        if labels_cfg.type == "raster":
            path = spec.labels or labels_cfg.path
            if path is None:
                raise EOError(
                    f"scene '{spec.id}' has no label raster",
                    "set labels.path, or labels on the scene",
                )
            plan.label_raster = str(cfg.resolve(path))
            RasterLabeler(plan.label_raster, grid, [c.value for c in cfg.classes]).close()  # checks CRS and overlap
            inputs.append(plan.label_raster)
        elif labels_cfg.type == "vector":
            assert vector is not None and labels_cfg.path
            scene_labels = labels_for_grid(vector, grid, labels_cfg.path, labels_cfg.buffer)
            plan.label_vector = str(scratch / f"labels-{len(scenes)}.parquet")
            scene_labels.to_parquet(plan.label_vector)
            if area is not None and labels_cfg.labelled_area:
                plan.label_area = str(scratch / f"area-{len(scenes)}.parquet")
                labels_for_grid(area, grid, labels_cfg.labelled_area).to_parquet(plan.label_area)
        placing.append((spec.id, grid, scene_labels))
        scenes[spec.id] = plan
    placed, dropped = _place_chips(cfg, placing)
    for scene, r, c, s in placed:
        candidates.append(Candidate(len(candidates), scene, r, c, s))
    if not candidates:
        raise EOError(
            "no chip could be placed in any split",
            "lower dataset.patch_size, or check the split settings (block_size, regions)",
        )
    if dropped:
        log.info("dropped %d train-grid chips that straddle splits", dropped)
    return BuildPlan(
        scenes=scenes,
        candidates=candidates,
        band_names=band_names,
        common_names=common,
        indices=list(cfg.features.indices),
        index_constants=dict(cfg.features.constants),
        patch_size=cfg.dataset.patch_size,
        n_classes=len(cfg.classes),
        class_values=[c.value for c in cfg.classes],
        min_labelled_fraction=cfg.dataset.min_labelled_fraction,
        max_nodata_fraction=cfg.dataset.max_nodata_fraction,
        all_touched=labels_cfg.all_touched,
        timesteps=cfg.imagery.timesteps,
        background=None if labels_cfg.background is None else class_lookup(cfg.classes)[class_key(labels_cfg.background)],
        has_classes=labels_cfg.type != "none",
        values_nodata=labels_cfg.values.nodata if labels_cfg.values else None,
        values_resampling=labels_cfg.values.resampling if labels_cfg.values else "nearest",
        inputs=inputs,
        dropped_at_split_borders=dropped,
    )
