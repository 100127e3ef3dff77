"""One training run from a `TrainConfig`: what `jaxcnn train` does, callable from Python.

Contract: `train_config(config)` builds the named model, loads the named dataset's train
and test splits at the model's input size, trains with `fit` and returns a summary
(settings, test accuracy and loss, seconds). With a workdir, process 0 also writes the
summary to `<workdir>/run.json`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time

import jax

from jaxcnn import data, models
from jaxcnn.data import augment
from jaxcnn.runs import RunDir
from jaxcnn.train.config import TrainConfig, default_workdir
from jaxcnn.train.fit import fit

# Fields that choose what is trained, or how it is shown, rather than options of `fit`.
_NOT_FIT_OPTIONS = ("model", "dataset", "weights", "quiet", "random_shift", "offline",
                    "val_fraction", "workers")


def augmentation(config: TrainConfig):
    """The training augmentation `config` asks for, or None.

    Shifted-in pixels are zeros, the background of digits and of normalized images.
    """
    if not 0 <= config.random_shift < 1:
        raise ValueError(f"random_shift must be in [0, 1) (a fraction of the image size), got "
                         f"{config.random_shift!r}; 0.1 shifts by up to a tenth each way.")
    if config.random_shift == 0:
        return None
    return augment.RandomTranslation(config.random_shift, config.random_shift,
                                     fill_mode="constant")


def train_config(config: TrainConfig, verbose: bool = True) -> dict:
    """Trains `config.model` on `config.dataset` with the settings of `config`.

    Args:
      config: the run's settings; `workdir=None` means `runs/<model>-<dataset>`.
      verbose: show progress (a bar, or with `config.quiet` one JSON line per epoch).

    Returns:
      The summary: every setting, devices, processes, test_accuracy, test_loss,
      train_seconds.
    """
    augment_batch = augmentation(config)
    if config.workdir is None:
        config = dataclasses.replace(config, workdir=default_workdir(config.model, config.dataset))
    weights = {"weights": config.weights} if config.weights is not None else {}
    model = models.create(config.model, **weights)  # checks the settings before any loading
    size = tuple(model.input_shape[:2])
    folder = {"val_fraction": config.val_fraction, "seed": config.seed, "workers": config.workers}
    train_data, test_data = (data.load(config.dataset, split, image_size=size,
                                       download=not config.offline, folder_options=folder)
                             for split in ("train", "test"))
    model = models.create(config.model, num_classes=train_data.num_classes,
                          input_shape=train_data.image_shape, **weights)
    options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
               if f.name not in _NOT_FIT_OPTIONS}
    run_dir = RunDir(config.workdir)
    with run_dir.lock() if jax.process_index() == 0 else contextlib.nullcontext():
        start = time.perf_counter()
        _, history = fit(model, train_data, test_data, progress=verbose and not config.quiet,
                         log_epochs=verbose and config.quiet, augment=augment_batch,
                         **options)
        seconds = time.perf_counter() - start
        summary = {**dataclasses.asdict(config), "devices": jax.device_count(),
                   "processes": jax.process_count(), "test_accuracy": history[-1]["eval_accuracy"],
                   "test_loss": history[-1]["eval_loss"], "train_seconds": round(seconds, 2),
                   "model_fields": models.architecture_fields(config.model, model)}
        if jax.process_index() == 0:  # under the lock, so it describes the variables written
            run_dir.write_summary(summary)
    return summary
