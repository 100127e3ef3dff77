"""The benchmark workloads of WORKLOADS.md, built from jaxcnn's model registry.

Contract: `WORKLOADS` maps a workload name to its `Workload` (registry name, model fields,
default batch size); `build_model` creates the Flax module, `random_batch` the fixed
random input (images uniform in [0, 1), integer labels), and `make_optimizer` the
optimizer every framework uses (SGD, momentum 0.9, learning rate 0.01).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxcnn import models

LEARNING_RATE = 0.01
MOMENTUM = 0.9
PRECISIONS = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark workload.

    Attributes:
      model: registry name passed to `jaxcnn.models.create`.
      fields: model fields (input shape, classes, options) passed to `create`.
      batch: default batch size.
    """

    model: str
    fields: dict[str, Any]
    batch: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images."""
        return tuple(self.fields["input_shape"])

    @property
    def num_classes(self) -> int:
        """Number of label classes."""
        return self.fields["num_classes"]


WORKLOADS: dict[str, Workload] = {
    "lenet5": Workload("lenet5", {"input_shape": (32, 32, 1), "num_classes": 10}, 128),
    # Dropout left out so that every framework does identical work (WORKLOADS.md).
    "cnn4": Workload("cnn4", {"input_shape": (64, 64, 3), "num_classes": 2, "padding": "SAME",
                              "dropout_rate": 0.0}, 64),
    "resnet18": Workload("resnet18_cifar", {"input_shape": (32, 32, 3), "num_classes": 10}, 32),
}


def check_workload(name: str) -> Workload:
    """Looks up a workload by name.

    Args:
      name: a key of `WORKLOADS`.

    Returns:
      The workload.

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose one of {', '.join(WORKLOADS)} "
                         "(or 'all').")
    return WORKLOADS[name]


def check_precision(precision: str) -> Any:
    """The compute dtype for a precision name.

    Args:
      precision: "float32" or "bfloat16".

    Returns:
      The JAX dtype.

    Raises:
      ValueError: for another name.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    return PRECISIONS[precision]


def build_model(name: str, precision: str = "float32", axis_name: str | None = None):
    """Creates the jaxcnn model of a workload.

    Args:
      name: workload name.
      precision: compute dtype name; parameters stay float32.
      axis_name: BatchNorm device axis (pmap), for models that have BatchNorm.

    Returns:
      The unbound Flax module.
    """
    workload = check_workload(name)
    fields = dict(workload.fields, dtype=check_precision(precision))
    if axis_name is not None and "axis_name" in models.create(workload.model).__dataclass_fields__:
        fields["axis_name"] = axis_name
    return models.create(workload.model, **fields)


def random_batch(name: str, batch: int, seed: int = 0) -> dict[str, jax.Array]:
    """A fixed random batch: images uniform in [0, 1), labels uniform over the classes.

    Args:
      name: workload name.
      batch: batch size.
      seed: PRNG seed.

    Returns:
      {"image": (batch, H, W, C) float32, "label": (batch,) int32}.
    """
    workload = check_workload(name)
    kx, ky = jax.random.split(jax.random.key(seed))
    return {"image": jax.random.uniform(kx, (batch, *workload.input_shape)),
            "label": jax.random.randint(ky, (batch,), 0, workload.num_classes)}


def make_optimizer() -> optax.GradientTransformation:
    """SGD with momentum, the optimizer of every framework in the benchmark."""
    return optax.sgd(LEARNING_RATE, momentum=MOMENTUM)
