"""The exported ONNX graph of every built-in architecture computes what the PyTorch model does at tile sizes other
than the size it was exported at (the TorchScript exporter traces one input: shapes must stay symbolic)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from eoengine.models.package import export_onnx
from eoengine.models.registry import build_model

ARCHITECTURES = {"pixel_dnn": {}, "cnn": {}, "unet": {"depth": 3}, "unet_plus_plus": {}, "attention_unet": {},
                 "deeplabv3_plus": {}, "fpn": {}, "resnet_classifier": {}, "tempcnn": {}, "lstm": {}}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_the_onnx_graph_matches_the_model_at_other_sizes(name: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model(name, 6, 5, **ARCHITECTURES[name]).eval()
    export_onnx(model, 6, 32, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for side in (32, 64, 96):
        x = torch.randn(3, 6, side, side)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5)
