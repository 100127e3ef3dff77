"""Optimizers and learning-rate schedules by name, built from Optax.

Contract: `make_schedule(name, learning_rate, total_steps, ...)` returns an
`optax.Schedule` (step -> learning rate); `make_optimizer(name, learning_rate, ...)`
returns an `optax.GradientTransformation` chaining, in order: gradient clipping, weight
decay, the optimizer, and gradient accumulation around all of it. Unknown names fail
listing the valid ones. Weight decay is an Optax transformation applied to the kernels
(parameters of rank >= 2), never a term hidden in the loss: coupled (added to the
gradient, as in PyTorch) for every optimizer but adamw, whose decay is decoupled.
Both builders return the same object for equal arguments: the optimizer is part of the
train state's structure, so later runs in a process then reuse the compiled steps.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import optax

_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr, weight_decay=0.0),
    "rmsprop": lambda lr: optax.rmsprop(lr),
    "adagrad": lambda lr: optax.adagrad(lr),
}

SCHEDULES = ("constant", "cosine", "one_cycle", "step", "warmup_cosine")


def optimizer_names() -> list[str]:
    """Names accepted by `make_optimizer`."""
    return sorted(_OPTIMIZERS)


def schedule_names() -> list[str]:
    """Names accepted by `make_schedule`."""
    return sorted(SCHEDULES)


@functools.lru_cache(maxsize=None)
def make_schedule(name: str, learning_rate: float, total_steps: int, *, warmup_steps: int = 0,
                  decay_every: int | None = None, decay_factor: float = 0.1) -> optax.Schedule:
    """A learning-rate schedule by name.

    Args:
      name: "constant"; "step" (multiplied by `decay_factor` every `decay_every` steps,
        default a third of the run); "cosine" (cosine decay to 0 over `total_steps`);
        "warmup_cosine" (linear from 0 to `learning_rate` over `warmup_steps`, default 5%
        of the run, then cosine to 0); "one_cycle" (Smith's one-cycle: cosine up from
        learning_rate/25 to learning_rate over the first 30%, then down to
        learning_rate/25e4).
      learning_rate: the base (peak) learning rate.
      total_steps: optimizer updates in the run.
      warmup_steps: warm-up length of "warmup_cosine".
      decay_every: period of "step".
      decay_factor: factor of "step".

    Returns:
      The schedule, a function step -> learning rate.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(schedule_names())}.")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}.")
    if total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps}.")
    if name == "constant":
        return optax.constant_schedule(learning_rate)
    if name == "step":
        every = decay_every or max(total_steps // 3, 1)
        return optax.exponential_decay(learning_rate, every, decay_factor, staircase=True)
    if name == "cosine":
        return optax.cosine_decay_schedule(learning_rate, total_steps)
    if name == "one_cycle":
        return optax.cosine_onecycle_schedule(total_steps, learning_rate)
    warmup = warmup_steps or max(total_steps // 20, 1)
    if warmup >= total_steps:
        raise ValueError(f"warmup_steps={warmup} must be smaller than the run's "
                         f"{total_steps} steps; lower it or train longer.")
    return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, total_steps)


def _kernels(params):
    """Weight-decay mask: True for kernels (rank >= 2), False for biases and norm scales."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


@functools.lru_cache(maxsize=None)
def make_optimizer(name: str | optax.GradientTransformation,
                   learning_rate: float | optax.Schedule, *, weight_decay: float = 0.0,
                   clip_norm: float | None = None,
                   accumulate_steps: int = 1) -> optax.GradientTransformation:
    """Builds an Optax optimizer.

    Args:
      name: one of `optimizer_names()`, or an Optax transformation (then the other
        options still wrap it).
      learning_rate: a float or an Optax schedule.
      weight_decay: decay of the kernels; 0 for none.
      clip_norm: clip the gradient to this global norm first; None for no clipping.
      accumulate_steps: average the gradients of this many steps before one update
        (`optax.MultiSteps`); schedules then count updates, not steps.

    Returns:
      The optimizer.
    """
    if not isinstance(name, optax.GradientTransformation) and name not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of "
                         f"{', '.join(optimizer_names())}.")
    if not callable(learning_rate) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive or None, got {clip_norm}.")
    if accumulate_steps < 1:
        raise ValueError(f"accumulate_steps must be a positive integer, got {accumulate_steps}.")
    if isinstance(name, optax.GradientTransformation):
        parts = [name]
    elif name == "adamw":
        parts = [optax.adamw(learning_rate, weight_decay=weight_decay, mask=_kernels)]
    else:
        parts = [_OPTIMIZERS[name](learning_rate)]
    if weight_decay and name != "adamw":
        parts.insert(0, optax.add_decayed_weights(weight_decay, mask=_kernels))
    if clip_norm is not None:
        parts.insert(0, optax.clip_by_global_norm(clip_norm))
    tx = parts[0] if len(parts) == 1 else optax.chain(*parts)
    if accumulate_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=accumulate_steps).gradient_transformation()
    return tx
