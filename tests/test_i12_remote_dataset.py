"""Training from a dataset served over HTTP: a real server on 127.0.0.1, a real cache, real training.

A small Starlette app under uvicorn serves a built dataset's folder as the platform does
(``{URL}/files/{path}``, FileResponse with range requests, a Bearer token required) and
records every request, so the tests can tell what was fetched and what came from the cache.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import free_port, run_cli, save_config, serve_in_thread, tiny_config

from eoengine.config.load import load_config
from eoengine.datasets.build import BuildResult, build_dataset
from eoengine.datasets.location import REMOTE, TOKEN_ENV, as_location
from eoengine.datasets.remote import ABSENT, CHUNKS, dataset_root
from eoengine.datasets.schema import DATASET_FIX, DatasetManifest
from eoengine.datasets.store import ARRAYS, INDEX, open_all_arrays, open_group
from eoengine.errors import EOError, Invalid, NotFound, Unavailable

TOKEN = "eoe_member-token-7c1f0a9e55d24b"
OTHER = "eoe_outsider-token-0d3b8e21f6"  # a valid token of someone who is not a member: 403


@dataclass
class Served:
    """A dataset served over HTTP and the paths of the requests the server answered."""

    folder: Path
    base: str
    server: Any
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base}/api/v1/projects/demo/datasets/{self.folder.name}"


def dataset_app(folder: Path, requests: list[str]) -> Any:
    """The platform's file route for one dataset: Bearer token, 404 as JSON, FileResponse (Range)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    async def files(request: Request) -> Response:
        requests.append(request.url.path)
        auth = request.headers.get("authorization")
        if auth == f"Bearer {OTHER}":
            return JSONResponse({"error": "you may not read this project", "fix": "ask an admin"}, 403)
        if auth != f"Bearer {TOKEN}":
            return JSONResponse({"error": "no valid token", "fix": "send a token"}, 401)
        path = (folder / request.path_params["path"]).resolve()
        if request.path_params["ref"] != folder.name or not path.is_relative_to(folder) or not path.is_file():
            return JSONResponse({"error": "not found", "fix": "check the URL"}, 404)
        return FileResponse(path)

    async def page(request: Request) -> Response:  # a web app's page where a manifest was expected
        return HTMLResponse("<html><body>eoengine</body></html>")

    return Starlette(routes=[Route("/api/v1/projects/demo/datasets/{ref}/files/{path:path}", files),
                             Route("/app/{path:path}", page)])


def serve(folder: Path) -> Served:
    requests: list[str] = []
    base, server = serve_in_thread(dataset_app(folder.resolve(), requests))
    return Served(folder.resolve(), base, server, requests)


def stop(served: Served) -> None:
    """Stop the server and wait until its port refuses connections."""
    served.server.should_exit = True
    port = int(served.base.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return
        time.sleep(0.05)
    raise RuntimeError("the test server did not stop")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    tmp = tmp_path_factory.mktemp("remote-ds")
    return build_dataset(load_config(save_config(tmp, tiny_config(tmp))))


@pytest.fixture(scope="module")
def served(built: BuildResult) -> Any:
    it = serve(built.path)
    yield it
    stop(it)


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache and the member's token for each test."""
    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return tmp_path / "cache"


def chip_bytes(root: Path, ids: np.ndarray) -> dict[str, list[bytes]]:
    """Each array's rows for ``ids``, as bytes (NaN fill values compare too)."""
    return {name: [np.asarray(a[int(i)]).tobytes() for i in ids] for name, a in open_all_arrays(root).items()}


def all_text(*folders: Path) -> str:
    return "".join(p.read_text(errors="ignore") for f in folders for p in f.rglob("*") if p.is_file())


def test_a_served_dataset_reads_byte_for_byte_as_its_folder(built: BuildResult, served: Served, env: Path) -> None:
    root = dataset_root(served.url)
    assert root.is_relative_to(env / "datasets" / served.base.split("//")[1].replace(":", "_"))
    assert root.name.startswith(f"tiny@{built.version[:12]}-")
    assert DatasetManifest.read(root).version == built.version
    assert (root / INDEX).read_bytes() == (built.path / INDEX).read_bytes()
    assert json.loads((root / REMOTE).read_text()) == {"url": served.url, "version": built.version}
    ids = np.arange(built.manifest.n_array_rows)  # rows never written included: their fill values
    local, remote = chip_bytes(built.path, ids), chip_bytes(root, ids)
    assert sorted(remote) == sorted(local) == ["images", "labels"] and remote == local
    for cached in (root / CHUNKS).rglob("*"):  # every kept chunk whole, no temporary file left behind
        if cached.is_file():
            assert cached.read_bytes() == (built.path / ARRAYS / cached.relative_to(root / CHUNKS)).read_bytes()
    assert dataset_root(served.url + "/files/") == root  # the files URL names the same dataset
    with pytest.raises(Invalid, match="read-only"):
        open_group(root, "r+")


def test_chunks_are_fetched_once_then_read_from_the_cache(built: BuildResult, served: Served) -> None:
    from eoengine.training.data import ChipDataset

    local = ChipDataset(built.path, "train")
    before = len(served.requests)
    root = dataset_root(served.url)
    first = ChipDataset(root, "train")
    chunk_files = [p for p in served.requests[before:] if f"/{ARRAYS}/" in p and "/c/" in p]
    assert len(chunk_files) == len(set(chunk_files)) == 2 * len(local)  # images and labels, each chunk once
    assert all(np.array_equal(first[i][0], local[i][0]) and np.array_equal(first[i][1]["mask"], local[i][1]["mask"])
               for i in range(len(local)))
    seen = len(served.requests)
    again = ChipDataset(root, "train")
    assert served.requests[seen:] == [] and len(again) == len(local)  # the second read: all from the cache
    val = ChipDataset(dataset_root(served.url), "val")
    path = served.url.removeprefix(served.base)
    new = served.requests[seen:]
    assert new[0] == f"{path}/files/manifest.json" and not set(new[1:]) & set(served.requests[before:seen])
    assert len(new) == 1 + 2 * len(val) and len(val) == built.manifest.splits["val"]  # the val chips, once each


def test_two_trainings_and_loader_workers_read_one_dataset_at_once(built: BuildResult, served: Served,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.data import DataLoader

    from eoengine.training import data
    from eoengine.training.data import ChipDataset

    root = dataset_root(served.url)
    got: dict[int, ChipDataset] = {}
    start = threading.Barrier(2)

    def read(n: int) -> None:
        start.wait()
        got[n] = ChipDataset(root, "train")

    readers = [threading.Thread(target=read, args=(n,)) for n in range(2)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    local = ChipDataset(built.path, "train")
    for ds in got.values():
        assert ds._cache is not None and local._cache is not None
        assert all(np.array_equal(ds._cache[k], local._cache[k], equal_nan=True) for k in local._cache)
    monkeypatch.setattr(data, "IN_MEMORY_LIMIT", 0)  # chip by chip, in two worker processes, into a fresh cache
    fresh = dataset_root(served.url)
    for sub in (CHUNKS, ABSENT):
        for f in sorted((fresh / sub).rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
    streamed = ChipDataset(fresh, "test")
    assert streamed._cache is None
    expected = ChipDataset(built.path, "test")
    batches = list(DataLoader(streamed, batch_size=3, num_workers=2))
    images = np.concatenate([b[0].numpy() for b in batches])
    assert images.tobytes() == np.stack([expected[i][0].numpy() for i in range(len(expected))]).tobytes()
    assert not [p for p in fresh.rglob("*.tmp")]


def test_training_from_a_url_records_the_url_and_version_never_the_token(
        built: BuildResult, served: Served, tmp_path: Path, env: Path, caplog: pytest.LogCaptureFixture) -> None:
    from mlflow.tracking import MlflowClient

    from eoengine.grading.evaluate import evaluate
    from eoengine.models.package import load_package
    from eoengine.training.train import resumable, train

    cfg = tiny_config(tmp_path, **{"training.epochs": 1, "training.dataset": served.url})
    del cfg["imagery"], cfg["labels"]  # another machine: neither the scenes nor the labels are here
    loaded = load_config(save_config(tmp_path, cfg))
    result = train(loaded)
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.tags["dataset.path"] == served.url and run.data.tags["dataset.version"] == built.version
    assert run.data.tags["dataset.name"] == "tiny" and run.data.params["training.dataset"] == served.url
    assert json.loads(run.inputs.dataset_inputs[0].dataset.source)["url"] == served.url
    assert "val_loss" in run.data.metrics and result.best_epoch == 0
    assert resumable(loaded.output_path, result.tracking_uri, result.run_id)[1] == served.url  # --resume reads it again
    pkg = load_package(result.model_path)
    assert pkg.meta.dataset.path == served.url and pkg.meta.dataset.version == built.version
    scored = evaluate(pkg)  # the model's dataset, through the cache again
    assert scored.split == "test" and 0.0 <= scored.scores["accuracy"] <= 1.0
    assert TOKEN not in all_text(tmp_path / "out", env) + caplog.text
    assert not any(TOKEN in p for p in served.requests)


def test_a_refused_token_names_the_url_and_the_fix(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(TOKEN_ENV, "eoe_wrong-token-3a")
    with pytest.raises(Invalid, match=f"{served.url} refused the token in {TOKEN_ENV}") as refused:
        dataset_root(served.url)
    assert "eoengine remote login" in str(refused.value) and "eoe_wrong" not in str(refused.value)
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(Invalid, match=f"asks for a token and {TOKEN_ENV} is not set"):
        dataset_root(served.url)
    monkeypatch.setenv(TOKEN_ENV, OTHER)
    with pytest.raises(Invalid, match=r"may not read .* \(403\)"):
        dataset_root(served.url)
    cfg = tiny_config(tmp_path, **{"training.epochs": 1})
    code, _, err = run_cli(["train", str(save_config(tmp_path, cfg)), "--dataset", served.url], capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1 and TOKEN_ENV in err and OTHER not in err


def test_a_url_without_a_dataset_is_not_found(built: BuildResult, served: Served) -> None:
    with pytest.raises(NotFound, match=r"datasets/tiny@000000000000 is not an eoengine dataset") as missing:
        dataset_root(served.url.replace(built.path.name, "tiny@000000000000"))
    assert DATASET_FIX in str(missing.value)
    with pytest.raises(NotFound, match=r"manifest.json is not JSON"):
        dataset_root(f"{served.base}/app/datasets/tiny")
    with pytest.raises(NotFound, match="no manifest.json there"):
        dataset_root(f"{served.base}/nowhere/tiny")
    with pytest.raises(Invalid, match="give the URL alone and the token in EOENGINE_TOKEN") as leaked:
        dataset_root(served.url.replace("http://", f"http://me:{TOKEN}@"))
    assert TOKEN not in str(leaked.value)
    with pytest.raises(Invalid, match="carries user info, a query"):
        dataset_root(f"{served.url}?token={TOKEN}")


def test_a_cache_that_cannot_be_written_says_so(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "afile" / "cache"))
    with pytest.raises(EOError, match=r"cannot write the dataset cache .*afile/cache/datasets/.*EOENGINE_CACHE"):
        dataset_root(served.url)


def test_a_server_that_is_down_is_unavailable(built: BuildResult) -> None:
    with pytest.raises(Unavailable, match=r"cannot reach the server of http://127\.0\.0\.1:\d+/d/tiny") as down:
        dataset_root(f"http://127.0.0.1:{free_port()}/d/tiny")
    assert "eoengine server run" in str(down.value)
    short_lived = serve(built.path)
    arrays = open_all_arrays(dataset_root(short_lived.url))  # the arrays opened, no chunk fetched yet
    stop(short_lived)  # mid-training
    with pytest.raises(Unavailable, match=f"cannot reach the server of {short_lived.url}"):
        arrays["images"][0]


def test_job_specs_and_the_cli_take_a_url_where_they_take_a_dataset_folder(
        built: BuildResult, served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    from eoengine.cli.main import spec_from_args
    from eoengine.jobs.specs import EvaluateSpec, TrainSpec, parse_spec

    spec = spec_from_args(["train", "p.yaml", "--dataset", served.url])
    assert spec == TrainSpec(config=Path("p.yaml"), dataset=served.url) and spec.dataset == served.url
    assert parse_spec(spec.model_dump_json()) == spec
    assert TrainSpec(config=Path("p.yaml"), dataset="out/datasets/x").dataset == Path("out/datasets/x")
    assert EvaluateSpec(model="m", dataset=served.url).dataset == served.url
    assert as_location("https://h/x") == "https://h/x" and as_location("a//b") == Path("a/b")
    code, out, err = run_cli(["dataset", "info", served.url], capsys)
    assert code == 0, err
    assert f"version {built.version[:12]}" in out and "train statistics" in out
