"""The model-randomization sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency
Maps"): an explanation that describes the model must change when the model's weights do.

Contract: `model_randomization(model, variables, images, explain, key=)` re-initializes the
model's layers one after another from the top (logits first; "cascading"), keeping the
layers below trained, and after each step gives the Spearman rank correlation of every
image's map with its map from the trained model: `{layer: (N,) correlations}` in the
order the layers were randomized. A method that passes falls towards 0 as the layers go;
one that stays high (guided backprop does) shows the input's edges rather than what the
model learned. Maps are compared by their absolute values (the paper's main setting);
each step explains the whole batch in one call of `explain`.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn.data.arrays import unit_float


def spearman(a: jax.Array, b: jax.Array) -> jax.Array:
    """(N,) Spearman rank correlation of the rows of `a` and `b` (flattened per row), ties
    given their mean rank."""
    return _pearson(_ranks(a.reshape(a.shape[0], -1)), _ranks(b.reshape(b.shape[0], -1)))


def _ranks(x: jax.Array) -> jax.Array:
    """Ranks 0..M-1 along each row, tied values sharing their mean rank."""
    order = jnp.argsort(x, axis=1)
    sorted_x = jnp.take_along_axis(x, order, axis=1)
    positions = jnp.broadcast_to(jnp.arange(x.shape[1], dtype=jnp.float32), x.shape)

    def mean_rank(row, pos):  # mean position of every run of equal values
        starts = jnp.concatenate([jnp.array([True]), row[1:] != row[:-1]])
        group = jnp.cumsum(starts) - 1
        sums = jax.ops.segment_sum(pos, group, num_segments=row.shape[0])
        counts = jax.ops.segment_sum(jnp.ones_like(pos), group, num_segments=row.shape[0])
        return (sums / jnp.maximum(counts, 1))[group]

    tied = jax.vmap(mean_rank)(sorted_x, positions)
    ranks = jnp.zeros_like(tied)
    return jax.vmap(lambda r, o, t: r.at[o].set(t))(ranks, order, tied)


def _pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = jnp.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return jnp.where(denominator > 0, (a * b).sum(axis=1) / jnp.maximum(denominator, 1e-30),
                     0.0)


def model_randomization(model: nn.Module, variables, images: jax.Array,
                        explain: Callable[[dict, jax.Array], jax.Array], *,
                        key: jax.Array) -> dict[str, jax.Array]:
    """Cascading randomization: the maps' rank correlation with the trained model's as
    layers are re-initialized from the top.

    Args:
      model: a jaxcnn model (its `init` draws the random weights).
      variables: its trained variables.
      images: (N, H, W, C) batch, float in [0, 1] or uint8.
      explain: (variables, images) -> (N, ...) maps, e.g.
        `lambda v, x: viz.saliency(model, v, x, class_index)`.
      key: draws the random weights.

    Returns:
      {layer: (N,) Spearman correlation of |map| with the trained model's |map|}, one entry
      per parameterized layer, from the logits down; each entry has that layer and every
      one above it re-initialized.

    Raises:
      ValueError: variables without parameters.
    """
    params = variables.get("params", {})
    if not params:
        raise ValueError("variables hold no 'params' to randomize; pass the model's "
                         "variables as init or a checkpoint gives them.")
    images = unit_float(jnp.asarray(images))
    fresh = model.init(key, images[:1])["params"]
    reference = jnp.abs(jnp.asarray(explain(variables, images)))
    results, current = {}, dict(params)
    for layer in reversed(list(params)):  # Flax keeps the layers in the order they run
        current[layer] = fresh[layer]
        maps = jnp.abs(jnp.asarray(explain({**variables, "params": current}, images)))
        results[layer] = spearman(reference, maps)
    return results
