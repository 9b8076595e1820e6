"""Typed artefacts: the dataset manifest and the package metadata read, round-trip and refuse as documented.

The files are written the way the code writes them (a build, an import, a saved package, a
run's package description); the key sets are the ones the code wrote before the typed models,
so an artefact of an older eoengine holds nothing these models would drop.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_cli, save_config, saved_package, tiny_config

from eoengine.config.load import load_config
from eoengine.datasets.build import BuildResult, build_dataset
from eoengine.datasets.schema import FORMAT, DatasetManifest
from eoengine.datasets.tfrecord import encode_example, write_records
from eoengine.datasets.tfrecord_import import import_tfrecords
from eoengine.errors import EOError
from eoengine.models.heads import heads_from_meta
from eoengine.models.meta import META, PackageMeta
from eoengine.models.package import load_package
from eoengine.training.finish import RunRecord, package_meta
from eoengine.training.heads import build_heads

BUILD_KEYS = {"band_specs", "bands", "channel_groups", "channels", "class_frequencies", "classes", "config", "created",
              "dropped", "format", "index_constants", "indices", "inputs", "n_array_rows", "n_chips", "name",
              "patch_size", "resampling", "resolution", "scenes", "splits", "statistics", "targets", "task",
              "timesteps", "version"}
"""The keys of a built dataset's manifest.json."""
IMPORT_KEYS = BUILD_KEYS - {"channel_groups", "targets", "task", "timesteps"}
"""The keys of an imported dataset's manifest.json (no dates, groups, task or targets)."""
RUN_KEYS = ["format", "model", "model_kwargs", "task", "heads", "output_channels", "target_name", "timesteps", "bands",
            "band_specs", "stack_indexes", "indices", "index_constants", "channels", "normalization", "patch_size",
            "classes", "resampling", "dataset", "run_id", "tracking_uri", "best_epoch", "created", "prediction",
            "size_multiple"]
"""The keys of a trained network's eoengine-model.json (before ``onnx``), in the order they were written."""
TINY_VERSION = "972071413291bf94905923b57a685de3b14f57e91d1ed5228ad3ea2f9cb282b7"
"""The tiny config's dataset version, as computed before the manifest was typed (the version must not move)."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    tmp = tmp_path_factory.mktemp("built")
    return build_dataset(load_config(save_config(tmp, tiny_config(tmp))))


def _raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _copy(src: Path, dest: Path, edit: Any = None, name: str = "manifest.json") -> Path:
    """``src`` (a dataset or package folder) copied to ``dest``, its JSON passed through ``edit(data)``."""
    shutil.copytree(src, dest)
    if edit is not None:
        data = _raw(dest / name)
        edit(data)
        (dest / name).write_text(json.dumps(data))
    return dest


def test_a_built_manifest_reads_and_writes_back_as_it_was(built: BuildResult, tmp_path: Path) -> None:
    text = (built.path / "manifest.json").read_text()
    raw = json.loads(text)
    assert set(raw) == BUILD_KEYS and raw["format"] == FORMAT == "eoengine-dataset/1"
    assert built.version == TINY_VERSION
    m = DatasetManifest.read(built.path)
    assert m == built.manifest and m.as_dict() == raw  # every key, every value
    out = tmp_path / "copy"
    out.mkdir()
    m.write(out)
    assert (out / "manifest.json").read_text() == text  # the same bytes
    assert DatasetManifest.read(out) == m
    assert m.statistics.train.mean == raw["statistics"]["train"]["mean"] and m.classes[0].color == "#1b7837"
    assert m.scenes[0].sources[0].index == 1 and m.targets.values is None and m.timesteps == 1


def test_an_imported_manifest_reads_its_missing_keys_as_defaults_and_writes_none_of_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        records = []
        for _ in range(n):
            label = rng.integers(0, 3, (4, 4)).astype(np.float32)
            records.append(encode_example({b: rng.random((4, 4)).astype(np.float32) + label for b in ("B2", "B3")}
                                          | {"class": label}))
        write_records(tmp_path / f"{split}.tfrecord.gz", records)
    result = import_tfrecords({s: [str(tmp_path / f"{s}.tfrecord.gz")] for s in ("train", "val")}, tmp_path / "ds", ["B2", "B3"])
    text = (tmp_path / "ds" / "manifest.json").read_text()
    assert set(json.loads(text)) == IMPORT_KEYS
    m = DatasetManifest.read(tmp_path / "ds")
    assert m == result.manifest and m.as_dict() == json.loads(text)
    assert (m.timesteps, m.channel_groups, m.task, m.targets.classes, m.targets.values) == (1, None, None, True, None)
    m.write(tmp_path / "ds")
    assert (tmp_path / "ds" / "manifest.json").read_text() == text


def test_unknown_keys_are_kept_on_a_round_trip(built: BuildResult, tmp_path: Path) -> None:
    def newer(data: dict[str, Any]) -> None:
        data["provenance"] = {"by": "a newer eoengine"}
        data["classes"][0]["description"] = "trees"

    folder = _copy(built.path, tmp_path / "newer", newer)
    m = DatasetManifest.read(folder)
    assert m.as_dict() == _raw(folder / "manifest.json")
    assert m.model_extra == {"provenance": {"by": "a newer eoengine"}}


def test_a_manifest_of_another_format_or_without_a_field_is_refused_by_name(built: BuildResult, tmp_path: Path) -> None:
    other = _copy(built.path, tmp_path / "other", lambda d: d.update(format="eoengine-dataset/2"))
    with pytest.raises(EOError, match=r"is not an eoengine-dataset/1 dataset manifest \(its format is 'eoengine-dataset/2'\)"):
        DatasetManifest.read(other)
    missing = _copy(built.path, tmp_path / "missing", lambda d: d.pop("channels"))
    with pytest.raises(EOError, match=r"is not a valid dataset manifest: channels: field required") as err:
        DatasetManifest.read(missing)
    assert err.value.fix and "eoengine dataset build" in err.value.fix
    bad = _copy(built.path, tmp_path / "bad", lambda d: d["classes"][1].pop("name"))
    with pytest.raises(EOError, match=r"classes\.1\.name: field required"):
        DatasetManifest.read(bad)


def test_the_cli_says_a_broken_manifest_in_one_line(built: BuildResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = _copy(built.path, tmp_path / "other", lambda d: d.update(format="eoengine-dataset/2"))
    code, _, err = run_cli(["dataset", "info", str(other)], capsys)
    assert code == 2 and "its format is 'eoengine-dataset/2'" in err and len(err.strip().splitlines()) == 1


def test_a_saved_package_from_before_heads_loads_and_writes_back_as_it_was(tmp_path: Path) -> None:
    folder = saved_package(tmp_path / "m", stack_indexes=[1, 2, 3, 4])
    text = (folder / META).read_text()
    raw = json.loads(text)
    assert "heads" not in raw and "task" not in raw and "timesteps" not in raw
    pkg = load_package(folder)
    assert pkg.meta.as_dict() == raw and list(pkg.meta.as_dict()) == list(raw)  # the keys, in the order written
    [head] = heads_from_meta(pkg.meta)
    assert (head.type, head.start, head.stop, pkg.meta.task, pkg.meta.timesteps) == ("segmentation", 0, 3, "segmentation", 1)
    assert pkg.meta.outputs == 3 and pkg.meta.stack_indexes == [1, 2, 3, 4] and pkg.meta.dataset.version == ""
    pkg.meta.write(tmp_path)
    assert (tmp_path / META).read_text() == text
    assert PackageMeta.read(tmp_path) == pkg.meta


def test_a_run_s_package_description_keeps_every_key_it_wrote(built: BuildResult, tmp_path: Path) -> None:
    from eoengine.training.train import make_model, model_kwargs

    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path, **{"model.name": "unet",
                                                                      "model.kwargs": {"depth": 2, "base_channels": 4}})))
    heads, _ = build_heads(cfg, built.manifest)
    rec = RunRecord(cfg, built.manifest, built.path, heads, "r" * 32, tmp_path / "run", "file:///mlruns", 3, {})
    meta = package_meta(rec, model_kwargs(cfg, built.manifest))
    from eoengine.models.package import save_package

    model = make_model(cfg, len(built.manifest.channels), heads[-1].stop, built.manifest)
    folder = save_package(model, meta, tmp_path / "model", onnx=False)
    raw = _raw(folder / META)
    assert list(raw) == RUN_KEYS
    assert raw["heads"] == [{"name": "out", "type": "segmentation", "channels": [0, 5], "value_mean": 0.0, "value_std": 1.0}]
    assert raw["band_specs"] == json.loads((built.path / "manifest.json").read_text())["band_specs"]
    assert raw["dataset"] == {"name": "tiny", "version": TINY_VERSION, "path": str(built.path)}
    assert raw["stack_indexes"] == [1, 2, 3, 4] and raw["target_name"] is None and raw["best_epoch"] == 3
    pkg = load_package(folder)
    assert pkg.meta.as_dict() == raw and pkg.meta.heads is not None and pkg.meta.heads[0].channels == [0, 5]

    def newer(data: dict[str, Any]) -> None:
        data["signature"] = {"inputs": 5}
        data["heads"][0]["activation"] = "softmax"

    moved = _copy(folder, tmp_path / "newer", newer, META)
    again = load_package(moved)
    assert again.meta.as_dict() == _raw(moved / META) and again.meta.model_extra == {"signature": {"inputs": 5}}


def test_a_package_of_another_format_or_without_a_field_is_refused_by_name(tmp_path: Path) -> None:
    folder = saved_package(tmp_path / "m")
    other = _copy(folder, tmp_path / "other", lambda d: d.update(format="eoengine-model/2"), META)
    with pytest.raises(EOError, match=r"is not an eoengine-model/1 model package description \(its format is 'eoengine-model/2'\)"):
        load_package(other)
    missing = _copy(folder, tmp_path / "missing", lambda d: d.pop("bands"), META)
    with pytest.raises(EOError, match=r"is not a valid model package description: bands: field required"):
        load_package(missing)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / META).write_text("{not json")
    with pytest.raises(EOError, match="cannot read the model package description"):
        load_package(tmp_path / "broken")
