"""Element-wise activation functions (and softmax) as pure functions.

Contract:
    * Every function maps an array to an array of the same shape and dtype.
    * ``gelu`` defaults to the exact erf form (PyTorch/Keras default), unlike
      ``jax.nn.gelu`` whose default is the tanh approximation.
    * ``leaky_relu``'s ``negative_slope`` defaults to 0.01 (PyTorch default).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def relu(x: jax.Array) -> jax.Array:
    """Rectified linear unit ``max(x, 0)``.

    Args:
        x: Input array.

    Returns:
        ``max(x, 0)``; the gradient at exactly 0 is 0.
    """
    return jax.nn.relu(x)


def sigmoid(x: jax.Array) -> jax.Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``.

    Args:
        x: Input array.

    Returns:
        Values in ``(0, 1)``.
    """
    return jax.nn.sigmoid(x)


def tanh(x: jax.Array) -> jax.Array:
    """Hyperbolic tangent.

    Args:
        x: Input array.

    Returns:
        Values in ``(-1, 1)``.
    """
    return jnp.tanh(x)


def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Numerically stable softmax along ``axis``.

    Args:
        x: Input array (logits).
        axis: Axis to normalise over.

    Returns:
        Non-negative values summing to 1 along ``axis``.
    """
    return jax.nn.softmax(x, axis=axis)


def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """Leaky ReLU: ``x`` for ``x >= 0`` else ``negative_slope * x``.

    Args:
        x: Input array.
        negative_slope: Slope for negative inputs.

    Returns:
        The activated array.
    """
    x = jnp.asarray(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def gelu(x: jax.Array, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit.

    Args:
        x: Input array.
        approximate: If False (default), the exact ``x * Phi(x)`` with the
            normal CDF via erf; if True, the tanh approximation.

    Returns:
        The activated array.
    """
    return jax.nn.gelu(x, approximate=approximate)


__all__ = ["gelu", "leaky_relu", "relu", "sigmoid", "softmax", "tanh"]
