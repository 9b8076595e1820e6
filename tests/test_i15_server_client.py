"""Subscriptions from the Python client and ``eoengine subscription ...`` against a live server (issue 15)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, saved_package
from jobs_support import make_project
from platform_server import LiveServer, live_platform

from eoengine.client import Client
from eoengine.errors import Conflict, Invalid

Capture = pytest.CaptureFixture[str]
AREA = {"type": "Feature", "properties": {}, "geometry": {
    "type": "Polygon", "coordinates": [[[-78.9, 35.7], [-78.8, 35.7], [-78.8, 35.8], [-78.9, 35.8], [-78.9, 35.7]]]}}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        folder = make_project(server, "watch")
        shutil.copytree(saved_package(tmp_path / "pkg"), folder / "pkg")
        yield server


@pytest.fixture
def signed_in(live: LiveServer, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    monkeypatch.setenv("EOENGINE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EOE_TEST_TOKEN", live.admin.token)
    code, _, err = run_cli(["remote", "login", live.url, "--token-env", "EOE_TEST_TOKEN"], capsys)
    assert code == 0, err
    return live


def spec_file(folder: Path, **overrides: object) -> Path:
    """A spec file with its area in a GeoJSON file next to it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "area.geojson").write_text(json.dumps(AREA))
    path = folder / "watch.yaml"
    path.write_text(yaml.safe_dump({"name": "fields", "area": "area.geojson", "model": "pkg", "cadence": "monthly",
                                    "start": "2026-01-01T00:00:00Z"} | overrides))
    return path


def test_the_client(live: LiveServer) -> None:
    with Client(live.url, live.admin.token) as c:
        made = c.create_subscription("watch", {"name": "c", "area": AREA, "model": "pkg", "cadence": "daily",
                                               "start": "2026-01-01T00:00:00Z"})
        assert made.state == "active" and made.spec["source"] == "project" and made.next_due is not None
        assert [s.id for s in c.subscriptions("watch", state="active")] == [made.id]
        assert c.subscriptions("watch", state="pending") == []
        assert c.change_subscription("watch", made.id, "pause").state == "suspended"
        with pytest.raises(Conflict, match="is suspended") as err:
            c.change_subscription("watch", made.id, "pause")
        assert "resume" in (err.value.fix or "")
        assert c.change_subscription("watch", made.id, "resume").state == "active"
        job = c.run_subscription("watch", made.id)
        assert job.info.kind == "subscription-run" and job.state == "queued"
        assert c.subscription("watch", made.id).active_job == job.id
        assert c.subscription_runs("watch", made.id) == [] and c.subscription_deliveries("watch", made.id) == []
        plan = c.dry_run_subscription("watch", made.id)  # the project's catalog: its one scene lies elsewhere
        assert [p.scene_ids for p in plan.periods] == [[]] and plan.tiles == 0
        with pytest.raises(Invalid, match="models:/gone@champion"):
            c.create_subscription("watch", {"name": "d", "area": AREA, "model": "models:/gone@champion",
                                            "start": "2026-01-01T00:00:00Z"})


def test_the_cli(signed_in: LiveServer, tmp_path: Path, capsys: Capture) -> None:
    path = spec_file(tmp_path / "specs")
    code, out, err = run_cli(["subscription", "create", str(path), "--project", "watch", "--server", signed_in.url],
                             capsys)
    assert code == 0, err
    assert "subscription 1 'fields' on watch: active, next due " in out and out.strip().endswith("0 run(s)")
    code, out, err = run_cli(["subscription", "list", "--project", "watch", "--json"], capsys)
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["spec"]["area"] == AREA["geometry"] and listed["spec"]["cadence"] == "monthly"
    assert listed["next_due"].endswith("-01T00:00:00Z")
    code, out, err = run_cli(["subscription", "list", "--project", "watch"], capsys)
    assert code == 0 and "fields" in out and "monthly" in out and "pkg" in out, err
    code, out, err = run_cli(["subscription", "pause", "1", "--project", "watch"], capsys)
    assert code == 0 and "1 'fields' on watch: suspended" in out, err
    code, out, err = run_cli(["subscription", "run-now", "1", "--project", "watch"], capsys)
    assert code == 2 and err.startswith("error: subscription 1 is suspended") and err.count("\n") == 1, err
    code, out, err = run_cli(["subscription", "resume", "1", "--project", "watch"], capsys)
    assert code == 0 and ": active" in out, err
    code, out, err = run_cli(["subscription", "run-now", "1", "--project", "watch"], capsys)
    assert code == 0 and "(subscription-run) queued on watch" in out, err
    code, out, err = run_cli(["subscription", "show", "1", "--project", "watch", "--json"], capsys)
    assert code == 0 and json.loads(out)["active_job"] is not None, err
    code, out, err = run_cli(["subscription", "runs", "1", "--project", "watch"], capsys)
    assert code == 0 and "0 run(s)" in out, err
    code, out, err = run_cli(["subscription", "cancel", "1", "--project", "watch"], capsys)
    assert code == 0 and ": cancelled" in out, err


@pytest.mark.parametrize(("overrides", "words"), [
    ({"cadence": "fortnightly"}, ("cadence",)),
    ({"area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}, ("not valid",)),
    ({"model": "models:/gone@champion"}, ("models:/gone@champion",)),
    ({"source": "../../.."}, ("outside the project",)),
])
def test_the_cli_refuses_a_bad_spec_in_one_line(signed_in: LiveServer, tmp_path: Path, capsys: Capture,
                                                 overrides: dict[str, object], words: tuple[str, ...]) -> None:
    path = spec_file(tmp_path / "bad", **overrides)
    code, _, err = run_cli(["subscription", "create", str(path), "--project", "watch"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and " — " in err, err
    assert all(word in err for word in words), err


def test_the_cli_checks_the_server_and_the_file(signed_in: LiveServer, tmp_path: Path, capsys: Capture) -> None:
    path = spec_file(tmp_path / "specs")
    code, _, err = run_cli(["subscription", "create", str(path), "-p", "watch", "--server", "http://127.0.0.1:1"], capsys)
    assert code == 2 and "the saved server is" in err and "eoengine remote login http://127.0.0.1:1" in err, err
    code, _, err = run_cli(["subscription", "create", str(tmp_path / "none.yaml"), "-p", "watch"], capsys)
    assert code == 2 and "no subscription spec at" in err, err
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    code, _, err = run_cli(["subscription", "create", str(tmp_path / "list.yaml"), "-p", "watch"], capsys)
    assert code == 2 and "holds a list" in err, err
    code, _, err = run_cli(["subscription", "show", "7", "-p", "watch"], capsys)
    assert code == 2 and "no subscription 7" in err, err
