"""2D pooling as pure functions.

Contract:
    * ``x`` is NHWC; pooling acts on H and W independently per channel.
    * ``window`` and ``stride`` are ints or pairs; ``stride`` defaults to
      ``window`` (Keras convention, non-overlapping windows).
    * Padding as for ``conv2d``; padded cells never win: they are -inf for
      ``max_pool``, +inf for ``min_pool`` and 0 for ``sum_pool``.
    * ``avg_pool`` with ``count_include_pad=False`` (default) divides by the
      number of cells inside the image (TF/Keras "SAME" meaning); with
      ``True`` it divides by the full window size (PyTorch meaning).
    * Explicit pads must be smaller than the window, so that no window covers
      only padding ("SAME" always satisfies this).
    * The output spatial size equals :func:`jaxcnn.ops.shapes.pool_output_size`.
    * Checks use static shapes and raise before tracing (also inside jit).
    * Speed: when compiled for the CPU, windows that tile the input (stride ==
      window, no padding) use the reshape formulation of
      :mod:`jaxcnn.ops.cpu_fast`, with the same values and gradients (ties
      included); other platforms and other windows use ``lax.reduce_window``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn.ops import cpu_fast
from jaxcnn.ops.shapes import (
    Pads2D,
    PaddingLike,
    check_pool_padding,
    check_rank,
    check_window_fits,
    explicit_padding,
    normalize_pair,
    output_size_1d,
)


def _resolve(x: jax.Array, window: Any, stride: Any, padding: PaddingLike, op: str):
    """Validates pooling arguments and returns ``(window, stride, pads)``."""
    check_rank(x.shape, 4, "x", "(N, H, W, C)", op=op)
    win = normalize_pair(window, "window")
    strd = win if stride is None else normalize_pair(stride, "stride")
    pads = explicit_padding(padding, x.shape[1:3], win, strd, 1)
    check_window_fits(x.shape[1:3], win, (1, 1), pads, op=op, what="window")
    check_pool_padding(pads, win, op=op)
    return win, strd, pads


def _reduce(
    x: jax.Array,
    init: Any,
    computation: Callable,
    win: tuple,
    strd: tuple,
    pads: Pads2D,
) -> jax.Array:
    """Runs ``lax.reduce_window`` over the spatial axes of an NHWC array."""
    # init must be a concrete scalar of x's dtype so that JAX recognises the
    # monoid (max/min/add) and uses the specialised, differentiable primitive.
    return lax.reduce_window(
        x,
        np.array(init, dtype=x.dtype),
        computation,
        window_dimensions=(1, *win, 1),
        window_strides=(1, *strd, 1),
        padding=((0, 0), *pads, (0, 0)),
    )


def _pool(x: jax.Array, kind: str, win: tuple, strd: tuple, pads: Pads2D) -> jax.Array:
    """Max/min/sum pooling: the tiled formulation on CPU where it applies, else lax."""
    init, computation = {
        "max": (_lowest(x.dtype), lax.max),
        "min": (_highest(x.dtype), lax.min),
        "sum": (0, lax.add),
    }[kind]

    def plain(x):
        return _reduce(x, init, computation, win, strd, pads)

    if not cpu_fast.tiles_input(win, strd, pads):
        return plain(x)
    if kind == "sum":
        return cpu_fast.on_cpu(lambda x: cpu_fast.tiled_sum(x, win), plain, x)
    return cpu_fast.on_cpu(lambda x: cpu_fast.tiled_extremum(x, win, kind), plain, x)


def _lowest(dtype: Any) -> Any:
    """Identity element of max for ``dtype`` (-inf for floats)."""
    return -np.inf if jnp.issubdtype(dtype, jnp.inexact) else jnp.iinfo(dtype).min


def _highest(dtype: Any) -> Any:
    """Identity element of min for ``dtype`` (+inf for floats)."""
    return np.inf if jnp.issubdtype(dtype, jnp.inexact) else jnp.iinfo(dtype).max


def max_pool(
    x: jax.Array, window: Any, stride: Any = None, padding: PaddingLike = "VALID"
) -> jax.Array:
    """Maximum over each spatial window.

    Args:
        x: Input of shape ``(N, H, W, C)``.
        window: Window size, int or ``(wh, ww)``.
        stride: Stride, int or pair; defaults to ``window``.
        padding: Any ``conv2d`` padding form; padded cells count as -inf.

    Returns:
        ``(N, H_out, W_out, C)``.

    Raises:
        ValueError: Wrong rank, non-positive window/stride, bad padding or a
            window larger than the padded input.
    """
    x = jnp.asarray(x)
    win, strd, pads = _resolve(x, window, stride, padding, "max_pool")
    return _pool(x, "max", win, strd, pads)


def min_pool(
    x: jax.Array, window: Any, stride: Any = None, padding: PaddingLike = "VALID"
) -> jax.Array:
    """Minimum over each spatial window.

    Args:
        x: Input of shape ``(N, H, W, C)``.
        window: Window size, int or ``(wh, ww)``.
        stride: Stride, int or pair; defaults to ``window``.
        padding: Any ``conv2d`` padding form; padded cells count as +inf.

    Returns:
        ``(N, H_out, W_out, C)``.

    Raises:
        ValueError: As for :func:`max_pool`.
    """
    x = jnp.asarray(x)
    win, strd, pads = _resolve(x, window, stride, padding, "min_pool")
    return _pool(x, "min", win, strd, pads)


def sum_pool(
    x: jax.Array, window: Any, stride: Any = None, padding: PaddingLike = "VALID"
) -> jax.Array:
    """Sum over each spatial window.

    Args:
        x: Input of shape ``(N, H, W, C)``.
        window: Window size, int or ``(wh, ww)``.
        stride: Stride, int or pair; defaults to ``window``.
        padding: Any ``conv2d`` padding form; padded cells count as 0.

    Returns:
        ``(N, H_out, W_out, C)``.

    Raises:
        ValueError: As for :func:`max_pool`.
    """
    x = jnp.asarray(x)
    win, strd, pads = _resolve(x, window, stride, padding, "sum_pool")
    return _pool(x, "sum", win, strd, pads)


def _inside_counts(n: int, k: int, s: int, pads: tuple) -> np.ndarray:
    """Number of real (non-padding) cells in each window along one dimension."""
    starts = np.arange(output_size_1d(n, k, s, pads)) * s - pads[0]
    return np.minimum(starts + k, n) - np.maximum(starts, 0)


def avg_pool(
    x: jax.Array,
    window: Any,
    stride: Any = None,
    padding: PaddingLike = "VALID",
    count_include_pad: bool = False,
) -> jax.Array:
    """Mean over each spatial window.

    Args:
        x: Input of shape ``(N, H, W, C)``; integer inputs are averaged in float32.
        window: Window size, int or ``(wh, ww)``.
        stride: Stride, int or pair; defaults to ``window``.
        padding: Any ``conv2d`` padding form.
        count_include_pad: If False (TF/Keras), divide by the number of cells
            inside the image; if True (PyTorch), divide by the window size.

    Returns:
        ``(N, H_out, W_out, C)``.

    Raises:
        ValueError: As for :func:`max_pool`.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    win, strd, pads = _resolve(x, window, stride, padding, "avg_pool")
    total = _pool(x, "sum", win, strd, pads)
    if count_include_pad:
        return total / (win[0] * win[1])
    # The counts depend only on static shapes, so they are built in NumPy and
    # embedded as a constant: windows are separable, hence an outer product.
    counts = np.outer(
        _inside_counts(x.shape[1], win[0], strd[0], pads[0]),
        _inside_counts(x.shape[2], win[1], strd[1], pads[1]),
    )
    return total / jnp.asarray(counts[None, :, :, None], dtype=x.dtype)


def global_avg_pool(x: jax.Array, keepdims: bool = False) -> jax.Array:
    """Mean over all spatial positions.

    Args:
        x: Input of shape ``(N, H, W, C)``.
        keepdims: Return ``(N, 1, 1, C)`` instead of ``(N, C)``.

    Returns:
        ``(N, C)`` or ``(N, 1, 1, C)``.

    Raises:
        ValueError: If ``x`` is not 4-D.
    """
    x = jnp.asarray(x)
    check_rank(x.shape, 4, "x", "(N, H, W, C)", op="global_avg_pool")
    return jnp.mean(x, axis=(1, 2), keepdims=keepdims)


def global_max_pool(x: jax.Array, keepdims: bool = False) -> jax.Array:
    """Maximum over all spatial positions.

    Args:
        x: Input of shape ``(N, H, W, C)``.
        keepdims: Return ``(N, 1, 1, C)`` instead of ``(N, C)``.

    Returns:
        ``(N, C)`` or ``(N, 1, 1, C)``.

    Raises:
        ValueError: If ``x`` is not 4-D.
    """
    x = jnp.asarray(x)
    check_rank(x.shape, 4, "x", "(N, H, W, C)", op="global_max_pool")
    return jnp.max(x, axis=(1, 2), keepdims=keepdims)


def _adaptive_weights(n: int, out: int) -> np.ndarray:
    """(out, n) averaging matrix of PyTorch's adaptive pooling along one axis.

    Output cell ``i`` averages input cells ``floor(i*n/out)`` to ``ceil((i+1)*n/out) - 1``.
    """
    weights = np.zeros((out, n), np.float32)
    for i in range(out):
        start, end = (i * n) // out, -((-(i + 1) * n) // out)
        weights[i, start:end] = 1.0 / (end - start)
    return weights


def adaptive_avg_pool(x: jax.Array, output_size: Any) -> jax.Array:
    """Average pooling to a fixed spatial size, with PyTorch's ``AdaptiveAvgPool2d`` windows.

    Args:
        x: Input of shape ``(N, H, W, C)``.
        output_size: Int or ``(oh, ow)``; a larger output than input repeats cells.

    Returns:
        ``(N, oh, ow, C)``; ``x`` itself when it already has that size.

    Raises:
        ValueError: If ``x`` is not 4-D or ``output_size`` is not positive.
    """
    x = jnp.asarray(x)
    check_rank(x.shape, 4, "x", "(N, H, W, C)", op="adaptive_avg_pool")
    oh, ow = normalize_pair(output_size, "output_size")
    if x.shape[1:3] == (oh, ow):
        return x
    rows = jnp.asarray(_adaptive_weights(x.shape[1], oh), x.dtype)
    cols = jnp.asarray(_adaptive_weights(x.shape[2], ow), x.dtype)
    return jnp.einsum("ih,nhwc,jw->nijc", rows, x, cols)


__all__ = [
    "adaptive_avg_pool",
    "avg_pool",
    "global_avg_pool",
    "global_max_pool",
    "max_pool",
    "min_pool",
    "sum_pool",
]
