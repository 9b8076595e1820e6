"""Issue 10: predict's options and outputs fail cleanly, leave nothing behind and are reproducible.

Every numeric option is validated up front (one line, the flag and the fix, nothing written);
an output that cannot be written is one line with nothing left; staging files of a run
killed during the COG conversion are removed by the rerun; and two runs give the same bytes.
"""

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import four_band_stack, run_cli, save_config, saved_package, tiny_config


@pytest.fixture
def job(tmp_path: Path) -> dict[str, Path]:
    return {"model": saved_package(tmp_path / "m"), "scene": four_band_stack(tmp_path / "scene.tif"),
            "out": tmp_path / "maps" / "map.tif"}


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize(("args", "says"), [
    (["--tile-size", "-64"], "--tile-size -64: Input should be greater than or equal to 8 — use --tile-size 8 or more"),
    (["--tile-size", "0"], "--tile-size 0: Input should be greater than or equal to 8"),
    (["--overlap", "-10"], "--overlap -10: Input should be greater than or equal to 0 — use --overlap 0 or more"),
    (["--batch-size", "0"], "--batch-size 0: Input should be greater than or equal to 1"),
    (["--batch-size", "100000"], "--batch-size 100000: Input should be less than or equal to 4096"),
    (["--tile-size", "64", "--overlap", "40"], "--overlap 40 with --tile-size 64: overlap (40) must be at most half"),
    (["--tile-size", "24"], "--overlap 16 with --tile-size 24"),  # the package's overlap (16) no longer fits: not clamped
    (["--class-codes", "labels"], "--class-codes 'labels': Input should be 'values' or 'positions'"),
])
def test_bad_numeric_options_are_one_line_and_write_nothing(job: dict[str, Path], args: list[str], says: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["predict", str(job["model"]), str(job["scene"]), "--out", str(job["out"]), *args], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, err
    assert _left(job["out"].parent) == []


def test_rows_per_element_is_validated_before_beam_runs(job: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["predict", str(job["model"]), "--scene", str(job["scene"]), "--beam", "--rows-per-element", "0",
                            "--out-dir", str(tmp_path / "many")], capsys)
    assert code == 2 and "--rows-per-element 0: must be at least 1" in err
    assert _left(tmp_path / "many") == []


@pytest.mark.parametrize(("key", "value", "says"), [
    ("prediction.tile_size", 100000, "prediction.tile_size: 100000 is not valid: Input should be less than or equal to 16384"),
    ("prediction.overlap", -10, "prediction.overlap: -10 is not valid"),
    ("prediction.batch_size", 0, "prediction.batch_size: 0 is not valid"),
    ("prediction.region_size", 10**7, "prediction.region_size: 10000000 is not valid"),
    ("prediction.class_codes", "labels", "prediction.class_codes: 'labels' is not valid"),
])
def test_the_config_prediction_section_is_validated_alike(tmp_path: Path, key: str, value: object, says: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = save_config(tmp_path, tiny_config(tmp_path, **{key: value}))
    code, _, err = run_cli(["validate", str(config)], capsys)
    assert code == 2 and says in err, err


def test_the_config_class_codes_reach_the_package(tmp_path: Path) -> None:
    from eoengine.config.load import load_config

    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path, **{"prediction.class_codes": "positions"})))
    assert cfg.prediction.class_codes == "positions" and cfg.prediction.model_dump()["class_codes"] == "positions"


def test_an_output_under_a_file_a_folder_or_a_forbidden_place_is_one_line(job: dict[str, Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [
        (tmp_path / "afile" / "sub" / "map.tif", "is a file, not a folder"),
        (tmp_path / "adir", "is a folder"),
        (Path("/sys/eoengine-map.tif"), "cannot write /sys/eoengine-map.tif: [Errno 13] Permission denied"),  # root too
    ]
    for out, says in cases:
        code, _, err = run_cli(["predict", str(job["model"]), str(job["scene"]), "--out", str(out)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, err
    code, _, err = run_cli(["predict", str(job["model"]), str(job["scene"]), "--out", str(tmp_path / "ok.tif"),
                            "--probabilities", str(tmp_path / "afile" / "p.tif")], capsys)
    assert code == 2 and "is a file, not a folder" in err
    assert _left(tmp_path / "adir") == [] and not (tmp_path / "ok.tif").exists()


def _small_disk() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # larger writes fail (EFBIG), as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process


def test_a_full_disk_is_one_line_and_leaves_nothing(job: dict[str, Path], tmp_path: Path) -> None:
    out = job["out"]
    args = ["predict", str(job["model"]), str(job["scene"]), "--out", str(out), "--probabilities", str(out.with_name("p.tif"))]
    proc = subprocess.run([sys.executable, "-m", "eoengine", *args], preexec_fn=_small_disk, capture_output=True, text=True,
                          timeout=300, env=os.environ | {"EOENGINE_PROGRESS": "0"})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("_tiffWriteProc:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {out}"), proc.stderr  # libtiff prints its own line
    assert _left(out.parent) == []


KILL_IN_COG = """
import os, signal, sys
import rasterio.shutil
copy = rasterio.shutil.copy
def copy_then_die(src, dst, **kw):  # killed after GDAL wrote the staging COG, before it is renamed
    copy(src, dst, **kw)
    os.kill(os.getpid(), signal.SIGKILL)
rasterio.shutil.copy = copy_then_die
from eoengine.cli.main import main
sys.argv = ["eoengine", *sys.argv[1:]]
main()
"""


def test_a_run_killed_in_the_cog_conversion_is_cleaned_by_the_rerun(job: dict[str, Path],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = job["out"]
    args = ["predict", str(job["model"]), str(job["scene"]), "--out", str(out)]
    proc = subprocess.run([sys.executable, "-c", KILL_IN_COG, *args], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"EOENGINE_PROGRESS": "0"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    staged = [n for n in _left(out.parent) if n.endswith(".cog.tif")]
    assert staged and not out.exists()  # what a killed run leaves
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert _left(out.parent) == ["map.tif"]


def test_two_runs_give_identical_bytes(job: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out, probs = job["out"], job["out"].with_name("p.tif")
    digests = []
    for _ in range(2):
        code, _, err = run_cli(["predict", str(job["model"]), str(job["scene"]), "--out", str(out), "--probabilities",
                                str(probs), "--engine", "torch"], capsys)  # torch and ONNX differ in the last bits
        assert code == 0, err
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in (out, probs)])
        time.sleep(1.1)  # a creation time in seconds would differ
    assert digests[0] == digests[1]

