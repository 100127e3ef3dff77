"""Dense, flatten and dropout as pure functions.

Contract:
    * ``dense(x, kernel, bias)`` computes ``x @ kernel + bias`` over the last
      axis of ``x``; ``kernel`` has shape ``(in, out)``.
    * ``flatten(x)`` keeps the leading (batch) axis: ``(N, ...) -> (N, prod(...))``.
    * ``dropout(x, rate, key)``: ``rate`` is the probability of *dropping* a
      unit (Keras/PyTorch meaning); kept units are scaled by ``1 / (1 - rate)``
      so the expectation is unchanged ("inverted dropout"). ``rate == 0`` or
      ``deterministic=True`` returns ``x`` unchanged.
    * Argument checks are plain Python on static shapes and values and raise
      before tracing.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp


def dense(x: jax.Array, kernel: jax.Array, bias: Optional[jax.Array] = None) -> jax.Array:
    """Affine map over the last axis.

    Args:
        x: Input of shape ``(..., in)``.
        kernel: Weights of shape ``(in, out)``.
        bias: Optional ``(out,)`` vector.

    Returns:
        ``(..., out)``.

    Raises:
        ValueError: Wrong ranks or mismatched sizes.
    """
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    if x.ndim < 1:
        raise ValueError(
            f"dense: x must have at least 1 dimension (..., in), got a scalar of shape "
            f"{tuple(x.shape)}; reshape it to (1,)."
        )
    if kernel.ndim != 2:
        raise ValueError(
            f"dense: kernel must be 2-D (in, out), got shape {tuple(kernel.shape)}; "
            "reshape it to (in_features, out_features)."
        )
    if x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"dense: x has {x.shape[-1]} features on its last axis (shape {tuple(x.shape)}) "
            f"but kernel of shape {tuple(kernel.shape)} expects {kernel.shape[0]}; "
            f"flatten x first or use a kernel of shape ({x.shape[-1]}, {kernel.shape[1]})."
        )
    y = jnp.matmul(x, kernel)
    if bias is not None:
        bias = jnp.asarray(bias)
        if bias.shape != (kernel.shape[1],):
            raise ValueError(
                f"dense: bias must have shape ({kernel.shape[1]},) to match the kernel's "
                f"outputs, got shape {tuple(bias.shape)}; pass bias=None or a vector of "
                f"length {kernel.shape[1]}."
            )
        y = y + bias
    return y


def flatten(x: jax.Array) -> jax.Array:
    """Flattens all axes but the first (batch) axis.

    Args:
        x: Input of shape ``(N, ...)``.

    Returns:
        ``(N, prod(...))``; a 1-D input ``(N,)`` becomes ``(N, 1)``.

    Raises:
        ValueError: If ``x`` is a scalar.
    """
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(
            "flatten: x must have a leading batch axis, got a scalar; pass an array of "
            "shape (N, ...)."
        )
    return jnp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


def dropout(
    x: jax.Array,
    rate: float,
    key: Optional[jax.Array] = None,
    deterministic: bool = False,
) -> jax.Array:
    """Inverted dropout.

    Args:
        x: Input of any shape.
        rate: Probability of dropping each unit, a Python/NumPy number in ``[0, 1)``.
        key: A ``jax.random`` key; required unless ``deterministic`` or ``rate == 0``.
        deterministic: If True (evaluation mode), return ``x`` unchanged.

    Returns:
        ``x`` with each unit zeroed with probability ``rate`` and the others
        multiplied by ``1 / (1 - rate)``.

    Raises:
        TypeError: If ``rate`` is not a concrete real number.
        ValueError: If ``rate`` is outside ``[0, 1)`` or ``key`` is missing.
    """
    try:
        if isinstance(rate, (bool, str)):
            raise TypeError
        # float() rejects traced values (ConcretizationTypeError is a TypeError).
        rate = float(rate)
    except TypeError as err:
        raise TypeError(
            f"dropout: rate must be a concrete real number in [0, 1), got {rate!r} of type "
            f"{type(rate).__name__}; pass a Python float such as rate=0.5 (rate is a "
            "hyperparameter, not a traced value)."
        ) from err
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            f"dropout: rate is the probability of dropping a unit and must be in [0, 1), "
            f"got {rate!r}; use e.g. rate=0.5 (rate=0 disables dropout)."
        )
    x = jnp.asarray(x)
    if deterministic or rate == 0.0:
        return x
    if key is None:
        raise ValueError(
            "dropout: key is None but a random key is required when deterministic=False "
            "and rate > 0; pass key=jax.random.key(0) (or split one), or set "
            "deterministic=True for evaluation."
        )
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))


__all__ = ["dense", "dropout", "flatten"]
