"""Job specs: the spec a long command builds from its flags survives JSON and runs as the command does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import four_band_stack, run_cli, save_config, tiny_config
from pydantic import TypeAdapter

from eoengine.cli.main import spec_from_args
from eoengine.errors import EOError, Invalid
from eoengine.jobs.results import JobResult
from eoengine.jobs.run import run_spec
from eoengine.jobs.specs import (
    BuildDatasetSpec,
    ExportSpec,
    FetchSpec,
    GradeSpec,
    PredictSpec,
    QuantizeSpec,
    SweepSpec,
    TrainSpec,
    parse_spec,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny project with its dataset built and one model trained, both through specs."""
    tmp = tmp_path_factory.mktemp("jobs")
    config = save_config(tmp, tiny_config(tmp))
    built = run_spec(BuildDatasetSpec(config=config))
    trained = run_spec(TrainSpec(config=config, dataset=built.path))
    return {"tmp": tmp, "config": config, "built": built, "trained": trained, "scene": four_band_stack(tmp / "scene4.tif")}


def _round_trip(args: list[str]) -> Any:
    """The spec the command line builds, after a trip through JSON (checked equal)."""
    spec = spec_from_args(args)
    again = parse_spec(spec.model_dump_json())
    assert again == spec and type(again) is type(spec)
    assert parse_spec(json.loads(spec.model_dump_json())) == spec
    return spec


def _stored(result: Any) -> None:
    """A result survives JSON too, as a job runner would store it."""
    assert TypeAdapter(JobResult).validate_json(result.model_dump_json()) == result


def test_build_spec_gives_the_version_the_command_prints(project: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    spec = _round_trip(["dataset", "build", str(project["config"]), "--runner", "DirectRunner", "--direct_num_workers=1"])
    assert spec == BuildDatasetSpec(config=project["config"], runner="DirectRunner", beam_args=["--direct_num_workers=1"])
    code, out, err = run_cli(["dataset", "build", str(project["config"])], capsys)
    assert code == 0, err
    assert f"version {project['built'].version}" in out and "chips of 16x16 px" in out
    again = run_spec(spec)
    assert (again.version, again.path, again.up_to_date) == (project["built"].version, project["built"].path, True)
    _stored(again)


def test_train_spec_trains_as_the_command_does(project: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.cli.format import score_line

    dataset = str(project["built"].path)
    spec = _round_trip(["train", str(project["config"]), "--dataset", dataset])
    assert spec == TrainSpec(config=project["config"], dataset=Path(dataset))
    code, out, err = run_cli(["train", str(project["config"]), "--dataset", dataset], capsys)
    assert code == 0, err
    ran = project["trained"]
    assert f"(best epoch {ran.best_epoch + 1}) — test {score_line(ran.scores['test'])}" in out
    assert set(ran.scores) == {"val", "test"}
    assert ran.model_path.is_dir() and ran.run_id in str(ran.model_path)
    _stored(ran)


def test_evaluate_spec_scores_as_the_command_does(project: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.training.metrics import by_class_name

    model = str(project["trained"].model_path)
    spec = _round_trip(["evaluate", model, "--split", "val"])
    result = run_spec(spec)
    code, out, err = run_cli(["evaluate", model, "--split", "val", "--json"], capsys)
    assert code == 0, err
    printed = json.loads(out)
    assert printed == {"split": "val", **by_class_name(result.scores, result.class_names), "report": str(result.report)}
    assert result.class_names == ["forest", "water", "herbaceous", "barren", "urban"]
    _stored(result)


def test_predict_spec_writes_the_map_the_command_writes(project: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    model, scene, tmp = str(project["trained"].model_path), str(project["scene"]), project["tmp"]
    flags = ["--engine", "torch", "--tile-size", "64"]
    spec = _round_trip(["predict", model, scene, "--out", str(tmp / "spec.tif"), *flags])
    assert spec == PredictSpec(model=model, scene=[scene], output=tmp / "spec.tif", engine="torch", tile_size=64)
    result = run_spec(spec)
    assert result.maps == [tmp / "spec.tif"] and result.probabilities is None
    code, out, err = run_cli(["predict", model, scene, "--out", str(tmp / "cli.tif"), *flags], capsys)
    assert code == 0, err
    assert out.strip() == f"map: {tmp / 'cli.tif'}"
    assert (tmp / "spec.tif").read_bytes() == (tmp / "cli.tif").read_bytes()
    _stored(result)


def test_predict_spec_for_many_scenes(project: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    model, scene, tmp = str(project["trained"].model_path), str(project["scene"]), project["tmp"]
    spec = _round_trip(["predict", model, "--scene", scene, "--out-dir", str(tmp / "spec-maps"), "--engine", "torch"])
    result = run_spec(spec)
    code, out, err = run_cli(["predict", model, "--scene", scene, "--out-dir", str(tmp / "cli-maps"), "--engine", "torch"], capsys)
    assert code == 0, err
    assert [p.name for p in result.maps] == [Path(p).name for p in out.split()[1::2]]
    assert [p.read_bytes() for p in result.maps] == [(tmp / "cli-maps" / p.name).read_bytes() for p in result.maps]
    beam = _round_trip(["predict", model, "--scene", f"{scene},{scene}", "--scene", scene, "--out", "m.tif", "--beam",
                        "--rows-per-element", "2", "--runner", "DirectRunner"])
    assert (beam.scenes, beam.beam, beam.rows_per_element, beam.output) == ([f"{scene},{scene}", scene], True, 2, Path("m.tif"))


def test_predict_spec_fails_as_the_command_does(project: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    model, scene = str(project["trained"].model_path), str(project["scene"])
    for args in (["predict", model, scene, "--scene", scene, "--out", "x.tif"], ["predict", model, scene]):
        code, _, err = run_cli(args, capsys)
        with pytest.raises(EOError) as caught:
            run_spec(spec_from_args(args))
        assert code == 2 and err.strip() == f"error: {caught.value}"


def test_export_spec_checks_as_the_command_does(project: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    model, tmp = str(project["trained"].model_path), project["tmp"]
    spec = _round_trip(["export", model, "--out", str(tmp / "spec.onnx"), "--tolerance", "0.001"])
    assert spec == ExportSpec(model=model, output=tmp / "spec.onnx", tolerance=0.001)
    result = run_spec(spec)
    check = result.check
    assert result.path == tmp / "spec.onnx" and check is not None and check.sizes_checked == [16, 32]
    code, out, err = run_cli(["export", model, "--out", str(tmp / "cli.onnx"), "--tolerance", "0.001"], capsys)
    assert code == 0, err
    assert f"on {check.chips} real chips at sides 16, 32 the logits differ from PyTorch by at most {check.max_abs_diff:.2e}" in out
    _stored(result)


def test_the_other_long_commands_build_specs_that_survive_json() -> None:
    fetch = _round_trip(["source", "fetch", "items.json", "--bands", "red,nir", "--bbox", "1,2,3,4", "--storage", "A=env:B",
                         "--workers", "2"])
    assert fetch == FetchSpec(items=Path("items.json"), bands="red,nir", bbox="1,2,3,4", storage=["A=env:B"], workers=2)
    assert _round_trip(["quantize", "pkg", "--calibration-chips", "8"]) == QuantizeSpec(model="pkg", calibration_chips=8)
    assert _round_trip(["sweep", "p.yaml", "--trials", "3"]) == SweepSpec(config=Path("p.yaml"), trials=3)
    assert _round_trip(["grade", "a", "b", "--suite", "s.yaml", "--out", "r", "--baseline", "random_forest",
                        "--strict"]) == GradeSpec(models=["a", "b"], suite=Path("s.yaml"), report_dir=Path("r"),
                                                  baseline="random_forest", strict=True)
    with pytest.raises(EOError, match="'serve pkg' is not a job command .*dataset build"):
        spec_from_args(["serve", "pkg"])


@pytest.mark.parametrize(("data", "problem", "fix"), [
    ({"kind": "deploy"}, "unknown job kind 'deploy'", "set kind to one of: build, train, sweep, evaluate, predict"),
    ({"config": "p.yaml"}, "the job spec has no 'kind'", "set kind to one of"),
    ({"kind": "train"}, "bad train job spec: config: required field is missing", "a train spec takes: kind, config, dataset"),
    ({"kind": "train", "config": "p.yaml", "epochs": 3}, "bad train job spec: epochs: unknown field", "fix the named field(s)"),
    ({"kind": "predict", "model": "m", "tile_size": "big"},
     "bad predict job spec: tile_size: 'big' is not valid: Input should be a valid integer", "a predict spec takes: kind, model"),
    ('{"kind": "train",', "the job spec is not valid JSON", "write it as a JSON object"),
    ("[1, 2]", "a job spec must be a JSON object, not list", '"kind": "train"'),
])
def test_bad_specs_name_the_problem_and_the_fix(data: Any, problem: str, fix: str) -> None:
    with pytest.raises(Invalid) as caught:  # a 422 over HTTP
        parse_spec(data)
    assert caught.value.problem.startswith(problem), caught.value.problem
    assert fix in (caught.value.fix or ""), caught.value.fix


def test_importing_the_job_runner_loads_no_stage() -> None:
    code = "import sys, json, eoengine.jobs.run; print(json.dumps([m for m in ('torch', 'rasterio', 'mlflow') if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_spec_fields_follow_the_command_flags() -> None:
    """Every option of a long command is a field of its spec, by the name of its parameter (display flags aside)."""
    import typer

    from eoengine.cli.main import app
    from eoengine.jobs.specs import SPECS

    group = typer.main.get_command(app)
    commands = {"build": ("dataset", "build"), "train": ("train",), "sweep": ("sweep",), "evaluate": ("evaluate",),
                "predict": ("predict",), "fetch": ("source", "fetch"), "export": ("export",), "quantize": ("quantize",),
                "grade": ("grade",)}
    for kind, path in commands.items():
        cmd: Any = group
        for name in path:
            cmd = cmd.commands[name]
        params = {p.name for p in cmd.params} - {"as_json"}
        assert params | {"kind"} | ({"beam_args"} if kind == "build" else set()) == set(SPECS[kind].model_fields), kind
