"""Freezing part of a network for fine-tuning: `fit(..., freeze=REGEX)`.

Contract: a parameter is frozen when `re.search(freeze, path)` matches its "/"-joined path
(e.g. "block1_conv1/kernel", "stage1_block2/bn1/scale"). `freeze_optimizer` routes frozen
parameters to `optax.set_to_zero()` through `optax.multi_transform`, so they get no update
at all (they stay bit-identical, weight decay and momentum included, and the optimizer
keeps no state for them). `keep_frozen_stats` keeps the running statistics of BatchNorm
layers whose statistics' paths match, as a frozen layer should. A pattern that matches
no parameter is an error naming what paths look like.
"""
from __future__ import annotations

import re

import optax
from flax import traverse_util

FROZEN, TRAINABLE = "frozen", "trainable"


def _pattern(freeze: str) -> re.Pattern:
    try:
        return re.compile(freeze)
    except (re.error, TypeError) as err:
        raise ValueError(f"freeze must be a regular expression over parameter paths such as "
                         f"r'block[1-4]_', got {freeze!r} ({err}).") from err


def frozen_paths(params, freeze: str) -> list[str]:
    """The "/"-joined paths of the parameters `freeze` matches.

    Args:
      params: the model's parameters.
      freeze: a regular expression, searched in each path.

    Returns:
      The matching paths, in tree order.

    Raises:
      ValueError: a bad pattern, or one that matches no parameter.
    """
    pattern = _pattern(freeze)
    paths = list(traverse_util.flatten_dict(params, sep="/"))
    frozen = [p for p in paths if pattern.search(p)]
    if not frozen:
        raise ValueError(f"freeze={freeze!r} matches no parameter; parameter paths look like "
                         f"{', '.join(map(repr, paths[:4]))} (all: jaxcnn.summary(model)).")
    return frozen


def freeze_optimizer(tx: optax.GradientTransformation, params,
                     freeze: str) -> optax.GradientTransformation:
    """`tx` for the parameters `freeze` does not match; no update for the others.

    Args:
      tx: the optimizer of the trainable parameters.
      params: the model's parameters (arrays or shapes).
      freeze: a regular expression over "/"-joined parameter paths.

    Returns:
      The combined optimizer.
    """
    frozen = set(frozen_paths(params, freeze))
    labels = traverse_util.path_aware_map(
        lambda path, _: FROZEN if "/".join(path) in frozen else TRAINABLE, params)
    return optax.multi_transform({TRAINABLE: tx, FROZEN: optax.set_to_zero()}, labels)


def keep_frozen_stats(old, new, freeze: str):
    """`new` BatchNorm statistics, with those whose path `freeze` matches kept from `old`.

    Args:
      old: the statistics before the step.
      new: the statistics the step computed.
      freeze: a regular expression over "/"-joined paths (e.g. "stem_bn/mean").

    Returns:
      The statistics to keep.
    """
    pattern = _pattern(freeze)
    flat_old = traverse_util.flatten_dict(old, sep="/")
    flat_new = traverse_util.flatten_dict(new, sep="/")
    kept = {p: flat_old[p] if pattern.search(p) else value for p, value in flat_new.items()}
    return traverse_util.unflatten_dict(kept, sep="/")


def count_frozen(params, freeze: str | None) -> int:
    """How many parameter values `freeze` matches (0 for None)."""
    if freeze is None:
        return 0
    frozen = set(frozen_paths(params, freeze))
    flat = traverse_util.flatten_dict(params, sep="/")
    return sum(int(_size(v)) for p, v in flat.items() if p in frozen)


def _size(value) -> int:
    size = 1
    for n in value.shape:
        size *= n
    return size
