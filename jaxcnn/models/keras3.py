"""Keras 3 `.weights.h5` files, read by layer order as Keras itself loads them.

Keras 3 names a layer's group after its class and its place among the model's layers
("conv2d", "conv2d_1", ..., "batch_normalization_52", "dense") and stores its weights as
"vars/0", "vars/1", ... in the layer's own order (Conv2D: kernel, bias; BatchNormalization:
gamma, beta, moving_mean, moving_variance; Dense: kernel, bias). `read_keras3(model, path)`
pairs the i-th group of each class with the i-th layer of that class of the
keras.applications network `model` is built like (the order of Keras' `model.layers`) and
returns the arrays under keras.applications' layer names, for `convert`'s Keras rules.
Shapes are checked by the caller; a file with another number of layers is refused here.
"""
from __future__ import annotations

import os
import re

import flax.linen as nn
import numpy as np

from jaxcnn.models.resnet import ResNet
from jaxcnn.models.vgg import CONVS_PER_BLOCK, VGG

# The order of a layer's "vars" in a Keras 3 file.
VARS = {"conv2d": ("kernel", "bias"), "dense": ("kernel", "bias"),
        "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance")}


def is_keras3(path: str | os.PathLike) -> bool:
    """Keras 3 `.weights.h5`: a "layers" group, no Keras 1/2 "layer_names" attribute."""
    import h5py

    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        return "layer_names" not in root.attrs and "layers" in f


def keras_layer_order(model: nn.Module) -> list[str]:
    """keras.applications' names of the layers with weights, in Keras' `model.layers` order.

    Args:
      model: a `VGG` without BatchNorm, or a bottleneck `ResNet` (ResNet-50).

    Returns:
      ["block1_conv1", ...] or ["conv1_conv", "conv1_bn", "conv2_block1_1_conv", ...].
    """
    if isinstance(model, VGG) and not model.batch_norm:
        order = [f"block{b}_conv{c}" for b, convs in enumerate(CONVS_PER_BLOCK[model.depth], 1)
                 for c in range(1, convs + 1)]
        return order + (["fc1", "fc2", "predictions"] if model.include_top else [])
    if isinstance(model, ResNet) and model.bottleneck:
        order = ["conv1_conv", "conv1_bn"]
        for s, blocks in enumerate(model.stage_sizes, start=2):
            for b in range(1, blocks + 1):
                name = f"conv{s}_block{b}"
                order += [f"{name}_1_conv", f"{name}_1_bn", f"{name}_2_conv", f"{name}_2_bn"]
                if b == 1:  # Keras builds the shortcut's conv after the second conv
                    order += [f"{name}_0_conv", f"{name}_3_conv", f"{name}_0_bn", f"{name}_3_bn"]
                else:
                    order += [f"{name}_3_conv", f"{name}_3_bn"]
        return order + (["predictions"] if model.include_top else [])
    raise TypeError(f"Keras 3 .weights.h5 files load into VGG models without BatchNorm and "
                    f"bottleneck ResNets (ResNet-50); got {type(model).__name__}.")


def _kind(layer: str) -> str:
    """The Keras 3 group prefix of a keras.applications layer name."""
    if layer.endswith("_bn"):
        return "batch_normalization"
    return "dense" if layer in ("fc1", "fc2", "predictions") else "conv2d"


def _groups(names, kind: str) -> list[str]:
    """The file's groups of one layer class, in Keras' order ("conv2d", "conv2d_1", ...)."""
    found = [g for g in names if re.fullmatch(rf"{kind}(_\d+)?", g)]
    return sorted(found, key=lambda g: int(g[len(kind) + 1:] or 0) if g != kind else 0)


def read_keras3(model: nn.Module, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a Keras 3 `.weights.h5` into {"block1_conv1/kernel": array, ...}.

    Args:
      model: a `VGG` without BatchNorm or a bottleneck `ResNet`.
      path: the `.weights.h5` file.

    Returns:
      The arrays under keras.applications' names.

    Raises:
      ValueError: the file holds another number of layers of some class than `model`.
    """
    import h5py

    order = keras_layer_order(model)
    arrays = {}
    with h5py.File(path, "r") as f:
        for kind, leaves in VARS.items():
            ours = [layer for layer in order if _kind(layer) == kind]
            groups = _groups(f["layers"], kind)
            if kind == "dense" and not model.include_top:
                groups = []  # a file with the classifier also loads into the base alone
            if len(groups) != len(ours):
                label = (f"VGG-{model.depth}" if isinstance(model, VGG)
                         else f"ResNet with stages {tuple(model.stage_sizes)}")
                raise ValueError(f"{os.fspath(path)!r} holds {len(groups)} {kind} layers, but "
                                 f"{label} has {len(ours)}; are the weights for another "
                                 "architecture or depth?")
            for group, layer in zip(groups, ours):
                weights = f["layers"][group]["vars"]
                for i, leaf in enumerate(leaves):
                    arrays[f"{layer}/{leaf}"] = np.asarray(weights[str(i)])
    return arrays
