"""Feature maps (intermediate activations) and filter weights, ready to plot.

Contract: `feature_maps` returns the activations of named layers for a batch (one jitted
forward pass); `most_active` orders channels by mean activation; `filter_weights`
returns a conv layer's kernels as (O, kh, kw, I) images scaled to [0, 1] per filter.
Unknown names are refused with the list of valid ones.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import compiler
from jaxcnn.data.arrays import unit_float
from jaxcnn.viz.render import activation_shapes


@compiler.jit(static_argnums=(0, 3))
def _forward(model, variables, images, layers):
    _, acts = model.apply(variables, images, capture_activations=True)
    return {name: acts[name] for name in layers}


def feature_maps(model: nn.Module, variables, images: jax.Array,
                 layers: str | Sequence[str]) -> dict[str, jax.Array]:
    """Activations of the named layers for `images`.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      images: (N, H, W, C) batch.
      layers: a layer name or several (see `jaxcnn.models.layer_names`).

    Returns:
      layer name -> activation array ((N, h, w, C) for conv-like layers), in the order of
      `layers`.

    Raises:
      ValueError: an unknown layer name, listing the model's layers.
    """
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    known = [name for name in activation_shapes(model) if name not in ("input",)]
    for layer in layers:
        if layer not in known:
            raise ValueError(f"unknown layer {layer!r}; the model's layers are: {', '.join(known)}.")
    maps = _forward(model, variables, unit_float(jnp.asarray(images)), layers)
    return {name: maps[name] for name in layers}  # jit returns dicts with sorted keys


def most_active(maps: jax.Array, count: int) -> np.ndarray:
    """Indices of the `count` channels with the largest mean activation, highest first.

    Args:
      maps: (h, w, C) feature maps of one image (or (N, h, w, C), averaged over N).
      count: how many channels.
    """
    means = np.asarray(maps).reshape(-1, maps.shape[-1]).mean(axis=0)
    return np.argsort(-means, kind="stable")[:count]


def _conv_kernels(params: Mapping) -> dict[str, np.ndarray]:
    """Module name -> 4-D kernel, in the order the modules were created (network order)."""
    found = {}
    for name, sub in params.items():
        if isinstance(sub, Mapping):
            kernel = sub.get("kernel")
            if kernel is not None and np.ndim(kernel) == 4:
                found[name] = np.asarray(kernel)
            else:
                found.update({f"{name}/{k}": v for k, v in _conv_kernels(sub).items()})
    return found


def filter_weights(variables, layer: str | None = None) -> np.ndarray:
    """A conv layer's kernels as images, each scaled to [0, 1] on its own.

    Args:
      variables: a model's variables (with "params").
      layer: the conv module's name (e.g. "conv1"); default the first conv layer.

    Returns:
      (O, kh, kw, I) array: filter o is an image of kh x kw pixels with I channels.

    Raises:
      ValueError: a name that is not a conv layer, listing the conv layers.
    """
    kernels = _conv_kernels(variables["params"])
    if not kernels:
        raise ValueError("the variables hold no conv kernels (4-D 'kernel' parameters).")
    name = next(iter(kernels)) if layer is None else layer
    if name not in kernels:
        raise ValueError(f"unknown conv layer {layer!r}; conv layers: {', '.join(kernels)}.")
    w = np.transpose(kernels[name], (3, 0, 1, 2))  # HWIO -> O, H, W, I
    low = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - low
    return (w - low) / np.where(span > 0, span, 1.0)
