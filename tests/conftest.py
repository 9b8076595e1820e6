"""Shared fixtures: small real sample data and tiny synthetic scenes written with rasterio."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from platform_fixtures import free_port
from rasterio.transform import from_origin

pytest_plugins = ["platform_fixtures"]  # PostgreSQL and browser fixtures of the platform's tests


def _threads_per_worker() -> bool:
    """In each of ``pytest -n N``'s processes, PyTorch and OpenMP use their share of the cores (unless told otherwise).

    Each would take every core (two on CI) for its kernels and for the subprocesses it starts
    (``eoengine train``, job workers), so two processes ran four spinning threads on two cores:
    two trainings at once took 80 and 90 s instead of 33 and 36 s. Returns whether it set the share,
    which the demo's test gives back to the demo it runs (its README figures are of every core).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:
        return False
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    if "torch" in sys.modules:  # read at its import; a plugin imported it before this file
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return True


THREADS_SHARED = _threads_per_worker()
os.environ["EOENGINE_PROGRESS"] = "0"
# recorded engine choices and fetched models go to a folder of this run, not the user's cache
os.environ["EOENGINE_CACHE"] = tempfile.mkdtemp(prefix="eoengine-test-cache-")
REPO = Path(__file__).resolve().parents[1]
NC = REPO / "examples" / "nc_landsat7_landclass96"
OGT = REPO / "examples" / "open_geo_tutorial_landsat7"


def write_raster(path: Path, data: np.ndarray, crs: str = "EPSG:32615", res: float = 30.0,
                 origin: tuple[float, float] = (462405.0, 1741815.0), nodata: float | None = None) -> Path:
    """Write a (bands, h, w) array as a GeoTIFF."""
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=from_origin(*origin, res, res), nodata=nodata) as ds:
        ds.write(data)
    return path


def tiny_config(tmp: Path, **overrides: Any) -> dict[str, Any]:
    """A config on the open-geo-tutorial scene (250x250, 8 bands) with its polygon labels."""
    cfg: dict[str, Any] = {
        "name": "tiny",
        "output_dir": str(tmp / "out"),
        "imagery": {
            "bands": [
                {"name": "blue", "common_name": "blue", "scale": 0.0001},
                {"name": "green", "common_name": "green", "scale": 0.0001},
                {"name": "red", "common_name": "red", "scale": 0.0001},
                {"name": "nir", "common_name": "nir", "scale": 0.0001},
            ],
            "scenes": [{"id": "s1999", "datetime": "1999-11-18",
                        "stack": str(OGT / "LE70220491999322EDC01_stack.gtif"), "stack_indexes": [1, 2, 3, 4]}],
        },
        "labels": {"type": "vector", "path": str(OGT / "training_data.shp"), "class_column": "id", "all_touched": True},
        "classes": [
            {"value": 1, "name": "forest", "color": "#1b7837"},
            {"value": 2, "name": "water", "color": "#1f78b4"},
            {"value": 3, "name": "herbaceous", "color": "#b2df8a"},
            {"value": 4, "name": "barren", "color": "#a6761d"},
            {"value": 5, "name": "urban", "color": "#e31a1c"},
        ],
        "features": {"indices": ["NDVI"]},
        "dataset": {"patch_size": 16, "stride": 16, "min_labelled_fraction": 0.01, "max_nodata_fraction": 0.9,
                    "split": {"method": "random", "ratios": {"train": 0.6, "val": 0.2, "test": 0.2}},
                    "running_mode": "in_memory", "num_workers": 1, "seed": 3},
        "model": {"name": "cnn", "kwargs": {"width": 8, "layers": 2}},
        "training": {"batch_size": 8, "epochs": 2, "seed": 1, "early_stopping": None,
                     "optimizer": {"name": "Adam", "kwargs": {"lr": 0.01}}},
        "prediction": {"tile_size": 64, "overlap": 16, "region_size": 96},
    }
    for key, value in overrides.items():
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return cfg


def save_config(tmp: Path, cfg: dict[str, Any], name: str = "eoengine.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI entry point in-process; returns (exit code, stdout, stderr)."""
    from eoengine.cli.main import main

    old = sys.argv
    sys.argv = ["eoengine", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return save_config(tmp_path, tiny_config(tmp_path))


class NanAfter:
    """A cross-entropy loss that turns NaN after ``calls`` calls (for the NaN-loss stop)."""

    def __new__(cls, calls: int = 30, weight: Any = None) -> Any:
        import torch

        from eoengine.training.losses import CrossEntropy

        class _Nan(CrossEntropy):
            def __init__(self) -> None:
                super().__init__(weight)
                self.calls = 0

            def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
                self.calls += 1
                loss = super().forward(logits, target)
                return loss * float("nan") if self.calls > calls else loss

        return _Nan()


def four_band_stack(out: Path, source: Path | None = None) -> Path:
    """Blue, green, red and nir of a sample stack in one file, as the tiny config's models take them."""
    source = source or OGT / "LE70220491999322EDC01_stack.gtif"
    with rasterio.open(source) as ds:
        profile, data = ds.profile | {"count": 4}, ds.read([1, 2, 3, 4])
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


def train_tiny_unet(tmp: Path, epochs: int = 2, **overrides: Any) -> Any:
    """Build the tiny dataset and train a small U-Net on it; returns the TrainResult.

    ``overrides`` change the tiny config as :func:`tiny_config`'s do (dotted keys).
    """
    from eoengine.config.load import load_config
    from eoengine.datasets.build import build_dataset
    from eoengine.training.train import train

    cfg = load_config(save_config(tmp, tiny_config(tmp, **{"model": {"name": "unet", "kwargs": {"depth": 2, "base_channels": 8}},
                                                            "training.epochs": epochs, **overrides})))
    build_dataset(cfg)
    return train(cfg)


def edited_copy(package: Path, dest: Path, edit: Any) -> Path:
    """Copy a model package and change its weights in place with ``edit(state_dict)`` (exports removed)."""
    import shutil

    import torch

    shutil.copytree(package, dest)
    state = torch.load(dest / "weights.pt", weights_only=True)
    edit(state)
    torch.save(state, dest / "weights.pt")
    for name in ("model.onnx", "model.int8.onnx", "model.int8-dynamic.onnx"):
        (dest / name).unlink(missing_ok=True)
    return dest


def serve_in_thread(app: Any) -> tuple[str, Any]:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a daemon thread; returns (base URL, server)."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def start_server(cmd: list[str], port: int) -> Any:
    """Start a server process and wait until it accepts connections on 127.0.0.1:port."""
    import socket
    import subprocess
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"{cmd[0]} did not start") from None
            time.sleep(0.2)


STATIC_SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles
app = Starlette()
app.mount("/", StaticFiles(directory=sys.argv[1]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="error")
"""


def serve_files(folder: Path) -> tuple[str, Any]:
    """Serve ``folder`` as static files (with range requests) from its own process; (base URL, process).

    Its own process: GDAL reading from a server in the test's process would deadlock on the GIL.
    """
    port = free_port()
    return f"http://127.0.0.1:{port}", start_server([sys.executable, "-c", STATIC_SERVER, str(folder), str(port)], port)


def saved_package(dest: Path, classes: list[Any] | None = None, stack_indexes: list[int] | None = None,
                  prediction: dict[str, Any] | None = None) -> Path:
    """An untrained tiny U-Net on the tiny config's bands (blue, green, red, nir), saved as a package folder.

    ``classes`` are class values (default 1..3); ``stack_indexes`` is recorded only when given.
    """
    import torch

    from eoengine.models.meta import PackageMeta
    from eoengine.models.package import save_package
    from eoengine.models.registry import build_model

    values = classes if classes is not None else [1, 2, 3]
    torch.manual_seed(0)
    model = build_model("unet", 4, len(values), depth=2, base_channels=4)
    with torch.no_grad():
        model.decoder.head.bias.zero_()  # untrained, yet several classes on the sample stack
    bands = ["blue", "green", "red", "nir"]
    meta: dict[str, Any] = {
        "model": "unet", "model_kwargs": {"depth": 2, "base_channels": 4}, "bands": bands,
        "band_specs": [{"name": b, "common_name": b, "scale": 0.0001} for b in bands], "indices": [],
        "index_constants": {}, "channels": bands, "normalization": {"mean": [0.044, 0.066, 0.059, 0.344], "std": [0.014, 0.018, 0.027, 0.046]},
        "patch_size": 32, "resampling": "bilinear",
        "classes": [{"index": i, "value": v, "name": f"c{i}", "color": f"#{40 * i:02x}80{255 - 40 * i:02x}"}
                    for i, v in enumerate(values)],
        "prediction": prediction or {"tile_size": 64, "overlap": 16, "batch_size": 4, "region_size": 128},
    }
    if stack_indexes is not None:
        meta["stack_indexes"] = stack_indexes
    return save_package(model, PackageMeta.model_validate(meta), dest, onnx=False)


def one_problem(err: str) -> bool:
    """Whether stderr says exactly one problem: one 'error:' line, or a config error listing one problem."""
    lines = err.strip().splitlines()
    return len(lines) == 1 or (len(lines) == 2 and lines[0].endswith(": 1 problem(s):") and lines[1].startswith("  - "))


def truncated_stack(tmp: Path) -> Path:
    """The sample stack's four bands as a tiled, compressed GeoTIFF cut to 70% of its bytes (unreadable blocks)."""
    with rasterio.open(OGT / "LE70220491999322EDC01_stack.gtif") as ds:
        profile, data = ds.profile, ds.read([1, 2, 3, 4])
    profile.update(count=4, tiled=True, blockxsize=64, blockysize=64, compress="deflate")
    full = tmp / "full.tif"
    with rasterio.open(full, "w", **profile) as dst:
        dst.write(data)
    cut = tmp / "truncated.tif"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.7)])
    return cut


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slow tests (the whole demo) first: in one ``pytest -n 2`` the other process runs the rest meanwhile.

    ``make test`` runs them in a second pytest of their own instead (``-m slow``), on otherwise idle cores.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _mlflow_stores_from_a_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A new SQLite MLflow store in a test's process gets its tables copied from one made once per process.

    MLflow creates a store's tables by running its Alembic migrations: 2.6 s for each new ``mlflow.db``,
    and the tests make hundreds. The first new store of the process is migrated as MLflow does it; later
    empty SQLite stores receive a copy of that database (SQLite's backup), so they hold the same schema and
    revision. Other databases (PostgreSQL, a store that has tables already) go through MLflow unchanged.
    """
    import sqlite3

    import mlflow.store.db.utils as db_utils
    import mlflow.store.model_registry.sqlalchemy_store as registry_store
    import sqlalchemy

    migrate = db_utils._initialize_tables
    template = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"

    def initialize(engine: sqlalchemy.engine.Engine) -> None:
        path = engine.url.database
        if engine.dialect.name != "sqlite" or not path or path == ":memory:" or not db_utils._is_empty_database(engine):
            migrate(engine)
            return
        if not template.exists():
            made = sqlalchemy.create_engine(f"sqlite:///{template}")
            migrate(made)
            made.dispose()
        engine.dispose()
        with contextlib.closing(sqlite3.connect(template)) as source, contextlib.closing(sqlite3.connect(path)) as dest:
            source.backup(dest)

    db_utils._initialize_tables = initialize
    registry_store._initialize_tables = initialize  # imported by name there
    try:
        yield
    finally:
        db_utils._initialize_tables = migrate
        registry_store._initialize_tables = migrate


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test leaves ``os.environ`` as it found it, for the tests after it in the same process.

    ``mlflow.set_tracking_uri`` exports ``MLFLOW_TRACKING_URI`` (a later test's ``eoengine train``
    subprocess then logs into that store), and the server and worker commands run in-process set
    ``EOENGINE_CUSTOM_CODE``.
    """
    before = dict(os.environ)
    yield
    for key in set(os.environ) - set(before):
        del os.environ[key]
    os.environ.update(before)
