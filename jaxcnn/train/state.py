"""The training state: parameters, BatchNorm statistics, optimizer state, step and key.

Contract: `TrainState` is an immutable pytree (a `flax.training.train_state.TrainState`
with `batch_stats` and `key` added); `create_state` builds it from a model, an Optax
optimizer and a seed, shapes checked before anything is compiled.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """Everything a train step reads and writes.

    Attributes (beyond Flax's step, apply_fn, params, tx, opt_state):
      batch_stats: BatchNorm running statistics (an empty dict for models without).
      key: the run's base PRNG key; the step's dropout key is `fold_in(key, step)`.
    """

    batch_stats: Any
    key: jax.Array

    def variables(self) -> dict[str, Any]:
        """The variables to pass to `model.apply`."""
        variables = {"params": self.params}
        if self.batch_stats:
            variables["batch_stats"] = self.batch_stats
        return variables


@dataclasses.dataclass(frozen=True)
class ModelApply:
    """`model.apply` as a value: equal models give equal functions.

    A bound method compares by the identity of its module, so two runs of equal models
    would each recompile their steps (the apply function is part of the state's tree
    structure); this wrapper compares by the module's fields instead.
    """

    model: nn.Module

    def __call__(self, *args, **kwargs):
        return self.model.apply(*args, **kwargs)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(model: nn.Module, key: jax.Array, shape: tuple[int, ...]) -> dict[str, Any]:
    """The model's variables; compiled once per (model, shape), models being hashable."""
    return model.init(key, jnp.zeros((1, *shape), jnp.float32), train=False)


def param_shapes(model: nn.Module) -> dict:
    """The shapes of `model`'s parameters (`jax.ShapeDtypeStruct`s), nothing computed or read.

    Args:
      model: a jaxcnn model; its `input_shape` is used.

    Returns:
      The "params" collection of its variables, as shapes.
    """
    if getattr(model, "weights", None) is not None:
        model = model.clone(weights=None)  # same shapes; the file need not be read
    x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    return jax.eval_shape(model.init, jax.random.key(0), x)["params"]


def create_state(model: nn.Module, tx: optax.GradientTransformation, seed: int,
                 input_shape: tuple[int, ...] | None = None) -> TrainState:
    """Initializes a model and its optimizer deterministically from `seed`.

    Args:
      model: a jaxcnn model (its `input_shape` field is used unless given here).
      tx: the Optax optimizer.
      seed: integer seed; the same seed always gives the same state.
      input_shape: (H, W, C) to initialize with.

    Returns:
      A fresh `TrainState` at step 0.
    """
    shape = tuple(input_shape or model.input_shape)
    init_key, run_key = jax.random.split(jax.random.key(seed))
    if getattr(model, "weights", None) is None:
        variables = _init(model, init_key, shape)
    else:  # compiled, the init would carry the whole weights file as constants
        variables = model.init(init_key, jnp.zeros((1, *shape), jnp.float32), train=False)
    state = TrainState.create(apply_fn=ModelApply(model), params=variables["params"], tx=tx,
                              batch_stats=variables.get("batch_stats", {}), key=run_key)
    # A strongly typed step, as a restored checkpoint has, so both compile to one program.
    return state.replace(step=jnp.zeros((), jnp.int32))
