"""Two stores' "landcover" v1 are two packages: the registry's download cache is keyed by the store, not the name only.

A team server holds one MLflow store per project; two projects registering a model under the same
name both get version 1. Fetched before into one cache, the second project's ``models:/landcover/1``
was served the first project's package (its classes, its weights).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import saved_package

from eoengine.deploy.registry import load_model_ref, register, resolve_model_ref
from eoengine.models.package import load_package


def test_the_same_name_and_version_in_two_stores_are_two_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "cache"))
    uris, classes = [], [[1, 2], [1, 2, 3, 4]]
    for i, values in enumerate(classes):
        uri = f"sqlite:///{tmp_path / f'store{i}.db'}"
        pkg = saved_package(tmp_path / f"pkg{i}", classes=values)
        assert register(load_model_ref(str(pkg), uri), "landcover", uri).version == "1"
        uris.append(uri)
    got = [len(load_package(resolve_model_ref("models:/landcover/1", uri)).class_names) for uri in uris]
    assert got == [2, 4]
