"""Issue 14: ``eoengine register --alias champion --gate suite.yaml`` refuses a worse model and accepts a better one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import edited_copy, run_cli, train_tiny_unet


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A trained tiny U-Net and a copy that calls every pixel urban (absent from the test split): worse on every slice."""
    tmp = tmp_path_factory.mktemp("gate")
    trained = train_tiny_unet(tmp, epochs=3)

    def urban(state: dict[str, Any]) -> None:
        last = [k for k, v in state.items() if k.endswith("bias") and tuple(v.shape) == (5,)][-1]  # the output layer
        state[last] = state[last] + torch.tensor([0.0, 0.0, 0.0, 0.0, 1e4])

    worse = edited_copy(trained.model_path, tmp / "worse", urban)
    return trained, worse


def _suite(tmp: Path, thresholds: list[dict[str, Any]]) -> Path:
    path = tmp / "gate.yaml"
    path.write_text(yaml.safe_dump({"uncertainty": {"bootstrap": 0}, "robustness": {"corruptions": []},
                                    "error_maps": False, "slices": {"min_pixels": 20}, "thresholds": thresholds}))
    return path


def _champion(uri: str) -> str:
    from mlflow.tracking import MlflowClient

    return str(MlflowClient(tracking_uri=uri).get_registered_model("gated").aliases["champion"])


def test_gate_accepts_better_and_refuses_worse(models: tuple[Any, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    trained, worse = models
    uri = trained.tracking_uri
    suite = _suite(tmp_path, [])
    base = ["--name", "gated", "--alias", "champion", "--tracking-uri", uri]
    # no holder yet: the suite alone decides (no thresholds here), the worse model takes the alias
    code, stdout, err = run_cli(["register", str(worse), *base, "--gate", str(suite), "--gate-report", str(tmp_path / "g1")],
                                capsys)
    assert code == 0, stdout + err
    assert "gate passed for gated@champion (against no current model" in stdout and _champion(uri) == "1"
    # the trained model beats it on every slice: accepted, the alias moves
    code, stdout, err = run_cli(["register", str(trained.model_path), *base, "--gate", str(suite),
                                 "--gate-report", str(tmp_path / "g2")], capsys)
    assert code == 0, err
    assert "against version 1" in stdout and _champion(uri) == "2"
    assert (tmp_path / "g2" / "champion" / "candidate" / "report.html").exists()
    assert (tmp_path / "g2" / "champion" / "holder" / "report.html").exists()
    # the worse model again: refused with the slices it loses, nothing registered, the alias stays
    code, stdout, _ = run_cli(["register", str(worse), *base, "--gate", str(suite), "--gate-report", str(tmp_path / "g3")],
                              capsys)
    assert code == 3
    assert "gate refused gated@champion (against version 2)" in stdout
    assert "miou on overall drops" in stdout and "more than the margin 0.02" in stdout
    assert "nothing registered; gated@champion stays on version 2" in stdout
    from mlflow.tracking import MlflowClient

    versions = MlflowClient(tracking_uri=uri).search_model_versions("name='gated'")
    assert sorted(int(v.version) for v in versions) == [1, 2] and _champion(uri) == "2"


def test_gate_slice_drops_and_failed_thresholds(models: tuple[Any, Path], tmp_path: Path) -> None:
    from eoengine.grading.gate import gate
    from eoengine.grading.suite import load_suite
    from eoengine.models.package import load_package

    trained, worse = models
    good, bad = load_package(trained.model_path), load_package(worse)
    suite = load_suite(_suite(tmp_path, [{"metric": "miou", "min": 0.99}]))
    verdict = gate(bad, good, suite, tmp_path / "v", 0.02)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("fails 'miou >= 0.99' (overall:")
    drops = verdict.drops
    assert drops and all(d.drop > 0.02 for d in drops)
    assert [d.drop for d in drops] == sorted((d.drop for d in drops), reverse=True)
    overall = next(d for d in drops if d.dimension == "overall")
    assert overall.drop == pytest.approx(overall.reference - overall.candidate)
    # the same model against itself loses nothing; only the failed threshold remains
    same = gate(good, good, suite, tmp_path / "s", 0.0)
    assert same.drops == [] and len(same.reasons) == 1


def test_gate_bad_input(models: tuple[Any, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trained, _ = models
    code, _, err = run_cli(["register", str(trained.model_path), "--name", "g", "--gate", str(_suite(tmp_path, []))], capsys)
    assert code == 2 and "--gate guards an alias" in err
    code, _, err = run_cli(["register", str(trained.model_path), "--name", "g", "--alias", "c", "--gate",
                            str(tmp_path / "none.yaml"), "--tracking-uri", trained.tracking_uri], capsys)
    assert code == 2 and "suite file not found" in err
    code, _, err = run_cli(["register", str(trained.model_path), "--name", "g", "--alias", "c", "--gate",
                            str(_suite(tmp_path, [])), "--gate-margin", "-1"], capsys)
    assert code == 2 and "--gate-margin -1 is negative" in err
