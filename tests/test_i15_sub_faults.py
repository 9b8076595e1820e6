"""Subscription faults: failing webhooks, an unreachable source, a crash mid-run, bad CLI input, the dry run."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, saved_package
from jobs_support import child_env
from platform_fixtures import free_port
from subscriptions_support import SECRET, Receiver, area_of, catalog, serve_on, spec_data, write_scene

from eoengine.sourcing.catalog import CatalogIndex
from eoengine.subscriptions.notify import Retry
from eoengine.subscriptions.run import CRASH_HOOK, run_due
from eoengine.subscriptions.spec import parse_spec
from eoengine.subscriptions.state import SubscriptionState

NOW = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)
QUICK = Retry(attempts=3, backoff=0.01, timeout=0.3)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("i15faults")
    a = write_scene(tmp / "scenes", "a")
    return {"package": saved_package(tmp / "pkg"), "scene": a, "catalog": catalog(tmp / "cat", [("a", "2021-03-01", 20.0, a)])}


@pytest.mark.parametrize("status, delay, error", [(500, 0.0, "HTTP 500"), (200, 1.0, "timed out")])
def test_a_failing_webhook_is_retried_then_marked_failed_and_the_run_succeeds(
        tmp_path: Path, world: dict[str, Path], status: int, delay: float, error: str) -> None:
    receiver = Receiver(status=status, delay=delay)
    try:
        spec = parse_spec(spec_data(world["catalog"], world["package"], area_of(world["scene"]),
                                    webhooks=[{"url": receiver.url, "secret": SECRET, "topics": ["run.succeeded"]}]))
        _, [run] = run_due(spec, SubscriptionState(), tmp_path / "out", tmp_path / "cache", NOW, retry=QUICK)
    finally:
        receiver.close()
    assert run.status == "succeeded" and len(receiver.received) == 3
    [delivery] = run.deliveries
    assert (delivery.outcome, delivery.attempts, delivery.topic) == ("failed", 3, "run.succeeded")
    assert error in (delivery.error or "")
    assert len({h["x-eoengine-delivery"] for h, _ in receiver.received}) == 1  # one delivery, tried three times
    assert SECRET not in (tmp_path / "out" / "history.jsonl").read_text()


def test_an_unreachable_source_fails_the_run_with_the_reason_and_the_next_run_succeeds(
        tmp_path: Path, world: dict[str, Path]) -> None:
    from eoengine.serving.stac_api import create_stac_app

    port = free_port()
    receiver = Receiver()
    spec = parse_spec(spec_data(f"http://127.0.0.1:{port}", world["package"], area_of(world["scene"]),
                                webhooks=[{"url": receiver.url, "secret": SECRET}]))
    try:
        state, [failed] = run_due(spec, SubscriptionState(), tmp_path / "out", tmp_path / "cache", NOW, retry=QUICK)
        assert failed.status == "failed" and failed.error is not None
        assert "cannot reach the STAC API" in failed.error.error and f"127.0.0.1:{port}" in failed.error.error
        assert [d.topic for d in failed.deliveries] == ["run.failed"] and state.failed and state.newest_scene is None
        assert receiver.bodies("run.failed")[0]["run"]["error"]["error"] == failed.error.error

        server = serve_on(create_stac_app(CatalogIndex(world["catalog"]), cache=tmp_path / "stac-cache"), port)
        try:
            state, [retried] = run_due(spec, state, tmp_path / "out", tmp_path / "cache", NOW + dt.timedelta(hours=1),
                                       retry=QUICK)
        finally:
            server.should_exit = True
    finally:
        receiver.close()
    assert retried.status == "succeeded" and retried.scene_ids == ["a"] and state.failed == []
    assert retried.period_start == failed.period_start  # the failed period's scenes are taken again


def _spec_file(tmp_path: Path, world: dict[str, Path], **extra: object) -> Path:
    path = tmp_path / "watch.yaml"
    data = spec_data(world["catalog"], world["package"], area_of(world["scene"]), **extra)
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    code = "from eoengine.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=child_env(**env), capture_output=True, text=True,
                          timeout=300, check=False)


def test_a_run_killed_after_its_map_resumes_without_doubling(tmp_path: Path, world: dict[str, Path]) -> None:
    spec = _spec_file(tmp_path, world)
    out = tmp_path / "out"
    crashed = _cli("subscription", "run", str(spec), "--out", str(out), "--now", "2021-06-01T00:00:00Z", **{CRASH_HOOK: "1"})
    assert crashed.returncode == 3, crashed.stderr
    [folder] = list((out / "runs").iterdir())
    assert (folder / "map.tif").is_file() and not (folder / "record.json").exists()
    assert not (tmp_path / "watch.state.json").exists()
    made = (folder / "map.tif").stat().st_mtime_ns

    resumed = _cli("subscription", "run", str(spec), "--out", str(out), "--now", "2021-06-01T00:00:00Z", "--json")
    assert resumed.returncode == 0, resumed.stderr
    [record] = json.loads(resumed.stdout)
    assert record["status"] == "succeeded" and record["key"] == folder.name and record["predict_seconds"] is None
    assert (folder / "map.tif").stat().st_mtime_ns == made  # the map was not predicted again
    assert [p.name for p in (out / "runs").iterdir()] == [folder.name]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["status"] for h in history] == ["succeeded"]
    state = json.loads((tmp_path / "watch.state.json").read_text())
    assert state["keys_done"] == [folder.name]

    again = _cli("subscription", "run", str(spec), "--out", str(out), "--now", "2021-06-02T00:00:00Z")
    assert again.returncode == 0 and "nothing due" in again.stdout


def test_the_cli_refuses_bad_input_with_one_line(tmp_path: Path, world: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    missing = run_cli(["subscription", "run", str(tmp_path / "nope.yaml")], capsys)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**spec_data(world["catalog"], world["package"], area_of(world["scene"])),
                                   "cadence": "every so often"}))
    cadence = run_cli(["subscription", "run", str(bad)], capsys)
    now = run_cli(["subscription", "dry-run", str(_spec_file(tmp_path, world)), "--now", "yesterday"], capsys)
    for code, _, err in (missing, cadence, now):
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "no subscription spec at" in missing[2] and "write one" in missing[2]
    assert "cadence" in cadence[2] and "cron expression" in cadence[2]
    assert "--now 'yesterday'" in now[2] and "2024-06-01T00:00:00Z" in now[2]
    assert not (tmp_path / "bad.state.json").exists()


def test_a_dry_run_answers_from_metadata_and_writes_nothing(tmp_path: Path, world: dict[str, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec_file(tmp_path, world)
    code, out, err = run_cli(["subscription", "dry-run", str(spec), "--now", "2021-06-01T00:00:00Z", "--json"], capsys)
    assert code == 0, err
    answer = json.loads(out)
    [period] = answer["periods"]
    assert period["scene_ids"] == ["a"] and period["chosen"] == ["a"]
    assert 0 < period["pixels"] <= 64 * 64 and answer["tiles"] == period["tiles"] == 1  # 64-pixel tiles
    assert answer["compute_seconds"] == pytest.approx(period["pixels"] / 250_000, abs=0.01)
    assert "assumed" in answer["basis"] and answer["storage_bytes"] > period["pixels"] * 4 * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["watch.yaml"]
    code, out, _ = run_cli(["subscription", "dry-run", str(spec), "--now", "2021-06-01T00:00:00Z"], capsys)
    assert code == 0 and "1 period(s), 1 tile(s)" in out


def test_a_failed_clocked_period_is_retried_before_the_new_one(tmp_path: Path, world: dict[str, Path]) -> None:
    from eoengine.serving.stac_api import create_stac_app

    port = free_port()
    spec = parse_spec(spec_data(f"http://127.0.0.1:{port}", world["package"], area_of(world["scene"]), cadence="daily",
                                start="2021-02-27T00:00:00Z"))
    state, [failed] = run_due(spec, SubscriptionState(), tmp_path / "out", tmp_path / "cache",
                              dt.datetime(2021, 3, 2, 6, tzinfo=dt.UTC))
    assert failed.status == "failed" and (failed.period_start.day, failed.period_end.day) == (1, 2)
    server = serve_on(create_stac_app(CatalogIndex(world["catalog"]), cache=tmp_path / "stac-cache"), port)
    try:
        state, records = run_due(spec, state, tmp_path / "out", tmp_path / "cache", dt.datetime(2021, 3, 3, 6, tzinfo=dt.UTC))
    finally:
        server.should_exit = True
    assert [(r.period_start.day, r.period_end.day, r.status, r.scene_ids) for r in records] == [
        (1, 2, "succeeded", ["a"]), (2, 3, "no-imagery", [])]
    assert state.failed == [] and state.last_due == dt.datetime(2021, 3, 3, tzinfo=dt.UTC)
