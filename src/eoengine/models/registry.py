"""One registry for every architecture; custom models by dotted path.

``build_model("unet", in_channels=9, num_classes=7, depth=3)`` returns a module. A name with
a dot (``my_pkg.models.MyNet``) is imported and used like a built-in, provided its
constructor takes ``in_channels`` and ``num_classes``. The classical models
(``random_forest``, ``gradient_boosting``) are scikit-learn estimators, not modules: they live
in :mod:`eoengine.models.classical` and count as known names here. Unknown names and unknown keyword
arguments fail with a message that lists what is valid.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

from torch import nn

from eoengine.errors import EOError
from eoengine.models.classical import ESTIMATORS, is_classical
from eoengine.models.cnn import CNN
from eoengine.models.deeplab import FPN, DeepLabV3Plus
from eoengine.models.external import smp_model
from eoengine.models.multi_input import FusionUNet, SiameseUNet
from eoengine.models.pixel_dnn import PixelDNN
from eoengine.models.resnet import ResNetClassifier
from eoengine.models.temporal import PixelLSTM, TempCNN
from eoengine.models.unet import AttentionUNet, UNet
from eoengine.models.unetpp import UNetPlusPlus
from eoengine.runtime import CUSTOM_CODE_ENV

MODELS: dict[str, Callable[..., nn.Module]] = {
    "pixel_dnn": PixelDNN,
    "cnn": CNN,
    "unet": UNet,
    "unet_plus_plus": UNetPlusPlus,
    "attention_unet": AttentionUNet,
    "deeplabv3_plus": DeepLabV3Plus,
    "fpn": FPN,
    "resnet_classifier": ResNetClassifier,
    "siamese_unet": SiameseUNet,
    "fusion_unet": FusionUNet,
    "tempcnn": TempCNN,
    "lstm": PixelLSTM,
    "smp": smp_model,
}

CUSTOM_CODE_FIX = "use one of eoengine's own, or ask the server's admin to start it (and its workers) with --allow-custom-code"

CLASSIFIERS = frozenset({"resnet_classifier"})
"""Models that return one score vector per chip (B, classes) rather than a map."""


def import_dotted(name: str, what: str) -> Any:
    """What a dotted path (``extensions.models.MyNet``) names, unless this process refuses custom code.

    Args:
        name: The dotted path.
        what: What it is for messages (``model``, ``loss``).

    Returns:
        The module attribute.

    Raises:
        EOError: This process refuses custom code (:data:`CUSTOM_CODE_ENV`), or the path does not import.

    """
    if os.environ.get(CUSTOM_CODE_ENV, "1") == "0":
        raise EOError(f"{what} '{name}' is custom code (a dotted path), which this server does not run", CUSTOM_CODE_FIX)
    module_name, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise EOError(f"cannot import {what} '{name}': {exc}", "check the dotted path") from None


def _resolve(name: str) -> Callable[..., nn.Module]:
    if name in MODELS:
        return MODELS[name]
    if "." in name:
        obj = import_dotted(name, "model")
        if not callable(obj):
            raise EOError(f"model '{name}' is not a class or function", "point to an nn.Module class")
        return obj  # type: ignore[no-any-return]
    known = [*MODELS, *ESTIMATORS]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise EOError(
        f"unknown model '{name}'{hint}",
        f"use one of: {', '.join(sorted(known))}, or a dotted path to your own nn.Module",
    )


def check_model_name(name: str) -> None:
    """Raise :class:`EOError` if ``name`` is not a known or importable model (classical ones included)."""
    if not is_classical(name):
        _resolve(name)


def check_model_kwargs(name: str, kwargs: dict[str, Any]) -> Callable[..., nn.Module]:
    """Check ``kwargs`` against the signature of the model's constructor.

    Args:
        name: Registry name or dotted path of the model.
        kwargs: The keyword arguments it would be given (besides in_channels and num_classes).

    Returns:
        The model's constructor.

    Raises:
        EOError: The model is unknown, or does not take one of the arguments.

    """
    factory = _resolve(name)
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [k for k in params if k not in ("self", "in_channels", "num_classes")]
    unknown = [k for k in kwargs if k not in allowed]
    if unknown and not takes_any:
        raise EOError(
            f"model '{name}' does not take argument(s) {unknown}",
            f"valid arguments: {', '.join(allowed)}",
        )
    return factory


def build_model(name: str, in_channels: int, num_classes: int, **kwargs: Any) -> nn.Module:
    """Instantiate a model by registry name or dotted path, checking its keyword arguments."""
    factory = check_model_kwargs(name, kwargs)
    model = factory(in_channels=in_channels, num_classes=num_classes, **kwargs)
    if not isinstance(model, nn.Module):
        raise EOError(f"model '{name}' did not return a torch nn.Module", "return an nn.Module")
    return model


def size_multiple(model: nn.Module) -> int:
    """What input sides must be multiples of (1 for fully convolutional same-size models)."""
    return int(getattr(model, "size_multiple", 1))
