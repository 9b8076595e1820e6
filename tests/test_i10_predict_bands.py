"""Issue 10: predict reads the band each argument names from multi-band files, or refuses.

The sample stack has 8 bands described 'band 1 reflectance', ...; the tiny models take its
first four (blue, green, red, nir), as the tiny config's ``stack_indexes`` [1, 2, 3, 4] say.
"""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import OGT, four_band_stack, run_cli, saved_package

STACK = OGT / "LE70220491999322EDC01_stack.gtif"
BANDS = ("blue", "green", "red", "nir")


def _map(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


@pytest.fixture
def reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> np.ndarray:
    """The map of the four bands rewritten as their own stack (what predict used to require)."""
    model = saved_package(tmp_path / "plain")
    code, _, err = run_cli(["predict", str(model), str(four_band_stack(tmp_path / "four.tif")),
                            "--out", str(tmp_path / "ref.tif")], capsys)
    assert code == 0, err
    return _map(tmp_path / "ref.tif")


def test_a_pair_naming_a_multi_band_file_is_refused_not_read_as_band_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = saved_package(tmp_path / "m")  # no recorded stack indexes, descriptions name no model band
    code, _, err = run_cli(["predict", str(model), *[f"{b}={STACK}" for b in BANDS], "--out", str(tmp_path / "x.tif")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "has 8 bands and none is described as 'blue'" in err and f"blue={STACK}:N" in err
    assert not list(tmp_path.glob("*x.tif*"))


def test_file_colon_band_picks_bands_from_a_stack(tmp_path: Path, reference: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    model = saved_package(tmp_path / "m")
    pairs = [f"{b}={STACK}:{i}" for i, b in enumerate(BANDS, start=1)][::-1]  # any order
    code, _, err = run_cli(["predict", str(model), *pairs, "--out", str(tmp_path / "pairs.tif")], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "pairs.tif"), reference)
    files = [f"{STACK}:{i}" for i in range(1, 5)]  # positional, in the model's order
    code, _, err = run_cli(["predict", str(model), *files, "--out", str(tmp_path / "files.tif")], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "files.tif"), reference)


def test_the_training_stack_predicts_with_the_recorded_stack_indexes(tmp_path: Path, reference: np.ndarray,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    model = saved_package(tmp_path / "m", stack_indexes=[1, 2, 3, 4])
    code, _, err = run_cli(["predict", str(model), str(STACK), "--out", str(tmp_path / "stack.tif")], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "stack.tif"), reference)
    code, _, err = run_cli(["predict", str(model), *[f"{b}={STACK}" for b in BANDS], "--out", str(tmp_path / "p.tif")], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "p.tif"), reference)


def test_descriptions_unlike_the_band_names_pass_when_the_indexes_are_known(tmp_path: Path, reference: np.ndarray,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    four = four_band_stack(tmp_path / "described.tif")
    with rasterio.open(four, "r+") as ds:
        for i in range(1, 5):
            ds.set_band_description(i, f"B{i}")
    code, _, err = run_cli(["predict", str(saved_package(tmp_path / "old")), str(four), "--out", str(tmp_path / "o.tif")], capsys)
    assert code == 2 and "band 1 of" in err and "is 'B1' but the model expects 'blue'" in err  # unknown layout: refused
    model = saved_package(tmp_path / "m", stack_indexes=[1, 2, 3, 4])
    code, _, err = run_cli(["predict", str(model), str(four), "--out", str(tmp_path / "d.tif")], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "d.tif"), reference)


def test_descriptions_naming_the_bands_pick_them_in_any_order(tmp_path: Path, reference: np.ndarray,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with rasterio.open(STACK) as src:
        profile, data = src.profile | {"count": 5}, src.read([7, 4, 3, 2, 1])  # nir, red, green, blue behind band 7
    shuffled = tmp_path / "shuffled.tif"
    with rasterio.open(shuffled, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(["thermal", "nir", "red", "green", "blue"], start=1):
            dst.set_band_description(i, name)
    code, _, err = run_cli(["predict", str(saved_package(tmp_path / "m")), str(shuffled), "--out", str(tmp_path / "s.tif")], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "s.tif"), reference)
    code, _, err = run_cli(["predict", str(saved_package(tmp_path / "m")), *[f"{b}={shuffled}" for b in BANDS],
                            "--out", str(tmp_path / "n.tif")], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_map(tmp_path / "n.tif"), reference)


def test_a_package_records_the_stack_indexes_it_was_trained_with(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import save_config, tiny_config

    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.training.train import train

    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path, **{"training.epochs": 1})))
    build_dataset(cfg)
    result = train(cfg)
    import json

    meta = json.loads((result.model_path / "eoengine-model.json").read_text())
    assert meta["stack_indexes"] == [1, 2, 3, 4]
    code, _, err = run_cli(["predict", str(result.model_path), str(STACK), "--out", str(tmp_path / "m.tif")], capsys)
    assert code == 0, err  # the very stack it was trained on, as it is
    del meta["stack_indexes"]  # a package from before the indexes were recorded still loads and predicts
    (result.model_path / "eoengine-model.json").write_text(json.dumps(meta))
    code, _, err = run_cli(["predict", str(result.model_path), str(four_band_stack(tmp_path / "four.tif")),
                            "--out", str(tmp_path / "old.tif")], capsys)
    assert code == 0, err
