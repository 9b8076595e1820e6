"""MLflow set-up: a local SQLite store by default, anything MLflow supports otherwise.

The tracking URI comes from (first found) the command line, ``MLFLOW_TRACKING_URI``, the
config's ``training.tracking_uri``, or ``sqlite:///<output_dir>/mlflow.db``. Artifacts of
experiments created here go to ``<output_dir>/mlartifacts``.
"""

from __future__ import annotations

import os
from pathlib import Path

_USER_URI = os.environ.get("MLFLOW_TRACKING_URI")
"""The environment's tracking URI as the user set it. ``mlflow.set_tracking_uri`` rewrites the
variable in this process, which must not send one project's runs to the previous project's store."""


def tracking_uri(output_dir: Path, configured: str | None = None, override: str | None = None) -> str:
    """The tracking URI to use (see module docs for the order)."""
    uri = override or _USER_URI or configured
    if uri:
        return uri
    output_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{output_dir.resolve() / 'mlflow.db'}"


def use_tracking_uri(uri: str) -> None:
    """Point MLflow's fluent API at ``uri`` in this process, leaving the environment as it was.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, so every process started
    afterwards (a second project's ``train``, a sweep's trial) would log into this store as if
    the user had set it. The variable is put back to what it was.

    Args:
        uri: The tracking URI.

    """
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def ensure_experiment(name: str, uri: str, artifact_root: Path) -> str:
    """Get or create the experiment ``name``; returns its id."""
    import mlflow

    use_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    loc = artifact_root.resolve().as_uri() if uri.startswith(("sqlite:", "file:", "/")) else None
    return str(mlflow.create_experiment(name, artifact_location=loc))
