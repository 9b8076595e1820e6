"""Every architecture in the registry: shapes, band counts, gradients and what makes each distinct."""

from __future__ import annotations

import pytest
import torch

from eoengine.errors import EOError
from eoengine.models.registry import CLASSIFIERS, MODELS, build_model, size_multiple

EXTRA = {
    "siamese_unet": {"timesteps": 2, "depth": 2, "base_channels": 4},
    "tempcnn": {"timesteps": 2, "width": 4, "hidden": 8},
    "lstm": {"timesteps": 2, "hidden": 4},
    "fusion_unet": {"depth": 2, "base_channels": 4},
    "unet": {"depth": 2, "base_channels": 4},
    "attention_unet": {"depth": 2, "base_channels": 4},
    "unet_plus_plus": {"depth": 2, "base_channels": 4},
    "deeplabv3_plus": {"depth": 3, "base_channels": 4, "aspp_channels": 8},
    "fpn": {"depth": 3, "base_channels": 4, "pyramid_channels": 8},
    "resnet_classifier": {"depth": 2, "base_channels": 4},
}


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"smp"}))
@pytest.mark.parametrize("bands", [2, 6])
def test_every_model_takes_any_band_count_and_learns(name: str, bands: int) -> None:
    kwargs = dict(EXTRA.get(name, {}))
    if name == "fusion_unet":
        kwargs["input_groups"] = [list(range(bands // 2)), list(range(bands // 2, bands))]
    model = build_model(name, bands, 3, **kwargs)
    x = torch.randn(2, bands, 16, 16)
    assert 16 % size_multiple(model) == 0
    out = model(x)
    expected = (2, 3) if name in CLASSIFIERS else (2, 3, 16, 16)
    assert out.shape == expected
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads if g is not None)


def test_siamese_unet_shares_weights_and_sees_only_the_difference() -> None:
    model = build_model("siamese_unet", 6, 2, **EXTRA["siamese_unet"]).eval()
    a, b = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        ab, ba = model(torch.cat([a, b], 1)), model(torch.cat([b, a], 1))
        same = model(torch.cat([a, a], 1))
        same2 = model(torch.cat([b, b], 1))
    assert torch.allclose(ab, ba, atol=1e-5)  # |f(a) - f(b)| is symmetric
    assert torch.allclose(same, same2, atol=1e-5)  # no change looks the same whatever the scene
    with pytest.raises(ValueError, match="two dates"):
        build_model("siamese_unet", 5, 2, timesteps=2)


def test_temporal_models_never_mix_pixels() -> None:
    for name in ("tempcnn", "lstm"):
        model = build_model(name, 8, 3, **EXTRA[name]).eval()
        x = torch.randn(1, 8, 8, 8)
        y = x.clone()
        y[0, :, 3, 4] += 5.0
        with torch.no_grad():
            diff = (model(x) - model(y)).abs().sum(dim=1)[0]
        assert diff[3, 4] > 0
        diff[3, 4] = 0
        assert float(diff.max()) == 0.0, name
    with pytest.raises(ValueError, match="do not split into 3 dates"):
        build_model("tempcnn", 8, 3, timesteps=3)


def test_fusion_unet_has_one_encoder_per_group() -> None:
    model = build_model("fusion_unet", 5, 2, input_groups=[[0, 1, 2], [3, 4]], depth=2, base_channels=4)
    assert len(model.encoders) == 2
    assert model.encoders[1].down[0][0][0].in_channels == 2
    with pytest.raises(ValueError, match="exactly once"):
        build_model("fusion_unet", 5, 2, input_groups=[[0, 1], [1, 2, 3, 4]])


def test_unet_variants_differ_from_plain_unet() -> None:
    att = build_model("attention_unet", 3, 2, depth=2, base_channels=4)
    assert len(att.decoder.gates) == 2 and att.decoder.attention
    upp = build_model("unet_plus_plus", 3, 2, depth=3, base_channels=4)
    assert {"0_1", "0_2", "0_3", "1_2"} <= set(upp.nodes)  # nested skip nodes
    assert upp.nodes["0_3"][0][0].in_channels == 4 * 3 + 8  # dense skips: X00, X01, X02 + up(X12)


def test_registry_lists_names_for_typos_and_bad_kwargs() -> None:
    with pytest.raises(EOError, match="did you mean 'deeplabv3_plus'"):
        build_model("deeplabv3plus", 3, 2)
    with pytest.raises(EOError, match="valid arguments: .*pyramid_channels"):
        build_model("fpn", 3, 2, pyramid=4)


def test_optional_smp_models_fail_clearly_without_the_extra() -> None:
    pytest.importorskip("torch")
    try:
        import segmentation_models_pytorch  # noqa: F401
    except Exception:  # noqa: BLE001 - not installable here (no torchvision for this torch)
        with pytest.raises(EOError, match=r"needs segmentation-models-pytorch.*eoengine\[smp\]"):
            build_model("smp", 4, 2, arch="Unet")
    else:
        model = build_model("smp", 4, 2, arch="Unet", encoder_name="resnet18")
        assert model(torch.zeros(1, 4, 64, 64)).shape == (1, 2, 64, 64)
