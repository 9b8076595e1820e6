"""The README's team-server section runs as written: its Python example against a real server and worker,
and its ``eoengine remote`` commands, on the bundled NC Landsat sample (giving the dataset version it quotes)."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest
from conftest import run_cli
from jobs_support import worker
from platform_server import live_platform

README = Path(__file__).resolve().parents[1] / "README.md"


def _section() -> str:
    text = README.read_text()
    return text[text.index("## The team server"):text.index("## Benchmarks")]


def _block(after: str, lang: str) -> str:
    section = _section()
    start = section.index(f"```{lang}\n", section.index(after)) + len(lang) + 4
    return section[start:section.index("```", start)]


def test_the_readme_client_example_and_remote_commands_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with live_platform(tmp_path / "home") as live, worker(live.platform.settings, tmp_path / "worker.log"):
        code = _block("**From Python and the command line.**", "python").replace(
            '"http://127.0.0.1:8000"', repr(live.url))
        lines: list[str] = []
        namespace = {"token": live.admin.token, "print": lines.append}
        exec(compile(code, "README.md", "exec"), namespace)  # the README's own example
        job = namespace["job"]
        assert job.info.state == "succeeded" and lines  # the log was followed as it was written
        [dataset] = namespace["server"].datasets("nc-landcover")
        quoted = re.search(r'"(nc-landcover@[0-9a-f]{12})"', code)
        assert quoted and dataset.ref == quoted.group(1)  # the version the README quotes is what the build gives
        with tarfile.open(tmp_path / "dataset.tar") as archive:
            assert f"{dataset.ref}/manifest.json" in archive.getnames()

        monkeypatch.setenv("EOENGINE_CONFIG_DIR", str(tmp_path / "config"))
        monkeypatch.setenv("README_TOKEN", live.admin.token)
        assert run_cli(["remote", "login", live.url, "--token-env", "README_TOKEN"], capsys)[0] == 0
        for command in _block("and `eoengine remote` does the same", "bash").splitlines():
            args = command.split("#")[0].split()[2:]  # drop 'eoengine remote'
            if args[0] == "login":
                continue
            args = [str(job.id) if a == "12" else a for a in args]
            status, out, err = run_cli(["remote", *args], capsys)
            assert status == 0 or (args[0] == "cancel" and "nothing to cancel" in err), (command, err)
            if args[0] == "submit":
                assert "succeeded" in out and "up_to_date" in out
