from pathlib import Path

import pytest
import yaml
from conftest import NC, run_cli, save_config, tiny_config

from eoengine.config.load import load_config
from eoengine.errors import ConfigError, EOError


def test_demo_config_loads_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(NC / "eoengine.yaml")
    assert [b.name for b in cfg.imagery.bands][:2] == ["blue", "green"]
    code, out, _ = run_cli(["validate", str(NC / "eoengine.yaml")], capsys)
    assert code == 0 and "valid" in out


def test_every_schema_problem_is_listed_with_path_and_value(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    cfg["dataset"]["patch_size"] = -4
    cfg["classes"][0]["color"] = "green"
    cfg["dataset"]["split"]["ratios"] = {"train": 0.5, "val": 0.2}
    cfg["model"]["nmae"] = "unet"
    with pytest.raises(ConfigError) as err:
        load_config(save_config(tmp_path, cfg))
    problems = "\n".join(err.value.problems)
    assert "dataset.patch_size: -4" in problems and "greater than or equal to 1" in problems
    assert "classes[0].color: 'green'" in problems and "hex colour" in problems
    assert "sum to 1" in problems
    assert "model.nmae: unknown field" in problems
    assert len(err.value.problems) == 4


def test_malformed_yaml_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nimagery:\n  bands: [a, b\n  scenes: 1\n")
    code, _, err = run_cli(["validate", str(bad)], capsys)
    assert code == 2 and "malformed YAML at line" in err and "Traceback" not in err


def test_validate_reports_semantic_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_config(tmp_path)
    cfg["model"]["name"] = "unett"
    cfg["training"]["loss"] = {"name": "dise"}
    cfg["training"]["optimizer"] = {"name": "Adamm"}
    cfg["features"]["indices"] = ["NBR"]
    cfg["training"]["early_stopping"] = {"monitor": "val_mIoU"}
    code, _, err = run_cli(["validate", str(save_config(tmp_path, cfg))], capsys)
    assert code == 2
    assert "unknown model 'unett' (did you mean 'unet'?)" in err and "pixel_dnn" in err
    assert "unknown loss 'dise' (did you mean 'dice'?)" in err
    assert "unknown optimizer 'Adamm'" in err and "SGD" in err
    assert "index NBR needs band(s) S2 (swir22)" in err
    assert "monitor 'val_mIoU' is not a logged metric" in err and "val_miou" in err


def test_init_writes_a_commented_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run_cli(["init", str(tmp_path / "proj")], capsys)
    text = (tmp_path / "proj" / "eoengine.yaml").read_text()
    assert code == 0 and "# " in text
    cfg = load_config(tmp_path / "proj" / "eoengine.yaml")  # schema-valid as written
    assert cfg.model.name == "unet"
    code, _, err = run_cli(["init", str(tmp_path / "proj")], capsys)
    assert code == 2 and "--force" in err
    assert yaml.safe_load(text)["dataset"]["split"]["method"] == "blocks"


def test_missing_config_file() -> None:
    with pytest.raises(EOError, match="config file not found"):
        load_config("/nonexistent/eoengine.yaml")


@pytest.mark.parametrize("cmd", [[], ["init"], ["validate"], ["train"], ["evaluate"], ["predict"], ["demo"],
                                 ["dataset"], ["dataset", "build"], ["dataset", "info"], ["dataset", "import-tfrecord"]])
def test_every_command_has_help(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([*cmd, "--help"], capsys)
    assert code == 0 and "Usage" in out and len(out) > 200
