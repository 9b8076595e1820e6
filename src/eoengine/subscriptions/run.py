"""Run a subscription: every due period, in order — scenes → fetch → (composite) → predict → outputs → notify.

A run's key is the hash of the model version, the sorted input scene ids and the compositing
rule; a key already done (its ``runs/<key>/record.json`` exists, written last) is never run again,
and a run that crashed before its record resumes in the same folder (the prediction itself resumes
its tiles). The model is resolved at each run, so a registry alias that moved is followed. A period
without scenes is recorded as ``no-imagery``; a failure (an unreachable catalog, an unreadable scene)
is recorded as ``failed`` with the reason, ``run.failed`` is sent and the period is retried next time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac

from eoengine.errors import EOError
from eoengine.progress import ProgressReporter, progress_task, using_reporter
from eoengine.subscriptions import outputs
from eoengine.subscriptions.cadence import EACH_NEW_SCENE, Period, utc
from eoengine.subscriptions.notify import Retry, notify
from eoengine.subscriptions.select import as_ref, choose, due_periods, find_scenes
from eoengine.subscriptions.spec import SubscriptionSpec
from eoengine.subscriptions.state import ClassStat, Drift, RunError, RunRecord, SubscriptionState, write_json_atomic

CRASH_HOOK = "EOENGINE_TEST_CRASH_AFTER_MAP"
"""Tests set this to make the process die right after a run's map is written (to test resuming)."""


@dataclass(frozen=True)
class ResolvedModel:
    """The model a run uses: the loaded predictor and the identity of its version."""

    predictor: Any
    version: str


def resolve_model(spec: SubscriptionSpec, tracking_uri: str | None = None) -> ResolvedModel:
    """Load the model the spec names, as it is now (an alias resolves to its current version).

    Args:
        spec: the subscription.
        tracking_uri: MLflow tracking URI for registry and run references.

    Returns:
        The predictor and ``name/version`` (registry) or ``package:<path>@<meta hash>``.

    Raises:
        NotFound: no such model, version or alias.

    """
    from eoengine.deploy.registry import is_registry_ref, registry_version, resolve_model_ref
    from eoengine.inference.predict import Predictor
    from eoengine.models.package import load_package

    if is_registry_ref(spec.model):
        mv = registry_version(spec.model, tracking_uri)
        path = resolve_model_ref(f"models:/{mv.name}/{mv.version}", tracking_uri)
        version = f"{mv.name}/{mv.version}"
    else:
        path = resolve_model_ref(spec.model, tracking_uri)
        digest = hashlib.sha256(next(iter(sorted(Path(path).glob("*.json")))).read_bytes()).hexdigest()[:12]
        version = f"package:{Path(path).resolve()}@{digest}"
    return ResolvedModel(Predictor(load_package(path), engine=spec.engine), version)


def run_key(model_version: str, scene_ids: list[str], composite: str) -> str:
    """The idempotency key of a run: the same model version, scenes and rule give the same key.

    Args:
        model_version: the resolved model's identity.
        scene_ids: the input scenes (order does not matter).
        composite: the compositing rule.

    Returns:
        16 hex digits.

    """
    text = json.dumps({"model": model_version, "scenes": sorted(scene_ids), "composite": composite})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_due(spec: SubscriptionSpec, state: SubscriptionState, out: Path, cache: Path, now: dt.datetime,
            reporter: ProgressReporter | None = None, tracking_uri: str | None = None,
            retry: Retry | None = None) -> tuple[SubscriptionState, list[RunRecord]]:
    """Run every period due at ``now``, oldest first; the state to persist and what each run did.

    Args:
        spec: the subscription.
        state: what earlier runs left (``SubscriptionState()`` the first time).
        out: the subscription's output folder.
        cache: where fetched scenes are kept.
        now: the time of this run (injected, so a clock can be tested).
        reporter: where progress goes (default: the current reporter).
        tracking_uri: MLflow tracking URI for registry models.
        retry: webhook attempts, backoff and timeout.

    Returns:
        The new state and one record per period run.

    Raises:
        Invalid: the cadence falls due too often over the span.

    """
    if reporter is not None:
        with using_reporter(reporter):
            return run_due(spec, state, out, cache, now, None, tracking_uri, retry)
    due = due_periods(spec, state, now)
    state = state.model_copy(update={"failed": []})
    records: list[RunRecord] = []
    with progress_task(f"subscription {spec.name}", len(due.periods)) as task:
        for period in due.periods:
            record = run_period(spec, state, period, out, cache, tracking_uri, retry, quiet=spec.cadence == EACH_NEW_SCENE)
            if record is not None:
                state = _advance(state, period, record)
                records.append(record)
            task.advance()
    completed = due.completed and not state.failed
    return state.model_copy(update={"last_due": due.last_due, "completed": completed}), records


def _advance(state: SubscriptionState, period: Period, record: RunRecord) -> SubscriptionState:
    """The state after one run: its key done, the newest scene, the change base, a failed period to retry."""
    update: dict[str, Any] = {"runs": state.runs + 1}
    if record.status == "failed":
        update["failed"] = [*state.failed, as_ref(period)]
    if record.status in ("succeeded", "skipped") and record.key:
        update["keys_done"] = sorted({*state.keys_done, record.key})
        if record.status == "succeeded":
            update |= {"previous_key": record.key, "previous_map": record.map_path}
    if record.predict_seconds and record.pixels:
        update["pixels_per_second"] = round(record.pixels / record.predict_seconds, 1)
    newest = record.newest_scene
    if newest and record.status != "failed" and (state.newest_scene is None or newest > state.newest_scene):
        update["newest_scene"] = newest
    return state.model_copy(update=update)


def run_period(spec: SubscriptionSpec, state: SubscriptionState, period: Period, out: Path, cache: Path,
               tracking_uri: str | None = None, retry: Retry | None = None, quiet: bool = False) -> RunRecord | None:
    """Run one period and record it (in ``history.jsonl``; a success also in its run folder).

    Args:
        spec: the subscription.
        state: the state before this run.
        period: the imagery period.
        out: the output folder.
        cache: the fetch cache.
        tracking_uri: MLflow tracking URI.
        retry: webhook attempts, backoff and timeout.
        quiet: a period without scenes is no run at all (``each-new-scene``: nothing new), not ``no-imagery``.

    Returns:
        The record: succeeded, skipped (its key was done), no-imagery or failed (with the reason); None when
        ``quiet`` and there were no scenes.

    """
    started = dt.datetime.now(dt.UTC)
    base: dict[str, Any] = {"period_start": period.start, "period_end": period.end, "composite": spec.composite, "model": spec.model,
            "started": started}
    try:
        scenes = choose(find_scenes(spec, period), spec.composite)
        if not scenes:
            return None if quiet else _finish(spec, out, RunRecord(status="no-imagery", **base))
        base["newest_scene"] = max((utc(s.datetime) for s in scenes if s.datetime), default=None)
        model = resolve_model(spec, tracking_uri)
        key = run_key(model.version, [s.id for s in scenes], spec.composite)
        base |= {"key": key, "scene_ids": [s.id for s in scenes], "model_version": model.version}
        if key in state.keys_done or outputs.finished_record(out, key) is not None:
            return _finish(spec, out, RunRecord(status="skipped", **base))
        record = _produce(spec, state, scenes, model, out, cache, RunRecord(status="succeeded", **base))
    except EOError as exc:
        record = RunRecord(status="failed", error=RunError(error=exc.problem, fix=exc.fix), **base)
        record.deliveries = notify(spec.webhooks, "run.failed", _payload(spec, record), retry)
        return _finish(spec, out, record)
    record.deliveries = _notifications(spec, record, retry)
    return _finish(spec, out, record)


def _finish(spec: SubscriptionSpec, out: Path, record: RunRecord) -> RunRecord:
    """Close the record; a success's ``record.json`` is written last (its folder is then complete), then the series."""
    record.finished = dt.datetime.now(dt.UTC)
    if record.status == "succeeded" and record.key:
        write_json_atomic(outputs.run_folder(out, record.key) / "record.json", record.model_dump_json(indent=2))
        outputs.write_stats(spec, out)
    outputs.append_history(out, record)
    return record


def _produce(spec: SubscriptionSpec, state: SubscriptionState, scenes: list[pystac.Item], model: ResolvedModel,
             out: Path, cache: Path, record: RunRecord) -> RunRecord:
    """Fetch, composite, predict, measure, compare and check drift; the outputs in the run's folder."""
    from shapely.geometry import shape

    from eoengine.inference.area import fetch_scene, predict_fetched
    from eoengine.inference.class_areas import class_areas
    from eoengine.subscriptions.change import change
    from eoengine.subscriptions.composite import median_composite

    folder = outputs.run_folder(out, str(record.key))
    stacks = [fetch_scene(item, model.predictor, cache, shape(spec.area)) for item in scenes]
    scene = median_composite(stacks, folder / "composite.tif") if spec.composite == "median" else stacks[0]
    map_path = folder / "map.tif"
    if not map_path.is_file():
        began = time.perf_counter()
        predict_fetched(model.predictor, [scene], [",".join(record.scene_ids)], map_path)
        record.predict_seconds = round(time.perf_counter() - began, 3)
    record.pixels = _pixels(map_path)
    if os.environ.get(CRASH_HOOK):
        os._exit(3)
    record.map_path = str(map_path)
    record.stats = [ClassStat(code=c.code, name=c.name, pixels=c.pixels, hectares=round(c.hectares, 4))
                    for c in class_areas(map_path, spec.area)]
    if state.previous_map and state.previous_key and Path(state.previous_map).is_file():
        record.change = change(Path(state.previous_map), map_path, spec.area, state.previous_key, folder)
    record.drift = drift(model.predictor.pkg, scene)
    item = outputs.make_item(spec, record, scenes)
    record.item_path = str(outputs.add_to_collection(spec, out, item))
    return record


def _pixels(path: Path) -> int:
    import rasterio

    with rasterio.open(path) as ds:
        return int(ds.width * ds.height)


def drift(pkg: Any, scene: Path) -> Drift:
    """Grading's monitor on the run's input: its status and measures, or ``no-reference`` and why.

    Args:
        pkg: the model package.
        scene: the stack (or composite) predicted.

    Returns:
        The drift check.

    """
    from eoengine.grading.monitor import monitor

    try:
        report = monitor(pkg, [str(scene)], sample=5000, windows=32)
    except EOError as exc:
        return Drift(status="no-reference", reasons=[f"{exc.problem} — {exc.fix}" if exc.fix else exc.problem])
    measures = report.as_dict()["scenes"][0] if report.scenes else {}
    return Drift(status=report.status, measure={k: v for k, v in measures.items() if isinstance(v, int | float | str)},
                 reasons=list(report.reasons))


def _notifications(spec: SubscriptionSpec, record: RunRecord, retry: Retry | None) -> list[Any]:
    payload = _payload(spec, record)
    sent = notify(spec.webhooks, "run.succeeded", payload, retry)
    if record.change is not None and record.change.changed_hectares > spec.change_threshold_ha:
        sent += notify(spec.webhooks, "change.detected", payload, retry)
    if record.drift is not None and record.drift.status == "alert":
        sent += notify(spec.webhooks, "drift.alert", payload, retry)
    return sent


def _payload(spec: SubscriptionSpec, record: RunRecord) -> dict[str, Any]:
    return {"subscription": spec.name, "run": record.model_dump(mode="json", exclude={"deliveries"})}
