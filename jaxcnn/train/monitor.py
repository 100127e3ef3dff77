"""Watching a run: progress bar, per-epoch history files, curves and TensorBoard events.

Contract: a `Monitor` is told about every logged step and every finished epoch. Only
process 0 of a multi-process run shows or writes anything. With a workdir it keeps
`history.json` and `history.csv` current after every epoch (train/eval loss and
accuracy, learning rate, seconds), writes `curves.png` (loss and accuracy, train vs
eval) when the run ends, and, if asked, TensorBoard event files under `tensorboard/`
(needs the optional `tensorboardX` package).
"""
from __future__ import annotations

import csv
import json
import pathlib
import time

import jax
# A Figure without pyplot draws to files with no display and leaves the user's backend
# alone (choosing one here would turn off inline plots in notebooks).
from matplotlib.figure import Figure
from tqdm.auto import tqdm


def tensorboard_writer(directory: pathlib.Path):
    """A tensorboardX `SummaryWriter`, or a clear error when the package is missing."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError as err:
        raise ValueError("tensorboard=True needs the tensorboardX package; install it with "
                         "`pip install tensorboardX` or leave TensorBoard off.") from err
    return SummaryWriter(str(directory))


class Monitor:
    """Progress bar, history files, curves and optional TensorBoard for one run.

    Args:
      workdir: where files go (None: no files).
      epochs: total epochs (for the bar's label).
      progress: show a tqdm bar with loss, accuracy and images/s.
      log_epochs: print one line per finished epoch (quiet mode for logs).
      tensorboard: also write TensorBoard event files.
    """

    def __init__(self, workdir: str | pathlib.Path | None, *, epochs: int, progress: bool,
                 log_epochs: bool, tensorboard: bool):
        self.main = jax.process_index() == 0
        self.workdir = pathlib.Path(workdir) if workdir is not None and self.main else None
        self.epochs = epochs
        self.progress = progress and self.main
        self.log_epochs = log_epochs and self.main
        self.writer = None
        if tensorboard and self.workdir is not None:
            self.writer = tensorboard_writer(self.workdir / "tensorboard")
        self.bar = None

    def start_epoch(self, epoch: int, total_steps: int, done_steps: int) -> None:
        """Opens the bar of an epoch (`done_steps` already done when resuming)."""
        self.bar = tqdm(total=total_steps, initial=done_steps, desc=f"epoch {epoch}/{self.epochs}",
                        disable=not self.progress, leave=False, unit="step")
        self._clock = (time.perf_counter(), done_steps)

    def step(self, steps_done: int, batch_size: int, metrics: dict | None) -> None:
        """Advances the bar; `metrics` (host floats) refreshes its loss/accuracy/images/s."""
        self.bar.update(steps_done - self.bar.n)
        if metrics is not None and self.progress:
            start, first = self._clock
            rate = (steps_done - first) * batch_size / max(time.perf_counter() - start, 1e-9)
            self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", acc=f"{metrics['accuracy']:.3f}",
                                 img_s=f"{rate:,.0f}")

    def end_epoch(self, history: list[dict]) -> None:
        """Closes the bar and records the newest epoch of `history` everywhere."""
        self.bar.close()
        record = history[-1]
        if self.log_epochs:
            print(json.dumps({k: round(v, 5) if isinstance(v, float) else v
                              for k, v in record.items()}), flush=True)
        if self.writer is not None:
            for name, value in record.items():
                if name != "epoch":
                    self.writer.add_scalar(name, value, record["epoch"])
            self.writer.flush()
        if self.workdir is not None:
            write_history(self.workdir, history)

    def close(self, history: list[dict]) -> None:
        """Writes the curves and closes the TensorBoard writer."""
        if self.bar is not None:
            self.bar.close()
        if self.workdir is not None and history:
            plot_history(history, self.workdir / "curves.png")
        if self.writer is not None:
            self.writer.close()


def write_history(workdir: pathlib.Path, history: list[dict]) -> None:
    """Writes `history.json` and `history.csv` (one row per epoch) into `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "history.json").write_text(json.dumps(history, indent=2))
    columns = list(dict.fromkeys(name for record in history for name in record))
    with open(workdir / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def plot_history(history: list[dict], path: pathlib.Path) -> None:
    """Saves loss and accuracy per epoch, train vs eval, as a two-panel PNG.

    Args:
      history: per-epoch records with train_/eval_ loss and accuracy.
      path: the PNG file.
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
    fig.savefig(path, dpi=100)
