"""Optimizers by name, built from Optax.

Contract: `make_optimizer(name, learning_rate, ...)` returns an
`optax.GradientTransformation`; an unknown name fails listing the valid ones.
"""
from __future__ import annotations

from typing import Callable

import optax

_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr),
    "rmsprop": lambda lr: optax.rmsprop(lr),
    "adagrad": lambda lr: optax.adagrad(lr),
}


def optimizer_names() -> list[str]:
    """Names accepted by `make_optimizer`."""
    return sorted(_OPTIMIZERS)


def make_optimizer(name: str | optax.GradientTransformation,
                   learning_rate: float | optax.Schedule) -> optax.GradientTransformation:
    """Builds an Optax optimizer.

    Args:
      name: one of `optimizer_names()`, or an Optax transformation used as is.
      learning_rate: a float or an Optax schedule.

    Returns:
      The optimizer.
    """
    if isinstance(name, optax.GradientTransformation):
        return name
    if name not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(optimizer_names())}.")
    if not callable(learning_rate) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}.")
    return _OPTIMIZERS[name](learning_rate)
