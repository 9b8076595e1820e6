"""Importing a CLI project folder: registered in place, its datasets, runs, models and maps indexed; bad imports refused."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from browse_support import error_of
from conftest import one_problem, run_cli
from jobs_support import fill_project, project_config
from platform_server import LiveServer, live_platform
from sqlalchemy import func, select

from eoengine.platform.db.models import Artifact, Event, Project
from eoengine.platform.settings import Platform, PlatformSettings


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project the CLI made: a dataset built, a model trained (MLflow) and registered, a scene predicted."""
    from eoengine.config.load import load_config
    from eoengine.deploy.registry import register
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import BuildDatasetSpec, PredictSpec, TrainSpec
    from eoengine.models.package import load_package

    folder = tmp_path_factory.mktemp("roots") / "imports" / "landcover"
    folder.mkdir(parents=True)
    fill_project(folder)
    (folder / "eoengine.yaml").write_text(yaml.safe_dump(project_config(**{"training.epochs": 1})))
    config = folder / "eoengine.yaml"
    run_spec(BuildDatasetSpec.model_validate({"config": config}))
    trained = run_spec(TrainSpec.model_validate({"config": config}))
    register(load_package(trained.model_path), "landcover", trained.tracking_uri, ["champion"])
    assert load_config(config).output_path == folder / "out"
    run_spec(PredictSpec.model_validate({"model": str(trained.model_path), "scene": [str(folder / "data/stack.tif")],
                                         "output": folder / "out" / "maps" / "lc.tif"}))
    return folder


@pytest.fixture
def live(cli_project: Path, tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home", import_roots=(cli_project.parent,)) as server:
        yield server


def test_an_imported_cli_project_shows_its_dataset_runs_models_and_maps(live: LiveServer, cli_project: Path) -> None:
    with live.client() as c:
        made = c.post("/projects", json={"name": "Landcover", "folder": str(cli_project)})
        assert made.status_code == 201, made.text
        assert made.json()["slug"] == "landcover" and made.json()["role"] == "admin"
        view = c.get("/projects/landcover").json()
        assert len(view["datasets"]) == 1 and len(view["runs"]) == 1 and len(view["maps"]) == 1
        (dataset,), (run,), (lc,) = view["datasets"], view["runs"], view["maps"]
        assert dataset["path"].startswith("out/datasets/") and run["path"] == f"out/runs/{run['ref']}/model"
        assert lc["path"] == "out/maps/lc.tif" and lc["meta"]["run_id"] == run["ref"] and lc["meta"]["footprint"]
        assert [m["ref"] for m in view["models"]] == ["models:/landcover/1"]
        assert view["models"][0]["meta"] == {"run_id": run["ref"], "aliases": ["champion"]}
        assert [r["run_id"] for r in c.get("/projects/landcover/runs").json()] == [run["ref"]]  # from its MLflow store
        lineage = c.get("/projects/landcover/lineage", params={"object": "map:out/maps/lc.tif"}).json()
        ids = {f"{n['type']}:{n['id']}" for n in lineage["nodes"]}
        assert {f"run:{run['ref']}", f"dataset:{dataset['name']}@{dataset['version']}", "scene:s1999"} <= ids
        assert c.get(f"/projects/landcover/maps/{lc['id']}").status_code == 200
        assert [i["id"] for i in c.get("/projects/landcover/imagery").json()] == ["s1999"]
        error_of(c.post("/projects", json={"name": "again", "folder": str(cli_project)}), 409)  # imported already
    with live.platform.db.read() as s:
        actions = sorted(e.action for e in s.scalars(select(Event).where(Event.action.like("%.import"))))
    assert actions == ["dataset.import", "map.import", "model.import", "project.import", "run.import"]
    link = live.platform.settings.projects_dir / "landcover"
    assert link.is_symlink() and link.resolve() == cli_project.resolve()
    with live.client() as c:
        assert c.delete("/projects/landcover").status_code == 204
    assert not link.exists() and not link.is_symlink()
    assert (cli_project / "eoengine.yaml").is_file() and (cli_project / "out" / "maps" / "lc.tif").is_file()


def _folder(root: Path, name: str, config: str | None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "eoengine.yaml").write_text(config)
    return folder


def test_bad_imports_are_4xx_and_leave_nothing(live: LiveServer, cli_project: Path, tmp_path: Path) -> None:
    root = cli_project.parent
    good = yaml.safe_dump(project_config())
    outside = _folder(tmp_path / "elsewhere", "p", good)
    cases = [
        ({"name": "a", "folder": "relative/path"}, 422, "is not an absolute path"),
        ({"name": "a", "folder": "/a\u0000b"}, 422, "is not a usable path"),
        ({"name": "a", "folder": "/" + "x" * 4000}, 422, "is not a usable path"),
        ({"name": "a", "folder": str(cli_project / "eoengine.yaml")}, 422, "is not a folder"),
        ({"name": "a", "folder": str(root / "missing")}, 422, "is not a folder"),
        ({"name": "a", "folder": str(outside)}, 422, "outside the server's import roots"),
        ({"name": "a", "folder": str(_folder(root, "empty", None))}, 422, "has no eoengine.yaml"),
        ({"name": "a", "folder": str(_folder(root, "bad", "name: x\nmodel: {name: nope}\n"))}, 422, "eoengine.yaml"),
        ({"name": "a", "folder": str(_folder(root, "yaml", "a: [1\n"))}, 422, "eoengine.yaml"),
        ({"name": "a", "folder": str(_folder(root, "escapes", yaml.safe_dump(project_config(output_dir="/tmp/o"))))},
         422, "output_dir (/tmp/o) is outside the project folder"),
        ({"name": "a", "folder": str(cli_project), "config": good}, 422, "give 'folder' alone"),
        ({"name": "!!", "folder": str(cli_project)}, 422, "has no letter or digit"),
    ]
    with live.client() as c:
        assert c.post("/projects", json={"name": "taken", "config": good}).status_code == 201
        cases.append(({"name": "Taken", "folder": str(cli_project)}, 409, "exists already"))
        for body, status, problem in cases:
            assert problem in error_of(c.post("/projects", json=body), status)["error"], body
    member = live.user("mia")
    with live.client(member) as c:
        assert "site admins" in error_of(c.post("/projects", json={"name": "b", "folder": str(cli_project)}), 403)["error"]
    assert sorted(p.name for p in live.platform.settings.projects_dir.iterdir()) == ["taken"]
    with live.platform.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 1
        assert s.scalar(select(func.count()).select_from(Artifact)) == 0


def test_a_server_without_import_roots_imports_no_folder(cli_project: Path, tmp_path: Path) -> None:
    with live_platform(tmp_path / "home") as live, live.client() as c:
        body = error_of(c.post("/projects", json={"name": "a", "folder": str(cli_project)}), 422)
    assert "this server imports no folders" in body["fix"] and "--import-root" in body["fix"]


def test_server_import_command(cli_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    code, out, err = run_cli(["server", "import", str(cli_project), "--name", "lc", "--home", str(home)], capsys)
    assert code == 0, err
    assert "as project 'lc' (4 artefact(s) indexed)" in out
    platform = Platform(PlatformSettings(home=home))
    with platform.db.read() as s:
        kinds = sorted(a.kind for a in s.scalars(select(Artifact)))
    platform.db.dispose()
    assert kinds == ["dataset", "map", "model", "run"]
    empty = _folder(tmp_path, "empty", None)
    code, _, err = run_cli(["server", "import", str(empty), "--name", "e", "--home", str(home)], capsys)
    assert code != 0 and one_problem(err) and "has no eoengine.yaml" in err
    code, _, err = run_cli(["server", "import", str(cli_project), "--name", "lc", "--home", str(home)], capsys)
    assert code != 0 and one_problem(err) and "exists already" in err
    shutil.rmtree(empty)
