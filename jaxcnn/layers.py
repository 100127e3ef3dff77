"""Flax linen modules over `jaxcnn.ops`.

Contract: every layer is a plain `flax.linen.Module` used with `init`/`apply`; it keeps no
Python state between calls. Parameters are named as in Flax (`kernel` HWIO / (in, out),
`bias`, BatchNorm `scale`/`bias` with `mean`/`var` in the `batch_stats` collection), so
weights move between jaxcnn, Flax and converters without renaming. `dtype` is the
computation dtype (e.g. bfloat16); parameters are kept in `param_dtype` (float32).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn import ops

Dtype = Any
Padding = str | int | Sequence[int] | Sequence[Sequence[int]]
IntOrPair = int | Sequence[int]

ACTIVATIONS: dict[str, Callable] = {
    "relu": ops.relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "softmax": ops.softmax,
    "leaky_relu": ops.leaky_relu,
    "gelu": ops.gelu,
    "linear": lambda x: x,
}


def activation_fn(name: str | Callable) -> Callable:
    """Looks up an activation by name (or passes a callable through).

    Args:
      name: one of `ACTIVATIONS` or a callable.

    Returns:
      The activation function.
    """
    if callable(name):
        return name
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def _pair(value: IntOrPair) -> tuple[int, int]:
    return ops.normalize_pair(value, "kernel_size")


class Conv2D(nn.Module):
    """2-D convolution (cross-correlation) over NHWC inputs, see `ops.conv2d`.

    Attributes:
      features: number of output channels.
      kernel_size: int or (kh, kw).
      strides, padding, dilation, groups: as in `ops.conv2d`.
      use_bias: add a learned bias.
      dtype: computation dtype; `param_dtype` is the storage dtype of the parameters.
    """

    features: int
    kernel_size: IntOrPair
    strides: IntOrPair = 1
    padding: Padding = "VALID"
    dilation: IntOrPair = 1
    groups: int = 1
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):
        in_features = x.shape[-1]
        if x.ndim != 4:
            raise ValueError(f"Conv2D expects NHWC input of rank 4, got shape {x.shape}.")
        if in_features % self.groups:
            raise ValueError(f"Conv2D groups={self.groups} must divide the input channels "
                             f"({in_features}).")
        kh, kw = _pair(self.kernel_size)
        kernel = self.param("kernel", self.kernel_init,
                            (kh, kw, in_features // self.groups, self.features), self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        return ops.conv2d(x, kernel, bias, stride=self.strides, padding=self.padding,
                          dilation=self.dilation, groups=self.groups)


class Dense(nn.Module):
    """Fully connected layer `x @ kernel + bias` over the last axis, see `ops.dense`."""

    features: int
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features),
                            self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        return ops.dense(x, kernel, bias)


class _Pool(nn.Module):
    """Shared fields of the windowed pools: window, strides (default: the window), padding."""

    window: IntOrPair = 2
    strides: IntOrPair | None = None
    padding: Padding = "VALID"


class MaxPool2D(_Pool):
    """Max pooling, see `ops.max_pool`."""

    def __call__(self, x):
        return ops.max_pool(x, self.window, self.strides, self.padding)


class MinPool2D(_Pool):
    """Min pooling, see `ops.min_pool`."""

    def __call__(self, x):
        return ops.min_pool(x, self.window, self.strides, self.padding)


class SumPool2D(_Pool):
    """Sum pooling, see `ops.sum_pool`."""

    def __call__(self, x):
        return ops.sum_pool(x, self.window, self.strides, self.padding)


class AvgPool2D(_Pool):
    """Average pooling; padded cells are not counted unless `count_include_pad`."""

    count_include_pad: bool = False

    def __call__(self, x):
        return ops.avg_pool(x, self.window, self.strides, self.padding,
                            count_include_pad=self.count_include_pad)


class AdaptiveAvgPool2D(nn.Module):
    """Average pooling to a fixed `output_size`, as PyTorch's AdaptiveAvgPool2d."""

    output_size: IntOrPair

    def __call__(self, x):
        return ops.adaptive_avg_pool(x, self.output_size)


class GlobalAvgPool2D(nn.Module):
    """Mean over the spatial axes: (N, H, W, C) -> (N, C) (or (N, 1, 1, C) with keepdims)."""

    keepdims: bool = False

    def __call__(self, x):
        return ops.global_avg_pool(x, keepdims=self.keepdims)


class GlobalMaxPool2D(nn.Module):
    """Max over the spatial axes: (N, H, W, C) -> (N, C) (or (N, 1, 1, C) with keepdims)."""

    keepdims: bool = False

    def __call__(self, x):
        return ops.global_max_pool(x, keepdims=self.keepdims)


class Flatten(nn.Module):
    """(N, ...) -> (N, prod(...)) in row-major (H, W, C) order."""

    def __call__(self, x):
        return ops.flatten(x)


_GUIDED = contextvars.ContextVar("jaxcnn_guided_relu", default=False)


@jax.custom_vjp
def guided_relu(x: jax.Array) -> jax.Array:
    """ReLU whose gradient passes only where both its input and the incoming gradient are
    positive (guided backpropagation, Springenberg et al. 2015)."""
    return ops.relu(x)


def _guided_relu_forward(x):
    return ops.relu(x), x


def _guided_relu_backward(x, grad):
    return (jnp.where((x > 0) & (grad > 0), grad, jnp.zeros_like(grad)),)


guided_relu.defvjp(_guided_relu_forward, _guided_relu_backward)


@contextlib.contextmanager
def guided_relus() -> Iterator[None]:
    """Inside the block, every `Activation("relu")` traced is a `guided_relu`.

    For use inside a function compiled for it (as `viz.guided_backprop` is): a jitted
    function first traced inside the block keeps guided ReLUs in its compiled program.
    """
    token = _GUIDED.set(True)
    try:
        yield
    finally:
        _GUIDED.reset(token)


class Activation(nn.Module):
    """An elementwise activation chosen by name ("relu", "sigmoid", ...) or callable."""

    fn: str | Callable = "relu"

    def __call__(self, x):
        if self.fn == "relu" and _GUIDED.get():
            return guided_relu(x)
        return activation_fn(self.fn)(x)


class Dropout(nn.Module):
    """Drops each unit with probability `rate` during training (TF/Keras/Flax meaning).

    The key comes from the `dropout` PRNG stream: `apply(..., rngs={"dropout": key})`.
    Each example's mask is drawn from `fold_in(key, i)` with `i` its row in the global
    batch, so a batch split over devices gets the same masks as the whole batch on one
    device. Under `jax.pmap` set `axis_name` (as for BatchNorm) so the row index counts
    the rows of the devices before this one.
    """

    rate: float
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, deterministic: bool):
        if deterministic or self.rate == 0.0:
            return x
        rows = jnp.arange(x.shape[0])
        if self.axis_name is not None:
            rows = rows + jax.lax.axis_index(self.axis_name) * x.shape[0]
        keys = jax.vmap(jax.random.fold_in, (None, 0))(self.make_rng("dropout"), rows)
        drop = lambda key, row: ops.dropout(row, self.rate, key, deterministic=False)
        return jax.vmap(drop)(keys, x)


class BatchNorm(nn.BatchNorm):
    """Batch normalization over the channel axis, with running statistics (`flax.linen.BatchNorm`).

    Call it as `BatchNorm()(x, use_running_average=not train)`. In training it normalizes
    with the batch statistics and updates `batch_stats` (apply with
    `mutable=["batch_stats"]`); with `axis_name` set, the statistics are averaged over that
    device axis, so a batch split over devices is normalized exactly like the whole batch
    on one device. Defaults follow PyTorch: momentum 0.9 of the running average (PyTorch's
    momentum=0.1) and epsilon 1e-5.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
