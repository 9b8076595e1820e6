"""``eoengine remote ...`` against a live platform: the saved token (0600, never printed), projects, bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from platform_server import ADMIN_PASSWORD, LiveServer, live_platform

from eoengine.client import Client

Capture = pytest.CaptureFixture[str]
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("EOENGINE_CONFIG_DIR", str(folder))
    return folder


def _one_line_error(code: int, err: str, *words: str) -> str:
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert " — " in err  # the problem, then the fix
    for word in words:
        assert word in err, err
    return err


def _login(live: LiveServer, capsys: Capture, monkeypatch: pytest.MonkeyPatch, token: str | None = None) -> str:
    monkeypatch.setenv("EOE_TEST_TOKEN", token or live.admin.token)
    code, out, err = run_cli(["remote", "login", live.url, "--token-env", "EOE_TEST_TOKEN"], capsys)
    assert code == 0, err
    return out


def test_login_saves_the_token_for_its_owner_only(live: LiveServer, config_dir: Path, capsys: Capture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = _login(live, capsys, monkeypatch)
    saved = config_dir / "remote.json"
    assert f"signed in to {live.url} as admin (site admin); saved in {saved}" in out
    assert live.admin.token not in out
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert json.loads(saved.read_text()) == {"url": live.url, "token": live.admin.token}
    assert [p.name for p in config_dir.iterdir()] == ["remote.json"]  # no temporary file left

    saved.chmod(0o644)
    _one_line_error(*run_cli(["remote", "projects"], capsys)[::2], "others may read it", "chmod 600")


def test_login_refuses_a_bad_token_and_keeps_nothing(live: LiveServer, config_dir: Path, capsys: Capture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOE_TEST_TOKEN", "eoe_wrong-token")
    code, out, err = run_cli(["remote", "login", live.url, "--token-env", "EOE_TEST_TOKEN"], capsys)
    _one_line_error(code, err, "the API token is unknown")
    assert "eoe_wrong-token" not in out + err and not (config_dir / "remote.json").exists()
    monkeypatch.delenv("EOE_TEST_TOKEN")
    code, _, err = run_cli(["remote", "login", live.url, "--token-env", "EOE_TEST_TOKEN"], capsys)
    _one_line_error(code, err, "EOE_TEST_TOKEN is not set")
    code, _, err = run_cli(["remote", "login", "ftp://example.org", "--token-env", "HOME"], capsys)
    _one_line_error(code, err, "not a server URL")
    code, _, err = run_cli(["remote", "login", live.url, "--token-env", "HOME", "--username", "admin"], capsys)
    _one_line_error(code, err, "not both")


def test_login_with_a_password_makes_a_token(live: LiveServer, config_dir: Path, capsys: Capture) -> None:
    code, out, err = run_cli(["remote", "login", live.url + "/api/v1/", "--username", "admin",
                              "--password", ADMIN_PASSWORD, "--expires-days", "3"], capsys)
    assert code == 0, err
    saved = json.loads((config_dir / "remote.json").read_text())
    assert saved["url"] == live.url and saved["token"] not in out + err
    with Client(live.url, live.admin.token) as admin:
        made = next(t for t in admin.tokens() if t.name.startswith("eoengine remote login on "))
    assert made.prefix == saved["token"][:8] and made.expires_at is not None
    assert 2.9 < (made.expires_at - made.created_at).total_seconds() / 86400 < 3.1
    code, _, err = run_cli(["remote", "login", live.url, "--username", "admin", "--password", "wrong-pass"], capsys)
    _one_line_error(code, err, "wrong user name or password")


def test_login_asks_for_the_token_without_echoing_it(live: LiveServer, config_dir: Path) -> None:
    env = {**os.environ, "EOENGINE_CONFIG_DIR": str(config_dir), "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "eoengine", "remote", "login", live.url],
                          input=live.admin.token + "\n",
                          capture_output=True, text=True, env=env, timeout=120, start_new_session=True)
    assert done.returncode == 0, done.stderr
    assert "API token" in done.stdout + done.stderr and "signed in" in done.stdout
    assert live.admin.token not in done.stdout + done.stderr
    assert json.loads((config_dir / "remote.json").read_text())["token"] == live.admin.token


def test_projects_as_a_table_and_as_json(live: LiveServer, config_dir: Path, capsys: Capture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    vera = live.user("vera")
    with Client(live.url, live.admin.token) as admin:
        admin.create_project("NC landcover", template="nc-landsat")
        admin.create_project("Second", template="nc-landsat")
        admin.add_member("second", "vera", "reviewer")
    _login(live, capsys, monkeypatch)
    code, out, err = run_cli(["remote", "projects"], capsys)
    assert code == 0, err
    assert "2 project(s)" in out and "nc-landcover" in out and "NC landcover" in out and "admin" in out
    _login(live, capsys, monkeypatch, vera)
    code, out, err = run_cli(["remote", "projects", "--json"], capsys)
    assert code == 0, err
    assert [(p["slug"], p["name"], p["role"]) for p in json.loads(out)] == [("second", "Second", "reviewer")]
    assert vera not in out + err


def test_commands_need_a_saved_and_valid_server(live: LiveServer, config_dir: Path, capsys: Capture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (["projects"], ["jobs", "nc"], ["logs", "1"], ["cancel", "1"]):
        _one_line_error(*run_cli(["remote", *args], capsys)[::2], "no server saved", "eoengine remote login URL")
    (config_dir).mkdir(mode=0o700)
    (config_dir / "remote.json").write_text("[1, 2]")
    (config_dir / "remote.json").chmod(0o600)
    _one_line_error(*run_cli(["remote", "projects"], capsys)[::2], "is not a saved server")

    with Client(live.url, live.admin.token) as admin:
        spare = admin.create_token("spare")
    _login(live, capsys, monkeypatch, spare.token)
    with Client(live.url, live.admin.token) as admin:
        admin.revoke_token(spare.id)
    code, out, err = run_cli(["remote", "projects"], capsys)
    _one_line_error(code, err, "the API token is revoked")
    assert spare.token not in out + err
    _one_line_error(*run_cli(["remote", "jobs", "missing"], capsys)[::2])


def test_submit_refuses_bad_job_descriptions(live: LiveServer, config_dir: Path, tmp_path: Path, capsys: Capture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _login(live, capsys, monkeypatch)
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    broken = tmp_path / "broken.json"
    broken.write_text("{kind: build")
    for args, words in ((["nc"], ["one of the two"]),
                        (["nc", "--spec", str(listed), "--", "train", "eoengine.yaml"], ["one of the two"]),
                        (["nc", "--", "dataset", "frobnicate"], ["is not a job command", "dataset build"]),
                        (["nc", "--", "train"], ["Missing argument", "eoengine train --help"]),
                        (["nc", "--", "train", "x.yaml", "--no-such-flag"],
                         ["No such option", "--no-such-flag", "see eoengine train --help"]),
                        (["nc", "--spec", str(tmp_path / "none.json")], ["none.json not found"]),
                        (["nc", "--spec", str(broken)], ["is not JSON"]),
                        (["nc", "--spec", str(listed)], ["holds a list, not a job spec"])):
        _one_line_error(*run_cli(["remote", "submit", *args], capsys)[::2], *words)
    with Client(live.url, live.admin.token) as admin:
        admin.create_project("NC", template="nc-landsat")
    _one_line_error(*run_cli(["remote", "jobs", "nc", "--state", "sleeping"], capsys)[::2], "state", "'queued'")
