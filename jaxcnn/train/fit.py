"""The fit loop: epochs of jitted train steps, evaluation, history and a progress bar.

Contract: `fit(model, train_data, eval_data, ...)` returns `(state, history)` where
`history` has one dict per epoch (train/eval loss and accuracy, seconds). The same
arguments and seed always give the same parameters. The data are checked against the
model before anything is compiled. With a `workdir`, the history (JSON) and the final
variables (Flax msgpack) are written there.
"""
from __future__ import annotations

import functools
import json
import pathlib
import time

import flax.linen as nn
import jax
import numpy as np
import optax
from flax import serialization
from tqdm.auto import tqdm

from jaxcnn.data.arrays import ArrayDataset
from jaxcnn.train.optim import make_optimizer
from jaxcnn.train.state import TrainState, create_state
from jaxcnn.train.steps import eval_step, train_step


def check_data_fits_model(model: nn.Module, data: ArrayDataset, role: str) -> None:
    """Refuses a dataset whose images or classes do not fit the model.

    Args:
      model: a jaxcnn model with `input_shape` and `num_classes`.
      data: the dataset.
      role: "train_data" or "eval_data", used in the message.
    """
    if tuple(data.image_shape) != tuple(model.input_shape):
        raise ValueError(
            f"{role} '{data.name}' has images of shape {data.image_shape} but the model "
            f"expects {tuple(model.input_shape)}; load the data with "
            f"image_size={tuple(model.input_shape[:2])} or build the model with "
            f"input_shape={data.image_shape}.")
    if data.num_classes > model.num_classes:
        raise ValueError(
            f"{role} '{data.name}' has {data.num_classes} classes but the model outputs "
            f"{model.num_classes}; build it with num_classes={data.num_classes}.")


def evaluate(state: TrainState, data: ArrayDataset, batch_size: int, eval_fn=None) -> dict:
    """Loss and accuracy over every example of `data`, each counted exactly once.

    Args:
      state: the train state.
      data: the dataset.
      batch_size: evaluation batch size (the last batch is padded and masked).
      eval_fn: a compiled `eval_step`; compiled here if None.

    Returns:
      {"loss": mean loss, "accuracy": fraction correct, "count": examples seen}.
    """
    eval_fn = eval_fn or jax.jit(eval_step)
    totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
    for batch in data.batches(batch_size, drop_remainder=False):
        for name, value in eval_fn(state, batch).items():
            totals[name] += float(value)
    count = totals["count"]
    return {"loss": totals["loss_sum"] / count, "accuracy": totals["correct"] / count,
            "count": int(count)}


def fit(model: nn.Module, train_data: ArrayDataset, eval_data: ArrayDataset | None = None, *,
        epochs: int, batch_size: int, optimizer: str | optax.GradientTransformation = "adam",
        learning_rate: float = 1e-3, seed: int = 0, workdir: str | pathlib.Path | None = None,
        progress: bool = True) -> tuple[TrainState, list[dict]]:
    """Trains `model` on `train_data`, evaluating on `eval_data` after every epoch.

    Args:
      model: a jaxcnn model (see `jaxcnn.models.create`).
      train_data: training set; shuffled per epoch from `seed`, remainder dropped.
      eval_data: optional evaluation set; every example counted once.
      epochs: number of passes over `train_data`.
      batch_size: examples per step.
      optimizer: an optimizer name (see `jaxcnn.train.optimizer_names()`) or an Optax
        transformation.
      learning_rate: learning rate for a named optimizer.
      seed: seeds initialization, shuffling and dropout.
      workdir: if given, `history.json` and `variables.msgpack` are written there.
      progress: show a progress bar.

    Returns:
      `(state, history)`: the trained state and one dict per epoch with keys epoch,
      train_loss, train_accuracy, eval_loss, eval_accuracy (when eval_data), seconds.

    Raises:
      ValueError: data that do not fit the model, or bad arguments.
      FloatingPointError: the training loss became NaN or Inf.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs}.")
    check_data_fits_model(model, train_data, "train_data")
    if eval_data is not None:
        check_data_fits_model(model, eval_data, "eval_data")
    steps_per_epoch = train_data.num_batches(batch_size, drop_remainder=True)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the {len(train_data)} "
                         f"training examples; use a batch_size <= {len(train_data)}.")
    tx = make_optimizer(optimizer, learning_rate)
    state = create_state(model, tx, seed)
    train_fn = jax.jit(train_step, donate_argnums=0)
    eval_fn = jax.jit(eval_step)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        state, train_metrics = _train_epoch(state, train_fn, train_data, batch_size, seed, epoch,
                                            progress=progress, epochs=epochs)
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in train_metrics.items()}}
        if eval_data is not None:
            scores = evaluate(state, eval_data, batch_size, eval_fn)
            record.update(eval_loss=scores["loss"], eval_accuracy=scores["accuracy"])
        record["seconds"] = time.perf_counter() - start
        history.append(record)
    if workdir is not None:
        save_run(workdir, state, history)
    return state, history


def _train_epoch(state, train_fn, data, batch_size, seed, epoch, *, progress, epochs):
    """Runs one epoch; returns the new state and the epoch's mean loss and accuracy."""
    batches = data.batches(batch_size, shuffle=True, seed=seed, epoch=epoch, drop_remainder=True)
    total = data.num_batches(batch_size, drop_remainder=True)
    bar = tqdm(batches, total=total, desc=f"epoch {epoch}/{epochs}", disable=not progress,
               leave=False, unit="step")
    step_metrics = []
    for i, batch in enumerate(bar):
        state, metrics = train_fn(state, batch)
        step_metrics.append(metrics)
        if progress and (i % 10 == 0 or i == total - 1):
            bar.set_postfix(loss=f"{float(metrics['loss']):.4f}",
                            acc=f"{float(metrics['accuracy']):.3f}")
    bar.close()
    stacked = jax.device_get(step_metrics)
    losses = np.array([m["loss"] for m in stacked])
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        step = (epoch - 1) * total + int(bad[0]) + 1
        raise FloatingPointError(
            f"the training loss became {losses[bad[0]]} at step {step} (epoch {epoch}); "
            "lower the learning rate or check the data for NaN/Inf values.")
    accuracy = float(np.mean([m["accuracy"] for m in stacked]))
    return state, {"loss": float(losses.mean()), "accuracy": accuracy}


def save_run(workdir: str | pathlib.Path, state: TrainState, history: list[dict]) -> None:
    """Writes `history.json` and `variables.msgpack` (Flax serialization) into `workdir`.

    Args:
      workdir: the run's directory (created if missing).
      state: the trained state.
      history: the per-epoch records.
    """
    path = pathlib.Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    (path / "history.json").write_text(json.dumps(history, indent=2))
    variables = jax.device_get(state.variables())
    (path / "variables.msgpack").write_bytes(serialization.to_bytes(variables))


def load_variables(path: str | pathlib.Path, model: nn.Module) -> dict:
    """Reads variables written by `save_run` for `model`.

    Args:
      path: the `variables.msgpack` file.
      model: the model the variables belong to (gives the tree structure).

    Returns:
      The variables dict, ready for `model.apply`.
    """
    target = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                            jax.ShapeDtypeStruct((1, *model.input_shape), np.float32))
    target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
    return serialization.from_bytes(target, pathlib.Path(path).read_bytes())

