"""Training, prediction and export jobs: a training resumes its MLflow run after its worker is killed, to the scores
of an uninterrupted one; runs, maps and model variants are indexed with their lineage."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from jobs_support import alive, job_state, make_project, start_worker, stop, submit, wait_for, wait_job, worker
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.platform.db.models import Artifact, Event, Job


def _artifacts(live: LiveServer, kind: str) -> list[Artifact]:
    with live.platform.db.read() as s:
        return list(s.scalars(select(Artifact).where(Artifact.kind == kind).order_by(Artifact.id)))


def _inputs(live: LiveServer, action: str) -> list[list[str]]:
    with live.platform.db.read() as s:
        return [e.data["inputs"] for e in s.scalars(select(Event).where(Event.action == action).order_by(Event.id))]


def _train_killed_after_an_epoch(live: LiveServer, c: httpx.Client, log: Path) -> tuple[int, str]:
    """Submit a training, SIGKILL its worker once an epoch is done; returns the job and the run it started."""
    first = start_worker(live.platform.settings, log)
    try:
        job = submit(c, "tiny", {"kind": "train"})

        def an_epoch() -> bool:
            progress = job_state(c, job["id"])["progress"] or {}
            return progress.get("description") == "training" and progress.get("completed", 0) >= 1

        wait_for(an_epoch, 180, what="an epoch of training")
        with live.platform.db.read() as s:
            row = s.get(Job, job["id"])
            assert row is not None and row.resume and row.pid
            run_id, child = row.resume["run_id"], row.pid
        first.kill()
        first.wait()
        wait_for(lambda: not alive(child), 10, what="the training process to die with its worker")
    finally:
        stop(first)
    return job["id"], run_id


def test_a_training_resumes_and_runs_maps_and_models_are_indexed(tmp_path: Path) -> None:
    with live_platform(tmp_path / "home", stale_after_s=2) as live, live.client() as c:
        folder = make_project(live, **{"training.epochs": 2})
        settings = live.platform.settings
        with worker(settings, tmp_path / "w0.log"):
            assert wait_job(c, submit(c, "tiny", {"kind": "build"})["id"])["state"] == "succeeded"
            whole = wait_job(c, submit(c, "tiny", {"kind": "train"})["id"], 300)
        assert whole["state"] == "succeeded", whole["error"]
        job_id, run_id = _train_killed_after_an_epoch(live, c, tmp_path / "w1.log")
        with worker(settings, tmp_path / "w2.log"):
            resumed = wait_job(c, job_id, 300)
            assert resumed["state"] == "succeeded", resumed["error"]
            package = next(a.path for a in _artifacts(live, "run") if a.ref == run_id)
            predicted = wait_job(c, submit(c, "tiny", {"kind": "predict", "model": f"runs:/{run_id}",
                                                        "scene": ["data/stack.tif"], "output": "maps/lc.tif"})["id"])
            exported = wait_job(c, submit(c, "tiny", {"kind": "export", "model": package})["id"], 300)
            (folder / "grade.yaml").write_text(yaml.safe_dump({"uncertainty": {"bootstrap": 20},
                                                                "robustness": {"corruptions": [{"name": "haze"}]},
                                                                "thresholds": [{"metric": "miou", "min": 0.0}]}))
            graded = wait_job(c, submit(c, "tiny", {"kind": "grade", "models": [f"runs:/{run_id}"],
                                                     "suite": "grade.yaml", "report_dir": "reports/grade"})["id"], 300)
            budgeted = wait_job(c, submit(c, "tiny", {"kind": "quantize", "model": package, "max_drop": 1.0,
                                                       "suite": "grade.yaml", "calibration_chips": 16})["id"], 300)
        assert resumed["attempts"] == 2 and resumed["result"]["run_id"] == run_id  # the same MLflow run, continued
        log = (settings.jobs_dir / str(job_id) / "log.txt").read_text()
        assert f"continuing run {run_id} of the last attempt" in log
        assert resumed["result"]["best_epoch"] == whole["result"]["best_epoch"]
        for split, scores in whole["result"]["scores"].items():
            assert resumed["result"]["scores"][split]["miou"] == pytest.approx(scores["miou"], abs=1e-6)
            assert resumed["result"]["scores"][split]["confusion_matrix"] == scores["confusion_matrix"]
        assert predicted["state"] == "succeeded" and exported["state"] == "succeeded", (predicted["error"], exported["error"])
        assert graded["state"] == "succeeded", graded["error"]
        (card,) = graded["result"]["models"]
        assert card["grade"] == "A" and card["outcomes"][0] == {"capability": "overall", "requirement": "miou >= 0",
                                                                 "measured": card["outcomes"][0]["measured"], "passed": True}
        assert card["report_card"] == "reports/grade/report.html"  # relative to the project folder, as jobs run there
        assert (folder / "reports/grade/grade.json").exists() and (folder / "reports/grade/error_s1999.tif").exists()
        assert card["overall"]["miou"][0] == pytest.approx(json.loads((folder / card["document"]).read_text())
                                                           ["overall"]["metrics"]["miou"])

        (dataset,) = _artifacts(live, "dataset")
        runs = _artifacts(live, "run")
        assert sorted(r.ref for r in runs) == sorted([whole["result"]["run_id"], run_id])
        run = next(r for r in runs if r.ref == run_id)
        assert run.meta["dataset"] == f"tiny@{dataset.version}" and run.job_id == job_id
        assert (folder / run.path / "eoengine-model.json").exists() and run.meta["scores"]["val"]["miou"] >= 0
        (made,) = _artifacts(live, "map")
        assert made.path == "maps/lc.tif" and made.meta["run_id"] == run_id and made.job_id == predicted["id"]
        lon, lat = made.meta["footprint"]["coordinates"][0][0]
        assert made.meta["footprint"]["type"] == "Polygon" and -94 < lon < -92 and 15 < lat < 17  # the tutorial's scene
        assert budgeted["state"] == "succeeded", budgeted["error"]
        onnx, int8 = _artifacts(live, "model")
        assert int8.version == "int8-static" and int8.meta["verdict"].startswith("int8 kept")
        assert int8.meta["excluded_nodes"] == [] and (folder / int8.path).exists()
        assert onnx.version == "onnx" and onnx.path.endswith(".onnx") and (folder / onnx.path).exists()
        assert onnx.meta["run_id"] == run_id and onnx.meta["check"]["max_abs_diff"] <= 1e-3
        assert _inputs(live, "run.create") == [[f"dataset:tiny@{dataset.version}"]] * 2
        assert _inputs(live, "map.create") == [[f"run:{run_id}"]]
        assert _inputs(live, "model.variant") == [[f"run:{run_id}"]] * 2
        graph = c.get("/projects/tiny/lineage", params={"object": "map:maps/lc.tif"}).json()
        assert {f"{n['type']}:{n['id']}" for n in graph["nodes"]} >= {
            "scene:s1999", "labels:data/training_data.shp", f"dataset:tiny@{dataset.version}", f"run:{run_id}",
            "map:maps/lc.tif"}
