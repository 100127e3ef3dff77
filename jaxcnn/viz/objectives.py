"""Objectives for gradient ascent in input space, composable with `+`, `-` and scalar `*`.

Contract: an `Objective` wraps a function `(acts, logits) -> (N,)` that scores each image
of a batch; `acts` are the model's named activations plus the rendered image itself under
`INPUT` (so regularizers are objectives too). Rendering maximizes the sum of the scores,
so penalties are subtracted: `channel("conv2", 3) - 0.05 * total_variation()`.
Each objective lists the `(layer, index)` pairs it reads, so bad names or indices are
refused before anything is compiled (`check_objective`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp

INPUT = "input"
LOGITS = "logits"

Acts = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Objective:
    """A per-image score to maximize.

    Attributes:
      fn: `(acts, logits) -> (N,)` array of scores.
      name: a readable description.
      reads: the `(layer, index)` pairs the objective reads; index None means the whole
        layer. Used by `check_objective`.
    """

    fn: Callable[[Acts, jax.Array], jax.Array]
    name: str
    reads: tuple[tuple[str, object], ...] = ()

    def __call__(self, acts: Acts, logits: jax.Array) -> jax.Array:
        return self.fn(acts, logits)

    def __add__(self, other: "Objective") -> "Objective":
        _check_objective_type(other, "+")
        return Objective(lambda a, l: self(a, l) + other(a, l), f"({self.name} + {other.name})",
                         self.reads + other.reads)

    def __sub__(self, other: "Objective") -> "Objective":
        _check_objective_type(other, "-")
        return Objective(lambda a, l: self(a, l) - other(a, l), f"({self.name} - {other.name})",
                         self.reads + other.reads)

    def __mul__(self, factor: float) -> "Objective":
        if isinstance(factor, Objective) or not jnp.isscalar(factor):
            raise TypeError(f"an Objective can only be multiplied by a scalar, got {factor!r}; "
                            "combine objectives with + and -.")
        return Objective(lambda a, l: factor * self(a, l), f"{factor} * {self.name}", self.reads)

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return -1.0 * self


def _check_objective_type(other, op: str) -> None:
    if not isinstance(other, Objective):
        raise TypeError(f"cannot combine an Objective with {type(other).__name__} by {op}; "
                        "both operands must be Objectives (scale with a number, e.g. 0.1 * l2()).")


def _spatial_mean(x: jax.Array) -> jax.Array:
    """Mean over every axis but the first (batch)."""
    return x.reshape(x.shape[0], -1).mean(axis=1)


def channel(layer: str, index) -> Objective:
    """Mean activation of one channel (filter) of `layer`; for a dense layer, one unit."""
    return Objective(lambda a, l: _spatial_mean(a[layer][..., index]), f"channel({layer}, {index})",
                     ((layer, index),))


def channel_max(layer: str, index) -> Objective:
    """Largest activation of one channel of `layer` over all positions (a monitor)."""
    return Objective(lambda a, l: a[layer][..., index].reshape(a[layer].shape[0], -1).max(axis=1),
                     f"channel_max({layer}, {index})", ((layer, index),))


def neuron(layer: str, index, y: int | None = None, x: int | None = None) -> Objective:
    """Activation of one channel of a conv layer at one position (default: the centre)."""

    def fn(a, l):
        act = a[layer]
        row = act.shape[1] // 2 if y is None else y
        col = act.shape[2] // 2 if x is None else x
        return act[:, row, col, index]

    return Objective(fn, f"neuron({layer}, {index}, y={y}, x={x})", ((layer, index),))


def layer_norm(layer: str) -> Objective:
    """Mean squared activation of a whole layer (DeepDream)."""
    return Objective(lambda a, l: _spatial_mean(jnp.square(a[layer])), f"layer_norm({layer})",
                     ((layer, None),))


def class_logit(index) -> Objective:
    """Pre-softmax score of a class (Simonyan et al. 2013)."""
    return Objective(lambda a, l: l[:, index], f"class_logit({index})", ((LOGITS, index),))


def class_probability(index) -> Objective:
    """Softmax probability of a class."""
    return Objective(lambda a, l: jax.nn.softmax(l, axis=-1)[:, index],
                     f"class_probability({index})", ((LOGITS, index),))


def diversity(layer: str) -> Objective:
    """Negative mean cosine similarity of each image's Gram matrix to the others' (Lucid).

    Maximizing it pushes the images of a batch apart in style at `layer`; needs a batch of
    at least two images (a batch of one scores 0).
    """

    def fn(a, l):
        act = a[layer]
        flat = act.reshape(act.shape[0], -1, act.shape[-1])
        gram = jnp.einsum("npc,npd->ncd", flat, flat).reshape(act.shape[0], -1)
        unit = gram / (jnp.linalg.norm(gram, axis=1, keepdims=True) + 1e-8)
        sim = unit @ unit.T
        n = act.shape[0]
        return -(sim.sum(axis=1) - jnp.diagonal(sim)) / jnp.maximum(n - 1, 1)

    return Objective(fn, f"diversity({layer})", ((layer, None),))


def l1(center: float = 0.0) -> Objective:
    """Mean absolute deviation of the image from `center` (a penalty: subtract it)."""
    return Objective(lambda a, l: _spatial_mean(jnp.abs(a[INPUT] - center)), f"l1({center})")


def l2(center: float = 0.0) -> Objective:
    """Mean squared deviation of the image from `center` (a penalty: subtract it)."""
    return Objective(lambda a, l: _spatial_mean(jnp.square(a[INPUT] - center)), f"l2({center})")


def image_total_variation(images: jax.Array) -> jax.Array:
    """Anisotropic total variation of each NHWC image: mean absolute neighbour difference."""
    dy = jnp.abs(images[:, 1:] - images[:, :-1])
    dx = jnp.abs(images[:, :, 1:] - images[:, :, :-1])
    return _spatial_mean(dy) + _spatial_mean(dx)


def total_variation() -> Objective:
    """Total variation of the image (a penalty: subtract it for smoother pictures)."""
    return Objective(lambda a, l: image_total_variation(a[INPUT]), "total_variation()")


def box_blur(images: jax.Array, size: int = 3) -> jax.Array:
    """Mean over a `size` x `size` window, per channel, edges replicated; shape kept."""
    pad = size // 2
    padded = jnp.pad(images, ((0, 0), (pad, size - 1 - pad), (pad, size - 1 - pad), (0, 0)),
                     mode="edge")
    summed = jax.lax.reduce_window(padded, 0.0, jax.lax.add, (1, size, size, 1), (1, 1, 1, 1),
                                   "VALID")
    return summed / (size * size)


def blur(size: int = 3) -> Objective:
    """Squared distance of the image to its blurred copy (held fixed): a penalty on detail.

    Subtracting it pulls the image toward its blur at every step, as Lucid's
    `blur_input_each_step` does.
    """

    def fn(a, l):
        image = a[INPUT]
        return _spatial_mean(jnp.square(image - jax.lax.stop_gradient(box_blur(image, size))))

    return Objective(fn, f"blur({size})")


def check_layer(layer: str, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuses a layer name that is not among the model's activations, listing them."""
    if layer not in shapes or layer == INPUT:
        known = ", ".join(name for name in shapes if name != INPUT)
        raise ValueError(f"unknown layer {layer!r}; the model's layers are: {known}.")


def check_objective(objective: Objective, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuses an objective that reads a layer or channel the model does not have.

    Args:
      objective: the objective.
      shapes: layer name -> activation shape (from the model, batch first); must contain
        `LOGITS`.

    Raises:
      ValueError: an unknown layer (listing the known ones) or an index out of range.
    """
    for layer, index in objective.reads:
        check_layer(layer, shapes)
        if index is None or not isinstance(index, int):
            continue
        size = shapes[layer][-1]
        if not 0 <= index < size:
            what = "class_index" if layer == LOGITS else f"channel index for layer {layer!r}"
            raise ValueError(f"{what} {index} is out of range: expected 0 <= index < {size}"
                             f" ({size} {'classes' if layer == LOGITS else 'channels'}).")
