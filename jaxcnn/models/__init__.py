"""The model zoo and its registry.

`create(name, **kwargs)` builds a registered model, `names()` lists them, and
`layer_names(model)` lists the named activations a model returns with
`capture_activations=True` (computed with `jax.eval_shape`, nothing allocated).
Families: LeNet-5 (lenet.py), cnn4 (cnn4.py), AlexNet (alexnet.py), VGG (vgg.py),
ResNet (resnet.py). Tools: `summary.summary` (per-layer table), `receptive.receptive_field`
(analytic and measured receptive fields), `convert` (PyTorch and Keras weights).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn.models.alexnet import AlexNet
from jaxcnn.models.base import check_input, check_top
from jaxcnn.models.cnn4 import CNN4
from jaxcnn.models.convert import load_weights
from jaxcnn.models import pretrained
from jaxcnn.models.lenet import LeNet5
from jaxcnn.models.preprocessing import check_preprocessing
from jaxcnn.models.pretrained import IMAGENET, WeightsSource, decode_predictions, imagenet_classes
from jaxcnn.models.resnet import ResNet
from jaxcnn.models.vgg import VGG
from jaxcnn.ops.shapes import is_int

_RESNET_STAGES = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True)}

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "lenet5": LeNet5,
    "lenet5_classic": functools.partial(LeNet5, hidden=(120, 84)),
    "cnn4": CNN4,
    "alexnet": AlexNet,
    **{f"vgg{depth}{suffix}": functools.partial(VGG, depth=depth, batch_norm=bool(suffix))
       for depth in (11, 13, 16, 19) for suffix in ("", "_bn")},
    **{f"resnet{depth}": functools.partial(ResNet, stage_sizes=stages, bottleneck=bottleneck)
       for depth, (stages, bottleneck) in _RESNET_STAGES.items()},
    **{f"resnet{depth}_cifar": functools.partial(ResNet, stage_sizes=stages, bottleneck=bottleneck,
                                                 stem="cifar", num_classes=10,
                                                 input_shape=(32, 32, 3))
       for depth, (stages, bottleneck) in _RESNET_STAGES.items()},
}


def names() -> list[str]:
    """Names accepted by `create`, sorted."""
    return sorted(_REGISTRY)


def create(name: str, **kwargs) -> nn.Module:
    """Builds a registered model.

    Args:
      name: a name from `names()` (case-insensitive).
      **kwargs: model fields, e.g. `num_classes=10`, `input_shape=(32, 32, 1)`. Zoo models
        with a `weights` field take `weights="imagenet"` (the official file, downloaded
        once), a `WeightsSource` or a local weights file; the model then applies the
        weights' preprocessing to its [0, 1] input unless `preprocessing=` is given.

    Returns:
      An unbound Flax module.

    Raises:
      ValueError: for an unknown name (listing the known ones), an unknown field, or a
        field value that cannot build a model (num_classes, input_shape, dtype).
    """
    if not isinstance(name, str) or name.lower() not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names())}.")
    factory = _REGISTRY[name.lower()]
    fields = _fields(factory)
    unknown = sorted(set(kwargs) - fields)
    if "weights" in unknown:
        takes = [n for n in names() if "weights" in _fields(_REGISTRY[n])]
        raise ValueError(f"{name} takes no weights file; weights= works for "
                         f"{', '.join(takes)}.")
    if unknown:
        raise ValueError(f"{name} has no field {', '.join(map(repr, unknown))}; its fields are "
                         f"{', '.join(sorted(fields))}.")
    _check_fields(name, **kwargs)
    # Lists (from JSON, or typed by hand) as tuples: a model must be hashable to be jitted.
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if kwargs.get("weights") is not None:
        kwargs["weights"], preprocessing, needed = pretrained.resolve(
            name.lower(), kwargs["weights"], kwargs)
        kwargs = {"preprocessing": preprocessing, **kwargs, **needed}
    return factory(**kwargs)


# Fields a run records apart (classes, input shape, weights) or that belong to the devices.
_NOT_ARCHITECTURE = {"weights", "num_classes", "input_shape", "axis_name", "dtype"}


def architecture_fields(name: str, model: nn.Module) -> dict:
    """The fields of `model` that differ from `create(name)`'s defaults, JSON-ready.

    With `create(name, num_classes=..., input_shape=..., **architecture_fields(name, model))`
    a finished run's model is rebuilt as it was trained (the preprocessing of its
    weights, `stride_in_1x1`, narrower widths, ...) without reading the weights again.

    Args:
      name: the registered name `model` was created with.
      model: the model.

    Returns:
      {field: value}, tuples as lists.
    """
    default = _REGISTRY[name.lower()]()
    changed = {}
    for field in _fields(_REGISTRY[name.lower()]) - _NOT_ARCHITECTURE:
        value = getattr(model, field)
        if value != getattr(default, field):
            changed[field] = list(value) if isinstance(value, tuple) else value
    return dict(sorted(changed.items()))


def _fields(factory) -> set[str]:
    """The fields a registered model accepts."""
    return {f.name for f in dataclasses.fields(getattr(factory, "func", factory))
            if f.init and f.name not in ("parent", "name")}


def _check_fields(name: str, num_classes=10, input_shape=(1, 1, 1), dtype=None,
                  preprocessing=None, include_top=True, pooling=None, **others) -> None:
    """Refuses the common fields' values that would only fail later, inside `init`."""
    if not is_int(num_classes) or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be a positive int, got {num_classes!r}.")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(is_int(n) and n > 0 for n in shape):
        raise ValueError(f"{name}: input_shape must be (height, width, channels) of positive "
                         f"ints, got {input_shape!r}.")
    check_preprocessing(preprocessing, name)
    check_top(include_top, pooling, name)
    if dtype is not None:
        try:
            ok = jnp.issubdtype(jnp.dtype(dtype), jnp.floating)
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"{name}: dtype must be a float dtype such as jnp.float32 or "
                             f"jnp.bfloat16 (or None), got {dtype!r}.")


def layer_names(model: nn.Module) -> list[str]:
    """Names of the activations `model` returns with `capture_activations=True`, in order.

    Args:
      model: a jaxcnn model (with an `input_shape` field).

    Returns:
      The layer names in network order.
    """
    order: list[str] = []

    def trace(x):
        variables = model.init(jax.random.key(0), x)
        _, acts = model.apply(variables, x, capture_activations=True)
        order.extend(acts)  # dict order is call order; eval_shape would sort the keys
        return acts

    jax.eval_shape(trace, jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32))
    return order


__all__ = ["AlexNet", "CNN4", "IMAGENET", "LeNet5", "ResNet", "VGG", "WeightsSource",
           "architecture_fields", "check_input", "create", "decode_predictions",
           "imagenet_classes", "layer_names", "load_weights", "names"]
