"""Gradient ascent in input space, compiled whole: `render`, `visualize_filters`, `visualize_class`.

Contract: `ascent` is a pure function that runs all `steps` updates of an Optax optimizer
inside `lax.scan` (one scan per stretch between snapshot steps), so `render` compiles the
whole loop into one XLA call. At step i the transform gets the key `fold_in(key, i)`;
the same key gives the same picture. `visualize_filters` / `visualize_class` render many
filters or classes in one compiled call by `vmap` over the index (optionally sharded
over all devices along that axis); each result equals the single render with the same
key. Arguments are checked before anything is compiled.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcnn import compiler
from jaxcnn.viz import objectives as obj
from jaxcnn.viz.param import Parameterization, check_fits, fourier
from jaxcnn.viz.transform import Transform


class RenderResult(NamedTuple):
    """What one ascent returns.

    Attributes:
      images: (N, H, W, C) final images in [0, 1].
      values: (steps, N) objective value of each image at each step (before its update).
      monitor: (steps, N) values of the monitor objective (equal to `values` without one).
      snapshots: (S, N, H, W, C) images after each requested snapshot step (S may be 0).
    """

    images: jax.Array
    values: jax.Array
    monitor: jax.Array
    snapshots: jax.Array


def activation_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Shapes of the model's named activations for a batch of one, plus logits and input.

    Computed with `jax.eval_shape`: nothing is allocated or compiled.
    """
    x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    order: list[str] = []

    def trace(x):
        variables = model.init(jax.random.key(0), x)
        logits, acts = model.apply(variables, x, capture_activations=True)
        order.extend(acts)  # eval_shape returns dicts with sorted keys; keep network order
        return logits, acts

    logits, acts = jax.eval_shape(trace, x)
    shapes = {name: tuple(acts[name].shape) for name in order}
    shapes[obj.LOGITS] = tuple(logits.shape)
    shapes[obj.INPUT] = tuple(x.shape)
    return shapes


def ascent(model: nn.Module, variables, objective: obj.Objective, param: Parameterization,
           key: jax.Array, *, steps: int, optimizer: optax.GradientTransformation,
           transform: Transform | None = None, snapshot_steps: Sequence[int] = (),
           monitor: obj.Objective | None = None) -> RenderResult:
    """Maximizes `objective` over the images of `param` (pure and traceable; see `render`)."""
    init_key, step_key = jax.random.split(key)
    params = param.init(init_key)

    def loss(params, step):
        image = param.to_image(params)
        seen = image if transform is None else transform(jax.random.fold_in(step_key, step), image)
        logits, acts = model.apply(variables, seen, capture_activations=True)
        acts = {**acts, obj.INPUT: image}
        value = objective(acts, logits)
        watched = value if monitor is None else monitor(acts, logits)
        # The sum keeps each image's gradient independent of the others in the batch.
        return -jnp.sum(value), (value, watched)

    def update(carry, step):
        params, opt_state = carry
        grads, out = jax.grad(loss, has_aux=True)(params, step)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), out

    carry, start, outs, snapshots = (params, optimizer.init(params)), 0, [], []
    for stop in [*sorted(snapshot_steps), steps]:
        carry, out = jax.lax.scan(update, carry, jnp.arange(start, stop))
        outs.append(out)
        snapshots.append(param.to_image(carry[0]))
        start = stop
    values, watched = (jnp.concatenate(parts) for parts in zip(*outs))
    snaps = jnp.stack(snapshots[:-1]) if snapshot_steps else jnp.zeros((0, *param.shape))
    return RenderResult(snapshots[-1], values, watched, snaps)


def _check_steps(steps: int, snapshot_steps: Sequence[int]) -> tuple[int, ...]:
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    snaps = tuple(int(s) for s in snapshot_steps)
    bad = [s for s in snaps if not 0 <= s <= steps]
    if bad or len(set(snaps)) != len(snaps):
        raise ValueError(f"snapshot_steps must be distinct steps in [0, steps={steps}], got "
                         f"{tuple(snapshot_steps)}.")
    return tuple(sorted(snaps))


# Spread of the starting image of filter renders. From a near-grey start a filter whose
# pre-activation is negative everywhere gets no ReLU gradient and stays "dead": on the demo
# LeNet-5's conv2, std 0.01 left 10 of 16 filters dead, 0.5 left 3 (128 steps).
FILTER_START_STD = 0.5


@functools.cache
def _default_param(input_shape: tuple[int, ...]) -> Parameterization:
    """One default parameterization per input shape, so compiled ascents are reused."""
    return fourier(input_shape)


@functools.cache
def _filter_param(input_shape: tuple[int, ...]) -> Parameterization:
    """The default parameterization of filter renders (a wider start, see FILTER_START_STD)."""
    return fourier(input_shape, std=FILTER_START_STD)


@functools.cache
def _adam(learning_rate: float) -> optax.GradientTransformation:
    """One Adam per learning rate, so compiled ascents are reused across calls."""
    return optax.adam(learning_rate)


def _default_optimizer(optimizer, learning_rate: float) -> optax.GradientTransformation:
    return _adam(float(learning_rate)) if optimizer is None else optimizer


# Compiled once per (model, objective, param, ...) objects: calling `render` again with the
# same objects (another key, other variables) reuses the compiled loop.
_compiled_ascent = compiler.jit(ascent, static_argnames=(
    "model", "objective", "param", "steps", "optimizer", "transform", "snapshot_steps", "monitor"))


def render(model: nn.Module, variables, objective: obj.Objective, param: Parameterization | None = None,
           *, key: jax.Array, steps: int = 256, optimizer: optax.GradientTransformation | None = None,
           learning_rate: float = 0.05, transform: Transform | None = None,
           snapshot_steps: Sequence[int] = (), monitor: obj.Objective | None = None) -> RenderResult:
    """Finds images that maximize `objective`, in one compiled call.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      objective: what to maximize (see `jaxcnn.viz.objectives`).
      param: the image parameterization; default `fourier(model.input_shape)`.
      key: seeds the initial image and the per-step transforms.
      steps: number of optimizer updates.
      optimizer: an Optax optimizer; default `optax.adam(learning_rate)` as in Lucid.
      learning_rate: for the default optimizer.
      transform: a random transform applied before each forward pass (robustness).
      snapshot_steps: also return the images after these many updates.
      monitor: an objective whose value is recorded at each step (not optimized).

    Returns:
      A `RenderResult`.

    Raises:
      ValueError: unknown layer, index out of range, a parameterization that does not fit
        the model, bad steps.
    """
    param = _default_param(tuple(model.input_shape)) if param is None else param
    snaps = _check_steps(steps, snapshot_steps)
    check_fits(param, model.input_shape, type(model).__name__)
    shapes = activation_shapes(model)
    obj.check_objective(objective, shapes)
    if monitor is not None:
        obj.check_objective(monitor, shapes)
    return _compiled_ascent(model, variables, objective, param, key, steps=steps,
                            optimizer=_default_optimizer(optimizer, learning_rate),
                            transform=transform, snapshot_steps=snaps, monitor=monitor)


class LayerVisualization(NamedTuple):
    """Renders of many filters (or classes) of one model.

    Attributes:
      images: (F, H, W, C) one image per index.
      indices: (F,) the channel or class of each image.
      values: (F, steps) objective value at each step.
      max_activation: (F,) the largest activation of the filter seen during the ascent
        (for classes: the largest logit).
      dead: indices whose activation never rose above zero: their images are noise.
      snapshots: (F, S, H, W, C) images at the snapshot steps.
    """

    images: jax.Array
    indices: np.ndarray
    values: jax.Array
    max_activation: jax.Array
    dead: tuple[int, ...]
    snapshots: jax.Array


def _check_indices(indices, size: int, what: str) -> np.ndarray:
    chosen = np.arange(size) if indices is None else np.atleast_1d(np.asarray(indices))
    if chosen.ndim != 1 or chosen.size == 0 or not np.issubdtype(chosen.dtype, np.integer):
        raise ValueError(f"{what} must be an int or a non-empty list of ints, got {indices!r}.")
    bad = chosen[(chosen < 0) | (chosen >= size)]
    if bad.size:
        raise ValueError(f"{what} {int(bad[0])} is out of range: expected 0 <= index < {size}.")
    return chosen.astype(np.int32)


def _check_one_image(param: Parameterization, model: nn.Module) -> None:
    if param.shape[0] != 1:
        raise ValueError(f"one image per filter or class: param must have batch 1, got "
                         f"{param.shape[0]}; use `render` for batches (e.g. with diversity).")
    check_fits(param, model.input_shape, type(model).__name__)


# The builders below are cached on their (hashable) arguments so that a second call with
# the same settings reuses the compiled function instead of compiling again.
@functools.cache
def _filter_ascent(model, layer, regularizer, param, steps, optimizer, transform, snaps) -> Callable:
    """A pure `(variables, key, channel) -> RenderResult` for a traced channel."""

    def one(variables, key, c):
        objective = obj.channel(layer, c) if regularizer is None else obj.channel(layer, c) + regularizer
        return ascent(model, variables, objective, param, key, steps=steps, optimizer=optimizer,
                      transform=transform, snapshot_steps=snaps, monitor=obj.channel_max(layer, c))

    return one


@functools.cache
def _class_ascent(model, l2_weight, param, steps, optimizer, transform, snaps) -> Callable:
    """A pure `(variables, key, class) -> RenderResult` for a traced class index."""

    def one(variables, key, c):
        objective = obj.class_logit(c) - l2_weight * obj.l2(0.5)
        return ascent(model, variables, objective, param, key, steps=steps, optimizer=optimizer,
                      transform=transform, snapshot_steps=snaps, monitor=obj.class_logit(c))

    return one


@functools.cache
def _over_indices(one: Callable, devices: tuple | None) -> Callable:
    """`one` vmapped over indices and jitted, sharded along the indices over `devices`."""
    batched = jax.vmap(one, in_axes=(None, None, 0))
    if devices is None:
        return compiler.jit(batched)
    mesh = Mesh(np.array(devices), ("index",))
    along, whole = NamedSharding(mesh, PartitionSpec("index")), NamedSharding(mesh, PartitionSpec())
    return compiler.jit(batched, in_shardings=(whole, whole, along), out_shardings=along)


def _render_indices(one: Callable, variables, key, indices: np.ndarray, shard: bool) -> RenderResult:
    """Runs `one` for every index in one compiled call, optionally over all devices."""
    if not shard:
        return _over_indices(one, None)(variables, key, jnp.asarray(indices))
    devices = tuple(jax.devices())
    padded = np.resize(indices, -(-len(indices) // len(devices)) * len(devices))
    out = _over_indices(one, devices)(variables, key, jnp.asarray(padded))
    return jax.tree.map(lambda x: x[:len(indices)], out)


def _layer_visualization(out: RenderResult, indices: np.ndarray) -> LayerVisualization:
    peak = out.monitor.max(axis=(1, 2))
    dead = tuple(int(i) for i in indices[np.asarray(peak) <= 0])
    return LayerVisualization(out.images[:, 0], indices, out.values[..., 0], peak, dead,
                              out.snapshots[:, :, 0])


def filter_render_fn(model: nn.Module, layer: str, *, param: Parameterization | None = None,
                     steps: int = 256, optimizer: optax.GradientTransformation | None = None,
                     learning_rate: float = 0.05, transform: Transform | None = None,
                     regularizer: obj.Objective | None = None,
                     snapshot_steps: Sequence[int] = ()) -> Callable:
    """The pure single-filter ascent `(variables, key, channel) -> RenderResult`.

    `visualize_filters` vmaps it; `jax.jit` of it renders one filter per call (the way
    Lucid/lucent do), compiled once for every channel. Arguments as in `visualize_filters`.
    """
    param = _filter_param(tuple(model.input_shape)) if param is None else param
    shapes = activation_shapes(model)
    obj.check_layer(layer, shapes)
    if regularizer is not None:
        obj.check_objective(regularizer, shapes)

    snaps = _check_steps(steps, snapshot_steps)
    _check_one_image(param, model)
    return _filter_ascent(model, layer, regularizer, param, steps,
                          _default_optimizer(optimizer, learning_rate), transform, snaps)


def visualize_filters(model: nn.Module, variables, layer: str, channels: Sequence[int] | int | None = None,
                      *, key: jax.Array, steps: int = 256, param: Parameterization | None = None,
                      optimizer: optax.GradientTransformation | None = None,
                      learning_rate: float = 0.05, transform: Transform | None = None,
                      regularizer: obj.Objective | None = None, snapshot_steps: Sequence[int] = (),
                      shard: bool = False) -> LayerVisualization:
    """Renders the pattern each filter of `layer` responds to most, all in one compiled call.

    Every filter starts from the same image (same `key`) and maximizes its mean activation
    (plus `regularizer`), so each picture equals `render(channel(layer, c), key=key)`.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      layer: a named activation (see `jaxcnn.models.layer_names`).
      channels: channel indices; default all channels of the layer.
      key: seeds the initial image and the transforms.
      steps: optimizer updates per filter.
      param: a batch-1 parameterization; default
        `fourier(model.input_shape, std=FILTER_START_STD)`.
      optimizer: default `optax.adam(learning_rate)`.
      learning_rate: for the default optimizer.
      transform: random transform applied at each step.
      regularizer: an objective added to each filter's, e.g. `-0.1 * total_variation()`.
      snapshot_steps: also return images after these many updates (for a GIF).
      shard: split the filters over all devices (`jax.devices()`).

    Returns:
      A `LayerVisualization`; filters that never activated are listed in `dead` and a
      warning names them.

    Raises:
      ValueError: unknown layer (listing the layers), channel out of range, bad param.
    """
    one = filter_render_fn(model, layer, param=param, steps=steps, optimizer=optimizer,
                           learning_rate=learning_rate, transform=transform,
                           regularizer=regularizer, snapshot_steps=snapshot_steps)
    size = activation_shapes(model)[layer][-1]
    indices = _check_indices(channels, size, f"channel index for layer {layer!r}")
    result = _layer_visualization(_render_indices(one, variables, key, indices, shard), indices)
    if result.dead:
        warnings.warn(f"{len(result.dead)} of {len(indices)} filters of layer {layer!r} never "
                      f"activated above zero (dead filters, their images are noise): "
                      f"{list(result.dead)}", RuntimeWarning, stacklevel=2)
    return result


def visualize_class(model: nn.Module, variables, class_index: Sequence[int] | int | None = None,
                    *, key: jax.Array, steps: int = 256, l2_weight: float = 30.0,
                    param: Parameterization | None = None,
                    optimizer: optax.GradientTransformation | None = None,
                    learning_rate: float = 0.05, transform: Transform | None = None,
                    snapshot_steps: Sequence[int] = (), shard: bool = False) -> LayerVisualization:
    """The image the model finds most like each class (Simonyan et al. 2013), one call for all.

    Maximizes the class logit minus `l2_weight` times the mean squared distance of the
    image from grey (0.5, where every parameterization starts); Simonyan's L2 penalty on a
    zero-centred image.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      class_index: a class, a list of classes, or None for all classes.
      key: seeds the initial image and the transforms.
      steps: optimizer updates.
      l2_weight: weight of the L2 penalty (the penalty is a mean over pixels, so the
        weight does not depend on the image size).
      param: a batch-1 parameterization; default `fourier(model.input_shape)` (less
        high-frequency noise than `pixels`, which is Simonyan's raw-pixel setting).
      optimizer, learning_rate, transform, snapshot_steps, shard: as in `visualize_filters`.

    Returns:
      A `LayerVisualization` over classes (`max_activation` is the largest logit reached).

    Raises:
      ValueError: class index out of range, bad param.
    """
    param = _default_param(tuple(model.input_shape)) if param is None else param
    indices = _check_indices(class_index, model.num_classes, "class_index")
    snaps = _check_steps(steps, snapshot_steps)
    _check_one_image(param, model)
    one = _class_ascent(model, float(l2_weight), param, steps,
                        _default_optimizer(optimizer, learning_rate), transform, snaps)
    return _layer_visualization(_render_indices(one, variables, key, indices, shard), indices)
