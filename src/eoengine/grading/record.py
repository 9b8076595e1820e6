"""The grading's record in MLflow: the report card under the model's run, and tags on its registered versions.

The run gets the report folder as artefacts (``grading/``) and the overall metrics as ``grade_<metric>``;
every registered model version made from that run gets ``eoengine.grade`` (the letter),
``eoengine.grade.<capability>`` (pass or fail) and ``eoengine.applicability`` (JSON: bands, resolution,
training footprint and dates, classes, graded regions), so a registry view shows where a model may be used.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from eoengine.grading.grade import GradeReport
from eoengine.models.package import ModelPackage

log = logging.getLogger(__name__)
TAG_LIMIT = 5000  # MLflow's longest tag value


def tag_name(capability: str) -> str:
    """A capability as a tag key: ``eoengine.grade.robustness_haze``."""
    return "eoengine.grade." + re.sub(r"[^A-Za-z0-9_.-]+", "_", capability).strip("_")


def version_tags(report: GradeReport) -> dict[str, str]:
    """The tags a graded model version carries (see the module docstring)."""
    tags = {"eoengine.grade": report.grade}
    for o in report.outcomes:
        key = tag_name(o.capability)
        tags[key] = "fail" if tags.get(key) == "fail" or not o.passed else "pass"
    tags["eoengine.applicability"] = json.dumps(report.applicability, separators=(",", ":"))[:TAG_LIMIT]
    return tags


def record(pkg: ModelPackage, report: GradeReport, out_dir: Path) -> list[str]:
    """Log the report card to the model's run and tag its registered versions; a missing run is said, not raised.

    Args:
        pkg: The graded package (its run id and tracking URI).
        report: The grading's result.
        out_dir: The report folder.

    Returns:
        The model versions tagged, as ``name/version``.

    """
    run_id, uri = pkg.meta.run_id, pkg.meta.tracking_uri
    if not run_id or not uri:
        return []
    from mlflow.tracking import MlflowClient

    tagged = []
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.log_artifacts(run_id, str(out_dir), "grading")
        for metric, values in report.overall.values.items():
            client.log_metric(run_id, f"grade_{metric}", float(values[0]))
        if report.calibration is not None:
            client.log_metric(run_id, "grade_ece", report.calibration.ece)
        client.set_tag(run_id, "eoengine.grade", report.grade)
        tags = version_tags(report)
        for mv in client.search_model_versions(f"run_id='{run_id}'"):
            for k, v in tags.items():
                client.set_model_version_tag(mv.name, mv.version, k, v)
            tagged.append(f"{mv.name}/{mv.version}")
    except Exception as exc:  # noqa: BLE001 - the report exists locally; say why it is not in MLflow
        log.warning("grading not recorded in MLflow run %s: %s", run_id, str(exc).splitlines()[0])
    return tagged
