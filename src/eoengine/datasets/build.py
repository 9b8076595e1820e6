"""Build a versioned training dataset from a project config.

The build works in ``datasets/.partial-<key>`` (key = hash of config and input checksums),
so an interrupted build resumes where it stopped; when complete, the folder is renamed to
``<name>@<version>`` in one step, so a half-built dataset is never taken for a finished
one. The version is a hash of the content: config, input checksums and every chip's bytes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eoengine.config.output_dir import check_output_dir
from eoengine.config.schema import BuildConfig, ProjectConfig
from eoengine.datasets.manifest import dataset_config
from eoengine.datasets.schema import (
    FORMAT,
    MANIFEST,
    BandInfo,
    ChannelStats,
    ClassInfo,
    DatasetManifest,
    GridInfo,
    InputFile,
    SceneInfo,
    SourceInfo,
    SplitStatistics,
    Targets,
    ValueTarget,
)
from eoengine.errors import EOError, NotFound, check_not_folder, os_error
from eoengine.features.indices import channel_names
from eoengine.files import atomic_write_json, atomic_write_text
from eoengine.hashing import canonical_hash, input_checksums
from eoengine.progress import polled
from eoengine.raster.scene import resolve_scene_bands

if TYPE_CHECKING:
    from eoengine.datasets.plan import BuildPlan, Candidate

SPLIT_FIX = ("if you rely on it, rebuild with other split settings (ratios, block_size, regions), or keep more chips "
             "(lower dataset.min_labelled_fraction, raise dataset.max_nodata_fraction)")
CLASS_FIX = "check the labels' classes, or set labels.background for the pixels no feature covers"


@dataclass
class BuildResult:
    """Where the dataset is, its version, and whether it was already up to date."""

    path: Path
    version: str
    up_to_date: bool
    manifest: DatasetManifest


def config_inputs(cfg: BuildConfig) -> list[str]:
    """Every input file the config names (bands, labels, split regions)."""
    paths: list[str] = []
    for scene in cfg.imagery.scenes:
        paths += [s.path for s in resolve_scene_bands(cfg.imagery.bands, scene, cfg.base_dir)]
        if scene.labels:
            paths.append(str(cfg.resolve(scene.labels)))
        paths += [str(cfg.resolve(d.stac_item)) for d in scene.dates if d.stac_item]
    paths += [str(cfg.resolve(p)) for p in (cfg.labels.path, cfg.labels.labelled_area) if p]
    if cfg.labels.values:
        paths.append(str(cfg.resolve(cfg.labels.values.path)))
    if cfg.dataset.split.path:
        paths.append(str(cfg.resolve(cfg.dataset.split.path)))
    for p in paths:
        if "://" not in p and not Path(p).exists():
            raise NotFound(f"input file not found: {p}", "check the paths in the config")
        check_not_folder(p, "a file", "pass the file itself (the image or labels inside the folder)")
    return paths


def channel_groups(cfg: BuildConfig, indices: list[str]) -> dict[str, list[int]]:
    """Channel indices of each band group (for fusion models); indices form their own group."""
    bands = cfg.imagery.bands
    per_date = [b.group for b in bands]
    if len(set(per_date)) > 1:
        per_date += ["indices"] * len(indices)
    else:
        per_date += per_date[:1] * len(indices)
    groups: dict[str, list[int]] = {}
    for t in range(cfg.imagery.timesteps):
        for i, g in enumerate(per_date):
            groups.setdefault(g, []).append(t * len(per_date) + i)
    return groups


def datasets_dir(cfg: ProjectConfig) -> Path:
    """Folder holding this project's datasets."""
    return cfg.output_path / "datasets"


def latest_dataset(cfg: ProjectConfig) -> Path:
    """The dataset most recently built from this config's project."""
    pointer = datasets_dir(cfg) / f"{cfg.name}.latest.json"
    if not pointer.exists():
        raise NotFound(
            f"no dataset built yet for project '{cfg.name}'",
            "run 'eoengine dataset build CONFIG' first (or set training.dataset)",
        )
    return datasets_dir(cfg) / json.loads(pointer.read_text())["folder"]


def _hashed_inputs(checksums: list[dict[str, str]]) -> list[list[str]]:
    return [[Path(c["path"]).name, c["sha256"]] for c in checksums]


def _collect(root: Path, candidates: list[Candidate]) -> list[dict[str, Any]]:
    from eoengine.datasets.store import MARKERS

    records = []
    missing = 0
    for c in candidates:
        m = root / MARKERS / f"{c.chip_id:08d}.json"
        if not m.exists():
            missing += 1
            continue
        records.append(json.loads(m.read_text()))
    if missing:
        raise EOError(
            f"the pipeline finished but {missing} chips were not produced",
            "check the runner's logs, then rerun 'eoengine dataset build'",
        )
    return records


def build_dataset(
    cfg: ProjectConfig, runner: str | None = None, beam_args: list[str] | None = None
) -> BuildResult:
    """Build (or resume, or confirm up to date) the dataset the config describes.

    Args:
        cfg: The validated project config (``eoengine.config.load_config``).
        runner: The Beam runner (``DirectRunner``, ``DaskRunner``, ...); default: the config's.
        beam_args: Extra Beam pipeline options, as on the command line.

    Returns:
        The dataset's folder, version and manifest, and whether it was built, resumed or up to date.

    Raises:
        EOError: The config, the imagery or the labels cannot make a dataset (one line
            naming the problem and the fix); nothing half-written is kept.

    """
    from eoengine.sourcing.project import with_sourced_scenes

    check_output_dir(cfg.output_path)
    cfg = with_sourced_scenes(cfg.for_build())
    checksums = input_checksums(config_inputs(cfg))
    dcfg = dataset_config(cfg)
    key = canonical_hash({"format": FORMAT, "config": dcfg, "inputs": _hashed_inputs(checksums)})
    out = datasets_dir(cfg)
    known = out / ".keys" / key[:32]
    if known.exists():
        final = out / known.read_text().strip()
        if (final / MANIFEST).exists():
            manifest = DatasetManifest.read(final)
            atomic_write_json(out / f"{cfg.name}.latest.json", {"folder": final.name, "version": manifest.version})
            return BuildResult(final, manifest.version, True, manifest)
    from eoengine.datasets.plan import plan_build  # the making of chips (Beam, geopandas) is imported only when needed

    root = out / f".partial-{key[:16]}"
    fresh = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        plan = plan_build(cfg, root / "_plan")
    except BaseException:
        if fresh:  # a bad input leaves nothing behind
            shutil.rmtree(root, ignore_errors=True)
        raise
    with _discarded_on_failure(root):
        return _build_from_plan(cfg, plan, root, runner, beam_args, dcfg, checksums, known)


@contextmanager
def _discarded_on_failure(root: Path) -> Iterator[None]:
    """A bad input met while chips are made, or a failed write, discards the partial build.

    Its key hashes the inputs, so once they are fixed the partial could never be resumed;
    an interruption (Ctrl-C, a killed process) keeps it for the rerun to resume.
    """
    try:
        yield
    except EOError:
        shutil.rmtree(root, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise os_error(exc) from None


def _build_from_plan(
    cfg: BuildConfig, plan: BuildPlan, root: Path, runner: str | None, beam_args: list[str] | None,
    dcfg: dict[str, Any], checksums: list[dict[str, str]], known: Path,
) -> BuildResult:
    """Make the chips in ``root``, then write the index and manifest and publish the dataset."""
    from eoengine.datasets.manifest import build_index, combine_stats
    from eoengine.datasets.pipeline import beam_options, run_chips, run_label_counts
    from eoengine.datasets.sampling import stratified_select
    from eoengine.datasets.split import warn_dataset
    from eoengine.datasets.store import INDEX, MARKERS, create_arrays, open_arrays

    out = root.parent
    channels = channel_names(plan.band_names, plan.indices, plan.timesteps)
    has_values = cfg.labels.values is not None
    if not (root / "data.zarr" / "zarr.json").exists():
        create_arrays(root, len(plan.candidates), len(channels), plan.patch_size, cfg.dataset.compression, has_values)
    else:
        images, _ = open_arrays(root)
        if images.shape != (len(plan.candidates), len(channels), plan.patch_size, plan.patch_size):
            raise EOError(f"{root} holds an incompatible partial build", f"delete {root} and rebuild")
    ds = cfg.dataset
    options = beam_options(runner or ds.runner, ds.num_workers, ds.running_mode, beam_args or [])
    candidates = plan.candidates
    if ds.sampling == "stratified":
        counts = run_label_counts(
            plan, root, candidates, options, root / "_plan" / "counts.json",
            cfg.imagery.resampling, cfg.imagery.resolution,
        )
        candidates = stratified_select(candidates, counts, ds.num_samples, ds.seed)
    (root / MARKERS).mkdir(exist_ok=True)
    ids = {c.chip_id for c in candidates}

    def done() -> int:
        return sum(1 for p in (root / MARKERS).iterdir() if p.suffix == ".json" and int(p.stem) in ids)

    with polled("building chips", len(candidates), done):
        run_chips(plan, root, candidates, options, cfg.imagery.resampling, cfg.imagery.resolution)
    records = _collect(root, candidates)
    kept = [r for r in records if r["kept"]]
    if not kept:  # nothing to resume: the inputs themselves must change
        raise EOError(
            "every chip was filtered out (mostly nodata or unlabelled)",
            "lower dataset.min_labelled_fraction / raise max_nodata_fraction, or check the labels",
        )
    index = build_index(kept, plan, [c.name for c in cfg.classes], cfg.task.multilabel_threshold)
    index.to_parquet(root / INDEX)
    splits = {s: int((index["split"] == s).sum()) for s in ("train", "val", "test")}
    if splits["train"] == 0:
        raise EOError("no chip landed in the train split", "check the split ratios or regions")
    freq = {
        s: [int(index.loc[index["split"] == s, f"count_{c.name}"].sum()) for c in cfg.classes]
        for s in splits
    }
    warn_dataset(splits, freq, cfg.dataset.split.ratios, [c.name for c in cfg.classes], SPLIT_FIX, CLASS_FIX)
    train_records = [r for r in kept if r["split"] == "train"]
    stats = combine_stats(train_records, channels)
    content = {
        "format": FORMAT,
        "config": dcfg,
        "inputs": _hashed_inputs(checksums),
        "chips": [[r["chip_id"], r["split"], r["digest"]] for r in sorted(kept, key=lambda r: r["chip_id"])],
    }
    version = canonical_hash(content)
    reasons: dict[str, int] = {}
    for r in records:
        if not r["kept"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    manifest = DatasetManifest(
        name=cfg.name,
        version=version,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        config=dcfg,
        inputs=[InputFile(**c) for c in checksums],
        bands=plan.band_names,
        band_specs=[BandInfo(**b.model_dump()) for b in cfg.imagery.bands],
        indices=plan.indices,
        index_constants=plan.index_constants,
        channels=channels,
        patch_size=plan.patch_size,
        classes=[ClassInfo(index=i, value=c.value, name=c.name, color=c.color) for i, c in enumerate(cfg.classes)],
        class_frequencies=freq,
        statistics=SplitStatistics(train=ChannelStats(**stats)),
        timesteps=plan.timesteps,
        channel_groups=channel_groups(cfg, plan.indices),
        task=cfg.task.model_dump(mode="json"),
        targets=Targets(classes=plan.has_classes, values=None if not has_values else ValueTarget(
            name=cfg.labels.values.name,  # type: ignore[union-attr]
            statistics=ChannelStats(**combine_stats([{"chip_id": r["chip_id"], "stats": r["value_stats"]}
                                                     for r in train_records], ["value"])),
        )),
        splits=splits,
        n_chips=len(kept),
        n_array_rows=len(plan.candidates),
        dropped=reasons | {"split_border": plan.dropped_at_split_borders},
        scenes=[
            SceneInfo(id=s.id, datetime=s.datetime, grid=GridInfo(**s.grid.__dict__),
                      sources=[SourceInfo(**src.__dict__) for src in s.sources],
                      **({"properties": s.properties} if s.properties else {}))
            for s in plan.scenes.values()
        ],
        resampling=cfg.imagery.resampling,
        resolution=cfg.imagery.resolution,
    )
    manifest.write(root)
    shutil.rmtree(root / MARKERS)
    shutil.rmtree(root / "_plan")
    final = out / f"{cfg.name}@{version[:12]}"
    up_to_date = final.exists()
    if up_to_date:
        shutil.rmtree(root)
        manifest = DatasetManifest.read(final)
    else:
        root.rename(final)
    atomic_write_json(out / f"{cfg.name}.latest.json", {"folder": final.name, "version": version})
    atomic_write_text(known, final.name)
    return BuildResult(final, version, up_to_date, manifest)
