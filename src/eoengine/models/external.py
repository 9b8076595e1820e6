"""Optional architectures from segmentation-models-pytorch (and through it, timm encoders).

Install with ``pip install 'eoengine[smp]'`` where torchvision imports against your torch
build; the core never needs them. ``model: {name: smp, kwargs: {arch: UnetPlusPlus,
encoder_name: resnet34}}`` builds any smp architecture for any band count. Pretrained
weights are never downloaded unless ``encoder_weights`` names them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from eoengine.errors import EOError


def smp_model(
    in_channels: int,
    num_classes: int,
    arch: str = "Unet",
    encoder_name: str = "resnet34",
    encoder_weights: str | None = None,
    encoder_depth: int = 5,
    **kwargs: Any,
) -> nn.Module:
    """``segmentation_models_pytorch.create_model`` with eoengine's channel and class counts."""
    try:
        import segmentation_models_pytorch as smp
    except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision failing to import
        raise EOError(
            f"model 'smp' needs segmentation-models-pytorch, which did not import ({type(exc).__name__}: {exc})",
            "pip install 'eoengine[smp]' on a machine where torchvision matches your torch, or use a built-in model",
        ) from None
    try:
        model = smp.create_model(arch, encoder_name=encoder_name, encoder_weights=encoder_weights,
                                 encoder_depth=encoder_depth, in_channels=in_channels, classes=num_classes, **kwargs)
    except (KeyError, ValueError, TypeError) as exc:
        raise EOError(f"smp could not build {arch} with encoder {encoder_name}: {exc}",
                      "see the segmentation-models-pytorch docs for architectures and encoders") from None
    model.size_multiple = 2**encoder_depth
    return model  # type: ignore[no-any-return]
