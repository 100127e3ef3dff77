"""Perturbation attribution: occlusion (Zeiler and Fergus 2014, "Visualizing and
Understanding Convolutional Networks"), how much the logit drops when a window of the
image is covered.

Contract: `occlusion(model, variables, images, class_index, window=, stride=, baseline=)`
slides a `window` (height, width; every channel at once) over each image with `stride`,
replaces what it covers by `baseline`, and gives every pixel the mean, over the windows
that cover it, of `f(x) - f(occluded x)` for the logit of `class_index`: signed
(N, H, W, C) attributions, the same in every channel, as captum's `Occlusion` with a
window spanning the channels. Pixels no window covers (when the stride does not tile the
image) get 0. Every window of every image is one forward pass, all in one compiled call,
`chunk` windows at a time (memory grows with `chunk` copies of the batch).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import compiler
from jaxcnn.data.arrays import unit_float
from jaxcnn.viz.attribution import check_images, class_scores, target_classes


def window_masks(image_hw: tuple[int, int], window: tuple[int, int],
                 stride: tuple[int, int]) -> np.ndarray:
    """(P, H, W) float32 masks, 1 inside each of the P window positions, row by row."""
    (height, width), (wh, ww), (sh, sw) = image_hw, window, stride
    tops, lefts = range(0, height - wh + 1, sh), range(0, width - ww + 1, sw)
    masks = np.zeros((len(tops) * len(lefts), height, width), np.float32)
    for p, (top, left) in enumerate((t, l) for t in tops for l in lefts):
        masks[p, top:top + wh, left:left + ww] = 1.0
    return masks


@compiler.jit(static_argnums=(0, 6))
def _occlusion(model, variables, images, class_index, baseline, masks, chunk):
    classes = target_classes(model, variables, images, class_index)

    clear = class_scores(model.apply(variables, images), classes)
    count_images = images.shape[0]
    tiled_classes = jnp.tile(classes, chunk)

    def chunk_sum(total, chunk_masks):
        # One plain batch of chunk x N occluded images (not a vmap over windows: the
        # model then runs as it does in training: 1.2-1.6x faster on a 2-core Xeon).
        covered = chunk_masks[:, None, :, :, None]
        mixed = (images[None] * (1 - covered) + baseline * covered).reshape(-1, *images.shape[1:])
        occluded = class_scores(model.apply(variables, mixed), tiled_classes)
        d = clear[None] - occluded.reshape(chunk, count_images)  # (chunk, N)
        return total + jnp.einsum("pn,phw->nhw", d, chunk_masks), None

    parts = masks.reshape(-1, chunk, *masks.shape[1:])
    total, _ = jax.lax.scan(chunk_sum, jnp.zeros(images.shape[:3], images.dtype), parts)
    count = masks.sum(axis=0)
    mean = jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)
    return jnp.broadcast_to(mean[..., None], images.shape)


def occlusion(model: nn.Module, variables, images: jax.Array, class_index=None, *,
              window: int | tuple[int, int] = 8, stride: int | tuple[int, int] = 4,
              baseline: float = 0.0, chunk: int | None = None) -> jax.Array:
    """Occlusion attributions: the mean logit drop of the windows that cover each pixel.

    Args:
      model: a jaxcnn model (or any linen module with `input_shape` and `num_classes`).
      variables: its variables.
      images: (N, H, W, C) batch, float in [0, 1] or uint8.
      class_index: class to explain; an int, one per image, or None for the predicted one.
      window: (height, width) of the covered square, or an int for a square.
      stride: (vertical, horizontal) step between windows, or an int.
      baseline: the value the window is filled with (0: black).
      chunk: windows computed at once (default: all).

    Returns:
      (N, H, W, C) signed attributions (`integrated.heatmap` makes overlayable maps).

    Raises:
      ValueError: a window larger than the image, a bad stride or chunk, a bad class.
    """
    check_images(model, images, class_index)
    window, stride = _pair(window, "window"), _pair(stride, "stride")
    height, width = model.input_shape[:2]
    if window[0] > height or window[1] > width:
        raise ValueError(f"window {window} is larger than the {height}x{width} images; use a "
                         "window of at most the image size.")
    masks = window_masks((height, width), window, stride)
    chunk = len(masks) if chunk is None else chunk
    if not isinstance(chunk, (int, np.integer)) or not 1 <= chunk <= len(masks):
        raise ValueError(f"chunk must be an int from 1 to the {len(masks)} window positions, "
                         f"got {chunk!r}.")
    padding = -len(masks) % chunk  # whole chunks; empty masks change nothing
    masks = np.concatenate([masks, np.zeros((padding, height, width), np.float32)])
    return _occlusion(model, variables, unit_float(jnp.asarray(images)), class_index,
                      jnp.float32(baseline), masks, int(chunk))


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or (height, width) of positive ints, "
                         f"got {value!r}.")
    return int(pair[0]), int(pair[1])
