"""Does a model still fit the scenes it is given? Input drift, prediction drift and applicability.

``eoengine monitor MODEL SCENE...`` and the subscriptions' runs call :func:`monitor`. For each
scene it compares, on seeded samples (:mod:`eoengine.grading.samples`, memory bounded
whatever the scene's size):

- **input drift**: every channel (bands and indices, as the model takes them) of the scene's
  pixels against pixels of the dataset's train split — PSI, Kolmogorov–Smirnov, mean shift
  in train standard deviations and the ratio of standard deviations
  (:mod:`eoengine.grading.drift`);
- **prediction drift**: the model's answers on the scene against its answers on the test
  split's chips — class shares (total variation distance), the confidence (top class
  probability: PSI, KS and the drop of its mean); for a value model the predicted values;
- **applicability**: the model's bands are all in the scene (checked for every scene before
  any work: otherwise an :class:`~eoengine.errors.EOError` names the missing bands); the
  scene's resolution against the dataset's; and an input distance (the mean over channels of
  |mean shift|) against the largest distance of the test split's scenes, the range the
  model was graded on.

Each measure is rated ok, warn or alert by :class:`MonitorThresholds`; a scene's status is
its worst rating, the report's the worst scene's, and every warn or alert comes with a
reason naming the scene, the measure and the number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from eoengine.datasets.remote import dataset_root
from eoengine.datasets.schema import DatasetManifest
from eoengine.datasets.store import INDEX, open_arrays
from eoengine.errors import EOError, Invalid, NotFound
from eoengine.grading.drift import ChannelDrift, channel_drift, drift_of, input_distance, json_number, total_variation
from eoengine.grading.ratings import MonitorThresholds, Status, Verdict, rate_distribution, worst
from eoengine.grading.samples import ModelRunner, Sample, chip_sample, join_samples, scene_sample
from eoengine.inference.predict import prediction_options
from eoengine.inference.sources import sources_for_package
from eoengine.inference.tiling import round_up
from eoengine.models.package import ModelPackage
from eoengine.progress import progress_task
from eoengine.raster.scene import BandSource, SceneReader


@dataclass
class PredictionDrift:
    """The model's answers on a scene against its answers on the test split."""

    kind: Literal["classes", "values"]
    head: str
    reference_shares: dict[str, float] = field(default_factory=dict)
    """Class shares of the test split's predictions (classes)."""
    shares: dict[str, float] = field(default_factory=dict)
    """Class shares of the scene's predictions (classes)."""
    share_distance: float = math.nan
    """Total variation distance between the two."""
    reference_confidence: float = math.nan
    """Mean top-class probability on the test split (classes)."""
    confidence: float = math.nan
    """Mean top-class probability on the scene (classes)."""
    distribution: ChannelDrift | None = None
    """The confidence's (classes) or predicted value's (values) drift."""


@dataclass
class SceneReport:
    """One scene's monitoring: status, reasons and every measure."""

    scene: str
    status: Status
    reasons: list[str]
    resolution: float
    resolution_factor: float
    input_distance: float
    windows: int
    pixels: int
    channels: list[ChannelDrift]
    prediction: PredictionDrift | None


@dataclass
class MonitorReport:
    """The monitoring of scenes for one model: the worst status, every reason, and each scene's details."""

    model: str
    dataset: str
    status: Status
    reasons: list[str]
    scenes: list[SceneReport]
    grading_distances: dict[str, float]
    """The input distance of each test-split scene: the range the model was graded on."""
    reference_resolution: tuple[float, float]
    """The dataset's resolution (the range of its scenes' when it resampled none)."""
    thresholds: MonitorThresholds

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (NaN and infinity as None)."""
        return _plain(asdict(self))

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return json_number(value)


@dataclass
class Reference:
    """What scenes are compared with: train pixels, test-split outputs and the test scenes' input distances."""

    train: Sample
    test: Sample
    seen: dict[str, float]
    """Input distance of each test-split scene's chips to the train pixels."""
    resolution: tuple[float, float]

    @property
    def seen_max(self) -> float:
        """The largest input distance seen in grading (0 without test chips)."""
        finite = [d for d in self.seen.values() if math.isfinite(d)]
        return max(finite, default=0.0)


def _dataset(pkg: ModelPackage, dataset: Path | str | None) -> tuple[Path, DatasetManifest]:
    location = dataset or pkg.meta.dataset.path
    if not location:
        raise EOError(f"the model {pkg.path} records no dataset to compare scenes with",
                      "pass --dataset PATH, the dataset it was trained on")
    root = dataset_root(location)
    if not (root / "manifest.json").exists():
        raise NotFound(f"dataset not found: {root}", "pass --dataset PATH, the dataset the model was trained on")
    manifest = DatasetManifest.read(root)
    if manifest.channels != pkg.meta.channels:
        raise EOError(f"dataset {root} has channels {manifest.channels}, the model takes {pkg.meta.channels}",
                      "pass --dataset with the dataset the model was trained on")
    return root, manifest


def dataset_resolution(manifest: DatasetManifest) -> tuple[float, float]:
    """The resolution the dataset's chips have: its resampling target, else the range of its scenes' pixel sizes."""
    if manifest.resolution:
        return manifest.resolution, manifest.resolution
    sizes = [abs(s.grid.transform[0]) for s in manifest.scenes]
    return (min(sizes), max(sizes)) if sizes else (math.nan, math.nan)


def resolution_factor(resolution: float, low: float, high: float) -> float:
    """How many times finer or coarser ``resolution`` is than the nearest end of [low, high] (1 inside it)."""
    if resolution < low:
        return low / resolution
    if resolution > high:
        return resolution / high
    return 1.0


def reference(root: Path, manifest: DatasetManifest, runner: ModelRunner, sample: int, seed: int) -> Reference:
    """The train pixels, the model's outputs on test chips and the test scenes' input distances, sampled.

    Args:
        root: The dataset folder.
        manifest: Its manifest.
        runner: The model.
        sample: Pixels kept of the train split, and of each test scene.
        seed: Seeds the choice of chips and pixels.

    Returns:
        The reference.

    Raises:
        EOError: The dataset has no train chips.

    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    index = pd.read_parquet(root / INDEX, columns=["chip_id", "split", "scene"])
    images, _ = open_arrays(root)
    train_ids = index.loc[index["split"] == "train", "chip_id"].to_numpy()
    if not len(train_ids):
        raise EOError(f"dataset {root} has no train chips to compare scenes with", "rebuild it with a train split")
    train = chip_sample(images, train_ids, sample, rng)
    test = index.loc[index["split"] == "test"]
    scenes = sorted(test["scene"].unique())
    seen, parts = {}, []
    for scene in scenes:
        ids = test.loc[test["scene"] == scene, "chip_id"].to_numpy()
        part = chip_sample(images, ids, sample, rng, runner, most_chips=max(8, 256 // len(scenes)))
        seen[str(scene)] = input_distance(channel_drift(train.pixels, part.pixels, manifest.channels))
        parts.append(part)
    return Reference(train, join_samples(parts, len(manifest.channels), runner.head is not None), seen,
                     dataset_resolution(manifest))


def prediction_drift(runner: ModelRunner, class_names: Sequence[str], reference: np.ndarray | None,
                     current: np.ndarray | None) -> PredictionDrift | None:
    """The model's answers on a scene against those on the test split.

    Args:
        runner: The model (its compared head).
        class_names: The package's classes, by position.
        reference: Outputs on test chips, (n, K) probabilities or (n, 1) values.
        current: Outputs on the scene, the same way.

    Returns:
        Class shares and confidence, or the predicted values' drift; None without a compared
        head (multi-label) or without outputs on either side.

    """
    head = runner.head
    if head is None or reference is None or current is None or not len(reference) or not len(current):
        return None
    if head.type == "regression":
        return PredictionDrift("values", head.name, distribution=drift_of("predicted value", reference[:, 0], current[:, 0]))
    k = reference.shape[1]
    names = list(class_names) if len(class_names) == k else [str(i) for i in range(k)]
    ref_shares = np.bincount(reference.argmax(axis=1), minlength=k) / len(reference)
    shares = np.bincount(current.argmax(axis=1), minlength=k) / len(current)
    ref_conf, conf = reference.max(axis=1), current.max(axis=1)
    return PredictionDrift(
        "classes", head.name, dict(zip(names, ref_shares.tolist(), strict=True)), dict(zip(names, shares.tolist(), strict=True)),
        total_variation(ref_shares, shares), float(ref_conf.mean()), float(conf.mean()), drift_of("confidence", ref_conf, conf),
    )


def _rate_prediction(verdict: Verdict, p: PredictionDrift, t: MonitorThresholds) -> None:
    if p.distribution is None:
        return
    if p.kind == "values":
        rate_distribution(verdict, "predicted value", p.distribution, t, unit="test-split std")
        return
    verdict.rate("predicted class shares: total variation", p.share_distance, t.shares_warn, t.shares_alert)
    drop = p.reference_confidence - p.confidence
    verdict.rate("mean confidence drop", drop, t.confidence_warn, t.confidence_alert,
                 f"{drop:.2f} ({p.reference_confidence:.2f} on the test split, {p.confidence:.2f} here)")
    rate_distribution(verdict, "confidence", p.distribution, t, moments=False)


def _rate_applicability(verdict: Verdict, resolution: float, distance: float, ref: Reference, t: MonitorThresholds) -> float:
    """Rate the resolution and the input distance; returns the resolution factor."""
    low, high = ref.resolution
    factor = resolution_factor(resolution, low, high) if math.isfinite(low) else math.nan
    trained = f"{low:g}" if low == high else f"{low:g}–{high:g}"
    verdict.rate("resolution", factor, t.resolution_warn, t.resolution_alert,
                 f"{resolution:g} against {trained} in training, a factor {factor:.2f}")
    excess = distance - ref.seen_max
    verdict.rate("input distance", excess, t.distance_warn, t.distance_alert,
                 f"{distance:.2f} train std, {excess:.2f} beyond the {ref.seen_max:.2f} seen in grading")
    return factor


def scene_report(name: str, reader: SceneReader, runner: ModelRunner, pkg: ModelPackage, ref: Reference,
                 t: MonitorThresholds, side: int, windows: int, sample: int, seed: int) -> SceneReport:
    """Sample one scene and rate its input drift, prediction drift and applicability.

    Args:
        name: The scene, as reasons name it.
        reader: The scene, opened over the model's band sources.
        runner: The model.
        pkg: The model package (its channels and classes).
        ref: What the scene is compared with (:func:`reference`).
        t: The thresholds.
        side: The windows' side.
        windows: Windows read at most.
        sample: Pixels kept at most.
        seed: Seeds the choice of windows and pixels (the same for every scene).

    Returns:
        The scene's report.

    """
    cur = scene_sample(reader, runner, side, windows, sample, np.random.default_rng(seed))
    verdict = Verdict(name)
    if not len(cur.pixels):
        verdict.add("alert", f"no pixel with data in {windows} sampled windows")
        return SceneReport(name, verdict.status, verdict.reasons, reader.grid.res, math.nan, math.nan, 0, 0, [], None)
    drifts = channel_drift(ref.train.pixels, cur.pixels, pkg.meta.channels)
    distance = input_distance(drifts)
    factor = _rate_applicability(verdict, reader.grid.res, distance, ref, t)
    for d in drifts:
        rate_distribution(verdict, f"channel {d.channel}", d, t)
    prediction = prediction_drift(runner, pkg.class_names, ref.test.outputs, cur.outputs)
    if prediction is not None:
        _rate_prediction(verdict, prediction, t)
    return SceneReport(name, verdict.status, verdict.reasons, reader.grid.res, factor, distance, cur.parts,
                       len(cur.pixels), drifts, prediction)


def _scene_args(scene: str | Sequence[str]) -> list[str]:
    return scene.split(",") if isinstance(scene, str) else list(scene)


def _sources(pkg: ModelPackage, scenes: Sequence[str | Sequence[str]]) -> list[tuple[str, list[BandSource]]]:
    """Every scene's band sources, each scene opened once: a missing band or unreadable file fails before any work."""
    resolved = []
    for scene in scenes:
        args = _scene_args(scene)
        sources = sources_for_package(pkg.meta, args)
        with SceneReader(sources, pkg.meta.resampling):
            pass
        resolved.append((",".join(args), sources))
    return resolved


def monitor(pkg: ModelPackage, scenes: Sequence[str | Sequence[str]], thresholds: MonitorThresholds | None = None,
            sample: int = 20_000, windows: int = 256, seed: int = 0, dataset: Path | str | None = None,
            engine: str = "auto") -> MonitorReport:
    """Input drift, prediction drift and applicability of a model on scenes, rated ok, warn or alert.

    Args:
        pkg: The model package (``eoengine.models.package.load_package``).
        scenes: The scenes, each as ``eoengine predict`` takes one: a stack, band files in the
            model's order, or ``name=path`` pairs — as a list, or one string joined with commas.
        thresholds: Where measures turn warn and alert; default :class:`MonitorThresholds`.
        sample: Pixels kept of each scene, of the train split and of each test scene.
        windows: Windows read of each scene at most, each of the model's patch size (the size of the
            chips it was trained and graded on, so its answers on the scene and on the test
            split come from inputs of one size: a larger tile's centre sees more context).
        seed: Seeds every choice of chips, windows and pixels.
        dataset: The dataset to compare with; default: the one the model was trained on.
        engine: The inference engine, as for prediction.

    Returns:
        The report: the worst status, every reason and each scene's measures.

    Raises:
        Invalid: No scenes, a sample or window count below 1, or a scene without the model's
            bands (naming them), before any work.
        NotFound: The dataset or a scene's file does not exist.
        EOError: The dataset's channels are not the model's, or it has no train chips.

    """
    t = thresholds or MonitorThresholds()
    if not scenes:
        raise Invalid("no scenes to monitor", "pass one or more scenes: a stack, or the model's band files joined with commas")
    if sample < 1 or windows < 1:
        raise Invalid(f"sample {sample} and windows {windows}: both must be at least 1", "use --sample 20000 or so")
    root, manifest = _dataset(pkg, dataset)
    resolved = _sources(pkg, scenes)
    side = round_up(pkg.meta.patch_size, pkg.meta.size_multiple)  # the test chips' size: answers compare like for like
    runner = ModelRunner(pkg, engine, (prediction_options(pkg.meta.prediction).batch_size, len(pkg.meta.channels), side, side))
    with progress_task("monitoring", len(resolved) + 1) as task:
        ref = reference(root, manifest, runner, sample, seed)
        task.advance()
        reports = []
        for name, sources in resolved:
            with SceneReader(sources, pkg.meta.resampling) as reader:
                reports.append(scene_report(name, reader, runner, pkg, ref, t, side, windows, sample, seed))
            task.advance()
    return MonitorReport(str(pkg.path), str(root), worst([r.status for r in reports]),
                         [reason for r in reports for reason in r.reasons], reports, ref.seen, ref.resolution, t)
