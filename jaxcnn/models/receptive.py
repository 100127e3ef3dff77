"""Receptive fields of a model's named feature maps, analytic and measured.

Contract: along H (and identically along W), unit `i` of a named feature map sees the
input pixels `start + i * jump` to `start + i * jump + size - 1`, where
  size  = receptive-field size in input pixels,
  jump  = input pixels between neighbouring units (the product of the strides),
  start = first input pixel seen by unit 0 (negative when it reaches into the padding).
`receptive_field` computes them from the model's `spatial_layers()` with the recurrence
  size' = size + (kernel - 1) * jump,  jump' = jump * stride,  start' = start - pad * jump;
residual blocks count their longest path, which contains the shortcut's field.
`empirical_receptive_field` measures the same thing from the gradient of one unit with
respect to the input. Layers after flattening or global pooling see the whole image and
are not listed.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import ops
from jaxcnn.layers import MaxPool2D
from jaxcnn.models.base import output_size, smallest_input_size


class ReceptiveField(NamedTuple):
    """Receptive field of one named feature map (see the module docstring).

    Attributes:
      size: receptive-field size in input pixels.
      jump: input pixels between neighbouring units.
      start: first input pixel seen by unit 0 (negative inside the zero padding).
      feature_size: spatial size of the feature map for the given input size.
    """

    size: int
    jump: int
    start: int
    feature_size: int

    def span(self, unit: int, image_size: int) -> tuple[int, int]:
        """First and last input pixel seen by `unit`, clipped to the image (padding ignored)."""
        first = self.start + unit * self.jump
        return max(first, 0), min(first + self.size - 1, image_size - 1)


def _geometry(model: nn.Module, input_shape: Sequence[int] | None):
    if not hasattr(model, "spatial_layers"):
        raise TypeError(f"{type(model).__name__} has no spatial_layers(); receptive fields need a "
                        "jaxcnn model (see jaxcnn.models.names()).")
    shape = tuple(input_shape or model.input_shape)
    layers = model.spatial_layers()
    smallest = smallest_input_size(layers)
    if min(shape[:2]) < smallest:
        raise ValueError(f"input_shape={shape} is smaller than {type(model).__name__} accepts; "
                         f"use at least {smallest}x{smallest}.")
    return shape, layers


def receptive_field(model: nn.Module, input_shape: Sequence[int] | None = None
                    ) -> dict[str, ReceptiveField]:
    """Analytic receptive field of every named feature map of `model`.

    Args:
      model: a jaxcnn model (it describes its geometry with `spatial_layers()`).
      input_shape: (H, W, C) for the feature sizes; defaults to `model.input_shape`.
        Only H is used (models use square windows, so W behaves the same).

    Returns:
      {layer name: ReceptiveField}, in network order.

    Raises:
      TypeError: for a model without `spatial_layers()`.
      ValueError: for an input smaller than the model accepts.
    """
    shape, layers = _geometry(model, input_shape)
    size, jump, start, n = 1, 1, 0, shape[0]
    fields = {}
    for name, windows in layers:
        for w in windows:
            size, start, jump = size + (w.kernel - 1) * jump, start - w.padding * jump, jump * w.stride
        n = output_size(n, windows)
        fields[name] = ReceptiveField(size, jump, start, n)
    return fields


def _probe_variables(variables):
    """Weights under which every input pixel in a field has a strictly positive gradient.

    Kernels average their window (all entries 1/fan_in), biases are zero and BatchNorm is
    the identity up to its epsilon: with a positive input every relu is active, nothing
    cancels, and magnitudes stay near 1 however deep the network.
    """
    def probe(path, leaf):
        name = jax.tree_util.keystr(path[-1:])
        if "kernel" in name:
            return jnp.full(leaf.shape, 1.0 / np.prod(leaf.shape[:-1]), leaf.dtype)
        if "scale" in name or "var" in name:
            return jnp.ones_like(leaf)
        return jnp.zeros_like(leaf)

    return jax.tree_util.tree_map_with_path(probe, variables)


def _average_instead_of_max(next_fun, args, kwargs, context):
    """Swaps max pooling for average pooling of the same windows.

    The gradient of a max reaches only the winner of each window, which would hide most
    of the field; an average reaches every cell, so the measured region is the field.
    """
    module = context.module
    if isinstance(module, MaxPool2D) and context.method_name == "__call__":
        return ops.avg_pool(args[0], module.window, module.strides, module.padding,
                            count_include_pad=True)
    return next_fun(*args, **kwargs)


def empirical_receptive_field(model: nn.Module, input_shape: Sequence[int] | None = None,
                              layers: Sequence[str] | None = None
                              ) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """Measures the receptive field of the centre unit of named feature maps by gradients.

    The gradient of unit (h // 2, w // 2, channel 0) of each layer with respect to an
    all-ones image is taken under probe weights (see `_probe_variables`, with max pools
    replaced by average pools); its non-zero region is the part of the field inside the
    image. Compare with `ReceptiveField.span(h // 2, H)` and `span(w // 2, W)`.

    Args:
      model: a jaxcnn model.
      input_shape: (H, W, C); defaults to `model.input_shape`.
      layers: names of feature maps to measure; defaults to all of `spatial_layers()`.

    Returns:
      {layer name: ((first row, last row), (first column, last column))} of input pixels.
    """
    shape, geometry = _geometry(model, input_shape)
    names = list(layers) if layers is not None else [name for name, _ in geometry]
    x = jnp.ones((1, *shape), jnp.float32)
    variables = _probe_variables(jax.eval_shape(model.init, jax.random.key(0), x))

    def features(image):
        with nn.intercept_methods(_average_instead_of_max):
            _, acts = model.apply(variables, image, capture_activations=True)
        return {name: acts[name] for name in names}

    acts, vjp = jax.vjp(features, x)
    cotangents = {name: jnp.zeros((len(names), *a.shape), a.dtype) for name, a in acts.items()}
    for row, name in enumerate(names):
        _, h, w, _ = acts[name].shape
        cotangents[name] = cotangents[name].at[row, 0, h // 2, w // 2, 0].set(1.0)
    grads = np.asarray(jax.vmap(lambda ct: vjp(ct)[0])(cotangents))
    regions = {}
    for row, name in enumerate(names):
        seen = np.abs(grads[row, 0]).sum(axis=-1) > 0
        rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
        regions[name] = ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1])))
    return regions
