"""The README's demo figures are the ones the demo prints (issue 10).

The fast tests check the comparison itself on the real README; the slow one runs the real
demo once and compares what it wrote to ``figures.json`` with the README.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from eoengine.cli.demo import FIGURES, FOREST_ROW, UNET_ROW, check_readme, readme_differences, readme_figures
from eoengine.errors import EOError

README = Path(__file__).resolve().parents[1] / "README.md"


def _quoted() -> dict:
    """The README's own figures, in the form a demo run writes them."""
    version, rows = readme_figures(README.read_text(encoding="utf-8"))
    return {"dataset_version": version, "columns": ["accuracy", "mean IoU", "kappa"],
            "rows": {UNET_ROW: rows[UNET_ROW], FOREST_ROW: rows[FOREST_ROW]}}


def test_readme_quotes_a_version_and_both_rows() -> None:
    quoted = _quoted()
    assert re.fullmatch(r"[0-9a-f]{12}", quoted["dataset_version"] or "")
    for cells in quoted["rows"].values():
        assert len(cells) == 3 and all(re.fullmatch(r"0\.\d{3}", c) for c in cells)
    assert readme_differences(README.read_text(encoding="utf-8"), quoted) == []


def test_a_changed_figure_is_named(tmp_path: Path) -> None:
    figures = _quoted()
    figures["rows"][UNET_ROW] = ["0.999", *figures["rows"][UNET_ROW][1:]]
    figures["dataset_version"] = "0123456789ab"
    path = tmp_path / FIGURES
    path.write_text(json.dumps(figures))
    with pytest.raises(EOError, match=r"U-Net \(demo config\) accuracy .* ≠ 0\.999") as err:
        check_readme(README, path)
    assert "dataset version" in str(err.value) and "mean IoU" not in str(err.value)


def test_a_missing_row_and_missing_files(tmp_path: Path) -> None:
    figures = _quoted() | {"rows": {"U-Net (other config)": ["0.1", "0.1", "0.1"]}}
    assert readme_differences(README.read_text(encoding="utf-8"), figures) == ["no row 'U-Net (other config)'"]
    with pytest.raises(EOError, match="figures.json not found"):
        check_readme(README, tmp_path / FIGURES)


def test_cli_refuses_a_missing_readme_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["demo", "--workdir", str(tmp_path / "demo"), "--check-readme", str(tmp_path / "README.md")], capsys)
    assert code == 2 and "README.md not found" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_readme_quotes_what_the_demo_prints(tmp_path: Path) -> None:
    """The demo in a fresh process, as ``make check-readme`` runs it (its ``--check-readme`` compares the README):
    run inside a test worker after other tests, the same seed once trained to other scores (which leftover state
    causes that is not known)."""
    done = subprocess.run([sys.executable, "-m", "eoengine", "demo", "--workdir", str(tmp_path), "--check-readme",
                           str(README)], capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads((tmp_path / FIGURES).read_text())
    assert all(cell in done.stdout for cell in written["rows"][UNET_ROW]), done.stdout[-2000:]
    wrong = tmp_path / "README.md"
    wrong.write_text(README.read_text(encoding="utf-8").replace(f"| {written['rows'][UNET_ROW][0]} |", "| 0.999 |"))
    with pytest.raises(EOError, match="0.999"):
        check_readme(wrong, tmp_path / FIGURES)


def test_runs_record_the_thread_count_their_scores_depend_on() -> None:
    import torch

    from eoengine.training.finish import environment

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert environment()["torch.threads"] == "1"
    finally:
        torch.set_num_threads(old)
