"""Jobs over real HTTP with a real worker process: submit, progress, log, stream, cancel, bad specs, roles, the index."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from jobs_support import (
    alive,
    fetch_project,
    job_state,
    make_project,
    project_config,
    submit,
    wait_for,
    wait_job,
    worker,
)
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.platform.db.models import Artifact, Event, Job


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def api_live(tmp_path: Path, each_db: str) -> Iterator[LiveServer]:
    """A fresh server on SQLite, then on PostgreSQL: for the tests of the API alone (no worker runs a job)."""
    with live_platform(tmp_path / "home", db_url=each_db) as server:
        yield server


def _error(r: httpx.Response, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "fix"} and body["error"] and body["fix"], body
    return body


def _events(live: LiveServer, action: str) -> list[Event]:
    with live.platform.db.read() as s:
        return list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


def _stream(c: httpx.Client, job_id: int) -> list[tuple[str, str]]:
    """Every (event, data) of a job's event stream, until it ends."""
    events, name, data = [], "message", []
    with c.stream("GET", f"/jobs/{job_id}/log/stream", timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif not line and data:
                events.append((name, "\n".join(data)))
                name, data = "message", []
    return events


def test_a_build_job_reports_progress_logs_and_indexes_its_dataset(live: LiveServer, tmp_path: Path) -> None:
    make_project(live, **{"dataset.stride": 8})
    with live.client() as c, worker(live.platform.settings, tmp_path / "worker.log"):
        job = submit(c, "tiny", {"kind": "build"})
        assert job["state"] == "queued" and job["spec"]["config"] == "eoengine.yaml" and job["created_by"] == "admin"
        seen = []
        while (now := job_state(c, job["id"]))["state"] not in ("succeeded", "failed"):
            if now["progress"]:
                seen.append(now["progress"]["completed"])
            time.sleep(0.2)
        assert now["state"] == "succeeded", now["error"]
        assert now["attempts"] == 1 and now["started_at"] and now["finished_at"] and now["worker"]
        total = now["progress"]["total"]
        assert now["progress"] == {"description": "building chips", "completed": total, "total": total}
        assert any(0 < n < total for n in seen), seen  # watched while it ran
        r = c.get(f"/jobs/{job['id']}/log")
        assert r.headers["content-type"].startswith("text/plain") and "== attempt 1 on" in r.text
        assert "done: {'kind': 'build'" in r.text and int(r.headers["x-log-offset"]) == len(r.text.encode())
        rest = c.get(f"/jobs/{job['id']}/log", params={"offset": int(r.headers["x-log-offset"]) - 10})
        assert rest.text.startswith(r.text[-10:])  # the runner may still be printing its last line
        _error(c.get(f"/jobs/{job['id']}/log", params={"offset": 10**9}), 422)
        _error(c.get(f"/jobs/{job['id']}/log", params={"offset": -1}), 422)
        again = submit(c, "tiny", {"kind": "build", "config": "./eoengine.yaml"})
        streamed = _stream(c, again["id"])  # followed from the queue to the end
        assert streamed[0][0] == "state" and json.loads(streamed[0][1])["state"] in ("queued", "running")
        assert streamed[-1] == ("end", "succeeded")
        final = json.loads([d for e, d in streamed if e == "state"][-1])
        assert final["state"] == "succeeded" and final["result"]["up_to_date"] is True
        assert any(e == "log" and d.startswith("== attempt 1") for e, d in streamed)
        assert [j["id"] for j in c.get("/projects/tiny/jobs", params={"state": "succeeded"}).json()] == [
            again["id"], job["id"]]
        _error(c.get("/projects/tiny/jobs", params={"state": "done"}), 422)
        datasets = c.get("/projects/tiny").json()["datasets"]
    assert len(datasets) == 1  # the second build was up to date: not indexed twice
    (dataset,) = datasets
    assert dataset["version"] == now["result"]["version"] and dataset["job_id"] == job["id"]
    assert dataset["path"] == f"out/datasets/tiny@{dataset['version'][:12]}" and dataset["name"] == "tiny"
    assert sum(dataset["meta"]["chips"].values()) == dataset["meta"]["n_chips"] > 0
    assert dataset["meta"]["scenes"] == ["s1999"] and "data/training_data.shp" in dataset["meta"]["labels"]["files"]
    (made,) = _events(live, "dataset.version")
    assert made.object_id == f"tiny@{dataset['version']}" and "scene:s1999" in made.data["inputs"]
    assert [e.data["state"] for e in _events(live, "job.finish")] == ["succeeded", "succeeded"]
    assert len(_events(live, "job.submit")) == 2 and len(_events(live, "job.start")) == 2


def test_cancel_stops_a_running_job_and_a_queued_one(live: LiveServer, tmp_path: Path) -> None:
    make_project(live, **{"dataset.stride": 4})
    with live.client() as c, worker(live.platform.settings, tmp_path / "worker.log", grace=5):
        running = submit(c, "tiny", {"kind": "build"})
        queued = submit(c, "tiny", {"kind": "build"})  # one job at a time: this one waits
        wait_for(lambda: (job_state(c, running["id"])["progress"] or {}).get("completed"), 120, what="progress")
        with live.platform.db.read() as s:
            pid = s.get(Job, running["id"]).pid  # type: ignore[union-attr]
        assert pid and alive(pid)
        r = c.post(f"/jobs/{queued['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        r = c.post(f"/jobs/{running['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "running" and r.json()["cancel_requested"]
        done = wait_job(c, running["id"], 60)
        assert done["state"] == "cancelled" and done["error"] is None
        assert not alive(pid)
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # nothing of its process group is left
        assert "cancelled already" in _error(c.post(f"/jobs/{running['id']}/cancel"), 409)["error"]
        assert job_state(c, queued["id"])["attempts"] == 0  # never started
        time.sleep(1)
        assert job_state(c, queued["id"])["state"] == "cancelled"
    assert [e.data["state"] for e in _events(live, "job.finish")] == ["cancelled", "cancelled"]
    assert len(_events(live, "job.cancel")) == 1


BAD_SPECS = [
    ({"kind": "paint"}, "unknown job kind 'paint'"),
    ({}, "no 'kind'"),
    ({"kind": "build", "colour": "red"}, "colour: unknown field"),
    ({"kind": "predict", "scene": ["data/stack.tif"], "output": "map.tif"}, "model: required field is missing"),
    ({"kind": "build", "config": "../other/eoengine.yaml"}, "config (../other/eoengine.yaml) is outside the project"),
    ({"kind": "build", "config": "/etc/passwd"}, "outside the project folder"),
    ({"kind": "build", "config": "data/none.yaml"}, "is not a file in the project folder"),
    ({"kind": "predict", "model": "pkg", "scene": ["data/stack.tif"], "output": "../../x.tif"}, "output (../../x.tif)"),
    ({"kind": "predict", "model": "../../pkg", "scene": ["data/stack.tif"], "output": "m.tif"}, "model (../../pkg)"),
    ({"kind": "predict", "model": "pkg", "scene": ["red=/etc/hosts"], "output": "m.tif"}, "scene[0] (/etc/hosts)"),
    ({"kind": "predict", "model": "pkg", "scene": ["file:///etc/hosts"], "output": "m.tif"}, "scene[0]"),
    ({"kind": "predict", "model": "pkg", "scenes": ["data/stack.tif,/vsizip//etc/a.zip"], "output": "m.tif"},
     "scenes[0]"),
    ({"kind": "fetch", "items": "items.json", "bands": "red", "cache": "/tmp/elsewhere"}, "cache (/tmp/elsewhere)"),
    ({"kind": "fetch", "items": "items.json", "bands": "red", "aoi": "../../aoi.geojson"}, "aoi (../../aoi.geojson)"),
    ({"kind": "train", "dataset": "../../other/out/datasets/x"}, "dataset (../../other/out/datasets/x)"),
    ({"kind": "train", "tracking_uri": "sqlite:////tmp/other.db"}, "tracking_uri is set"),
    ({"kind": "grade", "models": ["runs:/" + "a" * 32, "../../pkg"]}, "models[1] (../../pkg)"),
    ({"kind": "grade", "models": ["pkg"], "suite": "/etc/suite.yaml"}, "suite (/etc/suite.yaml)"),
    ({"kind": "grade", "models": []}, "models:"),
    ({"kind": "train", "epochs": "many"}, "epochs: unknown field"),
    ({"kind": "build", "config": "a\u0000b.yaml"}, "is not a usable file name"),
    ({"kind": "build", "config": "x" * 5000}, "is not a usable file name"),
    ({"kind": "build", "config": 12}, "config: 12 is not valid"),
    ({"kind": "predict", "model": "pkg", "scene": ["data/stack.tif"], "output": "./eoengine.yaml"},
     "output (eoengine.yaml) is the project's config"),
]


def test_bad_specs_are_422_naming_the_field(api_live: LiveServer) -> None:
    live = api_live
    make_project(live)
    escaping = project_config(output_dir="/etc")  # a second config in the project, writing elsewhere
    (live.platform.settings.projects_dir / "tiny" / "bad.yaml").write_text(yaml.safe_dump(escaping))
    with live.client() as c:
        for spec, problem in BAD_SPECS:
            body = _error(c.post("/projects/tiny/jobs", json={"spec": spec}), 422)
            assert problem in body["error"], (spec, body)
        assert "outside the project folder" in _error(
            c.post("/projects/tiny/jobs", json={"spec": {"kind": "build", "config": "bad.yaml"}}), 422)["error"]
        _error(c.post("/projects/tiny/jobs", json={"spec": "build"}), 422)
        _error(c.post("/projects/tiny/jobs", json={"kind": "build"}), 422)
        _error(c.post("/projects/nope/jobs", json={"spec": {"kind": "build"}}), 404)
        for path in ("/jobs/0", f"/jobs/{2**63}", "/jobs/x/log", f"/jobs/{2**70}/cancel"):
            _error(c.request("POST" if path.endswith("cancel") else "GET", path), 422)
        ok = [  # remote inputs and model URIs are not files of the server
            {"kind": "predict", "model": "runs:/" + "a" * 32, "scene": ["https://example.com/s.tif"], "output": "m.tif"},
            {"kind": "predict", "model": "models:/lc@champion", "scenes": ["/vsicurl/https://example.com/s.tif"],
             "out_dir": "maps"},
            {"kind": "fetch", "items": "items.json", "bands": "red", "aoi": '{"type": "Point", "coordinates": [0, 0]}'},
        ]
        for spec in ok:
            assert c.post("/projects/tiny/jobs", json={"spec": spec}).status_code == 201
    with live.platform.db.read() as s:
        assert len(s.scalars(select(Job)).all()) == len(ok)


def test_roles_decide_who_submits_sees_and_cancels(api_live: LiveServer) -> None:
    live = api_live
    tokens = {name: live.user(name) for name in ("vera", "anna", "rita", "rob", "otto")}
    make_project(live)
    with live.client() as admin:
        for name, role in (("vera", "viewer"), ("anna", "annotator"), ("rita", "reviewer"), ("rob", "reviewer")):
            assert admin.post("/projects/tiny/members", json={"username": name, "role": role}).status_code == 201
        mine = submit(admin, "tiny", {"kind": "build"})
    with (live.client(tokens["vera"]) as vera, live.client(tokens["anna"]) as anna, live.client(tokens["rita"]) as rita,
          live.client(tokens["rob"]) as rob, live.client(tokens["otto"]) as otto):
        assert "reviewer" in _error(vera.post("/projects/tiny/jobs", json={"spec": {"kind": "build"}}), 403)["fix"]
        _error(anna.post("/projects/tiny/jobs", json={"spec": {"kind": "build"}}), 403)
        ritas = submit(rita, "tiny", {"kind": "build"})
        assert ritas["created_by"] == "rita"
        assert vera.get(f"/jobs/{ritas['id']}").status_code == 200 and vera.get(f"/jobs/{ritas['id']}/log").status_code == 200
        assert len(vera.get("/projects/tiny/jobs").json()) == 2
        for path in (f"/jobs/{ritas['id']}", f"/jobs/{ritas['id']}/log", f"/jobs/{ritas['id']}/log/stream",
                     "/projects/tiny/jobs"):
            _error(otto.get(path), 404)  # not a member: the job is not revealed
        _error(otto.post(f"/jobs/{ritas['id']}/cancel"), 404)
        _error(vera.post(f"/jobs/{ritas['id']}/cancel"), 403)
        _error(rob.post(f"/jobs/{ritas['id']}/cancel"), 403)  # a reviewer cancels only their own
        _error(rita.post(f"/jobs/{mine['id']}/cancel"), 403)
        _error(rita.get("/jobs/999999"), 404)
        assert rita.post(f"/jobs/{ritas['id']}/cancel").json()["state"] == "cancelled"
    with live.client() as admin:
        assert admin.post(f"/jobs/{mine['id']}/cancel").json()["state"] == "cancelled"  # the project admin: any job
    _error(httpx.get(f"{live.url}/api/v1/jobs/{mine['id']}"), 401)


def test_a_trivial_job_end_to_end(live: LiveServer, tmp_path: Path) -> None:
    make_project(live)
    fetch_project(live)
    spec = {"kind": "fetch", "items": "items.json", "bands": "red,nir", "cache": "cache"}
    with live.client() as c, worker(live.platform.settings, tmp_path / "worker.log"):
        first = wait_job(c, submit(c, "tiny", spec)["id"])
        assert first["state"] == "succeeded", first["error"]
        start = time.perf_counter()
        job = wait_job(c, submit(c, "tiny", spec)["id"])
        took = time.perf_counter() - start
    print(f"a trivial job (a cached fetch), submit to succeeded over HTTP: {took:.2f} s")
    assert job["state"] == "succeeded" and job["result"]["items"][0]["cached"] is True
    assert took < 30
    with live.platform.db.read() as s:
        scenes = s.scalars(select(Artifact).where(Artifact.kind == "scene")).all()
    assert [(a.name, a.path.startswith("cache/"), a.job_id) for a in scenes] == [("stack", True, first["id"])]


def test_worker_command_bad_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import free_port, run_cli

    home = ["--home", str(tmp_path / "home")]
    code, _, err = run_cli(["worker", *home, "--db", "mysql://u@h/x"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        "error: database 'mysql' is not supported — use sqlite:///PATH/eoengine.db or "
        "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"]
    url = f"postgresql+psycopg://u:secret@127.0.0.1:{free_port()}/x"
    code, _, err = run_cli(["worker", *home, "--db", url, "--wait-db", "0"], capsys)
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and "cannot reach the database" in line and "check --db" in line and "secret" not in err


def test_the_runner_refuses_to_start_without_a_worker() -> None:
    import subprocess
    import sys

    from jobs_support import child_env

    env = {k: v for k, v in child_env().items() if not k.startswith("EOENGINE_JOB_")}
    done = subprocess.run([sys.executable, "-m", "eoengine.platform.runner", "7"], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "eoengine worker" in done.stderr
