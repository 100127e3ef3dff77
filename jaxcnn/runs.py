"""The run directory: the one owner of what a training run writes and reads.

Contract: `RunDir(path)` is the only code that names, writes and reads the files of a
run directory (the `workdir` of `jaxcnn.fit` and `jaxcnn train`):

    run.json           settings and results of the run; describes variables.msgpack
    history.json/.csv  one record per finished epoch
    curves.png         loss and accuracy per epoch, train vs eval
    variables.msgpack  the final variables (Flax serialization)
    checkpoints/       Orbax checkpoints (written by `jaxcnn.train.checkpoint`)
    tensorboard/       TensorBoard event files, when asked for
    viz/               pictures written by `jaxcnn visualize`

Paths go through `etils.epath`, so a run directory may be on any filesystem it knows:
local, or `gs://`, `s3://`, ... (with that filesystem's fsspec package installed; a
missing one is named). Every file is written whole or not at all (a temporary file
renamed into place), so a crash never leaves half a file. `RunDir.lock()` makes one
process the only writer: a second process is refused at once, naming the holder (pid and
host in `.lock.owner`); the lock is an OS file lock (`filelock`; for a remote directory a
local one, which guards the processes of this host), so one left by a killed process is
free again and is taken over with a warning. `load_run(workdir)` rebuilds the model of a
finished run as `jaxcnn train` built it and returns it with its variables and test split.
"""
from __future__ import annotations

import contextlib
import csv
import datetime
import functools
import hashlib
import io
import json
import os
import shutil
import socket
import warnings
from typing import NamedTuple

import filelock
import flax.linen as nn
from etils import epath
import jax
import numpy as np
from flax import serialization
# A Figure without pyplot draws to files with no display and leaves the user's backend
# alone (choosing one here would turn off inline plots in notebooks).
from matplotlib.figure import Figure

from jaxcnn import data as datasets
from jaxcnn import models
from jaxcnn.download import cache_root
from jaxcnn.paths import as_path, is_remote, write_atomically


class RunInUse(RuntimeError):
    """Another process holds the run directory's lock."""


# The files a run writes, and its folders of checkpoints and TensorBoard events: what
# `overwrite` deletes. Pictures under viz/ and anything else are left alone.
RUN_FILES = ("run.json", "history.json", "history.csv", "curves.png", "variables.msgpack")


class RunDir:
    """The files of one run directory.

    Args:
      path: the run directory (created by the first write).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = as_path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def checkpoints(self) -> epath.Path:
        """Where the Orbax checkpoints go (absolute, as Orbax wants)."""
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> epath.Path:
        """Where TensorBoard event files go."""
        return self.path / "tensorboard"

    def _write(self, name: str, content: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path / name, content)

    def write_history(self, history: list[dict]) -> None:
        """Writes `history.json` and `history.csv` (one row per epoch)."""
        self._write("history.json", json.dumps(history, indent=2).encode())
        columns = list(dict.fromkeys(name for record in history for name in record))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
        self._write("history.csv", table.getvalue().encode())

    def write_curves(self, history: list[dict]) -> None:
        """Writes `curves.png`: loss and accuracy per epoch, train vs eval."""
        buffer = io.BytesIO()
        plot_history(history).savefig(buffer, format="png", dpi=100)
        self._write("curves.png", buffer.getvalue())

    def write_variables(self, variables: dict) -> None:
        """Writes the final variables to `variables.msgpack`."""
        self._write("variables.msgpack", serialization.to_bytes(jax.device_get(variables)))

    def write_summary(self, summary: dict) -> None:
        """Writes `run.json`, the settings and results of the run."""
        self._write("run.json", json.dumps(summary, indent=2).encode())

    def read_history(self) -> list[dict]:
        """The per-epoch records of `history.json`."""
        return json.loads(self._read("history.json"))

    def read_summary(self) -> dict:
        """The contents of `run.json`."""
        return json.loads(self._read("run.json"))

    def read_variables(self, model: nn.Module) -> dict:
        """Reads `variables.msgpack` for `model`, checking every array's shape.

        Args:
          model: the model the variables belong to (gives the tree and the shapes).

        Returns:
          The variables dict, ready for `model.apply`.

        Raises:
          ValueError: the file is missing, unreadable, or holds other names or shapes.
        """
        return read_variables(self.path / "variables.msgpack", model)

    def prepare(self) -> None:
        """Creates the directory and its checkpoint folder and proves both writable.

        Raises:
          ValueError: the path is a file, or it (or its checkpoints folder) cannot be
            created or written; the message names the path.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"workdir {str(self.path)!r} is a file, not a directory; choose "
                             "another workdir (--workdir).")
        for folder in (self.path, self.checkpoints):
            probe = folder / f".write-test-{os.getpid()}"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe.write_bytes(b"jaxcnn")
                probe.unlink()
            except OSError as err:
                raise ValueError(f"cannot write to {str(folder)!r} ({err.strerror or err}); "
                                 "choose a workdir you can write to (--workdir).") from err

    def check_free_space(self, needed: int) -> None:
        """Refuses to start when the disk cannot hold `needed` bytes.

        Raises:
          ValueError: less free space than `needed`, naming both amounts.
        """
        if is_remote(self.path):
            return  # object stores do not fill up
        free = shutil.disk_usage(self.path).free
        if free < needed:
            raise ValueError(f"only {free / 2**20:,.1f} MiB are free on the disk of "
                             f"{str(self.path)!r}, and the run needs about "
                             f"{needed / 2**20:,.1f} MiB for its checkpoints; free some space "
                             "or choose another workdir (--workdir).")

    @contextlib.contextmanager
    def lock(self):
        """Holds the directory for this process while the block runs.

        Raises:
          RunInUse: another process holds it (the message names its pid and host).
          ValueError: the directory cannot be created or written (see `prepare`).
        """
        self.prepare()
        owner_file = self.path / ".lock.owner"
        # One lock object per path in this process, so `jaxcnn train` can hold the
        # directory around `fit`, which takes it again.
        lock = filelock.FileLock(self._lock_file(), timeout=0, is_singleton=True)
        if lock.is_locked:  # held by this process already
            with lock:
                yield self
            return
        try:
            lock.acquire()
        except filelock.Timeout:
            raise RunInUse(f"{str(self.path)!r} is in use by another run "
                           f"({_describe_owner(owner_file)}); wait for it to finish, or "
                           "choose another workdir (--workdir).") from None
        try:
            if owner_file.is_file():  # the holder died without releasing: take over
                warnings.warn(f"taking over {str(self.path)!r} from a run that stopped without "
                              f"releasing it ({_describe_owner(owner_file)}).", RuntimeWarning,
                              stacklevel=3)
            owner = {"pid": os.getpid(), "host": socket.gethostname(),
                     "since": datetime.datetime.now().isoformat(timespec="seconds")}
            write_atomically(owner_file, json.dumps(owner).encode())
            yield self
        finally:
            owner_file.unlink(missing_ok=True)
            lock.release()

    def _lock_file(self) -> str:
        """The OS lock file: in the directory, or for a remote one in jaxcnn's local cache."""
        if not is_remote(self.path):
            return os.fspath(self.path / ".lock")
        digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:16]
        folder = cache_root() / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return os.fspath(folder / f"{digest}.lock")

    def existing_files(self) -> list[str]:
        """Which of a run's files (`RUN_FILES`) the directory holds."""
        return [name for name in RUN_FILES if (self.path / name).is_file()]

    def clear(self) -> None:
        """Deletes the run's files and TensorBoard events (`overwrite`); checkpoints are
        deleted through their manager."""
        for name in self.existing_files():
            (self.path / name).unlink()
        if self.tensorboard.is_dir():
            self.tensorboard.rmtree()

    def missing(self, *names: str) -> list[str]:
        """Which of the files `names` the directory lacks."""
        return [name for name in names if not (self.path / name).is_file()]

    def _read(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except OSError as err:
            raise ValueError(f"cannot read {name} of the run in {str(self.path)!r}: "
                             f"{err.strerror or err}.") from err


def _describe_owner(owner_file: epath.Path) -> str:
    """'pid 123 on host h since 2026-12-03T17:00:00', from the lock's owner file."""
    try:
        owner = json.loads(owner_file.read_text())
        return f"pid {owner['pid']} on host {owner['host']} since {owner['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its owner file is unreadable"


def read_variables(path: str | os.PathLike, model: nn.Module) -> dict:
    """Reads variables written by `RunDir.write_variables` for `model`, shapes checked.

    Args:
      path: the `variables.msgpack` file.
      model: the model the variables belong to.

    Returns:
      The variables dict, ready for `model.apply`.

    Raises:
      ValueError: the file is missing, unreadable, or holds other names or shapes.
    """
    path = as_path(path)
    target = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                            jax.ShapeDtypeStruct((1, *model.input_shape), np.float32))
    try:
        found = serialization.msgpack_restore(path.read_bytes())
    except OSError as err:
        raise ValueError(f"cannot read variables from {str(path)!r}: {err.strerror or err}.") \
            from err
    except Exception as err:  # msgpack raises several kinds on a damaged file
        raise ValueError(f"{str(path)!r} is not a variables file written by jaxcnn "
                         f"({type(err).__name__}: {err}).") from err
    expected = {jax.tree_util.keystr(k): tuple(v.shape)
                for k, v in jax.tree_util.tree_flatten_with_path(target)[0]}
    stored = {jax.tree_util.keystr(k): tuple(np.shape(v))
              for k, v in jax.tree_util.tree_flatten_with_path(found)[0]}
    if stored != expected:
        differences = [f"{name}: file {stored.get(name, 'missing')}, model "
                       f"{expected.get(name, 'missing')}"
                       for name in sorted(set(expected) | set(stored))
                       if stored.get(name) != expected.get(name)]
        raise ValueError(f"the variables in {str(path)!r} do not fit {type(model).__name__} "
                         f"({len(differences)} differences, e.g. {'; '.join(differences[:3])}); "
                         "build the model with the settings of the run that wrote them.")
    return serialization.from_state_dict(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype),
                                                      target), found)


def plot_history(history: list[dict]) -> Figure:
    """Loss and accuracy per epoch, train vs eval, as a two-panel figure.

    Args:
      history: per-epoch records with train_/eval_ loss and accuracy.

    Returns:
      The matplotlib Figure.
    """
    epochs = [record["epoch"] for record in history]
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for split in ("train", "eval"):
            name = f"{split}_{metric}"
            if name in history[0]:
                ax.plot(epochs, [record[name] for record in history], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


class Run(NamedTuple):
    """A trained model, its variables, the test images of its dataset and its run.json."""

    model: nn.Module
    variables: dict
    test_data: datasets.ArrayDataset
    record: dict


def load_run(workdir: str | os.PathLike) -> Run:
    """Reads the finished run `jaxcnn train` wrote into `workdir`.

    The model is rebuilt as `jaxcnn train` built it: its default input size, the dataset's
    classes and image shape, and the fields it was trained with (run.json "model_fields":
    e.g. the preprocessing of the weights it started from; the weights are not read).

    Args:
      workdir: the run directory.

    Returns:
      The `Run`.

    Raises:
      ValueError: a folder without run.json and variables.msgpack, or variables that do
        not fit the model.
    """
    run = RunDir(workdir)
    missing = run.missing("run.json", "variables.msgpack")
    if missing:
        raise ValueError(f"--workdir {str(run.path)!r} is not a finished run: "
                         f"{', '.join(missing)} missing; train first with "
                         "`jaxcnn train --workdir ...`.")
    record = run.read_summary()
    size = tuple(models.create(record["model"]).input_shape[:2])
    folder = {k: record[k] for k in ("val_fraction", "seed", "workers") if k in record}
    test_data = datasets.load(record["dataset"], "test", image_size=size, folder_options=folder)
    model = models.create(record["model"], num_classes=test_data.num_classes,
                          input_shape=test_data.image_shape, **record.get("model_fields", {}))
    return Run(model, run.read_variables(model), test_data, record)
