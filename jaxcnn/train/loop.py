"""The epoch and step loop behind `fit`: resumable position, NaN checks, saves on time.

Contract: `Loop.run(state, meta, history, epochs, watch)` trains from the position of
`state.step` (a resumed run skips the batches of the current epoch it already did, so it
sees exactly the batches an uninterrupted run sees) to the end of `epochs`, appending one
record per epoch to `history`, with `input_wait`: the share of the epoch's training time
spent waiting for the next batch (a warning says what to do when it passes INPUT_BOUND).
Step losses are fetched from the devices only to refresh
the progress bar and before every checkpoint, where a NaN/Inf raises
`FloatingPointError` naming the step so no checkpoint ever holds a diverged state.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from typing import Callable

import jax

from jaxcnn.data.arrays import ArrayDataset
from jaxcnn.data.batching import prefetch_to_device
from jaxcnn.train.checkpoint import Checkpoints
from jaxcnn.train.monitor import Monitor
from jaxcnn.train.parallel import Parallel
from jaxcnn.train.preemption import Preempted, PreemptionWatch
from jaxcnn.train.state import TrainState

BAR_EVERY = 10  # steps between progress-bar refreshes (each one waits for the devices)
INPUT_BOUND = 0.2  # share of an epoch spent waiting for batches above which a run is warned


def _share(part: float, whole: float) -> float:
    return part / max(whole, 1e-9)


@dataclasses.dataclass
class Loop:
    """What a run needs besides its state; see `fit` for the meaning of each field."""

    parallel: Parallel
    train_data: ArrayDataset
    eval_data: ArrayDataset | None
    batch_size: int
    steps_per_epoch: int
    seed: int
    learning_rate: Callable[[int], float]
    checkpoints: Checkpoints | None
    checkpoint_every: int | None
    identity: dict  # saved in every checkpoint: the model's fingerprint and the data order
    monitor: Monitor
    evaluate: Callable
    warned_input: bool = False

    def run(self, state: TrainState, meta: dict, history: list[dict], epochs: int,
            watch: PreemptionWatch) -> TrainState:
        """Trains until the end of epoch `epochs`; returns the placed final state."""
        done = int(jax.device_get(self.parallel.state_for_checkpoint(state).step))
        first, offset = divmod(done, self.steps_per_epoch)
        sums = meta.get("epoch_sums") if offset else None
        for epoch in range(first + 1, epochs + 1):
            state, sums, stop = self._train_epoch(state, epoch, offset, sums, history, watch)
            record = {"epoch": epoch, "train_loss": sums["loss"] / sums["steps"],
                      "train_accuracy": sums["accuracy"] / sums["steps"]}
            start = time.perf_counter()
            if self.eval_data is not None:
                scores = self.evaluate(state, self.eval_data, self.batch_size,
                                       parallel=self.parallel)
                record.update(eval_loss=scores["loss"], eval_accuracy=scores["accuracy"])
            record["learning_rate"] = self.learning_rate(epoch * self.steps_per_epoch - 1)
            record["seconds"] = sums["seconds"] + time.perf_counter() - start
            record["input_wait"] = round(_share(sums.get("input_seconds", 0.0), sums["seconds"]), 4)
            self._warn_if_input_bound(record)
            history.append(record)
            self.monitor.end_epoch(history)
            self._save(state, history, None)
            if stop:
                self._stop(epoch * self.steps_per_epoch, watch)
            offset, sums = 0, None
        return state

    def _train_epoch(self, state, epoch, offset, sums, history, watch):
        """Steps through one epoch from batch `offset`; returns (state, sums, stop)."""
        size, total = self.batch_size, self.steps_per_epoch
        sums = dict(sums or {"loss": 0.0, "accuracy": 0.0, "steps": 0, "seconds": 0.0})
        # Read in a thread while the previous step runs, so the time spent waiting for a
        # batch is time the devices had nothing to do. Placing it on the devices stays in
        # this thread: a copy racing a pmap step's collectives on 8 CPU devices once
        # stalled its all-reduce past XLA's 40 s rendezvous limit.
        batches = prefetch_to_device(
            self.train_data.batches(size, shuffle=True, seed=self.seed, epoch=epoch,
                                    drop_remainder=True, start_batch=offset),
            put=lambda batch: batch)
        self.monitor.start_epoch(epoch, total, offset)
        pending, start = [], time.perf_counter()
        try:
            for i, batch in enumerate(self._timed(batches, sums), start=offset + 1):
                state, metrics = self.parallel.train_fn(state, self.parallel.place_batch(batch))
                pending.append(self.parallel.metrics(metrics))
                step = (epoch - 1) * total + i
                shown = self.monitor.progress and (i % BAR_EVERY == 0 or i == total)
                elapsed = sums["seconds"] + time.perf_counter() - start
                waited = _share(sums["input_seconds"], elapsed)
                self.monitor.step(i, size, jax.device_get(pending[-1]) if shown else None, waited)
                stop = watch.requested(step)
                due = bool(self.checkpoint_every) and step % self.checkpoint_every == 0
                if i < total and self.checkpoints is not None and (stop or due):
                    self._absorb(pending, sums, step, epoch)
                    sums["seconds"] += time.perf_counter() - start
                    start = time.perf_counter()
                    self._save(state, history, sums)
                    if stop:
                        self._stop(step, watch)
        finally:
            batches.close()  # stops and joins the prefetch thread
        self._absorb(pending, sums, epoch * total, epoch)
        sums["seconds"] += time.perf_counter() - start
        return state, sums, stop

    @staticmethod
    def _timed(batches, sums: dict):
        """Yields `batches`, adding the time spent waiting for each to sums["input_seconds"]."""
        batches = iter(batches)
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            sums["input_seconds"] = sums.get("input_seconds", 0.0) + time.perf_counter() - start
            if batch is None:
                return
            yield batch

    @staticmethod
    def _absorb(pending: list, sums: dict, last_step: int, epoch: int) -> None:
        """Adds the fetched step metrics to `sums`, refusing a NaN/Inf loss."""
        first = last_step - len(pending) + 1
        for step, metrics in enumerate(jax.device_get(pending), start=first):
            loss = float(metrics["loss"])
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {loss} at step {step} (epoch {epoch}); the "
                    "newest checkpoint, if any, is from before it. Lower the learning rate, "
                    "add clip_norm, or check the data for NaN/Inf values.")
            sums["loss"] += loss
            sums["accuracy"] += float(metrics["accuracy"])
            sums["steps"] += 1
        pending.clear()

    def _warn_if_input_bound(self, record: dict) -> None:
        """Warns once per run when the training steps waited for input over INPUT_BOUND."""
        if record["input_wait"] > INPUT_BOUND and not self.warned_input:
            self.warned_input = True
            warnings.warn(
                f"epoch {record['epoch']} waited for its input {record['input_wait']:.0%} of "
                f"the time: the devices are idle while batches are read. Use more decoding "
                f"workers (jaxcnn.data.stream_folder(workers=N)), smaller images, or decode "
                f"once and keep the data in memory (jaxcnn.data.from_folder).", stacklevel=4)

    def _save(self, state: TrainState, history: list[dict], sums: dict | None) -> None:
        """Starts a checkpoint of `state` with the history and partial-epoch sums."""
        if self.checkpoints is not None:
            meta = {**self.identity, "history": history, "epoch_sums": sums}
            self.checkpoints.save(self.parallel.state_for_checkpoint(state), meta)

    def _stop(self, step: int, watch: PreemptionWatch) -> None:
        """Waits for the checkpoint of `step` and raises `Preempted`."""
        self.checkpoints.wait()
        raise Preempted(step, self.checkpoints.directory, watch.signal_name)
