"""Register model packages in the MLflow Model Registry as pyfunc models, and fetch them back.

A registered version is an MLflow pyfunc model (``mlflow.pyfunc.load_model`` works on it
anywhere eoengine is installed) whose artifacts hold the whole eoengine package, with a
tensor signature: ``image`` (batch, channels, height, width) float32 → ``logits``. The
version is tagged with the run, dataset version, task, bands and classes; aliases such as
``champion`` move between versions. ``models:/name@alias`` and ``models:/name/3`` resolve to
the package folder for ``predict``, ``evaluate`` and ``serve``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.errors import EOError, NotFound
from eoengine.files import cache_dir
from eoengine.models.package import META, ModelPackage, load_package
from eoengine.tracking.store import use_tracking_uri

PACKAGE_ARTIFACT = "package"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w\-]+)|/(?P<version>\d+))$")


def _pyfunc_class() -> type:
    import mlflow

    class EOEngineModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc, name-defined]
        """Logits for normalised image batches, from an eoengine model package."""

        def load_context(self, context: Any) -> None:
            from eoengine.models.package import load_package

            self.pkg = load_package(Path(context.artifacts[PACKAGE_ARTIFACT]))

        def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
            import torch

            if isinstance(model_input, dict):  # a named tensor schema arrives as {"image": array}
                model_input = model_input.get("image", next(iter(model_input.values())))
            x = np.asarray(model_input, dtype=np.float32)
            if x.ndim == 3:
                x = x[None]
            with torch.inference_mode():
                return self.pkg.model(torch.from_numpy(x)).numpy()  # type: ignore[no-any-return]

    return EOEngineModel


@dataclass
class Registered:
    """A registered model version."""

    name: str
    version: str
    aliases: list[str]
    uri: str


def register(pkg: ModelPackage, name: str, uri: str, aliases: list[str] | None = None) -> Registered:
    """Register ``pkg`` as a new version of ``name`` (created if new) and point ``aliases`` at it."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import ModelSignature
    from mlflow.tracking import MlflowClient
    from mlflow.types import Schema, TensorSpec

    if not re.match(r"^[\w\-.]+$", name):
        raise EOError(f"model name '{name}' has characters the registry does not allow", "use letters, digits, '-', '_', '.'")
    use_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    meta = pkg.meta
    channels, outputs = len(meta.channels), meta.outputs
    out_shape = (-1, outputs) if meta.task == "classification" and meta.model == "resnet_classifier" else (-1, outputs, -1, -1)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1), "image")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), out_shape, "logits")]),
    )
    run_id = meta.run_id
    try:
        trained = client.get_run(str(run_id)).info if run_id else None
    except MlflowException:
        trained = None
    if trained is None:
        mlflow.set_experiment("eoengine-registry")
    with mlflow.start_run(run_id=str(run_id) if trained is not None else None):
        info = mlflow.pyfunc.log_model(
            name="pyfunc-model", python_model=_pyfunc_class()(), artifacts={PACKAGE_ARTIFACT: str(pkg.path)},
            signature=signature, registered_model_name=name, pip_requirements=["eoengine", "torch", "mlflow"],
        )
    if trained is not None and trained.end_time is not None:  # the training run keeps its status and end time
        client.set_terminated(str(run_id), status=trained.status, end_time=trained.end_time)
    version = str(info.registered_model_version)
    tags = {"eoengine.task": meta.task, "eoengine.model": meta.model,
            "eoengine.dataset.version": meta.dataset.version, "eoengine.run_id": str(run_id or ""),
            "eoengine.bands": ",".join(meta.bands), "eoengine.classes": ",".join(c.name for c in meta.classes),
            "eoengine.patch_size": str(meta.patch_size)}
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)
    for alias in aliases or []:
        client.set_registered_model_alias(name, alias, version)
    return Registered(name, version, list(aliases or []), f"models:/{name}/{version}")


def is_registry_ref(ref: str) -> bool:
    """Whether ``ref`` is a ``models:/`` URI."""
    return ref.startswith("models:/")


def registry_version(ref: str, uri: str | None) -> Any:
    """The registry's model version that ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` names.

    Args:
        ref: The reference.
        uri: MLflow tracking URI (None: the default one).

    Returns:
        MLflow's ``ModelVersion`` (``name``, ``version``, ``run_id``, ...).

    Raises:
        EOError: ``ref`` is not a registry reference.
        NotFound: The registry has no such model, version or alias.

    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    m = _REF.match(ref)
    if not m:
        raise EOError(f"'{ref}' is not a registry reference", "write models:/NAME@ALIAS or models:/NAME/VERSION")
    client = MlflowClient(tracking_uri=uri)
    try:
        if m["alias"]:
            return client.get_model_version_by_alias(m["name"], m["alias"])
        return client.get_model_version(m["name"], m["version"])
    except MlflowException as exc:
        raise NotFound(f"{ref} is not in the registry at {uri or mlflow.get_tracking_uri()}: {str(exc).splitlines()[0]}",
                       "list versions with the MLflow UI, or register one with 'eoengine register'") from None


def move_alias(uri: str, name: str, alias: str, version: str | None) -> str | None:
    """Point ``alias`` of registered model ``name`` at ``version``, or remove it (``version`` None).

    Args:
        uri: MLflow tracking URI.
        name: The registered model.
        alias: The alias (``champion``).
        version: The version to point it at; None removes the alias.

    Returns:
        The version the alias pointed at before (None: it was not set).

    Raises:
        NotFound: No such model or version, or (removing) the alias is not set.

    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        before = client.get_registered_model(name).aliases.get(alias)
        if version is not None:
            client.get_model_version(name, version)
    except MlflowException as exc:
        target = f"version {version} of model '{name}'" if version else f"model '{name}'"
        raise NotFound(f"the registry has no {target}: {str(exc).splitlines()[0]}",
                       "list the model's versions, or register one with 'eoengine register'") from None
    if version is None:
        if before is None:
            raise NotFound(f"model '{name}' has no alias '{alias}'", "list the model's aliases")
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)
    return None if before is None else str(before)


def fetch(ref: str, uri: str | None, cache: Path) -> Path:
    """The package folder of a ``models:/name@alias`` or ``models:/name/version`` reference."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mv = registry_version(ref, uri)
    # keyed by the store and the version's own source too: two projects' stores each have a "landcover" v1
    store = hashlib.sha256(f"{uri}\n{mv.source}\n{mv.run_id}".encode()).hexdigest()[:16]
    dst = cache / "registry" / store / mv.name / str(mv.version)
    found = list(dst.glob(f"artifacts/**/{META}"))
    if not found:
        dst.mkdir(parents=True, exist_ok=True)
        # the version's own artefact location, from this store: MLflow resolves a models:/ URI in the process's
        # registry (its global URI), not in ``uri``, so a worker whose process has none would look in an empty one
        source = MlflowClient(tracking_uri=uri).get_model_version_download_uri(mv.name, str(mv.version))
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=uri)
        found = list(Path(local).glob(f"artifacts/**/{META}"))
    if not found:
        raise EOError(f"{ref} (version {mv.version}) holds no eoengine package", "register it with 'eoengine register'")
    return found[0].parent


def resolve_model_ref(ref: str, uri: str | None) -> Path:
    """A model package path from a folder, a run, or the Model Registry.

    Accepts a package folder, ``runs:/<id>``, a bare run id, ``models:/name@alias`` or
    ``models:/name/version``; fetched packages are downloaded once, then cached.
    """
    p = Path(ref)
    if p.exists():
        return p
    if ref.startswith("models:/"):
        return fetch(ref, uri, cache_dir())
    run_id = ref.removeprefix("runs:/").split("/")[0]
    if not _RUN_ID.match(run_id):
        raise NotFound(
            f"model not found: {ref}",
            "pass a model package folder, 'runs:/<run id>' or a 32-character MLflow run id",
        )
    import mlflow
    from mlflow.exceptions import MlflowException

    dst = cache_dir() / "runs" / run_id
    if (dst / "model" / "eoengine-model.json").exists():
        return dst / "model"
    dst.mkdir(parents=True, exist_ok=True)
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="model", dst_path=str(dst), tracking_uri=uri
        )
    except (MlflowException, OSError) as exc:
        raise EOError(
            f"cannot fetch the model of run {run_id}: {str(exc).splitlines()[0]}",
            "check the run id and the tracking URI (--tracking-uri or MLFLOW_TRACKING_URI)",
        ) from None
    return Path(local)


def load_model_ref(ref: str, uri: str | None) -> ModelPackage:
    """The model package a reference names, loaded.

    Args:
        ref: A package folder, ``runs:/<id>``, a run id, ``models:/name@alias`` or ``models:/name/version``
            (see :func:`resolve_model_ref`).
        uri: MLflow tracking URI for run ids and registry references (None: the default one).

    Returns:
        The loaded package.

    Raises:
        EOError: The reference names no package, or the package cannot be fetched or read.

    """
    return load_package(resolve_model_ref(ref, uri))
