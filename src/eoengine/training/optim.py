"""Optimizers and learning-rate schedulers by name, from torch.optim, with their arguments."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from typing import Any

import torch

from eoengine.config.schema import ComponentConfig
from eoengine.errors import EOError, first_line


def _classes(module: Any, base: type) -> dict[str, type]:
    return {
        n: c
        for n, c in vars(module).items()
        if inspect.isclass(c) and issubclass(c, base) and c is not base and not n.startswith("_")
    }


def optimizer_names() -> list[str]:
    """Every optimizer in torch.optim."""
    return sorted(_classes(torch.optim, torch.optim.Optimizer))


def scheduler_names() -> list[str]:
    """Every scheduler in torch.optim.lr_scheduler."""
    names = _classes(torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler)
    return sorted({*names, "ReduceLROnPlateau", WARMUP_COSINE} - {"LRScheduler", "ChainedScheduler", "SequentialLR"})


WARMUP_COSINE = "warmup_cosine"
"""Linear warm-up for ``warmup_epochs``, then cosine decay to ``eta_min`` at ``max_epochs``."""


def _pick(kind: str, name: str, table: list[str]) -> None:
    if name not in table:
        close = difflib.get_close_matches(name, table, n=1, cutoff=0.5)
        if not close:
            close = [n for n in table if n.lower() == name.lower()]
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise EOError(f"unknown {kind} '{name}'{hint}", f"use one of: {', '.join(table)}")


def check_optimizer(name: str) -> None:
    """Raise :class:`EOError` for an unknown optimizer name."""
    _pick("optimizer", name, optimizer_names())


def check_scheduler(name: str) -> None:
    """Raise :class:`EOError` for an unknown scheduler name."""
    _pick("scheduler", name, scheduler_names())


def _refused(kind: str, name: str, kwargs: dict[str, Any], exc: Exception) -> EOError:
    """The error for arguments torch refuses, naming the config field to fix."""
    where = "torch.optim" if kind == "optimizer" else "torch.optim.lr_scheduler"
    return EOError(f"{kind} {name}: bad arguments {kwargs}: {first_line(exc)}",
                   f"fix training.{kind}.kwargs (see {where}.{name} for what it takes)")


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    """``torch.optim.<name>(params, **kwargs)`` with clear errors.

    Args:
        name: the optimizer's class name in torch.optim.
        params: the parameters to optimise.
        kwargs: the configured arguments.

    Returns:
        The optimizer.

    Raises:
        EOError: an unknown name, or arguments torch refuses (unknown names or bad values).

    """
    check_optimizer(name)
    try:
        opt: torch.optim.Optimizer = getattr(torch.optim, name)(params, **kwargs)
    except (TypeError, ValueError) as exc:
        raise _refused("optimizer", name, kwargs, exc) from None
    return opt


def warmup_cosine(
    optimizer: torch.optim.Optimizer, max_epochs: int, warmup_epochs: int = 1, eta_min: float = 0.0,
    start_factor: float = 0.01,
) -> torch.optim.lr_scheduler.SequentialLR:
    """Linear warm-up from ``start_factor`` x lr, then cosine annealing (stepped per epoch)."""
    if not 0 <= warmup_epochs < max_epochs:
        raise ValueError(f"warmup_epochs must be in [0, max_epochs); got {warmup_epochs} of {max_epochs}")
    sched = torch.optim.lr_scheduler
    warm = sched.LinearLR(optimizer, start_factor=start_factor, total_iters=max(warmup_epochs, 1))
    cosine = sched.CosineAnnealingLR(optimizer, T_max=max_epochs - warmup_epochs, eta_min=eta_min)
    return sched.SequentialLR(optimizer, [warm, cosine], milestones=[max(warmup_epochs, 1)])


def scheduler_kwargs(name: str, kwargs: dict[str, Any], total_steps: int, max_epochs: int) -> dict[str, Any]:
    """A scheduler's kwargs with what the trainer knows filled in (OneCycleLR's steps, warm-up's epochs).

    Args:
        name: the scheduler's name.
        kwargs: the configured kwargs.
        total_steps: optimiser steps of the whole run.
        max_epochs: epochs of the whole run.

    Returns:
        The kwargs to build it with.

    """
    out = dict(kwargs)
    if name == "OneCycleLR" and "total_steps" not in out and "epochs" not in out:
        out["total_steps"] = total_steps
    if name == WARMUP_COSINE:
        out.setdefault("max_epochs", max_epochs)
    return out


def check_optimization(
    optimizer: ComponentConfig, scheduler: ComponentConfig | None, params: Iterable[torch.nn.Parameter],
    total_steps: int, max_epochs: int,
) -> None:
    """Build the optimizer and scheduler once, so a wrong name or argument stops training before it starts.

    Args:
        optimizer: the configured optimizer.
        scheduler: the configured scheduler, if any.
        params: the parameters to optimise (left untouched).
        total_steps: optimiser steps of the whole run (an estimate will do).
        max_epochs: epochs of the whole run.

    Raises:
        EOError: an unknown name, or arguments the class does not take or values it refuses.

    """
    opt = build_optimizer(optimizer.name, params, optimizer.kwargs)
    if scheduler is not None:
        build_scheduler(scheduler.name, opt, scheduler_kwargs(scheduler.name, scheduler.kwargs, total_steps, max_epochs))


PERIODS = ("step_size", "T_max", "T_0", "total_steps", "epochs", "steps_per_epoch")
"""Scheduler arguments that count steps or epochs: torch takes some of them below 1, then divides by them or cycles backwards."""


def _check_periods(kwargs: dict[str, Any]) -> None:
    for key in PERIODS:
        value = kwargs.get(key)
        if isinstance(value, int | float) and not value >= 1:  # NaN too
            raise ValueError(f"{key} must be at least 1, got {value!r}")


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, kwargs: dict[str, Any]) -> Any:
    """``torch.optim.lr_scheduler.<name>(optimizer, **kwargs)`` (or ``warmup_cosine``) with clear errors.

    Args:
        name: the scheduler's class name in torch.optim.lr_scheduler, or ``warmup_cosine``.
        optimizer: the optimizer it drives.
        kwargs: its arguments (see :func:`scheduler_kwargs`).

    Returns:
        The scheduler.

    Raises:
        EOError: an unknown name, or arguments torch refuses (unknown names or bad values).

    """
    check_scheduler(name)
    try:
        _check_periods(kwargs)
        if name == WARMUP_COSINE:
            return warmup_cosine(optimizer, **kwargs)
        return getattr(torch.optim.lr_scheduler, name)(optimizer, **kwargs)
    except (TypeError, ValueError) as exc:
        raise _refused("scheduler", name, kwargs, exc) from None
