"""Jobs through the client and ``eoengine remote``, run by a real worker process of a live platform."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from jobs_support import fetch_project, make_project, worker
from platform_server import LiveServer, live_platform

from eoengine.client import Client, Job, WaitTimeout
from eoengine.errors import Conflict, Denied, Invalid, NotFound
from eoengine.jobs.specs import BuildDatasetSpec
from eoengine.platform.schemas import JobOut

Capture = pytest.CaptureFixture[str]
MISSING_ITEMS = {"kind": "fetch", "items": "missing.json", "bands": "red", "cache": "cache"}
"""A job that fails as it starts: its items file is not there."""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[Client]:
    with Client(live.url, live.admin.token, timeout=60) as client:
        yield client


def test_a_build_job_submitted_followed_and_waited_for(live: LiveServer, admin: Client, tmp_path: Path) -> None:
    make_project(live, **{"dataset.stride": 8})
    with worker(live.platform.settings, tmp_path / "worker.log"):
        job = admin.submit("tiny", {"kind": "build"})
        assert isinstance(job, Job) and job.state == "queued" and job.info.spec["config"] == "eoengine.yaml"
        followed = list(job.logs(follow=True))  # from the queue to the end
        assert job.state == "succeeded" and job.info.progress and job.info.result  # the stream's state events
        final = job.wait(timeout=60)
        assert job.done and job.refresh() == final and isinstance(final, JobOut) and final.state == "succeeded"
        assert job.raise_for_state() == final
        assert final.attempts == 1 and final.started_at and final.finished_at and final.created_by == "admin"
        version = final.result["version"] if final.result else ""
        again = admin.submit("tiny", BuildDatasetSpec(config=Path("./eoengine.yaml")))
        assert again.wait(timeout=120, poll=0.2).state == "succeeded" and again.info.result
        assert again.info.result["up_to_date"] is True and again.info.result["version"] == version
    assert followed[0].startswith("== attempt 1 on") and len(followed) > 3
    paged = list(job.logs())
    assert paged[: len(followed)] == followed
    assert [j.id for j in admin.jobs("tiny")] == [again.id, job.id]
    assert [j.id for j in admin.jobs("tiny", state="succeeded")] == [again.id, job.id]
    assert admin.jobs("tiny", state="failed") == []
    assert admin.job(job.id).info == final

    (dataset,) = admin.project("tiny").datasets
    assert (dataset.name, dataset.version, dataset.job_id) == ("tiny", version, job.id)
    actions = [e.action for e in admin.events(object=f"job:{job.id}")]
    assert actions[0] == "job.submit" and actions[-1] == "job.finish" and "job.start" in actions
    lineage = admin.lineage("tiny", f"dataset:tiny@{version}")
    assert {(n.type, n.id) for n in lineage.nodes} >= {("scene", "s1999"), ("dataset", f"tiny@{version}")}


def test_failed_cancelled_and_refused_jobs(live: LiveServer, admin: Client, tmp_path: Path) -> None:
    make_project(live)
    queued = admin.submit("tiny", {"kind": "build"})  # no worker yet: it waits
    assert not queued.done and queued.refresh().state == "queued"
    with pytest.raises(WaitTimeout, match=f"job {queued.id} is still queued after 0.5 s"):
        queued.wait(timeout=0.5, poll=0.1)
    assert list(queued.logs()) == []
    assert queued.raise_for_state().state == "queued"  # not ended: nothing to raise
    cancelled = queued.cancel()
    assert cancelled.state == "cancelled" and queued.state == "cancelled"
    with pytest.raises(Conflict, match="was cancelled"):
        queued.raise_for_state()
    with pytest.raises(Conflict, match="cancelled already"):
        queued.cancel()

    with pytest.raises(Invalid, match="unknown job kind 'paint'"):
        admin.submit("tiny", {"kind": "paint"})
    with pytest.raises(Invalid, match="outside the project folder"):
        admin.submit("tiny", BuildDatasetSpec(config=Path("../other/eoengine.yaml")))
    with pytest.raises(NotFound, match="no job 999999"):
        admin.job(999999)
    vera = live.user("vera")
    admin.add_member("tiny", "vera", "viewer")
    with Client(live.url, vera) as viewer:
        with pytest.raises(Denied, match="may not run"):
            viewer.submit("tiny", {"kind": "build"})
        with pytest.raises(Denied, match="may not cancel"):
            viewer.job(queued.id).cancel()

    with worker(live.platform.settings, tmp_path / "worker.log"):
        failing = admin.submit("tiny", MISSING_ITEMS)
        assert failing.wait(timeout=120, poll=0.2).state == "failed"
    with pytest.raises(NotFound, match=f"job {failing.id} \\(fetch\\) failed: .*missing.json") as failed:
        failing.raise_for_state()  # of the kind the job's own error was
    assert failing.info.error and failing.info.error["kind"] == "NotFound"
    assert failed.value.fix and failing.info.error and failed.value.fix == failing.info.error["fix"]
    assert any("missing.json" in line for line in failing.logs())


def _login(live: LiveServer, capsys: Capture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EOENGINE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EOE_TEST_TOKEN", live.admin.token)
    code, _, err = run_cli(["remote", "login", live.url, "--token-env", "EOE_TEST_TOKEN"], capsys)
    assert code == 0, err


def test_remote_submit_wait_jobs_logs_and_cancel(live: LiveServer, tmp_path: Path, capsys: Capture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(live)
    fetch_project(live)
    _login(live, capsys, monkeypatch, tmp_path)
    with worker(live.platform.settings, tmp_path / "worker.log"):
        code, out, err = run_cli(["remote", "submit", "tiny", "--wait", "--", "source", "fetch", "items.json",
                                  "--bands", "red,nir", "--cache", "cache"], capsys)
        assert code == 0, err
        assert out.startswith("job 1 (fetch) queued on tiny\n== attempt 1 on") and "\njob 1 succeeded: {" in out
        assert list((live.platform.settings.projects_dir / "tiny" / "cache").rglob("*.tif"))  # fetched there
        spec_file = tmp_path / "fetch.json"
        spec_file.write_text(json.dumps(MISSING_ITEMS))
        code, out, err = run_cli(["remote", "submit", "tiny", "--spec", str(spec_file), "--wait", "--json"], capsys)
        assert code == 2 and json.loads(out)["state"] == "failed"
        assert err.startswith("error: job 2 (fetch) failed: ") and "missing.json" in err and err.count("\n") == 1

    code, out, err = run_cli(["remote", "jobs", "tiny"], capsys)
    assert code == 0, err
    assert "tiny: 2 job(s)" in out and "succeeded" in out and "failed" in out and "1/1" in out
    code, out, _ = run_cli(["remote", "jobs", "tiny", "--state", "succeeded", "--json"], capsys)
    assert [(j["id"], j["kind"], j["state"]) for j in json.loads(out)] == [(1, "fetch", "succeeded")]
    code, out, _ = run_cli(["remote", "logs", "1"], capsys)
    with Client(live.url, live.admin.token) as c:
        assert code == 0 and out.splitlines() == list(c.job(1).logs())
    code, followed, _ = run_cli(["remote", "logs", "1", "--follow"], capsys)  # an ended job: its stream ends
    assert code == 0 and followed == out

    code, out, err = run_cli(["remote", "submit", "tiny", "--json", "--", "dataset", "build", "eoengine.yaml"], capsys)
    assert code == 0 and json.loads(out)["state"] == "queued", err  # no worker now: it waits
    code, out, _ = run_cli(["remote", "cancel", "3"], capsys)
    assert code == 0 and out.strip() == "job 3 (build): cancelled"
    code, _, err = run_cli(["remote", "cancel", "3"], capsys)
    assert code == 2 and "cancelled already" in err and err.count("\n") == 1
    code, _, err = run_cli(["remote", "logs", "99"], capsys)
    assert code == 2 and "no job 99" in err
    logs = [tmp_path / "worker.log", *live.platform.settings.jobs_dir.rglob("*.txt")]
    assert len(logs) > 1 and not any(live.admin.token in p.read_text() for p in logs)
