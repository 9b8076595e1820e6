"""Query tracked runs: list, show and compare them, from the MLflow store the project uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eoengine.errors import NotFound

SUMMARY_METRICS = ("test_miou", "test_accuracy", "test_f1", "test_rmse", "test_r2", "best_val_miou", "best_val_rmse")


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

    @property
    def model(self) -> str:
        """The run's model name."""
        return self.params.get("model.name", "?")


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _info(run: Any) -> RunInfo:
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M") if run.info.start_time else ""
    return RunInfo(run.info.run_id, run.info.run_name or "", run.info.status, start,
                   dict(run.data.params), dict(run.data.metrics), dict(run.data.tags))


def list_runs(uri: str, experiment: str, sort: str | None = None, limit: int = 50) -> list[RunInfo]:
    """Runs of ``experiment``, newest first or by ``sort`` (a metric; best first)."""
    client = _client(uri)
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
        return _info(_client(uri).get_run(run_id))
    except MlflowException:
        raise NotFound(f"no run '{run_id}' in {uri}", "list the runs with 'eoengine runs list'") from None


def artifacts(uri: str, run_id: str) -> list[str]:
    """Paths of a run's artifacts (one level into folders)."""
    client = _client(uri)
    out = []
    for item in client.list_artifacts(run_id):
        out.append(item.path + ("/" if item.is_dir else ""))
        if item.is_dir:
            out += [f"  {a.path}" for a in client.list_artifacts(run_id, item.path)]
    return out


def history(uri: str, run_id: str, metric: str) -> list[tuple[int, float]]:
    """A metric's per-epoch values."""
    return [(m.step, m.value) for m in sorted(_client(uri).get_metric_history(run_id, metric), key=lambda m: m.step)]


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
