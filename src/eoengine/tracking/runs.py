"""Query tracked runs: list, show and compare them, from the MLflow store the project uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eoengine.errors import Invalid, NotFound

SUMMARY_METRICS = ("test_miou", "test_accuracy", "test_f1", "test_rmse", "test_r2", "best_val_miou", "best_val_rmse")
FINAL = ("test_", "best_val_", "eval_")
"""Prefixes of metrics recorded once per run (the rest are per epoch)."""
STORE_FIX = "train a model first ('eoengine train'), or pass the tracking URI of an existing store"


@dataclass
class RunInfo:
    """One run as the tables show it."""

    run_id: str
    name: str
    status: str
    start: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    started_at: str = ""
    ended_at: str | None = None
    artifact_uri: str = ""

    @property
    def model(self) -> str:
        """The run's model name."""
        return self.params.get("model.name", "?")


def is_final(metric: str) -> bool:
    """True for a metric recorded once per run (``test_miou``, ``best_val_loss``, ``eval_test_f1``)."""
    return metric.startswith(FINAL)


def local_path(uri: str) -> Path | None:
    """The file or folder on this machine a tracking or artifact URI names; None for a remote one.

    Args:
        uri: An MLflow tracking URI (``sqlite:///`` file, ``file:`` URI or path) or artifact URI.

    Returns:
        The SQLite file, store folder or artifact folder; None for a server, database or object store
        URI (and in-memory SQLite).

    """
    from urllib.parse import unquote, urlparse

    if uri.startswith("sqlite:///"):
        return Path(unquote(uri.removeprefix("sqlite:///").split("?")[0]))
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri) if not parsed.scheme or len(parsed.scheme) == 1 else None  # "C:" is a drive, not a scheme


def open_store(uri: str) -> Any:
    """An ``MlflowClient`` on an existing store: a local one that is missing is not created.

    Args:
        uri: The MLflow tracking URI.

    Returns:
        The client.

    Raises:
        NotFound: ``uri`` names a local SQLite file or store folder that does not exist.

    """
    from mlflow.tracking import MlflowClient

    path = local_path(uri)
    if path is not None and not path.exists():
        raise NotFound(f"no MLflow store at {uri} ({path} does not exist)", STORE_FIX)
    return MlflowClient(tracking_uri=uri)


def iso_time(ms: int | None) -> str | None:
    """An MLflow timestamp (milliseconds since the epoch) as ISO 8601 in UTC; None for none."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None


def _info(run: Any) -> RunInfo:
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M") if run.info.start_time else ""
    return RunInfo(run.info.run_id, run.info.run_name or "", run.info.status, start,
                   dict(run.data.params), dict(run.data.metrics), dict(run.data.tags),
                   iso_time(run.info.start_time) or "", iso_time(run.info.end_time), run.info.artifact_uri or "")


def shown_tags(tags: dict[str, str]) -> dict[str, str]:
    """A run's tags as they are shown: MLflow's own (``mlflow.*``) left out, secret-looking values hidden.

    Args:
        tags: The run's tags.

    Returns:
        The tags to show (a key naming a secret, token, password or key has the value ``***``).

    """
    from eoengine.sourcing.storage import redacted

    return redacted({k: v for k, v in tags.items() if not k.startswith("mlflow.")})


METRIC_NAME = re.compile(r"[\w./ -]+")
"""What MLflow allows in a metric name (letters, digits, ``_ - . /`` and spaces): a ``sort`` must be one."""


def list_runs(uri: str, experiment: str, sort: str | None = None, limit: int = 50) -> list[RunInfo]:
    """Runs of ``experiment``, newest first or by ``sort`` (a metric; best first).

    Raises:
        Invalid: ``sort`` is not a metric name.
        NotFound: The store has no such experiment.

    """
    if sort and not METRIC_NAME.fullmatch(sort):
        raise Invalid(f"sort {sort!r} is not a metric name", "give a metric the runs logged, such as test_miou")
    client = open_store(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise NotFound(f"no experiment '{experiment}' in {uri}", f"experiments there: {', '.join(names) or 'none'}")
    order = ["attributes.start_time DESC"]
    if sort:
        from eoengine.models.heads import monitor_mode

        order = [f"metrics.`{sort}` {'ASC' if monitor_mode(sort) == 'min' else 'DESC'}", *order]
    runs = client.search_runs([exp.experiment_id], order_by=order, max_results=limit)
    return [_info(r) for r in runs]


def get_run(uri: str, run_id: str) -> RunInfo:
    """One run by id, with a clear error for an unknown id."""
    from mlflow.exceptions import MlflowException

    try:
        return _info(open_store(uri).get_run(run_id))
    except MlflowException:
        raise NotFound(f"no run '{run_id}' in {uri}", "list the runs with 'eoengine runs list'") from None


def artifacts(uri: str, run_id: str, depth: int = 1) -> list[tuple[str, bool, int | None]]:
    """A run's artifacts, each folder followed by its content, ``depth`` levels into folders.

    Args:
        uri: The MLflow tracking URI.
        run_id: The run.
        depth: How many folder levels to go into (0: the top level only).

    Returns:
        (path relative to the run's artifact root, is a folder, size in bytes or None) in listing order.

    """
    client = open_store(uri)
    out: list[tuple[str, bool, int | None]] = []

    def walk(path: str | None, level: int) -> None:
        for item in client.list_artifacts(run_id, path):
            out.append((item.path, bool(item.is_dir), item.file_size))
            if item.is_dir and level < depth:
                walk(item.path, level + 1)

    walk(None, 0)
    return out


def history(uri: str, run_id: str, metric: str) -> list[tuple[int, float]]:
    """A metric's per-epoch values."""
    return [(m.step, m.value) for m in sorted(open_store(uri).get_metric_history(run_id, metric), key=lambda m: m.step)]


def differing_params(runs: list[RunInfo]) -> list[str]:
    """Parameter names whose values are not the same in every run."""
    keys = sorted({k for r in runs for k in r.params})
    return [k for k in keys if len({r.params.get(k) for r in runs}) > 1]


def plot_comparison(uri: str, runs: list[RunInfo], metrics: list[str], out: Path) -> Path:
    """Per-epoch curves of ``metrics`` for every run, one panel per metric, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for r in runs:
            points = history(uri, r.run_id, metric)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3,
                        label=f"{r.run_id[:8]} {r.model}")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
