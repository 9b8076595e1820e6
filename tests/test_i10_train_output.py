"""Issue 10: 'train' into a file or pipe writes one line per epoch as it goes, epochs counted from 1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, save_config, tiny_config


def test_train_into_a_pipe_prints_a_line_per_epoch_while_it_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = save_config(tmp_path, tiny_config(tmp_path, **{"training.epochs": 3}))
    assert run_cli(["dataset", "build", str(cfg)], capsys)[0] == 0
    env = {k: v for k, v in os.environ.items() if k != "EOENGINE_PROGRESS"}  # progress on, as for users
    proc = subprocess.Popen([sys.executable, "-m", "eoengine", "train", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    running_after_first_epoch = proc.poll() is None
    rest, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    lines = [first, *rest.splitlines()]
    assert "\r" not in first + rest
    assert re.match(r"epoch 1/3: train_loss \d\.\d{4}, val_loss \d\.\d{4}, val_miou \d\.\d{4}, val_accuracy .* \(\d+\.\d s\)", first), first
    assert running_after_first_epoch  # the line came when the epoch ended, not at the end of the run
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    mious = [float(re.search(r"val_miou (\d\.\d+)", ln).group(1)) for ln in epochs]  # type: ignore[union-attr]
    best = re.search(r"\(best epoch (\d+)\)", rest)
    assert best is not None and int(best.group(1)) == mious.index(max(mious)) + 1, (rest, mious)
