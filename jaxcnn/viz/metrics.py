"""Metrics that say which explanation to trust: deletion and insertion (Petsiuk, Das and
Saenko 2018, "RISE: Randomized Input Sampling for Explanation of Black-box Models"),
infidelity and max-sensitivity (Yeh et al. 2019, "On the (In)fidelity and Sensitivity of
Explanations").

Contract: `deletion(model, variables, images, maps, class_index)` removes pixels (all
channels, replaced by `baseline`) in the order of decreasing map value, `steps` equal
shares at a time, and records the class probability after each share; `insertion`
starts from a blurred copy (or `start`) and puts the image's pixels back in the same
order. Each returns `Curve(auc, curve)`: the (N, steps + 1) probabilities and their area
(trapezoid over the removed fraction in [0, 1]). A faithful map has a low deletion AUC
(the probability falls as soon as its top pixels go) and a high insertion AUC. Ties in
a map are broken by pixel order (row by row). All steps of a batch are one compiled call,
`chunk` steps at a time.

`infidelity(model, variables, images, attributions, class_index, key=)` is the mean, over
Gaussian perturbations I, of (sum(I * attributions) - (f(x) - f(x - I)))^2 for the logit
f of the class (lower: the attributions predict the model's response better), as
captum's `infidelity`. `max_sensitivity(explain, images, key=)` is the largest relative
change, ||explain(x + d) - explain(x)|| / ||explain(x)||, over uniform perturbations d
in [-radius, radius] (lower: a stabler explanation), as captum's `sensitivity_max`; every
perturbed copy is explained in one call of `explain`.
"""
from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import compiler
from jaxcnn.data.arrays import unit_float
from jaxcnn.viz.attribution import check_images, class_scores, target_classes
from jaxcnn.viz.integrated import blurred


class Curve(NamedTuple):
    """Area under the curve (N,) and the curve (N, steps + 1) of class probabilities."""

    auc: jax.Array
    curve: jax.Array


def pixel_ranks(maps: jax.Array) -> jax.Array:
    """(N, H, W) rank of every pixel, 0 for the highest map value (ties: row order)."""
    flat = maps.reshape(maps.shape[0], -1)
    order = jnp.argsort(-flat, axis=1, stable=True)
    ranks = jnp.argsort(order, axis=1, stable=True)
    return ranks.reshape(maps.shape)


@compiler.jit(static_argnums=(0, 6, 7))
def _curve(model, variables, images, class_index, maps, other, steps, chunk):
    """Probabilities with the top k/steps of the pixels taken from `other` (k = 0..steps)."""
    classes = target_classes(model, variables, images, class_index)
    ranks = pixel_ranks(maps)[..., None]
    pixels = ranks.shape[1] * ranks.shape[2]

    def probability(k):
        swapped = ranks < jnp.round(k * pixels / steps)
        mixed = jnp.where(swapped, other, images)
        probs = jax.nn.softmax(model.apply(variables, mixed), axis=-1)
        return class_scores(probs, classes)

    count = steps + 1
    ks = jnp.arange(count + (-count % chunk), dtype=jnp.float32).reshape(-1, chunk)
    curve = jax.lax.map(jax.vmap(probability), ks).reshape(-1, images.shape[0])[:count].T
    auc = (curve.sum(axis=1) - (curve[:, 0] + curve[:, -1]) / 2) / steps
    return Curve(auc, curve)


def _checked(model, images, maps, class_index, steps, chunk):
    check_images(model, images, class_index)
    maps = jnp.asarray(maps)
    if maps.shape != tuple(images.shape[:3]):
        raise ValueError(f"maps must be (N, H, W) = {tuple(images.shape[:3])}, one value per "
                         f"pixel, got {maps.shape}; sum signed (N, H, W, C) attributions "
                         "over channels first (integrated.heatmap).")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    chunk = steps + 1 if chunk is None else chunk
    if not isinstance(chunk, (int, np.integer)) or not 1 <= chunk <= steps + 1:
        raise ValueError(f"chunk must be an int from 1 to steps + 1 = {steps + 1}, got "
                         f"{chunk!r}.")
    return maps, int(chunk)


def deletion(model: nn.Module, variables, images: jax.Array, maps: jax.Array,
             class_index=None, *, steps: int = 32, baseline: float = 0.0,
             chunk: int | None = None) -> Curve:
    """The class probability as the pixels a map ranks highest are removed.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      images: (N, H, W, C) batch, float in [0, 1] or uint8.
      maps: (N, H, W) attribution maps (higher: more important).
      class_index: class to explain; an int, one per image, or None for the predicted one.
      steps: equal shares of the pixels removed one after another.
      baseline: the value removed pixels take (0: black).
      chunk: steps computed at once (default: all).

    Returns:
      `Curve(auc (N,), curve (N, steps + 1))`; lower AUC: a more faithful map.

    Raises:
      ValueError: maps of the wrong shape, bad steps or chunk, a bad class.
    """
    maps, chunk = _checked(model, images, maps, class_index, steps, chunk)
    images = unit_float(jnp.asarray(images))
    other = jnp.full_like(images, baseline)
    return _curve(model, variables, images, class_index, maps, other, int(steps), chunk)


def insertion(model: nn.Module, variables, images: jax.Array, maps: jax.Array,
              class_index=None, *, steps: int = 32, start: jax.Array | None = None,
              blur_sigma: float = 5.0, chunk: int | None = None) -> Curve:
    """The class probability as the pixels a map ranks highest are put back into a
    blurred copy of the image.

    Args:
      model, variables, images, maps, class_index, steps, chunk: as in `deletion`.
      start: the image the pixels are inserted into; default the image blurred by a
        Gaussian of `blur_sigma` pixels (`integrated.blurred`), as in the paper.
      blur_sigma: that blur.

    Returns:
      `Curve(auc (N,), curve (N, steps + 1))`; higher AUC: a more faithful map.

    Raises:
      ValueError: as `deletion`, and a `start` of another shape than the images.
    """
    maps, chunk = _checked(model, images, maps, class_index, steps, chunk)
    images = unit_float(jnp.asarray(images))
    if start is None:
        start = blurred(images, blur_sigma)
    elif np.shape(start) != tuple(images.shape):
        raise ValueError(f"start must have the images' shape {tuple(images.shape)}, got "
                         f"{np.shape(start)}.")
    classes = target_classes(model, variables, images, class_index)  # of the real images
    # Inserting the top pixels into `start` is deleting them from `start` towards the image.
    return _curve(model, variables, jnp.asarray(start, images.dtype), classes, maps, images,
                  int(steps), chunk)


@compiler.jit(static_argnums=(0, 6))
def _infidelity(model, variables, images, class_index, attributions, perturbations, normalize):
    classes = target_classes(model, variables, images, class_index)

    def logit(x):
        return class_scores(model.apply(variables, x), classes)

    clear = logit(images)

    def one(perturbation):  # (N,) predicted and actual change for one perturbation
        predicted = (perturbation * attributions).sum(axis=(1, 2, 3))
        return predicted, clear - logit(images - perturbation)

    predicted, actual = jax.lax.map(one, perturbations)  # (samples, N)
    if normalize:  # the scale that best fits the attributions to the changes (the paper's)
        beta = (predicted * actual).mean(axis=0) / jnp.maximum((predicted ** 2).mean(axis=0),
                                                                 1e-30)
        predicted = beta * predicted
    return ((predicted - actual) ** 2).mean(axis=0)


def infidelity(model: nn.Module, variables, images: jax.Array, attributions: jax.Array,
               class_index=None, *, key: jax.Array, samples: int = 16, noise: float = 0.1,
               normalize: bool = False) -> jax.Array:
    """How badly attributions predict the logit's change under random perturbations.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      images: (N, H, W, C) batch, float in [0, 1] or uint8.
      attributions: (N, H, W, C) signed attributions of the images.
      class_index: class explained; an int, one per image, or None for the predicted one.
      key: draws the perturbations.
      samples: perturbations per image.
      noise: their standard deviation (Gaussian, per pixel and channel).
      normalize: rescale the attributions by the best-fitting factor first (the paper's
        definition; without it, captum's default).

    Returns:
      (N,) infidelity; lower is better.

    Raises:
      ValueError: attributions of another shape than the images, bad samples or noise.
    """
    check_images(model, images, class_index)
    if np.shape(attributions) != tuple(np.shape(images)):
        raise ValueError(f"attributions must have the images' shape {tuple(np.shape(images))}, "
                         f"got {np.shape(attributions)}.")
    if not isinstance(samples, (int, np.integer)) or samples < 1 or not noise > 0:
        raise ValueError(f"need samples >= 1 and noise > 0, got samples={samples!r}, "
                         f"noise={noise!r}.")
    images = unit_float(jnp.asarray(images))
    perturbations = noise * jax.random.normal(key, (int(samples), *images.shape), images.dtype)
    return _infidelity(model, variables, images, class_index,
                       jnp.asarray(attributions, images.dtype), perturbations, bool(normalize))


def max_sensitivity(explain, images: jax.Array, *, key: jax.Array, samples: int = 10,
                    radius: float = 0.02) -> jax.Array:
    """The largest relative change of an explanation when the images move a little.

    Args:
      explain: images -> explanations with one row per image (e.g.
        `lambda x: viz.saliency(model, variables, x, 3)`); called once, on the images and
        all their perturbed copies together (N * (samples + 1) rows).
      images: (N, H, W, C) batch, float in [0, 1] or uint8.
      key: draws the perturbations.
      samples: perturbed copies per image.
      radius: each pixel moves by a uniform draw in [-radius, radius].

    Returns:
      (N,) max over the copies of ||explain(x + d) - explain(x)|| / ||explain(x)||;
      lower is better.

    Raises:
      ValueError: bad samples or radius, or an explanation without one row per image.
    """
    if not isinstance(samples, (int, np.integer)) or samples < 1 or not radius > 0:
        raise ValueError(f"need samples >= 1 and radius > 0, got samples={samples!r}, "
                         f"radius={radius!r}.")
    images = unit_float(jnp.asarray(images))
    count = images.shape[0]
    moves = jax.random.uniform(key, (int(samples), *images.shape), images.dtype, -radius, radius)
    explained = jnp.asarray(explain(jnp.concatenate([images, *(images + moves)])))
    if explained.shape[0] != count * (int(samples) + 1):
        raise ValueError(f"explain must return one explanation per image; it returned "
                         f"{explained.shape[0]} rows for {count * (int(samples) + 1)} images.")
    flat = explained.reshape(int(samples) + 1, count, -1)
    change = jnp.linalg.norm(flat[1:] - flat[0], axis=-1).max(axis=0)
    return change / jnp.maximum(jnp.linalg.norm(flat[0], axis=-1), 1e-30)

