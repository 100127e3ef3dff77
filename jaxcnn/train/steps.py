"""Pure train and eval steps: `(state, batch) -> (state, metrics)` and `(state, batch) -> metrics`.

Contract: the steps are plain top-level functions, never jitted here; the caller compiles
them (`jax.jit`, `jax.pmap(..., axis_name="batch")`, or `jax.jit` with shardings), so one
body serves every strategy. Under pmap pass `axis_name`: gradients and metrics are then
averaged over that axis (BatchNorm statistics and dropout rows follow the model's own
`axis_name`, see `jaxcnn.train.parallel`). A batch is a dict with "image" (B,H,W,C), "label" (B,) and optionally
"mask" (B,) marking real rows. An optional `augment(key, images) -> images` (e.g. a
`jaxcnn.data.augment` pipeline) transforms the training images inside the compiled step,
with a key that depends only on (seed, step); evaluation never augments.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxcnn.data.arrays import unit_float
from jaxcnn.train.losses import masked_mean, softmax_cross_entropy
from jaxcnn.train.freeze import keep_frozen_stats
from jaxcnn.train.state import TrainState

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
Augment = Callable[[jax.Array, jax.Array], jax.Array]


def train_step(state: TrainState, batch: dict, loss_fn: LossFn = softmax_cross_entropy,
               axis_name: str | None = None,
               augment: Augment | None = None,
               freeze: str | None = None) -> tuple[TrainState, dict]:
    """One optimizer step on one batch.

    Args:
      state: the current train state.
      batch: {"image", "label", optional "mask"}.
      loss_fn: per-example loss `(logits, labels) -> (B,)`.
      axis_name: the device axis to average gradients and metrics over (pmap), or None.
      augment: `(key, images) -> images` applied to the batch's images first, or None.
      freeze: BatchNorm statistics whose "/"-joined paths this regular expression matches
        keep their values (frozen layers); None: all are updated.

    Returns:
      `(new_state, {"loss", "accuracy"})`, metrics averaged over the batch.
    """
    dropout_key = jax.random.fold_in(state.key, state.step)
    images = unit_float(batch["image"])
    if augment is not None:
        # A key of its own (stream 1 of this step), so augmenting leaves dropout unchanged.
        augment_key = jax.random.fold_in(dropout_key, 1)
        if axis_name is not None:  # each device augments its slice with its own draws
            augment_key = jax.random.fold_in(augment_key, jax.lax.axis_index(axis_name))
        images = augment(augment_key, images)
    mask = batch.get("mask")
    has_stats = bool(state.batch_stats)

    def objective(params):
        variables = {"params": params}
        if has_stats:
            variables["batch_stats"] = state.batch_stats
        out = state.apply_fn(variables, images, train=True, rngs={"dropout": dropout_key},
                             mutable=["batch_stats"] if has_stats else False)
        logits, updates = out if has_stats else (out, {})
        loss = masked_mean(loss_fn(logits, batch["label"]), mask)
        return loss, (logits, updates.get("batch_stats", state.batch_stats))

    (loss, (logits, new_stats)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    accuracy = masked_mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32), mask)
    metrics = {"loss": loss, "accuracy": accuracy}
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.pmean(metrics, axis_name)
    if freeze is not None and has_stats:
        new_stats = keep_frozen_stats(state.batch_stats, new_stats, freeze)
    new_state = state.apply_gradients(grads=grads, batch_stats=new_stats)
    return new_state, metrics


def eval_step(state: TrainState, batch: dict, loss_fn: LossFn = softmax_cross_entropy,
              axis_name: str | None = None) -> dict:
    """Evaluates one batch; returns sums so batches and devices add up exactly.

    Args:
      state: the train state (BatchNorm uses its running averages).
      batch: {"image", "label", optional "mask"}; masked-out rows do not count.
      loss_fn: per-example loss.
      axis_name: the device axis to sum metrics over (pmap), or None.

    Returns:
      {"loss_sum", "correct", "count"}: summed loss, number correct, number of real rows.
    """
    logits = state.apply_fn(state.variables(), unit_float(batch["image"]), train=False)
    mask = batch.get("mask")
    weight = jnp.ones(logits.shape[0]) if mask is None else mask.astype(jnp.float32)
    metrics = {
        "loss_sum": (loss_fn(logits, batch["label"]) * weight).sum(),
        "correct": ((jnp.argmax(logits, -1) == batch["label"]) * weight).sum(),
        "count": weight.sum(),
    }
    if axis_name is not None:
        metrics = jax.lax.psum(metrics, axis_name)
    return metrics
