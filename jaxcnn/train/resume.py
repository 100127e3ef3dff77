"""Where a run starts when its workdir already holds one: continue, extend, or refuse.

Contract: `starting_point(...)` never deletes a run unless told to (`overwrite=True`).
A workdir whose newest checkpoint has the same settings is continued from it, so rerunning
a command picks up where an interrupted run stopped (and a finished run is not trained
again), as the Flax examples and Keras' BackupAndRestore do. A run with other settings is
refused with a message naming each difference and the ways out; training a finished run
for more epochs needs `extend=True`, and the message says what that does to the
learning-rate schedule. A workdir with run files but no checkpoint is refused too.
"""
from __future__ import annotations

from typing import Any, Callable

import jax

from jaxcnn.runs import RunDir
from jaxcnn.train.checkpoint import Checkpoints
from jaxcnn.train.parallel import Parallel
from jaxcnn.train.state import TrainState

# The ways out of a refused start, named in every refusal.
_WAYS_OUT = ("pass overwrite=True (--overwrite) to delete it and start afresh, or choose "
             "another workdir (--workdir).")


def describe_augment(augment) -> str | None:
    """A stable description of an augmentation: its repr for jaxcnn's dataclasses."""
    if augment is None:
        return None
    if hasattr(augment, "__dataclass_fields__"):
        return repr(augment)
    return getattr(augment, "__qualname__", type(augment).__name__)


def _differences(found: dict[str, Any], wanted: dict[str, Any]) -> dict[str, tuple]:
    return {name: (found.get(name), wanted.get(name)) for name in sorted(set(found) | set(wanted))
            if found.get(name) != wanted.get(name)}


def _extension_note(found: dict, wanted: dict, done_updates: int,
                    learning_rate: Callable[[int, int], float]) -> str:
    """What `extend=True` would do to the learning rate, for the refusal message."""
    before = learning_rate(done_updates, found["updates"])
    after = learning_rate(done_updates, wanted["updates"])
    return (f" To train it on to {wanted['epochs']} epochs, pass extend=True (--extend): the "
            f"{wanted['schedule']} schedule is then laid over {wanted['epochs']} epochs "
            f"instead of {found['epochs']}, so at step {done_updates} the learning rate "
            f"becomes {after:.3g} where the finished run had {before:.3g}.")


def starting_point(run_dir: RunDir | None, checkpoints: Checkpoints | None,
                   parallel: Parallel, state: TrainState, fingerprint: dict,
                   settings: dict, *, resume: bool, overwrite: bool, extend: bool,
                   learning_rate: Callable[[int, int], float]) -> tuple[TrainState, dict]:
    """The placed state and checkpoint meta a run starts from.

    Args:
      run_dir: the run directory, or None for a run without files.
      checkpoints: its checkpoints (None without a run directory).
      parallel: the strategy, to place a restored state.
      state: the freshly initialized, placed state.
      fingerprint: the model's fingerprint (`jaxcnn.train.checkpoint.fingerprint`).
      settings: what makes two runs the same run (see `fit`); "epochs", "schedule" and
        "updates" (optimizer updates of the whole run) are read here.
      resume: the caller demands a checkpoint to continue from.
      overwrite: delete what the workdir holds and start afresh.
      extend: allow a run with fewer epochs (otherwise the same) to be trained on.
      learning_rate: `(update, total_updates) -> learning rate` of the run's schedule.

    Returns:
      `(state, meta)`: meta is {} for a fresh start.

    Raises:
      ValueError: nothing to resume, or a run with other settings in the workdir.
    """
    if checkpoints is None:
        return state, {}
    if overwrite and resume:
        raise ValueError("resume=True continues the run in the workdir and overwrite=True "
                         "deletes it; pass one of them.")
    if overwrite:
        checkpoints.delete_all()
        if jax.process_index() == 0:
            run_dir.clear()
        return state, {}
    if not checkpoints.steps():
        if resume:
            raise ValueError(f"resume=True but {checkpoints.directory} holds no checkpoint; "
                             "start the run without resume (--resume) first.")
        leftovers = run_dir.existing_files()
        if leftovers:
            raise ValueError(f"{str(run_dir.path)!r} holds the files of a run ("
                             f"{', '.join(leftovers)}) but no checkpoint to continue from; "
                             + _WAYS_OUT)
        return state, {}
    restored_state, meta = checkpoints.restore_latest(parallel.state_for_checkpoint(state),
                                                      fingerprint)
    found = meta.get("settings")
    if found is None:
        raise ValueError(f"the checkpoints in {checkpoints.directory} were written by an older "
                         "jaxcnn that did not record the run's settings; " + _WAYS_OUT)
    differences = _differences(found, settings)
    more_epochs = set(differences) <= {"epochs", "updates"} and \
        settings["epochs"] > found["epochs"]
    if differences and not (more_epochs and extend):
        listed = "; ".join(f"{name}: {old!r} in the run, {new!r} now"
                           for name, (old, new) in differences.items() if name != "updates")
        note = ""
        if more_epochs:
            done = int(restored_state.step) // settings["accumulate_steps"]
            note = _extension_note(found, settings, done, learning_rate)
        raise ValueError(f"{str(run_dir.path)!r} holds a run with other settings ({listed})."
                         f"{note} To continue that run, use its settings; or " + _WAYS_OUT)
    return parallel.place_state(restored_state), meta
