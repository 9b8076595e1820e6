"""The README's demo figures are the ones the demo prints (issue 10).

The fast tests check the comparison itself on the real README; the slow one runs the real
demo once and compares what it wrote to ``figures.json`` with the README.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import THREADS_SHARED, run_cli

from eoengine.cli.demo import (
    CPU_PATTERN,
    FIGURES,
    FOREST_ROW,
    UNET_ROW,
    check_readme,
    cpu_kind,
    readme_differences,
    readme_figures,
)
from eoengine.errors import EOError

README = Path(__file__).resolve().parents[1] / "README.md"


def _quoted() -> dict:
    """The README's own figures, in the form a demo run writes them."""
    text = README.read_text(encoding="utf-8")
    version, rows = readme_figures(text)
    cpu = CPU_PATTERN.search(text)
    assert cpu is not None, "the README names the CPU kind its U-Net figures were printed on"
    return {"dataset_version": version, "columns": ["accuracy", "mean IoU", "kappa"],
            "rows": {UNET_ROW: rows[UNET_ROW], FOREST_ROW: rows[FOREST_ROW]}, "cpu": cpu.group(1)}


def test_readme_quotes_a_version_and_both_rows() -> None:
    quoted = _quoted()
    assert re.fullmatch(r"[0-9a-f]{12}", quoted["dataset_version"] or "")
    for cells in quoted["rows"].values():
        assert len(cells) == 3 and all(re.fullmatch(r"0\.\d{3}", c) for c in cells)
    assert readme_differences(README.read_text(encoding="utf-8"), quoted) == ([], [])


def test_the_cpu_kind_names_vendor_model_instruction_set_and_threads() -> None:
    import torch

    kind = cpu_kind()
    assert kind.endswith(f", {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"), kind
    if Path("/proc/cpuinfo").exists():
        assert re.match(r"\S+ family \d+ model \d+, ", kind), kind


def test_on_another_cpu_kind_only_the_trained_row_goes_uncompared(tmp_path: Path) -> None:
    figures = _quoted() | {"cpu": "GenuineIntel family 6 model 143, AVX512, 2 threads"}
    figures["rows"][UNET_ROW] = ["0.651", "0.249", "0.461"]
    path = tmp_path / FIGURES
    path.write_text(json.dumps(figures))
    assert check_readme(README, path) == [UNET_ROW]
    figures["rows"][FOREST_ROW] = ["0.561", *figures["rows"][FOREST_ROW][1:]]
    path.write_text(json.dumps(figures))
    with pytest.raises(EOError, match=r"random forest.* accuracy 0\.560 ≠ 0\.561"):
        check_readme(README, path)
    del figures["cpu"]  # a figures.json of an older run: the CPU kind is unknown, so not the README's
    assert readme_differences(README.read_text(encoding="utf-8"), figures)[1] == [UNET_ROW]


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
    assert readme_differences(README.read_text(encoding="utf-8"), figures) == (["no row 'U-Net (other config)'"], [])
    with pytest.raises(EOError, match="figures.json not found"):
        check_readme(README, tmp_path / FIGURES)


def test_cli_refuses_a_missing_readme_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["demo", "--workdir", str(tmp_path / "demo"), "--check-readme", str(tmp_path / "README.md")], capsys)
    assert code == 2 and "README.md not found" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_readme_quotes_what_the_demo_prints(tmp_path: Path) -> None:
    """The demo in a fresh process, as ``make check-readme`` runs it (its ``--check-readme`` compares the README).

    The U-Net's row is compared on the CPU kind the README quotes; on another kind (CI machines
    differ) the output says it was not, and the dataset version and the forest's row still are.
    """
    env = os.environ.copy()
    if THREADS_SHARED:  # a process of pytest -n N: the demo gets every core back, as make check-readme runs it
        del env["OMP_NUM_THREADS"]
    done = subprocess.run([sys.executable, "-m", "eoengine", "demo", "--workdir", str(tmp_path), "--check-readme",
                           str(README)], capture_output=True, text=True, timeout=3000, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads((tmp_path / FIGURES).read_text())
    assert all(cell in done.stdout for cell in written["rows"][UNET_ROW]), done.stdout[-2000:]
    same_cpu = written["cpu"] == _quoted()["cpu"]
    assert ("not compared" in done.stdout) is not same_cpu, (written["cpu"], done.stdout[-500:])
    text = README.read_text(encoding="utf-8")
    for row in (FOREST_ROW, UNET_ROW) if same_cpu else (FOREST_ROW,):
        wrong = tmp_path / "README.md"
        wrong.write_text(text.replace(f"| {row} | {written['rows'][row][0]} |", f"| {row} | 0.999 |"))
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
