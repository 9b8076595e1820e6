"""Building blocks shared by the architectures: activations and conv units."""

from __future__ import annotations

import difflib

from torch import nn

from eoengine.errors import EOError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    """An activation module by name."""
    if name not in ACTIVATIONS:
        close = difflib.get_close_matches(name, ACTIVATIONS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise EOError(
            f"unknown activation '{name}'{hint}", f"use one of: {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[name]()


def conv_unit(
    cin: int, cout: int, kernel: int, act: str, batch_norm: bool, dropout: float = 0.0
) -> nn.Sequential:
    """Conv → (BatchNorm) → activation → (Dropout2d), with 'same' padding."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(activation(act))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)
