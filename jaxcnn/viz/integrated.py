"""Integrated gradients (Sundararajan, Taly and Yan 2017, "Axiomatic Attribution for Deep
Networks") and the baselines it integrates from.

Contract: `integrated_gradients(model, variables, images, class_index, ...)` returns
`IntegratedGradients(attributions, completeness_error)`: signed (N, H, W, C)
attributions `(x - baseline) * sum_k w_k * grad f(baseline + a_k (x - baseline))` of the
logit of `class_index`, and per image `sum(attributions) - (f(x) - f(baseline))`, which
the method's completeness axiom says is 0 (it shrinks as `steps` grow). The path points
`a_k` and weights `w_k` follow captum (`riemann_left`, `riemann_right`, `riemann_middle`,
`riemann_trapezoid`, `gausslegendre`), so results match captum's on the same network,
except that the trapezoid weights here sum to 1 (captum's sum to (n - 1)/n).
The whole path is one compiled call: `chunk` path points at a time go through the model
as one batch of `chunk` x N images (a loop over chunks bounds memory by `chunk` copies of
the batch). `heatmap(attributions)` turns
attributions into the (N, H, W) maps in [0, 1] the plot helpers overlay.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import compiler
from jaxcnn.data.arrays import unit_float
from jaxcnn.ops.conv import conv2d
from jaxcnn.ops.kernels import gaussian_blur
from jaxcnn.viz.attribution import check_images, class_scores, target_classes

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
           "gausslegendre")
BASELINES = ("black", "blurred", "uniform")


class IntegratedGradients(NamedTuple):
    """Attributions (N, H, W, C) and the completeness error (N,) of each image."""

    attributions: jax.Array
    completeness_error: jax.Array


def path_points(steps: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The path positions `a_k` in [0, 1] and their weights `w_k` (summing to 1).

    Args:
      steps: number of points.
      method: one of METHODS (captum's names and rules; the trapezoid rule's weights sum
        to 1 here).

    Returns:
      (alphas, weights), float32 arrays of `steps` values.
    """
    n = steps
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return (0.5 * (x + 1)).astype(np.float32), (0.5 * w).astype(np.float32)
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("riemann_trapezoid needs steps >= 2 (both ends of the path).")
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] = 0.5 / (n - 1)
        return np.linspace(0, 1, n, dtype=np.float32), weights.astype(np.float32)
    starts = {"riemann_left": 0.0, "riemann_right": 1.0 / n, "riemann_middle": 0.5 / n}
    start = starts[method]
    alphas = np.linspace(start, start + 1 - 1.0 / n, n, dtype=np.float32)
    return alphas, np.full(n, 1.0 / n, np.float32)


def blurred(images: jax.Array, sigma: float) -> jax.Array:
    """Each image blurred by a Gaussian of `sigma` pixels (edges replicated): the baseline
    that removes detail but keeps colour (Sturmfels et al. 2020, "Visualizing the Impact of
    Feature Attribution Baselines")."""
    size = 2 * math.ceil(3 * sigma) + 1
    channels = images.shape[-1]
    kernel = gaussian_blur(size, sigma, channels=1)[..., :1, :1]
    kernel = jnp.tile(kernel, (1, 1, 1, channels))  # depthwise: one filter per channel
    pad = size // 2
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    return conv2d(padded, kernel, groups=channels)


def _baseline(images, baseline, key, sigma) -> jax.Array:
    if isinstance(baseline, str):
        if baseline == "black":
            return jnp.zeros_like(images)
        if baseline == "blurred":
            return blurred(images, sigma)
        return jax.random.uniform(key, images.shape, images.dtype)  # "uniform"
    return jnp.broadcast_to(jnp.asarray(baseline, images.dtype), images.shape)


@compiler.jit(static_argnums=(0, 5))
def _integrated(model, variables, images, class_index, baseline, chunk, alphas, weights):
    classes = target_classes(model, variables, images, class_index)

    def logit(x, row_classes):  # (rows,) logit of each row's class
        return class_scores(model.apply(variables, x), row_classes)

    tiled_classes = jnp.tile(classes, chunk)  # a chunk's points, image after image

    def chunk_sum(carry, part):
        chunk_alphas, chunk_weights = part
        # One plain batch of chunk x N path points (not a vmap over the points: the model
        # then runs as it does in training, faster on CPU).
        points = baseline[None] + chunk_alphas[:, None, None, None, None] * (images - baseline)
        flat = points.reshape(-1, *images.shape[1:])
        grads = jax.grad(lambda x: logit(x, tiled_classes).sum())(flat).reshape(points.shape)
        return carry + jnp.tensordot(chunk_weights, grads, axes=1), None

    parts = (alphas.reshape(-1, chunk), weights.reshape(-1, chunk))
    total, _ = jax.lax.scan(chunk_sum, jnp.zeros_like(images), parts)
    attributions = (images - baseline) * total
    expected = logit(images, classes) - logit(baseline, classes)
    return IntegratedGradients(attributions, attributions.sum(axis=(1, 2, 3)) - expected)


def integrated_gradients(model: nn.Module, variables, images: jax.Array, class_index=None, *,
                         baseline="black", steps: int = 64, method: str = "gausslegendre",
                         chunk: int | None = None, key: jax.Array | None = None,
                         blur_sigma: float = 5.0) -> IntegratedGradients:
    """Integrated gradients of the logit of `class_index` along the straight path from a
    baseline to each image.

    Args:
      model: a jaxcnn model (or any linen module with `input_shape` and `num_classes`).
      variables: its variables.
      images: (N, H, W, C) batch, float in [0, 1] or uint8.
      class_index: class to explain; an int, one per image, or None for the predicted one.
      baseline: "black" (zeros), "blurred" (a Gaussian blur of the image, `blur_sigma`
        pixels), "uniform" (noise in [0, 1) from `key`), or an array broadcastable to the
        images (e.g. the dataset mean).
      steps: points on the path.
      method: how they are placed and weighted, one of METHODS.
      chunk: path points computed at once (default: all); memory grows with it.
      key: draws the "uniform" baseline.
      blur_sigma: the "blurred" baseline's Gaussian, in pixels.

    Returns:
      `IntegratedGradients(attributions (N, H, W, C), completeness_error (N,))`.

    Raises:
      ValueError: a bad method, baseline (name or shape), steps, chunk, key or class.
    """
    check_images(model, images, class_index)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    chunk = steps if chunk is None else chunk
    if not isinstance(chunk, (int, np.integer)) or not 1 <= chunk <= steps:
        raise ValueError(f"chunk must be an int from 1 to steps={steps}, got {chunk!r}.")
    images = unit_float(jnp.asarray(images))
    if isinstance(baseline, str):
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)} or an array, got "
                             f"{baseline!r}.")
        if baseline == "uniform" and key is None:
            raise ValueError('baseline="uniform" draws noise: pass key=jax.random.key(seed).')
        if baseline == "blurred" and not blur_sigma > 0:
            raise ValueError(f"blur_sigma must be positive, got {blur_sigma!r}.")
    elif not _broadcasts(np.shape(baseline), images.shape):
        raise ValueError(f"baseline of shape {np.shape(baseline)} does not broadcast to the "
                         f"images' {tuple(images.shape)}; give one per image, one image, or "
                         "one value per channel.")
    alphas, weights = path_points(int(steps), method)
    padding = -len(alphas) % chunk  # whole chunks; the extra points weigh nothing
    alphas = np.concatenate([alphas, np.zeros(padding, np.float32)])
    weights = np.concatenate([weights, np.zeros(padding, np.float32)])
    start = _baseline(images, baseline, key, blur_sigma)
    return _integrated(model, variables, images, class_index, start, int(chunk), alphas, weights)


def _broadcasts(shape: tuple, target: tuple) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def heatmap(attributions: jax.Array) -> jax.Array:
    """(N, H, W) maps in [0, 1] of signed (N, H, W, C) attributions: the absolute values
    summed over channels, scaled per image by its maximum (for `plot.overlay`)."""
    maps = jnp.abs(jnp.asarray(attributions)).sum(axis=-1)
    peak = maps.reshape(maps.shape[0], -1).max(axis=1)
    return maps / jnp.maximum(peak, 1e-12)[:, None, None]
