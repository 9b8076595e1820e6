"""Earth Engine / servir-aces TFRecord exports import and train without TensorFlow."""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, save_config, tiny_config

from eoengine.datasets.schema import DatasetManifest
from eoengine.datasets.store import open_arrays
from eoengine.datasets.tfrecord import decode_example, encode_example, read_records, write_records
from eoengine.errors import EOError

BANDS = ["B2", "B3", "B4", "B8"]


def _export(path: Path, n: int, side: int, seed: int) -> None:
    """Write records the way Earth Engine exports patches: one float list per band, label as float."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n):
        label = rng.integers(0, 3, (side, side)).astype(np.float32)
        feats = {b: rng.random((side, side)).astype(np.float32) + label * (i + 1) for i, b in enumerate(BANDS)}
        records.append(encode_example(feats | {"class": label}))
    write_records(path, records)


def test_framing_and_example_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "x.tfrecord.gz"
    write_records(path, [encode_example({"a": np.arange(4.0)}), encode_example({"b": np.ones(1)})])
    recs = [decode_example(r) for r in read_records(path)]
    np.testing.assert_array_equal(recs[0]["a"], [0, 1, 2, 3])
    assert list(recs[1]) == ["b"]
    write_records(tmp_path / "plain.tfrecord", [encode_example({"a": np.ones(3)})], "NONE")
    raw = bytearray((tmp_path / "plain.tfrecord").read_bytes())
    raw[20] ^= 0xFF
    (tmp_path / "bad.tfrecord").write_bytes(bytes(raw))
    with pytest.raises(EOError, match="corrupt record 0"):
        list(read_records(tmp_path / "bad.tfrecord", "NONE"))
    with pytest.raises(EOError, match="check --compression"):
        list(read_records(tmp_path / "plain.tfrecord", "GZIP"))


def test_patch_exports_import_as_splits_and_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for split, n, seed in (("train", 24, 0), ("val", 6, 1), ("test", 6, 2)):
        _export(tmp_path / f"{split}.tfrecord.gz", n, 16, seed)
    out = tmp_path / "ds"
    args = ["dataset", "import-tfrecord", *(f"{s}={tmp_path / f'{s}.tfrecord.gz'}" for s in ("train", "val", "test")),
            "--out", str(out), "--bands", ",".join(BANDS), "--label", "class", "--classes", "water,forest,urban"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    m = DatasetManifest.read(out)
    assert m.splits == {"train": 24, "val": 6, "test": 6} and m.patch_size == 16 and m.channels == BANDS
    images, labels = open_arrays(out)
    first = decode_example(next(iter(read_records(tmp_path / "train.tfrecord.gz"))))
    np.testing.assert_array_equal(images[0][0], first["B2"].reshape(16, 16))
    np.testing.assert_array_equal(labels[0], first["class"].reshape(16, 16))
    cfg = tiny_config(tmp_path, **{"training.dataset": str(out), "model.name": "unet",
                                   "model.kwargs": {"depth": 2, "base_channels": 4}})
    code, text, err = run_cli(["train", str(save_config(tmp_path, cfg))], capsys)
    assert code == 0, err
    assert "test accuracy" in text


def test_sparse_point_labels_count_their_classes_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Patches around points whose label band is 255 (ignored) except at the point, as `source ee export` paints them."""
    rng = np.random.default_rng(0)
    records = []
    for k in range(8):
        label = np.full((9, 9), 255.0, dtype=np.float32)
        label[4, 4] = k % 3  # the point's class at the patch centre
        records.append(encode_example({b: rng.random((9, 9)).astype(np.float32) for b in BANDS} | {"class": label}))
    write_records(tmp_path / "train.tfrecord.gz", records)
    out = tmp_path / "ds"
    code, _, err = run_cli(["dataset", "import-tfrecord", f"train={tmp_path / 'train.tfrecord.gz'}", "--out", str(out),
                            "--bands", ",".join(BANDS)], capsys)
    assert code == 0, err
    assert [c.name for c in DatasetManifest.read(out).classes] == ["class0", "class1", "class2"]
    _, labels = open_arrays(out)
    assert (np.asarray(labels[:]) != 255).sum() == 8 and labels[4][4, 4] == 1


def test_point_exports_train_the_pixel_dnn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _export(tmp_path / "train.tfrecord.gz", 200, 1, 0)
    _export(tmp_path / "val.tfrecord.gz", 50, 1, 2)  # training needs validation chips (issue 10)
    _export(tmp_path / "test.tfrecord.gz", 50, 1, 1)
    out = tmp_path / "points"
    code, _, err = run_cli(["dataset", "import-tfrecord", f"train={tmp_path / 'train.tfrecord.gz'}",
                            f"val={tmp_path / 'val.tfrecord.gz'}", f"test={tmp_path / 'test.tfrecord.gz'}", "--out", str(out),
                            "--bands", ",".join(BANDS)], capsys)
    assert code == 0, err
    assert DatasetManifest.read(out).patch_size == 1
    cfg = tiny_config(tmp_path, **{"training.dataset": str(out), "model.name": "unet", "model.kwargs": {}})
    code, _, err = run_cli(["train", str(save_config(tmp_path, cfg))], capsys)
    assert code == 2 and "use pixel_dnn" in err
    cfg = tiny_config(tmp_path, **{"training.dataset": str(out), "model.name": "pixel_dnn", "model.kwargs": {},
                                   "training.epochs": 15, "training.batch_size": 32})
    code, text, err = run_cli(["train", str(save_config(tmp_path, cfg, "p.yaml"))], capsys)
    assert code == 0, err
    acc = float(text.split("test accuracy ")[1].split(",")[0])
    assert acc > 0.8  # classes are separable by band values


def test_import_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _export(tmp_path / "t.tfrecord.gz", 2, 4, 0)
    code, _, err = run_cli(["dataset", "import-tfrecord", f"train={tmp_path / 't.tfrecord.gz'}", "--out",
                            str(tmp_path / "o"), "--bands", "B2,B99"], capsys)
    assert code == 2 and "no feature(s) ['B99']" in err and not (tmp_path / "o").exists()
    code, _, err = run_cli(["dataset", "import-tfrecord", str(tmp_path / "t.tfrecord.gz"), "--out", str(tmp_path / "o"),
                            "--bands", "B2"], capsys)
    assert code == 2 and "is not SPLIT=FILE" in err
