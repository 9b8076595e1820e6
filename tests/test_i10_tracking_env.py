"""Pointing MLflow at a project's store must not leak into processes started afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from eoengine.tracking.store import ensure_experiment


def test_a_project_store_does_not_become_the_environment_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = f"sqlite:///{tmp_path / 'a.db'}"
    ensure_experiment("a", first, tmp_path / "art")
    assert mlflow.get_tracking_uri() == first  # this process logs there
    assert "MLFLOW_TRACKING_URI" not in os.environ  # a later 'eoengine train' subprocess would log there too
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///user-set.db")
    ensure_experiment("b", f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "art")
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///user-set.db"  # what the user set stays
