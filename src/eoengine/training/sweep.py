"""Hyperparameter search with Optuna: every trial is a tracked training run.

The study lives in ``<output_dir>/sweeps.db`` (SQLite), so an interrupted sweep continues
where it stopped when run again. Each trial sets config values by dotted path, trains on
the same dataset (built once), and reports its monitored metric every epoch so the median
rule can stop unpromising trials early. The best trial's MLflow run is tagged
``eoengine.sweep.best = true``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from pydantic import ValidationError

from eoengine.config.load import format_validation_error
from eoengine.config.schema import ProjectConfig, SweepParam
from eoengine.errors import ConfigError, EOError
from eoengine.models.heads import default_monitor, monitor_mode
from eoengine.training.heads import planned_heads


@dataclass
class SweepResult:
    """The finished study: best trial, its run and value, and every trial."""

    study: str
    metric: str
    best_value: float
    best_params: dict[str, Any]
    best_run_id: str
    trials: list[dict[str, Any]]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for path ``a.b`` (creating dicts on the way)."""
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def trial_config(cfg: ProjectConfig, values: dict[str, Any]) -> ProjectConfig:
    """The config with ``values`` set by dotted path, validated like a file."""
    # only what the config sets: defaults that depend on the dataset (point chips) stay defaults
    data = copy.deepcopy(cfg.model_dump(mode="json", exclude={"base_dir"}, exclude_unset=True))
    data["sweep"] = None
    for path, value in values.items():
        set_path(data, path, value)
    try:
        out = ProjectConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError("sweep.params", format_validation_error(err)) from None
    out.base_dir = cfg.base_dir
    return out


def _suggest(trial: Any, name: str, space: SweepParam) -> Any:
    if space.type == "categorical":
        return trial.suggest_categorical(name, space.choices)
    assert space.low is not None and space.high is not None
    if space.type == "int":
        return trial.suggest_int(name, int(space.low), int(space.high), step=int(space.step or 1), log=space.log)
    return trial.suggest_float(name, space.low, space.high, step=space.step, log=space.log)


class Pruning(Callback):  # type: ignore[misc]
    """Report the monitored metric to Optuna each epoch and stop the trial if it should be pruned."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric = trial, metric

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            return
        self.trial.report(float(value), trainer.current_epoch)
        if self.trial.should_prune():
            import mlflow

            run = mlflow.active_run()
            if run is not None:
                self.trial.set_user_attr("run_id", run.info.run_id)
                mlflow.set_tag("eoengine.pruned", f"epoch {trainer.current_epoch}")
            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch}")


def run_sweep(cfg: ProjectConfig, trials: int | None = None, study_name: str | None = None) -> SweepResult:
    """Run (or continue) the config's sweep; returns the best trial."""
    import optuna

    from eoengine.datasets.build import build_dataset
    from eoengine.training.train import check_monitor, resolve_dataset, train

    sw = cfg.sweep
    if sw is None:
        raise EOError("the config has no 'sweep' section", "add sweep: {params: {training.optimizer.kwargs.lr: {type: float, low: 1e-4, high: 1e-2, log: true}}}")
    heads = planned_heads(cfg)
    metric = sw.metric or (cfg.training.early_stopping.monitor if cfg.training.early_stopping else None) or default_monitor(heads)
    check_monitor(metric, heads)
    direction = sw.direction or ("minimize" if monitor_mode(metric) == "min" else "maximize")
    for path, space in sw.params.items():  # every path must be a real setting
        trial_config(cfg, {path: space.choices[0] if space.choices else space.low})
    root = resolve_dataset(cfg, None) if cfg.training.dataset else build_dataset(cfg).path
    out = cfg.output_path
    out.mkdir(parents=True, exist_ok=True)
    name = study_name or f"{cfg.name}-sweep"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=sw.seed) if sw.sampler == "tpe" else optuna.samplers.RandomSampler(seed=sw.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if sw.prune else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{out.resolve() / 'sweeps.db'}", direction=direction,
                                sampler=sampler, pruner=pruner, load_if_exists=True)

    def objective(trial: optuna.Trial) -> float:
        values = {path: _suggest(trial, path, space) for path, space in sw.params.items()}
        tcfg = trial_config(cfg, values)
        result = train(tcfg, root, tags={"eoengine.sweep": name, "eoengine.trial": str(trial.number)},
                       callbacks=[Pruning(trial, metric)])
        trial.set_user_attr("run_id", result.run_id)
        return _best(result.tracking_uri, result.run_id, metric, direction)

    done = sum(t.state.is_finished() for t in study.trials)
    todo = (trials or sw.trials) - done
    if todo > 0:
        study.optimize(objective, n_trials=todo, timeout=sw.timeout_minutes * 60 if sw.timeout_minutes else None,
                       catch=(EOError,))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise EOError(f"no trial of sweep '{name}' completed", "see the trials' errors above; widen the search space")
    best = study.best_trial
    assert best.value is not None
    best_run = str(best.user_attrs.get("run_id", ""))
    _mark_best(cfg, name, best_run)
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             "run_id": t.user_attrs.get("run_id", "")} for t in study.trials]
    return SweepResult(name, metric, float(best.value), dict(best.params), best_run, rows)


def _best(uri: str, run_id: str, metric: str, direction: str) -> float:
    """The run's value of ``metric`` at its best checkpoint (or its best epoch)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    logged = client.get_run(run_id).data.metrics
    if f"best_{metric}" in logged:
        return float(logged[f"best_{metric}"])
    values = [m.value for m in client.get_metric_history(run_id, metric)]
    if not values:
        raise EOError(f"run {run_id} logged no '{metric}'", "choose a metric the runs log (see eoengine runs show)")
    return float(min(values) if direction == "minimize" else max(values))


def _mark_best(cfg: ProjectConfig, study: str, run_id: str) -> None:
    """Tag the best trial's run, and untag any earlier best of the same sweep."""
    from mlflow.tracking import MlflowClient

    from eoengine.tracking.store import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(Path(cfg.output_path), cfg.training.tracking_uri))
    exp = client.get_experiment_by_name(cfg.training.experiment or cfg.name)
    if exp is None or not run_id:
        return
    for run in client.search_runs([exp.experiment_id], f"tags.`eoengine.sweep` = '{study}'"):
        client.set_tag(run.info.run_id, "eoengine.sweep.best", "true" if run.info.run_id == run_id else "false")
