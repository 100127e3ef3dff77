"""Losses on logits and integer labels, with an optional mask of real examples.

Contract: each loss returns the per-example values (shape (B,)), computed in float32
whatever the compute dtype of the logits; reductions and masks are applied by the steps,
so padded evaluation rows never count. `make_loss(name, label_smoothing)` builds one by
name; an unknown name fails listing the valid ones.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _targets(logits: jax.Array, labels: jax.Array, label_smoothing: float) -> jax.Array:
    """One-hot targets, smoothed towards the uniform distribution by `label_smoothing`."""
    one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
    return optax.smooth_labels(one_hot, label_smoothing) if label_smoothing else one_hot


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array,
                          label_smoothing: float = 0.0) -> jax.Array:
    """Cross-entropy between softmax(logits) and (optionally smoothed) integer labels.

    Args:
      logits: (B, K) unnormalized scores.
      labels: (B,) integer classes in [0, K).
      label_smoothing: weight moved from the true class to the uniform distribution.

    Returns:
      (B,) per-example losses.
    """
    logits = logits.astype(jnp.float32)
    if not label_smoothing:
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return optax.softmax_cross_entropy(logits, _targets(logits, labels, label_smoothing))


def total_error(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """The "total error" of seed 003: sum over classes of 1/2 (target - softmax(logits))^2.

    Args:
      logits: (B, K) unnormalized scores.
      labels: (B,) integer classes in [0, K).
      label_smoothing: weight moved from the true class to the uniform distribution.

    Returns:
      (B,) per-example losses.
    """
    logits = logits.astype(jnp.float32)
    error = _targets(logits, labels, label_smoothing) - jax.nn.softmax(logits)
    return 0.5 * jnp.sum(error ** 2, axis=-1)


_LOSSES: dict[str, Callable[..., jax.Array]] = {
    "cross_entropy": softmax_cross_entropy,
    "total_error": total_error,
}


def loss_names() -> list[str]:
    """Names accepted by `make_loss`."""
    return sorted(_LOSSES)


@functools.lru_cache(maxsize=None)
def make_loss(name: str, label_smoothing: float = 0.0) -> LossFn:
    """A per-example loss `(logits, labels) -> (B,)` by name.

    Args:
      name: one of `loss_names()`.
      label_smoothing: in [0, 1); 0 keeps the one-hot targets.

    Returns:
      The loss function; equal arguments give the same object, so steps compiled for
      it are reused by later runs in the same process.
    """
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(loss_names())}.")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}; "
                         "use e.g. 0.1, or 0 for plain one-hot targets.")
    return functools.partial(_LOSSES[name], label_smoothing=label_smoothing)


def masked_mean(values: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Mean of `values` over the rows where `mask` is True (all rows if no mask).

    Args:
      values: (B,) values.
      mask: (B,) booleans or None.

    Returns:
      A scalar.
    """
    if mask is None:
        return values.mean()
    mask = mask.astype(values.dtype)
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)
