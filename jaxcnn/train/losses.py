"""Losses on logits and integer labels, with an optional mask of real examples.

Contract: each loss returns the per-example values (shape (B,)); reductions and masks are
applied by the steps, so padded evaluation rows never count.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy between softmax(logits) and integer labels.

    Args:
      logits: (B, K) unnormalized scores.
      labels: (B,) integer classes in [0, K).

    Returns:
      (B,) per-example losses.
    """
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


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
