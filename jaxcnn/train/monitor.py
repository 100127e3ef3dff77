"""Watching a run: progress bar, per-epoch history files, curves and TensorBoard events.

Contract: a `Monitor` is told about every logged step and every finished epoch. Only
process 0 of a multi-process run shows or writes anything. With a run directory
(`jaxcnn.runs.RunDir`, which owns the files) it keeps the history current after every
epoch (train/eval loss and accuracy, learning rate, seconds), has the curves written when
the run ends, and, if asked, TensorBoard event files (needs the optional `tensorboardX`
package).
"""
from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
import time

import jax
from tqdm.auto import tqdm

from jaxcnn.paths import is_remote
from jaxcnn.runs import RunDir


class TensorBoardLog:
    """TensorBoard event files of a run, local or remote.

    tensorboardX writes local files (its own Cloud Storage writer does not take the
    endpoint of an emulator or a private gateway), so a remote directory gets a local
    staging folder whose files are uploaded whole after every flush: TensorBoard reads
    the bucket while the run goes on, and a crash loses at most the epoch in progress.

    Args:
      directory: where the event files go (`RunDir.tensorboard`), any `etils.epath` path.

    Raises:
      ValueError: tensorboardX is not installed.
    """

    def __init__(self, directory):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:
            raise ValueError("tensorboard=True needs the tensorboardX package; install it with "
                             "`pip install tensorboardX` or leave TensorBoard off.") from err
        self.directory = directory
        self.staging = tempfile.mkdtemp(prefix="jaxcnn-tensorboard-") if is_remote(directory) else None
        self.writer = SummaryWriter(self.staging or str(directory))

    def add_scalars(self, record: dict, step: int) -> None:
        """Logs every number of `record` at `step` and makes the files current."""
        for name, value in record.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()
        self._upload()

    def close(self) -> None:
        """Closes the writer; a staging folder is uploaded a last time and removed."""
        self.writer.close()
        self._upload()
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _upload(self) -> None:
        if self.staging is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for local in pathlib.Path(self.staging).iterdir():
            (self.directory / local.name).write_bytes(local.read_bytes())


class Monitor:
    """Progress bar, history files, curves and optional TensorBoard for one run.

    Args:
      run_dir: where files go (None: no files).
      epochs: total epochs (for the bar's label).
      progress: show a tqdm bar with loss, accuracy and images/s.
      log_epochs: print one line per finished epoch (quiet mode for logs).
      tensorboard: also write TensorBoard event files.
    """

    def __init__(self, run_dir: RunDir | None, *, epochs: int, progress: bool,
                 log_epochs: bool, tensorboard: bool):
        self.main = jax.process_index() == 0
        self.run_dir = run_dir if self.main else None
        self.epochs = epochs
        self.progress = progress and self.main
        self.log_epochs = log_epochs and self.main
        self.writer = None
        if tensorboard and self.run_dir is not None:
            self.writer = TensorBoardLog(self.run_dir.tensorboard)
        self.bar = None

    def start_epoch(self, epoch: int, total_steps: int, done_steps: int) -> None:
        """Opens the bar of an epoch (`done_steps` already done when resuming)."""
        self.bar = tqdm(total=total_steps, initial=done_steps, desc=f"epoch {epoch}/{self.epochs}",
                        disable=not self.progress, leave=False, unit="step")
        self._clock = (time.perf_counter(), done_steps)

    def step(self, steps_done: int, batch_size: int, metrics: dict | None,
             input_wait: float = 0.0) -> None:
        """Advances the bar; `metrics` (host floats) refreshes its loss/accuracy/images/s and
        the share of time spent waiting for input."""
        self.bar.update(steps_done - self.bar.n)
        if metrics is not None and self.progress:
            start, first = self._clock
            rate = (steps_done - first) * batch_size / max(time.perf_counter() - start, 1e-9)
            self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", acc=f"{metrics['accuracy']:.3f}",
                                 img_s=f"{rate:,.0f}", input_wait=f"{input_wait:.0%}")

    def end_epoch(self, history: list[dict]) -> None:
        """Closes the bar and records the newest epoch of `history` everywhere."""
        self.bar.close()
        record = history[-1]
        if self.log_epochs:
            print(json.dumps({k: round(v, 5) if isinstance(v, float) else v
                              for k, v in record.items()}), flush=True)
        if self.writer is not None:
            self.writer.add_scalars({k: v for k, v in record.items() if k != "epoch"},
                                    record["epoch"])
        if self.run_dir is not None:
            self.run_dir.write_history(history)

    def close(self, history: list[dict]) -> None:
        """Writes the curves and closes the TensorBoard writer."""
        if self.bar is not None:
            self.bar.close()
        if self.run_dir is not None and history:
            self.run_dir.write_curves(history)
        if self.writer is not None:
            self.writer.close()
