"""The fit loop: epochs of compiled train steps, evaluation, checkpoints and monitoring.

Contract: `fit(model, train_data, eval_data, ...)` returns `(state, history)` where
`history` has one dict per epoch (train/eval loss and accuracy, learning rate, seconds).
Everything is checked before anything is compiled. The same arguments and seed give the
same parameters whatever the strategy (up to float rounding) and whether or not the run
was interrupted and resumed: the data order depends only on (seed, epoch), the dropout
key only on (seed, step), and a checkpoint records the step, hence the position in the
data. With a `workdir`, checkpoints go to `<workdir>/checkpoints` (Orbax) and the
history, curves and final variables next to them; on SIGTERM the run saves a checkpoint
and raises `Preempted`; a NaN/Inf loss raises `FloatingPointError` naming the step
before any checkpoint of the bad state is written.
"""
from __future__ import annotations

import contextlib
import dataclasses
import numbers
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn import compiler
from jaxcnn.data.arrays import ArrayDataset
from jaxcnn.ops.shapes import is_int, positive_int
from jaxcnn.runs import RunDir
from jaxcnn.train.checkpoint import Checkpoints, fingerprint
from jaxcnn.train.freeze import freeze_optimizer
from jaxcnn.train.losses import make_loss
from jaxcnn.train.loop import Loop
from jaxcnn.train.monitor import Monitor
from jaxcnn.train.optim import make_optimizer, make_schedule
from jaxcnn.train.parallel import Parallel, make_parallel
from jaxcnn.train.preemption import PreemptionWatch
from jaxcnn.train.resume import describe_augment, starting_point
from jaxcnn.train.state import TrainState, create_state, param_shapes
from jaxcnn.train.steps import eval_step

PRECISIONS = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


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


def evaluate(state: TrainState, data: ArrayDataset, batch_size: int, eval_fn=None,
             parallel: Parallel | None = None) -> dict:
    """Loss and accuracy over every example of `data`, each counted exactly once.

    Args:
      state: the train state (placed for `parallel`).
      data: the dataset.
      batch_size: evaluation batch size (the last batch is padded and masked).
      eval_fn: a compiled `eval_step`; taken from `parallel` or compiled here if None.
      parallel: the strategy the state is placed for; None for one device.

    Returns:
      {"loss": mean loss, "accuracy": fraction correct, "count": examples seen}.
    """
    eval_fn = eval_fn or (parallel.eval_fn if parallel else compiler.jit(eval_step))
    totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
    for batch in data.batches(batch_size, drop_remainder=False):
        sums = eval_fn(state, parallel.place_batch(batch) if parallel else batch)
        for name, value in (parallel.metrics(sums) if parallel else sums).items():
            totals[name] += float(value)
    count = totals["count"]
    return {"loss": totals["loss_sum"] / count, "accuracy": totals["correct"] / count,
            "count": int(count)}


def fit(model: nn.Module, train_data: ArrayDataset, eval_data: ArrayDataset | None = None, *,
        epochs: int, batch_size: int, optimizer: str | optax.GradientTransformation = "adam",
        learning_rate: float = 1e-3, schedule: str = "constant", warmup_steps: int = 0,
        weight_decay: float = 0.0, clip_norm: float | None = None, accumulate_steps: int = 1,
        loss: str = "cross_entropy", label_smoothing: float = 0.0, strategy: str = "jit",
        precision: str = "float32", seed: int = 0, workdir: str | pathlib.Path | None = None,
        resume: bool = False, overwrite: bool = False, extend: bool = False,
        checkpoint_every: int | None = None, keep_checkpoints: int = 3,
        progress: bool = True, log_epochs: bool = False,
        tensorboard: bool = False, augment=None,
        freeze: str | None = None) -> tuple[TrainState, list[dict]]:
    """Trains `model` on `train_data`, evaluating on `eval_data` after every epoch.

    Args:
      model: a jaxcnn model (see `jaxcnn.models.create`).
      train_data: training set; shuffled per epoch from `seed`, remainder dropped.
      eval_data: optional evaluation set; every example counted once.
      epochs: number of passes over `train_data`.
      batch_size: examples per step (the global batch, split over the devices).
      optimizer: a name from `optimizer_names()` or an Optax transformation.
      learning_rate: base learning rate of the schedule.
      schedule: a name from `schedule_names()`.
      warmup_steps: warm-up of "warmup_cosine" (0: 5% of the run).
      weight_decay: decay of the kernels through Optax (0: none).
      clip_norm: clip gradients to this global norm (None: no clipping).
      accumulate_steps: steps whose gradients are averaged into one update.
      loss: "cross_entropy" or "total_error" (seed 003).
      label_smoothing: label smoothing of the loss targets.
      strategy: "jit" (one device), "pmap" or "sharded" (see `jaxcnn.train.parallel`).
      precision: "float32", or "bfloat16" compute with float32 parameters and optimizer.
      seed: seeds initialization, shuffling and dropout.
      workdir: where checkpoints, history, curves and final variables are written. A
        workdir holding a run with the same settings continues it from its newest
        checkpoint (a finished run is not trained again); one with other settings is
        refused, naming the differences (see `jaxcnn.train.resume`).
      resume: demand a checkpoint in `workdir` to continue from (an error if none).
      overwrite: delete the run in `workdir` (checkpoints, history, curves, variables,
        run.json, TensorBoard events) and start afresh.
      extend: train a run of fewer epochs (same settings otherwise) on to `epochs`; its
        learning-rate schedule is laid over the new length.
      checkpoint_every: also save every this many steps (None: only at the end of every
        epoch, which is always saved).
      keep_checkpoints: how many of the newest checkpoints to keep.
      progress: show a progress bar.
      log_epochs: print one line per epoch.
      tensorboard: also write TensorBoard event files (needs tensorboardX).
      augment: `(key, images) -> images` applied to every training batch inside the
        compiled step (e.g. `jaxcnn.data.augment.Sequential([...])`); the key depends
        only on (seed, step), so runs repeat exactly. Evaluation data are never augmented.
      freeze: a regular expression over "/"-joined parameter paths (e.g. r"block[1-4]_");
        the parameters it matches get no update at all and the BatchNorm statistics it
        matches are kept (fine-tuning a pretrained network, see `jaxcnn.train.freeze`).

    Returns:
      `(state, history)`: the trained state (one copy, whatever the strategy) and one
      dict per epoch with epoch, train_loss, train_accuracy, eval_loss, eval_accuracy
      (with eval_data), learning_rate (at the epoch's last step) and seconds.

    Raises:
      ValueError: bad arguments or data that do not fit the model.
      FloatingPointError: the training loss became NaN or Inf.
      Preempted: SIGTERM or SIGINT arrived; a checkpoint of the last step was saved.
    """
    _check_numbers(epochs, batch_size, accumulate_steps, keep_checkpoints, checkpoint_every,
                   seed, learning_rate, label_smoothing)
    steps_per_epoch = _check_arguments(model, train_data, eval_data, epochs, batch_size,
                                       precision, workdir, resume, checkpoint_every)
    if precision == "bfloat16":
        model = model.clone(dtype=PRECISIONS[precision])
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a callable (key, images) -> images such as "
                        f"jaxcnn.data.augment.RandomFlip(), got {augment!r}.")
    parallel = make_parallel(strategy, make_loss(loss, label_smoothing), augment, freeze)
    parallel.check_batch_size(batch_size)
    model = parallel.model_for(model)
    updates = epochs * steps_per_epoch // accumulate_steps
    schedule_for = lambda total: make_schedule(schedule, learning_rate, max(total, 1),
                                               warmup_steps=warmup_steps)
    lr = schedule_for(updates)
    tx = make_optimizer(optimizer, lr, weight_decay=weight_decay, clip_norm=clip_norm,
                        accumulate_steps=accumulate_steps)
    if freeze is not None:
        tx = freeze_optimizer(tx, param_shapes(model), freeze)
    # What makes a rerun the same run (and lets it continue); strategy, checkpointing and
    # display may change between the two.
    settings = {"train_data": train_data.name, "train_examples": len(train_data),
                "epochs": epochs, "updates": updates, "batch_size": batch_size,
                "optimizer": optimizer if isinstance(optimizer, str) else "an Optax object",
                "learning_rate": learning_rate, "schedule": schedule,
                "warmup_steps": warmup_steps, "weight_decay": weight_decay,
                "clip_norm": clip_norm, "accumulate_steps": accumulate_steps, "loss": loss,
                "label_smoothing": label_smoothing, "precision": precision, "seed": seed,
                "augment": describe_augment(augment)}
    if freeze is not None:  # only then: runs from before this option stay the same runs
        settings["freeze"] = freeze
    run_dir = RunDir(workdir) if workdir is not None else None
    writer = run_dir is not None and jax.process_index() == 0
    with contextlib.ExitStack() as held:
        if writer:  # a bad or busy workdir fails here, before anything is compiled
            held.enter_context(run_dir.lock())
        state = create_state(model, tx, seed)
        if writer:  # room for the kept checkpoints plus the one being written
            arrays = jax.tree.leaves((state.params, state.batch_stats, state.opt_state))
            run_dir.check_free_space((keep_checkpoints + 1) * sum(x.nbytes for x in arrays))
        expected = fingerprint(type(model).__name__, state)
        state = parallel.place_state(state)
        checkpoints = Checkpoints(run_dir.checkpoints, keep_checkpoints) if run_dir else None
        state, meta = starting_point(
            run_dir, checkpoints, parallel, state, expected, settings, resume=resume,
            overwrite=overwrite, extend=extend,
            learning_rate=lambda update, total: float(schedule_for(total)(update)))
        monitor = Monitor(run_dir, epochs=epochs, progress=progress, log_epochs=log_epochs,
                          tensorboard=tensorboard)
        loop = Loop(parallel, train_data, eval_data, batch_size, steps_per_epoch, seed,
                    lambda step: float(lr(step // accumulate_steps)), checkpoints, checkpoint_every,
                    {"fingerprint": expected, "settings": settings}, monitor, evaluate)
        history = meta.get("history", [])
        try:
            with PreemptionWatch(enabled=checkpoints is not None) as watch:
                state = loop.run(state, meta, history, epochs, watch)
        finally:
            monitor.close(history)
            if checkpoints is not None:
                checkpoints.close()
        state = parallel.state_for_checkpoint(state)
        if run_dir is not None and jax.process_index() == 0:
            run_dir.write_history(history)
            run_dir.write_variables(state.variables())
        return state, history


def _check_numbers(epochs, batch_size, accumulate_steps, keep_checkpoints, checkpoint_every,
                   seed, learning_rate, label_smoothing) -> None:
    """Refuses counts, seeds and rates of the wrong type or range (ValueError/TypeError)."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size),
                        ("accumulate_steps", accumulate_steps),
                        ("keep_checkpoints", keep_checkpoints)):
        positive_int(value, name)
    if checkpoint_every is not None:
        positive_int(checkpoint_every, "checkpoint_every")
    if not is_int(seed) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}.")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) \
            or not 0 < learning_rate < float("inf"):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}.")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
            or not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")


def _check_arguments(model, train_data, eval_data, epochs, batch_size, precision, workdir,
                     resume, checkpoint_every) -> int:
    """Refuses bad arguments before anything is compiled; returns the steps per epoch."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if resume and workdir is None:
        raise ValueError("resume=True needs the workdir of the run to resume.")
    if precision != "float32" and "dtype" not in {f.name for f in dataclasses.fields(model)}:
        raise ValueError(f"precision={precision!r} needs a model with a `dtype` field (its "
                         f"compute dtype); {type(model).__name__} has none, use 'float32'.")
    if len(train_data) == 0:
        raise ValueError(f"train_data '{train_data.name}' is empty; training needs examples.")
    check_data_fits_model(model, train_data, "train_data")
    if eval_data is not None:
        if len(eval_data) == 0:
            raise ValueError(f"eval_data '{eval_data.name}' is empty; pass eval_data=None to "
                             "train without evaluation.")
        check_data_fits_model(model, eval_data, "eval_data")
    steps_per_epoch = train_data.num_batches(batch_size, drop_remainder=True)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the {len(train_data)} "
                         f"training examples; use a batch_size <= {len(train_data)}.")
    return steps_per_epoch
