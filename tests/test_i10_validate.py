"""``validate`` checks what ``dataset build`` and ``train`` check, in their words; outputs and paths get one line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from conftest import OGT, one_problem, run_cli, save_config, tiny_config
from shapely.geometry import box

from eoengine.errors import EOError
from eoengine.models.registry import build_model

STACK = str(OGT / "LE70220491999322EDC01_stack.gtif")


def _validate(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code, _, err = run_cli(["validate", str(config)], capsys)
    return code, [line.removeprefix("  - ") for line in err.splitlines()[1:]]


def _build_error(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, _, err = run_cli(["dataset", "build", str(config)], capsys)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(lines) == 1, err
    return lines[0].removeprefix("error: ")


def _same_as_build(tmp: Path, capsys: pytest.CaptureFixture[str], **overrides: object) -> str:
    """Validate rejects the config with exactly the problem the build then names; returns it."""
    config = save_config(tmp, tiny_config(tmp, **overrides))
    code, problems = _validate(config, capsys)
    built = _build_error(config, capsys)
    assert code == 2 and problems == [built]
    assert not (tmp / "out" / "datasets").exists() or not any((tmp / "out" / "datasets").iterdir())
    return built


def test_labels_far_away(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(far)
    assert "do not overlap the scene" in _same_as_build(tmp_path, capsys, **{"labels.path": str(far)})


def test_labels_in_the_wrong_crs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = tmp_path / "wrong.gpkg"
    gpd.read_file(OGT / "training_data.shp").set_crs("EPSG:32617", allow_override=True).to_file(wrong)
    assert "do not overlap the scene" in _same_as_build(tmp_path, capsys, **{"labels.path": str(wrong)})


def test_band_index_beyond_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenes = [{"id": "s", "stack": STACK, "stack_indexes": [1, 2, 3, 12]}]
    config = save_config(tmp_path, tiny_config(tmp_path, **{"imagery.scenes": scenes}))
    code, problems = _validate(config, capsys)
    built = _build_error(config, capsys)
    assert code == 2 and len(problems) == 1 and "has 8 band(s), no band 12" in built and built in problems[0]


def test_patch_larger_than_the_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "patch_size 512 is larger than scene" in _same_as_build(tmp_path, capsys, **{"dataset.patch_size": 512})


def test_unknown_model_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = save_config(tmp_path, tiny_config(tmp_path, **{"model.kwargs": {"width": 8, "depht": 2}}))
    code, problems = _validate(config, capsys)
    with pytest.raises(EOError) as raised:  # what train raises when it builds the model
        build_model("cnn", 5, 5, width=8, depht=2)
    assert code == 2 and problems == [f"model.kwargs: {raised.value}"]
    assert "does not take argument(s) ['depht']" in problems[0] and "width, layers" in problems[0]


def test_a_valid_config_stays_valid(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["validate", str(tiny)], capsys)
    assert code == 0 and "valid" in out and err == ""
    assert not (tiny.parent / "out").exists()  # validate writes nothing


def test_output_dir_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    config = save_config(tmp_path, tiny_config(tmp_path, output_dir=str(tmp_path / "afile" / "out")))
    code, problems = _validate(config, capsys)
    built = _build_error(config, capsys)
    assert code == 2 and problems == [built] and "afile is a file, not a folder" in built
    assert (tmp_path / "afile").read_text() == "x"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1.2 MB tmpfs (as root: the tests run as root here and in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_output_dir_read_only(small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    config = save_config(tmp_path, tiny_config(tmp_path, output_dir=str(small_disk / "out")))
    code, problems = _validate(config, capsys)
    built = _build_error(config, capsys)
    assert code == 2 and problems == [built] and "is not writable" in built


def test_output_dir_full(small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_disk / "filler").write_bytes(b"\0" * 1_000_000)
    config = save_config(tmp_path, tiny_config(tmp_path, output_dir=str(small_disk / "out")))
    code, problems = _validate(config, capsys)
    assert code == 2 and problems == [_build_error(config, capsys)] and "no space left" in problems[0]


def test_disk_fills_during_the_build(small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """1.2 MB free passes the check, but the dataset needs about 1.5 MB: one line, nothing left."""
    config = save_config(tmp_path, tiny_config(tmp_path, output_dir=str(small_disk / "out")))
    error = _build_error(config, capsys)
    assert "no space left on the device" in error and "free some space" in error
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []


def test_folders_where_files_belong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "afolder"
    folder.mkdir()
    code, _, err = run_cli(["validate", str(folder)], capsys)
    assert code == 2 and err.strip() == f"error: {folder} is a folder, not a config file — pass the YAML file, e.g. {folder / 'eoengine.yaml'}"
    scene = save_config(tmp_path, tiny_config(tmp_path, **{"imagery.scenes": [{"id": "s", "stack": str(folder), "stack_indexes": [1, 2, 3, 4]}]}))
    code, problems = _validate(scene, capsys)
    assert code == 2 and len(problems) == 1 and f"{folder} is a folder, not a raster file" in problems[0]
    assert f"{folder} is a folder" in _build_error(scene, capsys)
    labels = save_config(tmp_path, tiny_config(tmp_path, **{"labels.path": str(folder)}))
    code, problems = _validate(labels, capsys)
    assert code == 2 and problems == [f"labels: {folder} is a folder, not a labels file — pass the labels file itself (e.g. a .gpkg or .shp inside the folder)"]


def test_unknown_fields_list_the_valid_ones_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_config(tmp_path)
    cfg["imagery"]["bands"] = [dict(b, scael=1) for b in cfg["imagery"]["bands"]]
    cfg["imagery"]["bands"][1]["nodta"] = 0
    cfg["dataset"]["pach_size"] = 16
    code, problems = _validate(save_config(tmp_path, cfg), capsys)
    assert code == 2 and len(problems) == 3
    assert problems[0].startswith("imagery.bands[0, 1, 2, 3].scael (blue, green, red, nir): unknown field 'scael'; "
                                  "valid fields: name, common_name, scale, offset, nodata")
    assert problems[1].startswith("imagery.bands[1].nodta: unknown field 'nodta'; valid fields: name, common_name")
    assert problems[2].startswith("dataset.pach_size: unknown field 'pach_size'; valid fields: patch_size, stride")


def test_in_channels_is_left_to_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """in_channels is not a constructor keyword here: train checks it against the dataset's channels."""
    config = save_config(tmp_path, tiny_config(tmp_path, **{"model.kwargs": {"in_channels": 5, "width": 8}}))
    code, problems = _validate(config, capsys)
    assert code == 0 and problems == []


def test_train_checks_output_dir_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    config = save_config(tmp_path, tiny_config(tmp_path, output_dir=str(tmp_path / "afile" / "out")))
    code, _, err = run_cli(["train", str(config)], capsys)
    assert code == 2 and one_problem(err) and "afile is a file, not a folder" in err
    assert not (tmp_path / "afile" / "out").exists()
