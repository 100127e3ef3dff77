"""Run checkpoints with Orbax: the train state plus a JSON record of where the run stands.

Contract: a `Checkpoints` object wraps an `orbax.checkpoint.CheckpointManager` over a
run's checkpoint directory (`jaxcnn.runs.RunDir.checkpoints`). Each saved step holds two items: "state" (params, batch_stats,
opt_state, step and the PRNG key's data) and "meta" (JSON: the model's fingerprint, the
position in the data, the history so far, and a SHA-256 checksum of every array of
"state"). Orbax writes a step into a temporary directory and renames it when complete, so
a run killed mid-save never leaves a step that looks finished; the last `keep` steps are
kept. `restore_latest` walks back from the newest step; a step it cannot read, or whose
arrays do not match their checksum (a flipped bit anywhere in the data), is reported in
one warning line, skipped and deleted once an older one is restored; when no step is
good the run stops with a message. A checkpoint of another model is refused. In a
multi-process run every process calls every method.
"""
from __future__ import annotations

import copy
import hashlib
import os
import sys
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxcnn.paths import as_path
from jaxcnn.train.state import TrainState


def fingerprint(model_name: str, state: TrainState) -> dict[str, Any]:
    """What identifies the model of a checkpoint: its name and every parameter's shape."""
    shapes = jax.tree_util.tree_flatten_with_path(state.params)[0]
    return {"model": model_name,
            "params": {jax.tree_util.keystr(path): list(leaf.shape) for path, leaf in shapes}}


def _host_copy(leaf) -> np.ndarray:
    """A leaf on the host; a replicated array's local copy (all of it in every process)."""
    if isinstance(leaf, jax.Array) and leaf.is_fully_replicated:
        return np.asarray(leaf.addressable_data(0))
    return np.asarray(leaf)


def checksum(items: dict[str, Any]) -> str:
    """SHA-256 over every array of `items`: path, dtype, shape and bytes, in tree order."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(items)[0]:
        array = np.ascontiguousarray(_host_copy(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _items(state: TrainState) -> dict[str, Any]:
    """The arrays of a state, the PRNG key as its raw data (Orbax stores plain arrays)."""
    return {"params": state.params, "batch_stats": state.batch_stats or None,
            "opt_state": state.opt_state, "step": state.step,
            "key": jax.random.key_data(state.key)}


def _quiet_closed_loop_callbacks() -> None:
    """Drops the "Event loop is closed" errors TensorStore reports after a failed read.

    When Orbax gives up on a damaged step it closes its event loop while TensorStore still
    has reads in flight; each one that completes later raises RuntimeError in
    `call_soon_threadsafe`, reported through `sys.unraisablehook` as a traceback (dozens
    per damaged step) although nothing is wrong any more. Only those are dropped; every
    other unraisable exception still reaches the previous hook.
    """
    previous = sys.unraisablehook
    if getattr(previous, "jaxcnn_filter", False):
        return

    def hook(unraisable):
        error = unraisable.exc_value
        if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
            return
        previous(unraisable)

    hook.jaxcnn_filter = True
    sys.unraisablehook = hook


class Checkpoints:
    """Saves and restores a run's checkpoints.

    Args:
      directory: the checkpoint directory (`RunDir(workdir).checkpoints`).
      keep: how many of the newest steps to keep.
    """

    def __init__(self, directory: str | os.PathLike, keep: int):
        if keep < 1:
            raise ValueError(f"keep_checkpoints must be a positive integer, got {keep}.")
        self.directory = as_path(directory)  # any filesystem etils.epath knows
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "meta"))

    def steps(self) -> list[int]:
        """The complete saved steps, oldest first."""
        return sorted(self.manager.all_steps())

    def save(self, state: TrainState, meta: dict[str, Any]) -> None:
        """Starts saving `state` (one copy, see `Parallel.state_for_checkpoint`) and `meta`.

        The arrays are copied off the devices before this returns; the files are written
        in the background (`wait` blocks until they are complete).
        """
        step = int(jax.device_get(state.step))
        items = _items(state)
        # A snapshot: the JSON is written in the background while the run mutates `meta`.
        meta = {**copy.deepcopy(meta), "checksum": checksum(items)}
        self.manager.save(step, force=True, args=ocp.args.Composite(
            state=ocp.args.StandardSave(items), meta=ocp.args.JsonSave(meta)))

    def delete_all(self) -> None:
        """Deletes every saved step (only when the user asked to overwrite the run)."""
        for step in self.steps():
            self.manager.delete(step)

    def wait(self) -> None:
        """Blocks until every started save is on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases the manager."""
        self.manager.close()

    def restore_latest(self, like: TrainState, expected: dict[str, Any]
                       ) -> tuple[TrainState, dict[str, Any]] | None:
        """Restores the newest readable step, or returns None when there is none.

        Args:
          like: a state placed as the restored one should be (shapes, dtypes, shardings).
          expected: `fingerprint(...)` of the model being trained.

        Returns:
          `(state, meta)`, or None if the directory holds no complete step.

        Raises:
          ValueError: the checkpoint belongs to another model, or no step is readable.
        """
        steps, unreadable = self.steps(), []
        _quiet_closed_loop_callbacks()  # before any read can fail
        for step in reversed(steps):
            try:
                meta = self._restore(step, meta=ocp.args.JsonRestore())["meta"]
            except Exception as err:  # Orbax and TensorStore raise many kinds on bad files
                unreadable.append(self._warn_unreadable(step, err))
                continue
            self._check_fingerprint(meta.get("fingerprint"), expected)
            target = jax.tree.map(ocp.utils.to_shape_dtype_struct, _items(like))
            try:
                items = self._restore(step, state=ocp.args.StandardRestore(target))["state"]
            except Exception as err:
                unreadable.append(self._warn_unreadable(step, err))
                continue
            if checksum(items) != meta.get("checksum"):
                unreadable.append(self._warn_unreadable(
                    step, "its arrays do not match the checksum saved with them"))
                continue
            for bad in unreadable:  # the resumed run will save these steps again
                self.manager.delete(bad)
            state = like.replace(params=items["params"], batch_stats=items["batch_stats"] or {},
                                 opt_state=items["opt_state"], step=items["step"],
                                 key=jax.random.wrap_key_data(items["key"]))
            return state, meta
        if steps:
            raise ValueError(f"none of the checkpoints {steps} in {self.directory} is intact; "
                             "pass overwrite=True (--overwrite) to delete them and start "
                             "afresh, or choose another workdir (--workdir).")
        return None

    def _restore(self, step: int, **items) -> dict[str, Any]:
        return self.manager.restore(step, args=ocp.args.Composite(**items))

    def _warn_unreadable(self, step: int, why: Exception | str) -> int:
        if isinstance(why, Exception):
            first_line = (str(why).strip().splitlines() or [""])[0][:200]
            why = f"{type(why).__name__}: {first_line}"
        warnings.warn(f"checkpoint step {step} in {self.directory} is corrupt or incomplete "
                      f"({why}); trying the previous one (the bad one is deleted once another "
                      "is restored).", RuntimeWarning, stacklevel=3)
        return step

    def _check_fingerprint(self, found: dict[str, Any] | None, expected: dict[str, Any]) -> None:
        if found != expected:
            name = (found or {}).get("model", "an unknown model")
            raise ValueError(
                f"{self.directory} holds a checkpoint of {name!r} with other parameter shapes "
                f"than the {expected['model']!r} being trained; use the same model and dataset "
                "as the run that wrote it, pass overwrite=True (--overwrite) to delete that run "
                "and start afresh, or choose another workdir (--workdir).")
