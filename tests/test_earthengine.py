"""Earth Engine provider, tested up to its network boundary.

The real ``ee`` client library runs: credentials are built from a real (freshly generated)
service-account key or a stored refresh token, ``ee.Initialize`` runs its project and
credential checks, images and patch samplers are built as Earth Engine graphs, and export
tasks assemble their REST request bodies. Only the calls that would leave the machine are
replaced, the same ones Google's own ``ee.apitestcase`` replaces: the algorithm list
(answered with the recorded list shipped with earthengine-api), the discovery document, the
export endpoints (which record the request body) and the operation lookup.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import ee  # the dev extra installs earthengine-api: these tests run, never skip
import pytest
from conftest import run_cli
from ee import apitestcase, serializer

ACCOUNT = "exporter@demo-proj.iam.gserviceaccount.com"
COMMON = ["source", "ee", "export", "--collection", "COPERNICUS/S2_SR_HARMONIZED", "--bbox", "-79.1,35.8,-78.9,36.0",
          "--datetime", "2024-06-01/2024-09-01", "--bands", "B2,B3,B4,B8", "--bucket", "eo-exports", "--prefix", "nc/scene"]


class Boundary:
    """What Earth Engine was asked (the network calls), and what it answers."""

    def __init__(self) -> None:
        self.initialised: list[str | None] = []
        self.exports: list[tuple[str, str, dict[str, Any]]] = []
        self.operations: dict[str, list[dict[str, Any]]] = {}
        self.fail_init: BaseException | None = None
        self.fail_export: BaseException | None = None
        self.finish_as: str | None = None  # how started tasks end, when asked
        self.token_requests: list[tuple[str, str]] = []
        self.token_answer: tuple[int, dict[str, Any]] = (200, {"access_token": "ya29.test", "expires_in": 3600})

    def http(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
             **kwargs: Any) -> Any:
        """google-auth's HTTP transport: only the OAuth token endpoint answers."""
        from google.auth.exceptions import TransportError
        from google.auth.transport import Response

        if "169.254.169.254" in url or "metadata.google.internal" in url:
            raise TransportError("not on Google Compute Engine")  # as off GCE: the metadata server is unreachable
        if "oauth2.googleapis.com/token" not in url:
            raise AssertionError(f"unexpected request to {url}")
        self.token_requests.append((url, body.decode() if isinstance(body, bytes) else str(body)))
        status, payload = self.token_answer

        class Answer(Response):  # type: ignore[misc]
            status = property(lambda self: status)
            headers = property(lambda self: {"content-type": "application/json"})
            data = property(lambda self: json.dumps(payload).encode())

        return Answer()

    def algorithms(self) -> Any:
        if self.fail_init:
            raise self.fail_init
        self.initialised.append(ee.data._get_state().cloud_api_user_project)
        return apitestcase.GetAlgorithms()

    def export(self, kind: str) -> Any:
        def call(request_id: str, params: dict[str, Any]) -> dict[str, Any]:
            if self.fail_export:
                raise self.fail_export
            body = dict(params, expression=serializer.encode(params["expression"], for_cloud_api=True))
            self.exports.append((kind, request_id, body))
            return {"name": f"projects/demo-proj/operations/{request_id}"}
        return call

    def operation(self, name: str) -> dict[str, Any]:
        if name not in self.operations and self.finish_as and name.startswith("projects/demo-proj/operations/"):
            return {"name": name, "done": True, "metadata": {"state": self.finish_as, "progress": 1.0},
                    "error": {"message": "Export too large."} if self.finish_as == "FAILED" else {}}
        if name not in self.operations:
            raise ee.EEException(f"Operation {name} not found.")
        answers = self.operations[name]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def graph(self, k: int = -1) -> str:
        return json.dumps(self.exports[k][2]["expression"])


@pytest.fixture
def boundary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    fake = Boundary()
    monkeypatch.setattr(ee.data, "getAlgorithms", fake.algorithms)
    monkeypatch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
    monkeypatch.setattr(ee.data, "exportImage", fake.export("image"))
    monkeypatch.setattr(ee.data, "exportTable", fake.export("table"))
    monkeypatch.setattr(ee.data, "getOperation", fake.operation)
    import google.auth.transport.requests as transport

    monkeypatch.setattr(transport.Request, "__call__", fake.http)
    for var in ("EOENGINE_EE_SERVICE_ACCOUNT", "GOOGLE_APPLICATION_CREDENTIALS", "EARTHENGINE_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no stored user credentials unless a test writes them
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    yield fake
    ee.Reset()


@pytest.fixture(scope="module")
def private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def key_file(tmp_path: Path, private_key: str) -> Path:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "demo-proj", "private_key_id": "k1", "private_key": private_key,
        "client_email": ACCOUNT, "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}))
    return path


def secret_free(private_key: str, *texts: str) -> bool:
    body = private_key.splitlines()[1]  # a line of the key's base64 body
    return all(body not in t and "PRIVATE KEY" not in t for t in texts)


def test_image_export_request(boundary: Boundary, key_file: Path, private_key: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    record = tmp_path / "tasks.json"
    code, out, err = run_cli([*COMMON, "--max-cloud", "20", "--scale", "10", "--crs", "EPSG:32617",
                              "--service-account", str(key_file), "--out", str(record)], capsys)
    assert code == 0, out + err
    assert boundary.initialised == ["demo-proj"]  # the key's project
    assert ACCOUNT in out and "gs://eo-exports/nc/scene*" in out
    kind, request_id, body = boundary.exports[0]
    assert kind == "image" and len(boundary.exports) == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)  # a request id: Earth Engine runs a retried request once
    options = body["fileExportOptions"]
    assert options["fileFormat"] == "GEO_TIFF" and options["geoTiffOptions"] == {"cloudOptimized": True}
    assert options["cloudStorageDestination"] == {"bucket": "eo-exports", "filenamePrefix": "nc/scene"}
    assert body["maxPixels"] == {"value": str(10**10)}
    graph = boundary.graph()
    for fn in ("ImageCollection.load", "reduce.median", "Image.select", "Image.clip", "Image.clipToBoundsAndScale",
               "Filter.greaterThan", "Filter.not", "Filter.dateRangeContains"):
        assert f'"functionName": "{fn}"' in graph, fn
    for const in ('"COPERNICUS/S2_SR_HARMONIZED"', '"CLOUDY_PIXEL_PERCENTAGE"', '"EPSG:32617"', '"B8"',
                  '"2024-06-01T00:00:00+00:00"', '"2024-09-01T00:00:00+00:00"'):
        assert const in graph, const
    assert '"scale": {"constantValue": 10.0}' in graph  # 10 m pixels
    started = json.loads(record.read_text())["image"]
    assert started["id"] == request_id and started["destination"] == "gs://eo-exports/nc/scene"
    assert secret_free(private_key, out, err, caplog.text, record.read_text())


def test_tfrecord_image_export_with_patches(boundary: Boundary, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([*COMMON, "--format", "TFRecord", "--patch-size", "128", "--overlap", "16",
                              "--composite", "least-cloudy", "--service-account", str(key_file)], capsys)
    assert code == 0, out + err
    options = boundary.exports[0][2]["fileExportOptions"]
    assert options["fileFormat"] == "TF_RECORD_IMAGE"
    assert options["tfRecordOptions"]["tileDimensions"] == {"width": 128, "height": 128}
    assert options["tfRecordOptions"]["marginDimensions"] == {"width": 16, "height": 16}
    assert options["tfRecordOptions"]["compress"] is True
    graph = boundary.graph()
    assert '"functionName": "Collection.limit"' in graph or '"functionName": "Collection.first"' in graph
    assert '"functionName": "reduce.median"' not in graph


def test_patches_around_points_per_split(boundary: Boundary, key_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    points = tmp_path / "points.geojson"
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": {"class": c}}
             for x, y, c in [(-79.0, 35.9, 1), (-79.05, 35.95, 3), (-78.95, 35.85, 2)]]
    points.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    code, out, err = run_cli([*COMMON, "--format", "TFRecord", "--points", str(points), "--patch-size", "64",
                              "--splits", "train=0.7,val=0.2,test=0.1", "--seed", "7", "--service-account", str(key_file)], capsys)
    assert code == 0, out + err
    assert [e[0] for e in boundary.exports] == ["table"] * 3
    prefixes = [e[2]["fileExportOptions"]["cloudStorageDestination"]["filenamePrefix"] for e in boundary.exports]
    assert prefixes == ["nc/scene-train", "nc/scene-val", "nc/scene-test"]
    for _, _, body in boundary.exports:
        assert body["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE"
        assert body["selectors"] == ["B2", "B3", "B4", "B8", "class"]  # what 'dataset import-tfrecord' reads
    graphs = [boundary.graph(k) for k in range(3)]
    for fn in ("Image.neighborhoodToArray", "Kernel.fixed", "Image.sampleRegions", "Image.paint", "Collection.randomColumn"):
        assert f'"functionName": "{fn}"' in graphs[0], fn
    assert graphs[0].count('"constantValue": 64') >= 2  # a 64 x 64 kernel
    assert "-79.05" in graphs[0] and '"constantValue": 7' in graphs[0]  # the points and the seed travel inline
    assert '"constantValue": 0.7' in graphs[0] and '"constantValue": 0.7' in graphs[1]  # split boundaries meet
    assert '"constantValue": 1.0' in graphs[2]  # the last split reaches 1
    assert "dataset import-tfrecord" in out


def test_patches_from_assets(boundary: Boundary, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([*COMMON, "--format", "TFRecord", "--points-asset", "users/me/nc_points", "--label", "lc",
                              "--label-image", "users/me/nc_landcover", "--service-account", str(key_file)], capsys)
    assert code == 0, out + err
    ((kind, _, body),) = boundary.exports
    assert kind == "table" and body["selectors"] == ["B2", "B3", "B4", "B8", "lc"]
    graph = boundary.graph()
    assert '"users/me/nc_points"' in graph and '"users/me/nc_landcover"' in graph
    assert '"functionName": "Image.paint"' not in graph  # the label raster, not painted points


def test_user_credentials_and_project(boundary: Boundary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([*COMMON], capsys)
    assert code == 2 and "no valid Earth Engine credentials" in err and "earthengine authenticate" in err
    stored = Path(ee.oauth.get_credentials_path())
    stored.parent.mkdir(parents=True)
    stored.write_text(json.dumps({"refresh_token": "1//refresh-secret", "client_id": "cid", "client_secret": "csecret"}))
    code, out, err = run_cli([*COMMON], capsys)
    assert code == 2 and "needs a Google Cloud project" in err and "--project" in err
    monkeypatch.setenv("EARTHENGINE_PROJECT", "my-ee-project")
    code, out, err = run_cli([*COMMON], capsys)
    assert code == 0, out + err
    assert boundary.initialised[-1] == "my-ee-project"
    assert "refresh_token=1%2F%2Frefresh-secret" in boundary.token_requests[-1][1]  # the stored token was used
    assert "refresh-secret" not in out + err
    code, out, err = run_cli([*COMMON, "--project", "other-project"], capsys)
    assert code == 0 and boundary.initialised[-1] == "other-project"
    boundary.token_answer = (400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    code, out, err = run_cli([*COMMON], capsys)
    assert code == 2 and "no valid Earth Engine credentials" in err  # a revoked token: authenticate again


def test_service_account_from_environment(boundary: Boundary, key_file: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    code, out, err = run_cli([*COMMON, "--project", "billing-proj"], capsys)
    assert code == 0, out + err
    assert ACCOUNT in out and boundary.initialised == ["billing-proj"]


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("not json", "is not JSON"),
    (json.dumps({"type": "authorized_user", "client_email": "a", "private_key": "b", "token_uri": "c"}), "not a service-account key"),
    (json.dumps({"type": "service_account", "client_email": ACCOUNT, "token_uri": "t"}), "lacks private_key"),
    (json.dumps({"type": "service_account", "client_email": ACCOUNT, "private_key": "-----BEGIN PRIVATE KEY-----\nZm9v\n",
                 "token_uri": "t"}), "cannot be read"),
])
def test_bad_service_account_keys(boundary: Boundary, tmp_path: Path, content: str | None, message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli([*COMMON, "--service-account", str(path)], capsys)
    assert code == 2 and message in err and str(path) in err
    assert "Zm9v" not in out + err and "BEGIN PRIVATE KEY" not in out + err
    assert boundary.initialised == [] and boundary.exports == []


@pytest.mark.parametrize("args, message", [
    (["--bucket", "gs://eo-exports"], "not a Cloud Storage bucket name"),
    (["--prefix", "/abs"], "starts with '/'"),
    (["--format", "PNG"], "unknown export format"),
    (["--composite", "average"], "unknown composite"),
    (["--bbox", "10,50,5"], "bbox must be 4"),
    (["--bbox", "170,-10,-170,10"], "antimeridian"),
    (["--datetime", "2024-13-01/2024-14-01"], "not an RFC 3339"),
    (["--datetime", "2024-06-01/.."], "must have both ends"),
    (["--scale", "0"], "not positive"),
    (["--splits", "train=0.7,val=0.7"], "sum to 1"),
    (["--splits", "train=0.7,val=0.3"], "--splits applies to patches"),
    (["--description", "bad/name"], "not allowed"),
    (["--patch-size", "64", "--overlap", "64"], "out of range"),
    (["--points-asset", "users/me/points"], "exported as TFRecord"),
    (["--points-asset", "users/me/points", "--points", "p.geojson"], "not both"),
])
def test_bad_requests_never_reach_earth_engine(boundary: Boundary, key_file: Path, args: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli([*COMMON, "--service-account", str(key_file), *args], capsys)
    assert code == 2 and message in err, err
    assert boundary.initialised == [] and boundary.exports == []


def test_bad_points(boundary: Boundary, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    polys = tmp_path / "polys.geojson"
    polys.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"class": 1},
                     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}]}))
    base = [*COMMON, "--format", "TFRecord", "--service-account", str(key_file)]
    code, _, err = run_cli([*base, "--points", str(polys)], capsys)
    assert code == 2 and "patches are cut around points only" in err
    code, _, err = run_cli([*base, "--points", str(polys), "--label", "landcover"], capsys)
    assert code == 2 and "no property 'landcover'" in err and "class" in err
    code, _, err = run_cli([*base, "--points", str(tmp_path / "missing.geojson")], capsys)
    assert code == 2 and "cannot read points" in err
    assert boundary.initialised == [] and boundary.exports == []


def test_earth_engine_unreachable_or_refusing(boundary: Boundary, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boundary.fail_init = OSError("[Errno 101] Network is unreachable")
    code, _, err = run_cli([*COMMON, "--service-account", str(key_file)], capsys)
    assert code == 2 and "cannot reach Earth Engine" in err and "Network is unreachable" in err
    boundary.fail_init = ee.EEException("Earth Engine API has not been used in project 123 before or it is disabled.")
    code, _, err = run_cli([*COMMON, "--service-account", str(key_file)], capsys)
    assert code == 2 and "Earth Engine refused" in err and ACCOUNT in err
    boundary.fail_init = None
    boundary.fail_export = ee.EEException("Permission 'storage.objects.create' denied on bucket eo-exports.")
    code, out, err = run_cli([*COMMON, "--service-account", str(key_file)], capsys)
    assert code == 2 and "refused export" in err and "storage.objects.create" in err and "started" not in out


def test_task_status_and_wait(boundary: Boundary, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "projects/demo-proj/operations/T1"
    boundary.operations[name] = [
        {"name": name, "metadata": {"state": "RUNNING", "progress": 0.5}},
        {"name": name, "metadata": {"state": "SUCCEEDED", "progress": 1.0,
                                    "destinationUris": ["https://console.cloud.google.com/storage/browser/eo-exports/nc/"]},
         "done": True},
    ]
    code, out, err = run_cli(["source", "ee", "status", "T1", "--service-account", str(key_file), "--wait", "--every", "0"], capsys)
    assert code == 0, out + err
    assert "RUNNING 50%" in out and "SUCCEEDED 100%" in out and "eo-exports/nc/" in out
    failed = "projects/demo-proj/operations/T2"
    boundary.operations[failed] = [{"name": failed, "metadata": {"state": "FAILED"}, "done": True,
                                    "error": {"message": "Too many pixels in the region."}}]
    code, out, err = run_cli(["source", "ee", "status", failed, "--service-account", str(key_file)], capsys)
    assert code == 2 and "Too many pixels" in err
    code, out, err = run_cli(["source", "ee", "status", "nope", "--service-account", str(key_file)], capsys)
    assert code == 2 and "cannot look up task" in err


def test_export_and_wait(boundary: Boundary, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boundary.finish_as = "SUCCEEDED"
    code, out, err = run_cli([*COMMON, "--service-account", str(key_file), "--wait"], capsys)
    assert code == 0 and "SUCCEEDED 100%" in out, out + err
    boundary.finish_as = "FAILED"
    code, out, err = run_cli([*COMMON, "--service-account", str(key_file), "--wait"], capsys)
    assert code == 2 and "failed: Export too large." in err


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ee", None)  # as if earthengine-api were not installed
    code, _, err = run_cli([*COMMON, "--service-account", str(key_file)], capsys)
    assert code == 2 and "pip install 'eoengine[ee]'" in err
