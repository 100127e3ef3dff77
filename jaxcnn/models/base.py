"""Helpers shared by every model family: input checks and activation capture.

Contract: a jaxcnn model is a `flax.linen.Module` with fields `num_classes` and
`input_shape` (H, W, C), called as `model.apply(variables, x, train=False,
capture_activations=False)`. It returns logits, or `(logits, activations)` when
`capture_activations=True`, where `activations` maps stable layer names (in network
order) to the output of that layer.

Models also describe their spatial geometry with `spatial_layers()`: the named layers
whose output is a feature map, each with the (kernel, stride, padding) windows applied
since the previous one along its longest path. The receptive fields and the smallest
accepted input size are computed from it.

`offset_activations` adds given arrays to named activations of every forward pass traced
inside it, so a gradient with respect to an intermediate activation (Grad-CAM) is the
gradient with respect to that offset, for every model that records with
`ActivationRecorder`, without a change to the model.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Mapping, NamedTuple, Sequence

import jax

from jaxcnn.layers import GlobalAvgPool2D, GlobalMaxPool2D

# Trace-time only: set by `offset_activations` around a traced call, read by the recorder.
_OFFSETS: contextvars.ContextVar[Mapping[str, jax.Array]] = contextvars.ContextVar(
    "jaxcnn_activation_offsets", default={})


@contextlib.contextmanager
def offset_activations(offsets: Mapping[str, jax.Array]) -> Iterator[None]:
    """Adds `offsets[name]` to the activation `name` in forward passes run inside the block.

    Only passes with `capture_activations=True` are affected. With zero offsets the outputs
    are unchanged and `jax.grad` with respect to the offsets gives the gradient with
    respect to the activations.

    Args:
      offsets: layer name -> array of that activation's shape.
    """
    token = _OFFSETS.set(offsets)
    try:
        yield
    finally:
        _OFFSETS.reset(token)


def check_input(x: jax.Array, input_shape: Sequence[int], model_name: str) -> None:
    """Refuses an input batch whose shape does not fit the model, before any compilation.

    Args:
      x: the input batch, expected (N, H, W, C).
      input_shape: the (H, W, C) the model was built for.
      model_name: used in the message.

    Raises:
      ValueError: naming the received and the expected shape.
    """
    expected = tuple(input_shape)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"{model_name} expects images of shape (batch, {', '.join(map(str, expected))}) "
            f"(NHWC), got an input of shape {tuple(x.shape)}; resize the data (e.g. "
            f"image_size={expected[0]}) or build the model with input_shape={tuple(x.shape[1:])}.")


class Window(NamedTuple):
    """One sliding window along H and W: square kernel, stride, symmetric zero padding."""

    kernel: int
    stride: int = 1
    padding: int = 0


SpatialLayers = list[tuple[str, tuple[Window, ...]]]


def output_size(size: int, windows: Sequence[Window]) -> int:
    """Spatial size after `windows` (0 or less when the input is too small for one)."""
    for w in windows:
        if size + 2 * w.padding < w.kernel:
            return 0
        size = (size + 2 * w.padding - w.kernel) // w.stride + 1
    return size


def smallest_input_size(layers: SpatialLayers) -> int:
    """The smallest H (= W) for which every layer of `layers` has an output of size >= 1."""
    windows = [w for _, group in layers for w in group]
    size = 1
    while output_size(size, windows) < 1:
        size += 1
    return size


def check_image_size(x: jax.Array, input_shape: Sequence[int], min_size: int,
                     model_name: str) -> None:
    """Refuses a batch with the wrong rank or channels, or smaller than the model accepts.

    For models that take any image size (global or adaptive pooling before the dense
    layers); `check_input` is the exact check of models that flatten a feature map.

    Args:
      x: the input batch, expected (N, H, W, C).
      input_shape: the (H, W, C) the model was built for; only C must match.
      min_size: the smallest H and W the model accepts.
      model_name: used in the message.

    Raises:
      ValueError: naming the received shape and what is accepted.
    """
    channels = input_shape[-1]
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(
            f"{model_name} expects images of shape (batch, H, W, {channels}) (NHWC, {channels} "
            f"channels), got an input of shape {tuple(x.shape)}; convert the images to "
            f"{channels} channels or build the model with input_shape=(H, W, {x.shape[-1]}).")
    if min(x.shape[1:3]) < min_size:
        raise ValueError(
            f"{model_name} accepts images of at least {min_size}x{min_size} pixels, got an "
            f"input of shape {tuple(x.shape)}; resize the images to {min_size}x{min_size} "
            f"or larger.")


POOLINGS = (None, "avg", "max")


def check_top(include_top: bool, pooling: str | None, model_name: str) -> None:
    """Refuses a `pooling` that is unknown, or given to a model that keeps its classifier.

    Raises:
      ValueError: naming the accepted values.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"{model_name}: pooling must be None, 'avg' or 'max', got {pooling!r}.")
    if include_top and pooling is not None:
        raise ValueError(f"{model_name}: pooling={pooling!r} applies to the convolutional base "
                         f"alone; pass include_top=False with it (Keras' meaning).")


def pool_features(x: jax.Array, pooling: str | None, keep: "ActivationRecorder") -> jax.Array:
    """The output of a model built with include_top=False: the last feature map (N, H, W, C),
    or its global average ("avg") or maximum ("max") over H and W, (N, C)."""
    if pooling == "avg":
        return keep("avgpool", GlobalAvgPool2D()(x))
    if pooling == "max":
        return keep("maxpool", GlobalMaxPool2D()(x))
    return x


class ActivationRecorder:
    """Collects named activations during one forward pass, in call order.

    Used inside a module's `__call__`; it is a plain local object, never stored on the
    module, so the module stays free of hidden state.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.activations: dict[str, jax.Array] = {}

    def __call__(self, name: str, value: jax.Array) -> jax.Array:
        """Records `value` under `name` (when enabled) and passes it through."""
        if self.enabled:
            if name in self.activations:
                raise ValueError(f"activation name {name!r} recorded twice")
            offset = _OFFSETS.get().get(name)
            if offset is not None:
                value = value + offset
            self.activations[name] = value
        return value

    def result(self, logits: jax.Array):
        """Returns `logits`, or `(logits, activations)` when recording."""
        return (logits, self.activations) if self.enabled else logits


class Pretrainable:
    """Mixin of zoo models with a `weights` field (a weights file, or None for random).

    `init` returns the variables read from `weights` in place of the random ones, so
    `fit`, `jaxcnn train --weights`, `visualize` and any user's own `model.init` start from
    them with no other change; the model itself stays a stateless Flax module.
    """

    def init(self, rngs, *args, **kwargs):
        """`nn.Module.init`, or the variables of `self.weights` when it is set (no random
        initialization is computed only to be replaced). Where the file's classifier has
        another number of classes, a new one is initialized from `rngs` (with a warning)."""
        if self.weights is None:
            return super().init(rngs, *args, **kwargs)
        # Imported here: the converters import the model families, which import this.
        from jaxcnn.models.convert import load_weights

        key = rngs["params"] if isinstance(rngs, dict) else rngs
        return load_weights(self, self.weights, key)

