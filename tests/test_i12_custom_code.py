"""Custom code by dotted path: refused by the team server's workers unless started with --allow-custom-code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs_support import make_project, submit, wait_job, worker
from platform_server import LiveServer, live_platform

from eoengine.errors import EOError
from eoengine.models.registry import check_model_name
from eoengine.platform.settings import PlatformSettings
from eoengine.platform.worker import start_worker_process, stop_process
from eoengine.runtime import CUSTOM_CODE_ENV
from eoengine.training.losses import build_loss


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


def test_a_process_that_refuses_custom_code_imports_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CUSTOM_CODE_ENV, raising=False)
    check_model_name("torch.nn.Identity")  # the CLI's default: a config's own code is imported
    assert type(build_loss("torch.nn.L1Loss")).__name__ == "L1Loss"
    monkeypatch.setenv(CUSTOM_CODE_ENV, "0")
    for call, what in ((lambda: check_model_name("torch.nn.Identity"), "model"),
                       (lambda: build_loss("torch.nn.L1Loss"), "loss")):
        with pytest.raises(EOError, match=f"{what} 'torch.nn.[A-Za-z1]+' is custom code") as err:
            call()
        assert "--allow-custom-code" in (err.value.fix or "")
    check_model_name("unet")  # eoengine's own models are no custom code


def test_a_worker_refuses_a_configs_own_model_by_default(live: LiveServer, tmp_path: Path) -> None:
    make_project(live, **{"model.name": "torch.nn.Identity", "model.kwargs": {}})
    with live.client() as c, worker(live.platform.settings, tmp_path / "worker.log"):
        job = wait_job(c, submit(c, "tiny", {"kind": "train"})["id"], 300)
    assert job["state"] == "failed"
    assert "model 'torch.nn.Identity' is custom code (a dotted path), which this server does not run" in job["error"]["error"]
    assert "--allow-custom-code" in job["error"]["error"]  # the config check names the fix in its problem line


def test_the_servers_worker_is_started_with_the_servers_choice(tmp_path: Path) -> None:
    for allowed in (False, True):
        proc = start_worker_process(PlatformSettings(home=tmp_path, custom_code=allowed))
        try:
            assert isinstance(proc.args, list) and proc.args[:3] == [sys.executable, "-m", "eoengine"]
            assert ("--allow-custom-code" in proc.args) is allowed
        finally:
            stop_process(proc, 5.0)
