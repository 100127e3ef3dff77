"""Run configurations: one dataclass, small TOML files, command-line overrides.

Contract: `TrainConfig` lists every setting of a training run with its default and help
text (the `jaxcnn train` flags are generated from it). `load_config(path)` reads a TOML
file (one per experiment, a comment per field, see experiments/configs/) whose keys are
field names; unknown keys and wrong types are refused naming the key. TOML is read with
the standard library's `tomllib`: a config file is data, never executed code.
"""
from __future__ import annotations

import dataclasses
import pathlib
import tomllib


def _field(default, help_text: str):
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a `jaxcnn train` run (see `jaxcnn.fit` for the details)."""

    model: str = _field("lenet5", "model name (jaxcnn.models.names())")
    dataset: str = _field("digits", "dataset name (jaxcnn.data.names(), any TFDS name), or "
                                    "folder:PATH for a folder of class sub-folders (streamed)")
    weights: str | None = _field(
        None, "weights to start from: 'imagenet' (vgg16, vgg19, resnet50: downloaded once), "
              "or a file: Keras .h5, or torchvision-named .safetensors / .npz (vgg, resnet "
              "and alexnet models); a classifier of another class count is replaced")
    freeze: str | None = _field(
        None, "regular expression over parameter paths (e.g. 'block[1-4]_'): those "
              "parameters and BatchNorm statistics are not trained")
    epochs: int = _field(30, "passes over the training set")
    batch_size: int = _field(32, "global examples per step, split over the devices")
    optimizer: str = _field("adam", "sgd, momentum, nesterov, adam, adamw, rmsprop or adagrad")
    learning_rate: float = _field(3e-3, "base (peak) learning rate")
    schedule: str = _field("cosine", "constant, step, cosine, warmup_cosine or one_cycle")
    warmup_steps: int = _field(0, "warm-up steps of warmup_cosine (0: 5%% of the run)")
    weight_decay: float = _field(0.0, "weight decay of the kernels (0: none)")
    clip_norm: float | None = _field(None, "clip gradients to this global norm")
    accumulate_steps: int = _field(1, "steps whose gradients make one update")
    loss: str = _field("cross_entropy", "cross_entropy or total_error")
    label_smoothing: float = _field(0.0, "label smoothing of the targets")
    random_shift: float = _field(
        0.1, "shift training images at random by up to this fraction of their height and "
             "width (0: no augmentation)")
    val_fraction: float = _field(
        0.2, "folder datasets without train/ and val/ sub-folders: share of each class held "
             "out for validation")
    workers: int | None = _field(
        None, "folder datasets: processes that decode images (None: the cores but one)")
    strategy: str = _field("jit", "jit (one device), pmap or sharded (all devices, all hosts)")
    precision: str = _field("float32", "float32, or bfloat16 compute with float32 parameters")
    offline: bool = _field(False, "never download a catalog dataset: a missing one fails at "
                                  "once (also JAXCNN_OFFLINE=1)")
    seed: int = _field(0, "seed of initialization, shuffling and dropout")
    workdir: str | None = _field(
        None, "where checkpoints, history and curves go (None: runs/<model>-<dataset>); a "
              "workdir holding the same run continues it")
    resume: bool = _field(False, "demand a checkpoint in --workdir to continue from")
    overwrite: bool = _field(False, "delete the run in --workdir and start afresh")
    extend: bool = _field(False, "train a finished run of fewer epochs on to --epochs")
    checkpoint_every: int | None = _field(
        None, "save every this many steps (None: at the end of each epoch)")
    keep_checkpoints: int = _field(3, "how many of the newest checkpoints to keep")
    tensorboard: bool = _field(False, "also write TensorBoard event files (needs tensorboardX)")
    quiet: bool = _field(False, "no progress bar; one JSON line per epoch")


def _types() -> dict[str, tuple[type, ...]]:
    """Accepted Python types per field (ints are fine where floats are expected)."""
    hints = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
             "float | None": (int, float), "int | None": (int,), "str | None": (str,)}
    return {f.name: hints[f.type] for f in dataclasses.fields(TrainConfig)}


def load_config(path: str | pathlib.Path) -> TrainConfig:
    """Reads a TOML run configuration; missing keys keep their defaults.

    Args:
      path: the .toml file.

    Returns:
      The `TrainConfig`.

    Raises:
      ValueError: unreadable file, unknown key or wrong type.
    """
    try:
        values = tomllib.loads(pathlib.Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"cannot read config file {str(path)!r}: {err}") from err
    return config_from_dict(values, f"config file {str(path)!r}")


def config_from_dict(values: dict, source: str = "the settings",
                     base: TrainConfig | None = None) -> TrainConfig:
    """Checks field names and types of `values` and applies them over `base`.

    Args:
      values: field name -> value.
      source: where the values come from, for error messages.
      base: the configuration to override (default: `TrainConfig()`).

    Returns:
      The `TrainConfig`.

    Raises:
      ValueError: unknown key or wrong type.
    """
    types = _types()
    for key, value in values.items():
        if key not in types:
            raise ValueError(f"unknown key {key!r} in {source}; valid keys: "
                             f"{', '.join(types)}.")
        if isinstance(value, bool) != (types[key] == (bool,)) or not isinstance(value, types[key]):
            raise ValueError(f"{key} in {source} must be of type "
                             f"{' or '.join(t.__name__ for t in types[key])}, got {value!r}.")
    return dataclasses.replace(base or TrainConfig(), **values)


def default_workdir(model: str, dataset: str) -> str:
    """The workdir of a run that names none: one per model and dataset."""
    return f"runs/{model}-{dataset}"
