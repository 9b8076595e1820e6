"""Issue 10: many-scene, mosaic and Beam predictions fail as single-scene ones do.

An output that cannot be written (an unwritable folder, a full disk) or a bad input met in a
Beam worker is one line and exit 2, and no ``.scenes`` folder, strip or partial file is left.
"""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import OGT, run_cli, saved_package, truncated_stack


def _noisy_stack(out: Path, side: int = 800) -> Path:
    """Four bands of noise: the maps of an untrained model on it hardly compress, so they outgrow the small disk."""
    with rasterio.open(OGT / "LE70220491999322EDC01_stack.gtif") as ds:
        profile = ds.profile | {"count": 4, "width": side, "height": side}
    data = np.random.default_rng(0).integers(200, 4000, (4, side, side)).astype("int16")
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


@pytest.fixture
def job(tmp_path: Path) -> dict[str, Path]:
    return {"model": saved_package(tmp_path / "m"), "scene": _noisy_stack(tmp_path / "scene.tif")}


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def _small_disk() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # larger writes fail (EFBIG), as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process


def _run(args: list[str], small_disk: bool = False) -> tuple[int, list[str], str]:
    proc = subprocess.run([sys.executable, "-m", "eoengine", *args], preexec_fn=_small_disk if small_disk else None,
                          capture_output=True, text=True, timeout=300, env=os.environ | {"EOENGINE_PROGRESS": "0"})
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("_tiff")]
    return proc.returncode, lines, proc.stderr  # libtiff prints its own line on a failed write


def test_an_unwritable_out_dir_is_one_line(job: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    for folder in (Path("/sys/eoengine-maps"), Path("/proc/eoengine-maps")):  # refused to root too
        code, _, err = run_cli(["predict", str(job["model"]), "--scene", str(job["scene"]), "--out-dir", str(folder)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and f"cannot write {folder}" in err, err


@pytest.mark.parametrize("beam", [False, True])
def test_a_full_disk_in_many_scene_prediction_is_one_line_and_leaves_nothing(job: dict[str, Path], tmp_path: Path,
                                                                              beam: bool) -> None:
    maps = tmp_path / "maps"
    code, lines, err = _run(["predict", str(job["model"]), "--scene", str(job["scene"]), "--out-dir", str(maps),
                             "--engine", "torch", *(["--beam"] if beam else [])], small_disk=True)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: cannot write {maps}"), err
    assert not maps.exists()


@pytest.mark.parametrize("beam", [False, True])
def test_a_full_disk_in_a_mosaic_is_one_line_and_leaves_nothing(job: dict[str, Path], tmp_path: Path, beam: bool) -> None:
    out = tmp_path / "mosaic" / "all.tif"
    out.parent.mkdir()
    other = _noisy_stack(tmp_path / "other.tif")
    code, lines, err = _run(["predict", str(job["model"]), "--scene", str(other), "--scene", str(job["scene"]),
                             "--out", str(out), "--engine", "torch", *(["--beam"] if beam else [])], small_disk=True)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: cannot write"), err
    assert _left(out.parent) == []


@pytest.mark.parametrize("where", ["out-dir", "out"])
def test_a_beam_worker_s_bad_input_is_one_line_and_leaves_nothing(job: dict[str, Path], tmp_path: Path, where: str) -> None:
    maps = tmp_path / "maps"
    target = ["--out-dir", str(maps)] if where == "out-dir" else ["--out", str(maps / "all.tif")]
    if where == "out":
        maps.mkdir()
    code, lines, err = _run(["predict", str(job["model"]), "--scene", str(truncated_stack(tmp_path)), *target,
                             "--engine", "torch", "--beam"])
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "corrupt or truncated" in errors[0], err
    assert "Traceback" not in err and "eoengine-error" not in err, err
    assert _left(maps) == []
