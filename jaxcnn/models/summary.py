"""A Keras-style summary of a model: one row per named layer, then totals.

Contract: `summary(model, input_shape)` traces the model with `jax.eval_shape` (nothing is
allocated, so a 224x224 VGG-19 costs nothing) and returns a `Summary` whose `str()` is the
table. Each row is a named activation of the model (`jaxcnn.models.layer_names`) with its
output shape (batch of 1), the parameters of the submodules that produced it since the
previous row (BatchNorm statistics included, as Keras counts them) and its FLOPs. FLOPs
are 2 x the multiply-accumulates of the convolution and dense layers for one image;
biases, activations, pooling and normalization are not counted.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import ops
from jaxcnn.layers import Conv2D, Dense
from jaxcnn.models.preprocessing import PREPROCESSING
from jaxcnn.train.freeze import count_frozen


class LayerRow(NamedTuple):
    """One row of the summary: a named activation and what produced it."""

    name: str
    output_shape: tuple[int, ...]
    params: int
    flops: int


@dataclasses.dataclass(frozen=True)
class Summary:
    """The rows and totals of a model summary; `str(summary)` renders the table.

    Attributes:
      model_name: the model's class name.
      input_shape: the (H, W, C) it was traced with.
      rows: one `LayerRow` per named layer, in network order.
      totals: params, trainable_params, non_trainable_params (BatchNorm statistics and
        frozen parameters), frozen_params, flops (per image) and param_bytes (memory of all
        variables in their storage dtype).
      preprocessing: the input preprocessing the model applies first (None: none).
    """

    model_name: str
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    totals: dict[str, int]
    preprocessing: str | None = None

    def __str__(self) -> str:
        header = ("Layer", "Output shape", "Params", "FLOPs")
        cells = [(r.name, str(r.output_shape), f"{r.params:,}", f"{r.flops:,}") for r in self.rows]
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(4)]

        def line(row):
            return "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                              row[2].rjust(widths[2]), row[3].rjust(widths[3])])

        rule = "-" * len(line(header))
        t = self.totals
        lines = [f"{self.model_name} on input {self.input_shape}"]
        if self.preprocessing is not None:
            lines.append(f"Input preprocessing: {self.preprocessing} "
                         f"({PREPROCESSING[self.preprocessing]}), applied to [0, 1] RGB")
        lines += [rule, line(header), rule,
                 *map(line, cells), rule,
                 f"Total params: {t['params']:,}",
                 f"Trainable params: {t['trainable_params']:,}",
                 f"Non-trainable params: {t['non_trainable_params']:,}"
                 + (f" (frozen: {t['frozen_params']:,})" if t.get("frozen_params") else ""),
                 f"FLOPs per image: {t['flops']:,}",
                 f"Parameter memory: {t['param_bytes'] / 2**20:,.2f} MiB"]
        return "\n".join(lines)


def _flops(module: nn.Module, x, y) -> int:
    """2 x multiply-accumulates of one conv or dense call (0 for other modules)."""
    if isinstance(module, Conv2D):
        kh, kw = ops.normalize_pair(module.kernel_size, "kernel_size")
        return 2 * int(np.prod(y.shape[1:])) * kh * kw * (x.shape[-1] // module.groups)
    if isinstance(module, Dense):
        return 2 * int(np.prod(y.shape[1:])) * x.shape[-1]
    return 0


def _trace(model: nn.Module, variables, x):
    """Runs the model once, logging (top-level submodule, output, flops) for every call."""
    log: list[tuple[str, object, int]] = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        path = context.module.scope.path if context.module.scope else ()
        if context.method_name == "__call__" and path:
            log.append((path[0], out if len(path) == 1 else None,
                        _flops(context.module, args[0], out)))
        return out

    with nn.intercept_methods(record):
        _, acts = model.apply(variables, x, capture_activations=True)
    return acts, log


def _count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def _rows(model: nn.Module, variables, x) -> list[LayerRow]:
    """Attributes every logged call to the first named activation produced after it."""
    rows = []

    def trace(traced_variables, x):
        acts, log = _trace(model, traced_variables, x)
        position = 0
        for name, act in acts.items():
            modules, flops = set(), 0
            for end in range(position, len(log)):
                if log[end][1] is act:
                    for module, _, call_flops in log[position:end + 1]:
                        modules.add(module)
                        flops += call_flops
                    position = end + 1
                    break
            params = sum(_count(collection.get(m, {})) for collection in variables.values()
                         for m in modules)
            rows.append(LayerRow(name, tuple(act.shape), params, flops))
        return acts

    jax.eval_shape(trace, variables, x)
    return rows


def summary(model: nn.Module, input_shape: Sequence[int] | None = None,
            freeze: str | None = None) -> Summary:
    """Summarizes `model` layer by layer without allocating it.

    Args:
      model: a jaxcnn model (fields `input_shape`; `capture_activations` in its call).
      input_shape: (H, W, C) to trace with; defaults to `model.input_shape`. The model is
        rebuilt for it (`model.clone(input_shape=...)`), so models that flatten a feature
        map are summarized at that size too.
      freeze: the `fit(freeze=...)` pattern: its parameters are counted as frozen, not
        trainable (totals["frozen_params"]).

    Returns:
      A `Summary`; print it for the table, read `.rows` and `.totals` for the numbers.
    """
    shape = tuple(input_shape or model.input_shape)
    if shape != tuple(model.input_shape):
        model = model.clone(input_shape=shape)
    if getattr(model, "weights", None) is not None:
        model = model.clone(weights=None)  # the shapes are the same; the file need not be read
    x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    rows = _rows(model, variables, x)
    frozen = count_frozen(variables.get("params", {}), freeze)
    trainable = _count(variables.get("params", {})) - frozen
    total = _count(variables)
    param_bytes = sum(int(np.prod(v.shape)) * v.dtype.itemsize for v in jax.tree.leaves(variables))
    totals = {"params": total, "trainable_params": trainable, "frozen_params": frozen,
              "non_trainable_params": total - trainable,
              "flops": sum(row.flops for row in rows), "param_bytes": param_bytes}
    return Summary(type(model).__name__, shape, rows, totals,
                   getattr(model, "preprocessing", None))
