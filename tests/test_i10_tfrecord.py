"""Importing TFRecord exports nobody here has seen: list the features, default bands, reruns, wrong paths."""

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, save_config, tiny_config

from eoengine.datasets.schema import DatasetManifest
from eoengine.datasets.tfrecord import example_class, write_records


def _export(path: Path, n: int = 6, side: int = 8) -> Path:
    """Records as Earth Engine writes them, with an int64 label, a scalar and a bytes id next to the bands."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        ex = example_class()()
        feats = ex.features.feature
        for band in ("B4", "B2", "B3"):
            feats[band].float_list.value.extend(rng.random(side * side).tolist())
        feats["landcover"].int64_list.value.extend(rng.integers(0, 3, side * side).tolist())
        feats["latitude"].float_list.value.append(10.0 + i)
        feats["system:index"].bytes_list.value.append(f"{i:04d}".encode())
        records.append(ex.SerializeToString())
    write_records(path, records)
    return path


def _import(capsys: pytest.CaptureFixture[str], src: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(["dataset", "import-tfrecord", f"train={src}", "--out", str(out), "--label", "landcover", *extra], capsys)


def test_inspect_lists_names_types_and_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run_cli(["dataset", "inspect-tfrecord", str(_export(tmp_path / "t.tfrecord.gz"))], capsys)
    assert code == 0, err
    rows = {m[0]: m[1:] for m in re.findall(r"([\w:]+)\s*\S\s*(float|int64|bytes)\s*\S\s*(\d+)\s*\S\s*(\S+)", text)}
    assert rows == {"B2": ("float", "64", "8x8"), "B3": ("float", "64", "8x8"), "B4": ("float", "64", "8x8"),
                    "landcover": ("int64", "64", "8x8"), "latitude": ("float", "1", "point"),
                    "system:index": ("bytes", "1", "point")}


def test_default_bands_are_the_numeric_features_but_the_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _import(capsys, _export(tmp_path / "t.tfrecord.gz"), tmp_path / "ds")
    assert code == 0, err
    assert DatasetManifest.read(tmp_path / "ds").channels == ["B2", "B3", "B4"]  # not the label, the scalar or the id


def test_rerun_is_idempotent_and_a_different_import_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = _export(tmp_path / "t.tfrecord.gz"), tmp_path / "ds"
    assert _import(capsys, src, out)[0] == 0
    first = DatasetManifest.read(out)
    code, text, err = _import(capsys, src, out)
    assert code == 0 and "dataset up to date" in text, err
    assert DatasetManifest.read(out) == first
    code, _, err = _import(capsys, src, out, "--classes", "water,forest,urban")
    assert code == 2 and "holds another dataset" in err and "--force" in err
    assert DatasetManifest.read(out) == first
    code, _, err = _import(capsys, src, out, "--classes", "water,forest,urban", "--force")
    assert code == 0, err
    replaced = DatasetManifest.read(out)
    assert replaced.version != first.version and [c.name for c in replaced.classes] == ["water", "forest", "urban"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "t.tfrecord.gz"]  # nothing half-written left


def test_output_that_is_not_a_dataset_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    code, _, err = _import(capsys, _export(tmp_path / "t.tfrecord.gz"), tmp_path / "mine", "--force")
    assert code == 2 and "already exists and is not an eoengine dataset" in err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_a_folder_given_as_a_file_is_named_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    _export(folder / "part-0.tfrecord.gz")
    code, _, err = _import(capsys, folder, tmp_path / "ds", "--bands", "B2")
    assert code == 2 and "is a directory" in err and "part-0.tfrecord.gz" in err and "compression" not in err
    code, _, err = run_cli(["dataset", "inspect-tfrecord", str(folder)], capsys)
    assert code == 2 and "is a directory" in err


def test_a_mistyped_dataset_path_names_both_ways_to_make_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = save_config(tmp_path, tiny_config(tmp_path))
    for args in (["dataset", "info", str(tmp_path / "nope")], ["train", str(config), "--dataset", str(tmp_path / "nope")]):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and "is not an eoengine dataset (not found)" in err, err
        assert "dataset build" in err and "dataset import-tfrecord" in err
