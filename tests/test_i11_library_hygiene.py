"""Issue 11: importing eoengine leaves logging as it was, loading configs does not grow
``sys.path``, and validated configs stay valid (assignment is checked, copies are validated)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import OGT, REPO, run_cli, save_config, tiny_config
from pydantic import ValidationError

from eoengine.config.load import load_config
from eoengine.config.schema import ProjectConfig, changed
from eoengine.errors import EOError, Invalid

LOGGING_STATE = textwrap.dedent('''
    import ast, importlib, json, logging, sys
    from pathlib import Path

    src = Path(sys.argv[1])
    modules, libraries = [], set()
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src.parent).with_suffix("").parts
        if parts[-1] != "__main__":  # python -m eoengine: runs the CLI
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                libraries |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                libraries |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    for name in sorted(n for n in libraries if n.split(".")[0] != "eoengine"):
        try:  # what the libraries themselves do to logging when imported is theirs
            importlib.import_module(name)
        except Exception:
            pass

    def state():
        root = logging.getLogger()
        loggers = {name: [lg.level, [repr(h) for h in lg.handlers], [repr(f) for f in lg.filters], lg.propagate, lg.disabled]
                   for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
        return {"root": [root.level, [repr(h) for h in root.handlers], [repr(f) for f in root.filters]], "loggers": loggers}

    before = state()
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {exc}")
    print(json.dumps({"modules": modules, "failed": failed, "before": before, "after": state()}))
''')


def test_importing_every_module_leaves_logging_as_it_was() -> None:
    proc = subprocess.run([sys.executable, "-c", LOGGING_STATE, str(REPO / "src" / "eoengine")],
                          capture_output=True, text=True, timeout=600, env=os.environ | {"PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert len(seen["modules"]) > 100 and "eoengine.training.train" in seen["modules"] and seen["failed"] == []
    before, after = seen["before"], seen["after"]
    assert after["root"] == before["root"]  # no handler, no filter, same level
    changed_loggers = {name: (before["loggers"].get(name), state) for name, state in after["loggers"].items()
                       if state != before["loggers"].get(name, [0, [], [], True, False])}  # new ones: untouched
    assert changed_loggers == {}
    assert any(name.startswith("eoengine.") for name in after["loggers"])  # modules log under their own names


def _project(folder: Path, package: str) -> Path:
    """A project whose model is its own, by dotted path: ``<package>.models.Net`` next to the config."""
    (folder / package).mkdir(parents=True)
    (folder / package / "__init__.py").write_text("")
    (folder / package / "models.py").write_text(textwrap.dedent('''
        from torch import nn

        class Net(nn.Conv2d):
            def __init__(self, in_channels: int, num_classes: int) -> None:
                super().__init__(in_channels, num_classes, 1)
    '''))
    return save_config(folder, tiny_config(folder, model={"name": f"{package}.models.Net"}))


def test_loading_configs_leaves_sys_path_as_it_was_and_their_modules_import(tmp_path: Path) -> None:
    from eoengine.models.registry import build_model

    first, second = _project(tmp_path / "a", "i11_first_ext"), _project(tmp_path / "b", "i11_second_ext")
    with pytest.raises(EOError, match="cannot import model"):
        build_model("i11_first_ext.models.Net", 4, 2)  # not importable before its config is loaded
    path = list(sys.path)
    for _ in range(5):
        cfg = load_config(first)
    other = load_config(second)
    assert sys.path == path
    assert build_model(cfg.model.name, 4, 3).out_channels == 3
    assert build_model(other.model.name, 4, 2).out_channels == 2
    assert "i11_first_ext" in sys.modules and "i11_second_ext" in sys.modules
    assert sys.path == path


def test_assigning_a_refused_value_raises_and_keeps_the_old_one(tmp_path: Path) -> None:
    cfg = ProjectConfig.model_validate(tiny_config(tmp_path))
    with pytest.raises(ValidationError, match="at most half the tile size"):
        cfg.prediction.overlap = 40  # tile_size 64
    assert cfg.prediction.overlap == 16
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        cfg.training.epochs = 0
    assert cfg.training.epochs == 2
    assert cfg.imagery is not None
    with pytest.raises(ValidationError, match=r"scene ids must be unique; repeated: \['s1999'\]"):
        cfg.imagery.scenes = [*cfg.imagery.scenes, cfg.imagery.scenes[0]]
    assert len(cfg.imagery.scenes) == 1
    cfg.prediction.overlap = 8  # an accepted value is kept
    assert cfg.prediction.overlap == 8 and "overlap" in cfg.prediction.model_fields_set


def test_a_changed_copy_is_validated_and_keeps_what_was_set(tmp_path: Path) -> None:
    cfg = ProjectConfig.model_validate(tiny_config(tmp_path))
    assert cfg.imagery is not None
    with pytest.raises(ValidationError, match=r"scene ids must be unique; repeated: \['s1999'\]"):
        changed(cfg.imagery, scenes=[*cfg.imagery.scenes, cfg.imagery.scenes[0]])
    unchecked = cfg.imagery.model_copy(update={"scenes": [*cfg.imagery.scenes, cfg.imagery.scenes[0]]})
    assert len(unchecked.scenes) == 2  # what model_copy(update=...) would have let through
    loss = changed(cfg.training.loss, name="dice")
    assert loss.name == "dice" and loss.model_fields_set == {"name"} and cfg.training.loss.name == "cross_entropy"
    training = changed(cfg.training, batch_size=32)
    assert training.model_fields_set == cfg.training.model_fields_set | {"batch_size"}
    assert training.optimizer == cfg.training.optimizer and "scheduler" not in training.model_fields_set


def test_a_search_finding_a_listed_scene_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.sourcing.scan import scan_folder

    scan_folder(OGT, tmp_path / "catalog" / "landsat", "landsat-7", exclude=["training_data*"],
                band_names=["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"])
    cfg = tiny_config(tmp_path)
    cfg["imagery"]["scenes"][0]["id"] = "LE70220491999322EDC01_stack"  # the scene the search finds
    cfg["imagery"]["source"] = {"catalog": "catalog", "datetime": "1999-01-01T00:00:00Z/2000-01-01T00:00:00Z",
                                "bbox": [-93.36, 15.68, -93.27, 15.76]}
    path = save_config(tmp_path, cfg)
    assert yaml.safe_load(path.read_text())["imagery"]["scenes"][0]["id"] == "LE70220491999322EDC01_stack"
    code, _, err = run_cli(["dataset", "build", str(path)], capsys)
    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert "the scenes imagery.source found do not fit the config" in line
    assert "scene ids must be unique; repeated: ['LE70220491999322EDC01_stack']" in line and "list each scene once" in line
    assert not (tmp_path / "out" / "datasets").exists()
    from eoengine.sourcing.project import with_sourced_scenes

    with pytest.raises(Invalid, match="scene ids must be unique"):  # a bad value of the user's: a 422 over HTTP
        with_sourced_scenes(load_config(path).for_build())


def test_an_onnx_export_puts_the_torch_loggers_level_back(tmp_path: Path) -> None:
    import logging

    import torch

    from eoengine.models.package import export_onnx

    logging.getLogger("torch").setLevel(logging.INFO)
    try:
        export_onnx(torch.nn.Conv2d(3, 2, 1), 3, 8, tmp_path / "m.onnx")
        assert (tmp_path / "m.onnx").stat().st_size > 0
        assert logging.getLogger("torch").level == logging.INFO
    finally:
        logging.getLogger("torch").setLevel(logging.NOTSET)


def test_reading_a_package_description_and_the_map_writer_need_no_dataset_store() -> None:
    """Atomic writes are a base module: a platform server reading packages loads no zarr."""
    code = ("import sys, eoengine.models.meta, eoengine.inference.output, eoengine.inference.engines; "
            "print('zarr' in sys.modules, 'eoengine.datasets.store' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
